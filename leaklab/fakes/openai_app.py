"""The fake OpenAI API as a Starlette ASGI app: ``/v1/chat/completions``
(streaming and not, text and tool calls), ``/v1/audio/speech`` (a real WAV
file) and ``/v1/models``, with thread-safe counters of what it served.
What each answer says is decided in :mod:`leaklab.fakes.openai_replies`.

Only the standard library and Starlette are imported on purpose: the fake must
not depend on the code it is used to test.
"""

from __future__ import annotations

import asyncio
import re
import threading
import time
from collections.abc import AsyncIterator
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from .openai_replies import (
    FAKE_MODEL_ID,
    BadRequest,
    approx_tokens,
    digest,
    error_response,
    parse_chat,
    read_json_object,
    reply_text,
    sse,
    wav_tone,
)

__all__ = ["PROMPT_CHARS_HEADER", "TTS_FAIL_MARKER", "FakeOpenAIStats", "create_fake_openai_app"]

TTS_FAIL_MARKER = "[[tts-fail]]"
"""Text marker that makes ``/v1/audio/speech`` fail with HTTP 500."""

PROMPT_CHARS_HEADER = "x-fake-prompt-chars"

# How many characters of tool-call arguments go into one SSE delta.  Small
# enough that even short arguments arrive in several pieces, like OpenAI does.
_ARGS_CHUNK_CHARS = 8
_TOKEN_RE = re.compile(r"\S+\s*")


# --------------------------------------------------------------------------
# Statistics
# --------------------------------------------------------------------------


