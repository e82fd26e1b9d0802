"""A local, deterministic, offline fake of the OpenAI HTTP API.

The leak experiments need an LLM and a TTS engine that answer the same way
every time, cost nothing, never touch the network and still go through the
real ``openai`` SDK code paths (HTTP, SSE parsing, retries, error mapping).
This module provides:

* :func:`create_fake_openai_app` - a Starlette ASGI app that serves
  ``/v1/chat/completions`` (streaming and not, text and tool calls),
  ``/v1/audio/speech`` (a real WAV file) and ``/v1/models``;
* :class:`FakeOpenAIServer` - runs that app on uvicorn in a background thread
  with its own event loop, so it can be used from sync code, from pytest and
  from inside a running event loop (Jupyter);
* :func:`main` - ``python -m leaklab.fakes.openai`` serves it until
  Ctrl-C.

Only the standard library, Starlette and uvicorn are imported on purpose: the
fake must not depend on the code it is used to test.
"""

from __future__ import annotations

import argparse
import array
import asyncio
import hashlib
import io
import json
import math
import re
import signal
import sys
import threading
import time
import wave
import weakref
from collections.abc import AsyncIterator
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from .._compat import Runner  # asyncio.Runner, backported for 3.10

__all__ = [
    "FAKE_MODEL_ID",
    "TTS_FAIL_MARKER",
    "THREAD_NAME",
    "FakeOpenAIServer",
    "FakeOpenAIStats",
    "create_fake_openai_app",
    "main",
]

FAKE_MODEL_ID = "fake-llm"
"""The only model listed by ``GET /v1/models``."""

TTS_FAIL_MARKER = "[[tts-fail]]"
"""Text marker that makes ``/v1/audio/speech`` fail with HTTP 500."""

THREAD_NAME = "leaklab-fake-openai"
"""Name of the thread :class:`FakeOpenAIServer` runs uvicorn in."""

PROMPT_CHARS_HEADER = "x-fake-prompt-chars"
#: Fake servers of this process, for :func:`llm_usage` (weak: a stopped,
#: dropped server goes).
_LIVE: weakref.WeakSet[Any] = weakref.WeakSet()

# WAV output: 16 kHz mono 16-bit, 20 ms of tone per input character, capped.
_SAMPLE_RATE = 16_000
_MS_PER_CHAR = 20
_MAX_AUDIO_S = 2.0
_TONE_HZ = 440.0
_FADE_S = 0.005

# How many characters of tool-call arguments go into one SSE delta.  Small
# enough that even short arguments arrive in several pieces, like OpenAI does.
_ARGS_CHUNK_CHARS = 8

_WORD_RE = re.compile(r"\w+")
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

    def add_request(self) -> None:
        """Count one HTTP request (any path, any outcome)."""
        with self._lock:
            self._requests += 1

    def add_prompt_chars(self, n: int) -> None:
        """Add the prompt size of one chat completion request."""
        with self._lock:
            self._prompt_chars += n
            self._chats += 1

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


# --------------------------------------------------------------------------
# Helpers: errors, text extraction, deterministic content
# --------------------------------------------------------------------------