class FakeOpenAIStats:
    """Thread-safe counters shared by the app and :class:`FakeOpenAIServer`.

    The app updates them on the uvicorn thread while tests read them from the
    main thread, hence the lock.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._requests = 0
        self._prompt_chars = 0
        self._chats = 0
        self._chat_seconds = 0.0

    def add_request(self) -> None:
        """Count one HTTP request (any path, any outcome)."""
        with self._lock:
            self._requests += 1

    def add_prompt_chars(self, n: int) -> None:
        """Add the prompt size of one chat completion request."""
        with self._lock:
            self._prompt_chars += n
            self._chats += 1

    def add_chat_seconds(self, seconds: float) -> None:
        """Add how long one chat completion took on the server's side (from
        its request to the last byte of its answer)."""
        with self._lock:
            self._chat_seconds += seconds

    @property
    def chat_seconds(self) -> float:
        """Seconds spent answering chat completions so far (server side)."""
        with self._lock:
            return self._chat_seconds

    @property
    def chat_requests(self) -> int:
        """Chat completion requests whose prompt was counted."""
        with self._lock:
            return self._chats

    @property
    def requests_served(self) -> int:
        """Number of HTTP requests received so far."""
        with self._lock:
            return self._requests

    @property
    def prompt_chars(self) -> int:
        """Total prompt characters of all chat completion requests so far."""
        with self._lock:
            return self._prompt_chars


class _CountRequests:
    """Pure ASGI middleware counting HTTP requests.

    Counting when the request arrives (not when the response is finished)
    means a client that has seen any response byte also sees the counter
    incremented, so tests can read it without racing the server thread.
    """

    def __init__(self, app: ASGIApp, stats: FakeOpenAIStats) -> None:
        self.app = app
        self.stats = stats

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            self.stats.add_request()
        await self.app(scope, receive, send)



def create_fake_openai_app(
    *,
    base_latency_s: float = 0.005,
    latency_per_kchar_s: float = 0.02,
    sentences: int = 2,
) -> Starlette:
    """Build the fake OpenAI ASGI app.

    Args:
        base_latency_s: Delay before the first chat chunk for an empty prompt.
        latency_per_kchar_s: Extra delay per 1000 prompt characters, so bigger
            prompts answer slower, like real token processing.
        sentences: Number of sentences in every text reply (>= 1).

    Returns:
        A Starlette app. Its counters are in ``app.state.fake_openai_stats``
        (a :class:`FakeOpenAIStats`).

    Raises:
        ValueError: On a negative latency or fewer than one sentence.
    """
    if base_latency_s < 0 or latency_per_kchar_s < 0:
        raise ValueError("latencies must be >= 0")
    if sentences < 1:
        raise ValueError("sentences must be >= 1")

    stats = FakeOpenAIStats()

    async def chat_completions(request: Request) -> Response:
        started = time.monotonic()
        try:
            plan = parse_chat(await read_json_object(request))
        except BadRequest as exc:
            return error_response(400, exc.message, param=exc.param)

        prompt_chars = plan["prompt_chars"]
        stats.add_prompt_chars(prompt_chars)
        delay = base_latency_s + latency_per_kchar_s * prompt_chars / 1000
        completion_id = "chatcmpl-" + plan["digest"][:29]
        created = int(time.time())
        model = plan["model"]
        headers = {PROMPT_CHARS_HEADER: str(prompt_chars)}

        if "tool_call" in plan:
            name, arguments = plan["tool_call"]
            call_id = "call_" + digest(plan["digest"], name)[:24]
            text = None
            finish_reason = "tool_calls"
            completion_chars = len(arguments)
        else:
            text = reply_text(sentences, *plan["text"])
            finish_reason = "stop"
            completion_chars = len(text)
        usage = {
            "prompt_tokens": approx_tokens(prompt_chars),
            "completion_tokens": approx_tokens(completion_chars),
            "total_tokens": approx_tokens(prompt_chars) + approx_tokens(completion_chars),
        }

        def chunk(delta: dict[str, Any], finish: str | None = None) -> bytes:
            return sse(
                {
                    "id": completion_id,
                    "object": "chat.completion.chunk",
                    "created": created,
                    "model": model,
                    "system_fingerprint": "fp_leaklab_fake",
                    "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
                }
            )

        if not plan["stream"]:
            await asyncio.sleep(delay)
            stats.add_chat_seconds(time.monotonic() - started)
            message: dict[str, Any] = {"role": "assistant", "content": text, "refusal": None}
            if text is None:
                message["tool_calls"] = [
                    {"id": call_id, "type": "function", "function": {"name": name, "arguments": arguments}}
                ]
            return JSONResponse(
                {
                    "id": completion_id,
                    "object": "chat.completion",
                    "created": created,
                    "model": model,
                    "system_fingerprint": "fp_leaklab_fake",
                    "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": finish_reason}],
                    "usage": usage,
                },
                headers=headers,
            )

        async def events() -> AsyncIterator[bytes]:
            try:
                async for part in answer():
                    yield part
            finally:  # the whole answer, or until the client left
                stats.add_chat_seconds(time.monotonic() - started)

        async def answer() -> AsyncIterator[bytes]:
            # Headers are already out when this runs (StreamingResponse sends
            # them first), so the delay models time-to-first-token.
            await asyncio.sleep(delay)
            if text is None:
                # Same shape as OpenAI: the first delta carries id, type, name
                # and empty arguments; later deltas only argument fragments.
                yield chunk(
                    {
                        "role": "assistant",
                        "content": None,
                        "tool_calls": [
                            {
                                "index": 0,
                                "id": call_id,
                                "type": "function",
                                "function": {"name": name, "arguments": ""},
                            }
                        ],
                    }
                )
                for i in range(0, len(arguments), _ARGS_CHUNK_CHARS):
                    piece = arguments[i : i + _ARGS_CHUNK_CHARS]
                    yield chunk({"tool_calls": [{"index": 0, "function": {"arguments": piece}}]})
                    await asyncio.sleep(0)  # let other requests run between chunks
            else:
                yield chunk({"role": "assistant", "content": "", "refusal": None})
                for token in _TOKEN_RE.findall(text):
                    yield chunk({"content": token})
                    await asyncio.sleep(0)
            yield chunk({}, finish_reason)
            if plan["include_usage"]:
                yield sse(
                    {
                        "id": completion_id,
                        "object": "chat.completion.chunk",
                        "created": created,
                        "model": model,
                        "system_fingerprint": "fp_leaklab_fake",
                        "choices": [],
                        "usage": usage,
                    }
                )
            yield b"data: [DONE]\n\n"

        return StreamingResponse(
            events(),
            media_type="text/event-stream",
            headers={**headers, "cache-control": "no-cache"},
        )

    async def audio_speech(request: Request) -> Response:
        try:
            body = await read_json_object(request)
        except BadRequest as exc:
            return error_response(400, exc.message, param=exc.param)
        text = body.get("input")
        if not isinstance(text, str) or not text:
            return error_response(400, "'input' must be a non-empty string.", param="input")
        if TTS_FAIL_MARKER in text:
            return error_response(
                500,
                f"Fake TTS failure requested by the {TTS_FAIL_MARKER} marker.",
                type_="server_error",
                code="fake_tts_failure",
            )
        # Whatever response_format was asked for, the answer is WAV: the
        # fake has no encoders, and the content-type says what it is.
        return Response(wav_tone(len(text)), media_type="audio/wav")

    async def list_models(request: Request) -> Response:
        return JSONResponse(
            {
                "object": "list",
                "data": [{"id": FAKE_MODEL_ID, "object": "model", "created": 0, "owned_by": "leaklab"}],
            }
        )

    async def http_error(request: Request, exc: Exception) -> Response:
        # Routing raises HTTPException for unknown paths (404) and wrong
        # methods (405); answer those in OpenAI's JSON shape, not plain text.
        status = exc.status_code if isinstance(exc, HTTPException) else 500
        if status == 404:
            message = f"Invalid URL ({request.method} {request.url.path})"
            return error_response(404, message, code="unknown_url")
        return error_response(status, f"{request.method} {request.url.path}: {exc}", type_="invalid_request_error")

    async def server_error(request: Request, exc: Exception) -> Response:
        return error_response(500, "The fake server had an internal error.", type_="server_error")

    app = Starlette(
        routes=[
            Route("/v1/chat/completions", chat_completions, methods=["POST"]),
            Route("/v1/audio/speech", audio_speech, methods=["POST"]),
            Route("/v1/models", list_models, methods=["GET"]),
        ],
        middleware=[Middleware(_CountRequests, stats=stats)],
        exception_handlers={HTTPException: http_error, Exception: server_error},
    )
    app.state.fake_openai_stats = stats
    return app