class _BadRequest(Exception):
    """An invalid request body; becomes an OpenAI-style 400 error."""

    def __init__(self, message: str, param: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.param = param


def _error_response(
    status: int,
    message: str,
    *,
    type_: str = "invalid_request_error",
    param: str | None = None,
    code: str | None = None,
) -> JSONResponse:
    """An error body shaped like OpenAI's, so the SDK maps it to its exceptions.

    Never include request headers here: the Authorization header must not be
    echoed back.
    """
    return JSONResponse(
        {"error": {"message": message, "type": type_, "param": param, "code": code}},
        status_code=status,
    )


async def _read_json_object(request: Request) -> dict[str, Any]:
    """Parse the request body as a JSON object or raise :class:`_BadRequest`."""
    raw = await request.body()
    try:
        body = json.loads(raw)
    except ValueError as exc:  # JSONDecodeError and UnicodeDecodeError
        raise _BadRequest(f"We could not parse the JSON body of your request: {exc}") from None
    if not isinstance(body, dict):
        raise _BadRequest("The request body must be a JSON object.")
    return body


def _content_text(content: Any) -> str:
    """The text of a message ``content``: a string or a list of content parts."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        texts = []
        for part in content:
            if isinstance(part, str):
                texts.append(part)
            elif isinstance(part, dict) and isinstance(part.get("text"), str):
                texts.append(part["text"])
        return "\n".join(texts)
    # Anything else is a malformed message, but the fake stays lenient: the
    # point is to exercise clients, not to validate them.
    return str(content)


def _digest(*parts: Any) -> str:
    """A stable hex digest (Python's ``hash()`` is salted per process)."""
    payload = json.dumps(parts, sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


def _short_string(text: str) -> str:
    """A short deterministic string derived from ``text`` (tool arguments)."""
    words = _WORD_RE.findall(text)[:3]
    return " ".join(words)[:40] or "fake"


def _fake_value(schema: Any, user_text: str) -> Any:
    """A deterministic value that satisfies a simple JSON schema."""
    if not isinstance(schema, dict):
        return _short_string(user_text)
    enum = schema.get("enum")
    if isinstance(enum, list) and enum:
        return enum[0]
    type_ = schema.get("type", "string")
    if isinstance(type_, list):  # e.g. ["string", "null"]
        type_ = next((t for t in type_ if t != "null"), "string")
    if type_ in ("integer", "number"):
        return 1
    if type_ == "boolean":
        return True
    if type_ == "array":
        return []
    if type_ == "object":
        return {}
    if type_ == "null":
        return None
    return _short_string(user_text)


def _tool_arguments(function: dict[str, Any], user_text: str) -> dict[str, Any]:
    """Arguments for every *required* property of a tool's parameter schema."""
    params = function.get("parameters")
    if not isinstance(params, dict):
        return {}
    props = params.get("properties") if isinstance(params.get("properties"), dict) else {}
    required = params.get("required") if isinstance(params.get("required"), list) else []
    return {name: _fake_value(props.get(name), user_text) for name in required if isinstance(name, str)}


def _snippet(text: str, n_words: int = 6, default: str = "nothing in particular") -> str:
    """Up to ``n_words`` words of ``text`` without punctuation.

    Dropping punctuation keeps the sentence count exact: user text containing
    ``.`` or ``?`` cannot add sentences to the reply.
    """
    return " ".join(_WORD_RE.findall(text)[:n_words]) or default


def _reply_text(n_sentences: int, user_text: str, tool_name: str | None, tool_text: str | None) -> str:
    """Exactly ``n_sentences`` deterministic sentences about the conversation."""
    words = _WORD_RE.findall(user_text)
    longest = max(words, key=len) if words else "none"
    if tool_text is not None:
        first = f"The tool {_snippet(tool_name or 'call', 1)} returned {_snippet(tool_text, default='an empty result')}."
    else:
        first = f"You said {_snippet(user_text)}."
    others = [
        f"That message has {len(words)} word{'' if len(words) == 1 else 's'}.",
        f"The longest word in it is {longest}.",
        f"It is about {_snippet(user_text, 3)}.",
    ]
    sentences = [first]
    for i in range(1, n_sentences):
        template = others[(i - 1) % len(others)]
        # Past the templates, number the sentences so the reply never repeats.
        sentences.append(template if i <= len(others) else f"This is fake sentence {i + 1} of {n_sentences}.")
    return " ".join(sentences)


def _approx_tokens(chars: int) -> int:
    """OpenAI's rule of thumb: about four characters per token."""
    return math.ceil(chars / 4)


def _sse(obj: Any) -> bytes:
    """One server-sent event, framed exactly like OpenAI's stream."""
    return b"data: " + json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode("utf-8") + b"\n\n"


def _wav_tone(n_chars: int) -> bytes:
    """A deterministic 16 kHz mono 16-bit WAV tone, 20 ms per character (<= 2 s)."""
    n_frames = min(n_chars * _SAMPLE_RATE * _MS_PER_CHAR // 1000, int(_SAMPLE_RATE * _MAX_AUDIO_S))
    fade = max(1, int(_SAMPLE_RATE * _FADE_S))
    samples = array.array("h", bytes(2 * n_frames))
    step = 2 * math.pi * _TONE_HZ / _SAMPLE_RATE
    for i in range(n_frames):
        # Short linear fades avoid clicks at both ends when the audio is played.
        env = min(1.0, (i + 1) / fade, (n_frames - i) / fade)
        samples[i] = int(0.3 * 32767 * env * math.sin(step * i))
    if sys.byteorder == "big":  # WAV data is little-endian.
        samples.byteswap()
    buf = io.BytesIO()
    with wave.open(buf, "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(_SAMPLE_RATE)
        wav.writeframes(samples.tobytes())
    return buf.getvalue()


# --------------------------------------------------------------------------
# The ASGI app
# --------------------------------------------------------------------------


def _parse_chat(body: dict[str, Any]) -> dict[str, Any]:
    """Validate a chat completion request and decide what to answer.

    Returns:
        A plan dict: ``prompt_chars``, ``model``, ``stream``, ``include_usage``
        and either ``tool_call`` (name, arguments string) or ``text``.
    """
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise _BadRequest("'messages' must be a non-empty array.", "messages")
    for i, msg in enumerate(messages):
        if not isinstance(msg, dict) or not isinstance(msg.get("role"), str):
            raise _BadRequest(f"messages[{i}] must be an object with a 'role'.", f"messages[{i}]")

    tools = body.get("tools") or []
    if not isinstance(tools, list):
        raise _BadRequest("'tools' must be an array.", "tools")
    functions: list[dict[str, Any]] = []
    for i, tool in enumerate(tools):
        fn = tool.get("function") if isinstance(tool, dict) else None
        if not isinstance(fn, dict) or not isinstance(fn.get("name"), str):
            raise _BadRequest(f"tools[{i}] must have a function with a name.", f"tools[{i}]")
        functions.append(fn)

    # Token cost model: every character of every message (tool results
    # included) makes the first chunk later.
    prompt_chars = sum(len(_content_text(m.get("content"))) for m in messages)

    last = messages[-1]
    user_text = next(
        (_content_text(m.get("content")) for m in reversed(messages) if m.get("role") == "user"),
        "",
    )
    plan: dict[str, Any] = {
        "prompt_chars": prompt_chars,
        "model": body.get("model") if isinstance(body.get("model"), str) else FAKE_MODEL_ID,
        "stream": bool(body.get("stream", False)),
        "include_usage": bool(isinstance(body.get("stream_options"), dict) and body["stream_options"].get("include_usage")),
        "digest": _digest(messages, tools),
    }

    tool_choice = body.get("tool_choice", "auto")
    if functions and last["role"] == "user" and tool_choice != "none":
        last_text = _content_text(last.get("content"))
        chosen = functions[len(last_text) % len(functions)]
        # Honour a forced choice so clients that pin a tool still work.
        if isinstance(tool_choice, dict):
            forced_fn = tool_choice.get("function")
            forced = forced_fn.get("name") if isinstance(forced_fn, dict) else None
            chosen = next((fn for fn in functions if fn["name"] == forced), chosen)
        plan["tool_call"] = (chosen["name"], json.dumps(_tool_arguments(chosen, last_text), ensure_ascii=False))
        return plan

    tool_name = tool_text = None
    if last["role"] == "tool":
        tool_text = _content_text(last.get("content"))
        call_id = last.get("tool_call_id")
        # Name the tool by finding the assistant call this result answers.
        for m in reversed(messages):
            for call in m.get("tool_calls") or []:
                if isinstance(call, dict) and call.get("id") == call_id:
                    tool_name = (call.get("function") or {}).get("name")
                    break
            if tool_name:
                break
    plan["text"] = (user_text, tool_name, tool_text)
    return plan


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
        try:
            plan = _parse_chat(await _read_json_object(request))
        except _BadRequest as exc:
            return _error_response(400, exc.message, param=exc.param)

        prompt_chars = plan["prompt_chars"]
        stats.add_prompt_chars(prompt_chars)
        delay = base_latency_s + latency_per_kchar_s * prompt_chars / 1000
        completion_id = "chatcmpl-" + plan["digest"][:29]
        created = int(time.time())
        model = plan["model"]
        headers = {PROMPT_CHARS_HEADER: str(prompt_chars)}

        if "tool_call" in plan:
            name, arguments = plan["tool_call"]
            call_id = "call_" + _digest(plan["digest"], name)[:24]
            text = None
            finish_reason = "tool_calls"
            completion_chars = len(arguments)
        else:
            text = _reply_text(sentences, *plan["text"])
            finish_reason = "stop"
            completion_chars = len(text)
        usage = {
            "prompt_tokens": _approx_tokens(prompt_chars),
            "completion_tokens": _approx_tokens(completion_chars),
            "total_tokens": _approx_tokens(prompt_chars) + _approx_tokens(completion_chars),
        }

        def chunk(delta: dict[str, Any], finish: str | None = None) -> bytes:
            return _sse(
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
                yield _sse(
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
            body = await _read_json_object(request)
        except _BadRequest as exc:
            return _error_response(400, exc.message, param=exc.param)
        text = body.get("input")
        if not isinstance(text, str) or not text:
            return _error_response(400, "'input' must be a non-empty string.", param="input")
        if TTS_FAIL_MARKER in text:
            return _error_response(
                500,
                f"Fake TTS failure requested by the {TTS_FAIL_MARKER} marker.",
                type_="server_error",
                code="fake_tts_failure",
            )
        # Whatever response_format was asked for, the answer is WAV: the
        # fake has no encoders, and the content-type says what it is.
        return Response(_wav_tone(len(text)), media_type="audio/wav")

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
            return _error_response(404, message, code="unknown_url")
        return _error_response(status, f"{request.method} {request.url.path}: {exc}", type_="invalid_request_error")

    async def server_error(request: Request, exc: Exception) -> Response:
        return _error_response(500, "The fake server had an internal error.", type_="server_error")

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


# --------------------------------------------------------------------------
# Background server
# --------------------------------------------------------------------------


class _NotifyingServer(uvicorn.Server):
    """A uvicorn server that tells another thread when it is listening."""

    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self.listening = threading.Event()

    async def startup(self, sockets: Any = None) -> None:
        await super().startup(sockets=sockets)
        # ``started`` is set once the listening socket exists; with lifespan
        # off there is nothing else to wait for.
        if self.started:
            self.listening.set()


def _stop_at_exit(ref: weakref.ReferenceType[FakeOpenAIServer]) -> None:
    """Stop a forgotten server before the interpreter waits for its thread."""
    server = ref()
    if server is not None:
        try:
            server.stop()
        except Exception:  # noqa: BLE001 - nothing useful to do at exit
            pass


def llm_usage() -> tuple[int, int]:
    """``(chat requests, prompt characters)`` so far, summed over the fake
    servers alive in this process: what the backend under test sent its LLM
    (the difference between two calls is a run's). ``(0, 0)`` when none
    exists (a backend talking to a real LLM)."""
    chats = chars = 0
    for server in list(_LIVE):
        chats += server._stats.chat_requests
        chars += server._stats.prompt_chars
    return chats, chars


class FakeOpenAIServer:
    """Runs the fake OpenAI app on uvicorn in a background thread.

    The thread has its own event loop, so the server works from sync code and
    from inside a running event loop (Jupyter, ``asyncio.run``). The thread is
    not a daemon so it is shut down cleanly rather than killed; call
    :meth:`stop` or use the context manager (a safety net also stops it at
    interpreter exit).

    Example:
        >>> with FakeOpenAIServer() as url:  # doctest: +SKIP
        ...     client = openai.OpenAI(api_key="sk-test", base_url=url)
    """

    def __init__(
        self,
        *,
        base_latency_s: float = 0.005,
        latency_per_kchar_s: float = 0.02,
        sentences: int = 2,
        port: int = 0,
        startup_timeout_s: float = 10.0,
    ) -> None:
        """Build the app; nothing listens until :meth:`start`.

        Args:
            base_latency_s: See :func:`create_fake_openai_app`.
            latency_per_kchar_s: See :func:`create_fake_openai_app`.
            sentences: See :func:`create_fake_openai_app`.
            port: TCP port on 127.0.0.1; 0 picks a free one.
            startup_timeout_s: How long :meth:`start` waits for the socket.
        """
        self.app = create_fake_openai_app(
            base_latency_s=base_latency_s,
            latency_per_kchar_s=latency_per_kchar_s,
            sentences=sentences,
        )
        self._stats: FakeOpenAIStats = self.app.state.fake_openai_stats
        _LIVE.add(self)
        self._port_wanted = port
        self._startup_timeout_s = startup_timeout_s
        # Serialises start/stop; never held while a request is served.
        self._lock = threading.Lock()
        self._server: _NotifyingServer | None = None
        self._thread: threading.Thread | None = None
        self._base_url: str | None = None
        self._atexit_registered = False

    # -- lifecycle ---------------------------------------------------------

    def start(self) -> str:
        """Start serving and wait until the socket accepts connections.

        Returns:
            The base URL, ``http://127.0.0.1:PORT/v1``. Calling it again while
            running returns the same URL.

        Raises:
            RuntimeError: If uvicorn fails or is not listening within the
                startup timeout.
        """
        with self._lock:
            if self._thread is not None:
                assert self._base_url is not None
                return self._base_url
            config = uvicorn.Config(
                self.app,
                host="127.0.0.1",
                port=self._port_wanted,
                # Plain asyncio (not uvloop) keeps the server loop identical
                # everywhere and easy to introspect.
                loop="asyncio",
                ws="none",
                lifespan="off",
                log_level="warning",
                access_log=False,
                # uvicorn's default log_config runs logging.dictConfig(), which
                # would rewire the host process' logging (pytest, Jupyter).
                log_config=None,
            )
            server = _NotifyingServer(config)
            failure: list[BaseException] = []
            thread = threading.Thread(
                target=self._run, args=(server, failure), name=THREAD_NAME, daemon=False
            )
            thread.start()

            deadline = time.monotonic() + self._startup_timeout_s
            while not server.listening.wait(0.01):
                if not thread.is_alive() or time.monotonic() > deadline:
                    break
            if not server.listening.is_set():
                server.should_exit = True
                thread.join(5.0)
                if failure:
                    reason = f"uvicorn failed: {failure[0]!r}"
                elif thread.is_alive():
                    reason = f"not listening after {self._startup_timeout_s:g} s"
                else:
                    reason = "the server thread exited during startup (port in use?)"
                raise RuntimeError(f"FakeOpenAIServer could not start on 127.0.0.1:{self._port_wanted}: {reason}")

            port = server.servers[0].sockets[0].getsockname()[1]
            self._server, self._thread = server, thread
            self._base_url = f"http://127.0.0.1:{port}/v1"
            if not self._atexit_registered:
                self._register_atexit()
            return self._base_url

    @staticmethod
    def _run(server: _NotifyingServer, failure: list[BaseException]) -> None:
        """Thread body: a fresh event loop that lives as long as uvicorn."""
        try:
            # asyncio.Runner (not asyncio.run) so a patched asyncio.run, e.g.
            # nest_asyncio in Jupyter, cannot hand us the caller's loop.
            with Runner() as runner:
                runner.run(server.serve())
        except BaseException as exc:  # noqa: BLE001 - uvicorn calls sys.exit() on bind errors
            failure.append(exc)

    def _register_atexit(self) -> None:
        # A non-daemon thread would keep the interpreter alive forever if the
        # caller forgot stop(). threading._register_atexit runs callbacks
        # *before* non-daemon threads are joined (plain atexit runs after).
        register = getattr(threading, "_register_atexit", None)
        if register is None:
            return
        try:
            register(_stop_at_exit, weakref.ref(self))
            self._atexit_registered = True
        except RuntimeError:  # interpreter already shutting down
            pass

    def stop(self, timeout: float = 5.0) -> None:
        """Shut uvicorn down gracefully and join its thread. Idempotent.

        Args:
            timeout: Seconds to wait for the thread. In-flight requests get
                half of it to finish before uvicorn cancels them.

        Raises:
            RuntimeError: If the thread is still alive after the timeout (the
                server is then asked to force-exit; calling stop again retries).
        """
        with self._lock:
            server, thread = self._server, self._thread
            if server is None or thread is None:
                return
            # uvicorn reads this when it shuts down; without it a stuck
            # streaming client would block shutdown forever.
            server.config.timeout_graceful_shutdown = max(0.1, timeout / 2)  # type: ignore[assignment]
            # A plain attribute polled by uvicorn's main loop every 0.1 s, so
            # setting it from this thread is safe.
            server.should_exit = True
            thread.join(timeout)
            if thread.is_alive():
                server.force_exit = True
                thread.join(1.0)
            if thread.is_alive():
                raise RuntimeError(f"FakeOpenAIServer thread did not stop within {timeout:g} s")
            self._server = self._thread = None
            self._base_url = None

    def __enter__(self) -> str:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # -- introspection -----------------------------------------------------

    @property
    def running(self) -> bool:
        """Whether the server thread is up."""
        thread = self._thread
        return thread is not None and thread.is_alive()

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT/v1``.

        Raises:
            RuntimeError: If the server is not running.
        """
        url = self._base_url
        if url is None:
            raise RuntimeError("FakeOpenAIServer is not running; call start() first")
        return url

    @property
    def port(self) -> int:
        """The TCP port the server listens on (see :attr:`base_url`)."""
        return int(self.base_url.rsplit(":", 1)[1].split("/", 1)[0])

    @property
    def requests_served(self) -> int:
        """HTTP requests received since this object was created."""
        return self._stats.requests_served

    @property
    def prompt_chars(self) -> int:
        """Total prompt characters of all chat requests seen."""
        return self._stats.prompt_chars


def _raise_keyboard_interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    """Serve the fake API until Ctrl-C.

    Args:
        argv: Command line arguments (default: ``sys.argv[1:]``).

    Returns:
        The process exit code.
    """
    parser = argparse.ArgumentParser(description="Serve a deterministic fake OpenAI API on 127.0.0.1.")
    parser.add_argument("--port", type=int, default=0, help="TCP port (default: any free port)")
    parser.add_argument("--base-latency", type=float, default=0.005, help="seconds before the first chunk")
    parser.add_argument("--latency-per-kchar", type=float, default=0.02, help="extra seconds per 1000 prompt chars")
    parser.add_argument("--sentences", type=int, default=2, help="sentences per text reply")
    args = parser.parse_args(argv)

    server = FakeOpenAIServer(
        base_latency_s=args.base_latency,
        latency_per_kchar_s=args.latency_per_kchar,
        sentences=args.sentences,
        port=args.port,
    )
    url = server.start()
    print(f"fake OpenAI API at {url}  (OPENAI_BASE_URL={url}; Ctrl-C to stop)", flush=True)
    if threading.current_thread() is threading.main_thread():
        # Treat `kill` like Ctrl-C so the server thread is always shut down
        # gracefully instead of the process dying mid-response.
        if hasattr(signal, "SIGTERM"):
            signal.signal(signal.SIGTERM, _raise_keyboard_interrupt)
    try:
        while server.running:
            time.sleep(0.5)
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
