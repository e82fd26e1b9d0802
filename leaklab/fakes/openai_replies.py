"""What the fake OpenAI server answers, decided from the request alone:
request parsing and validation, OpenAI-shaped errors, the deterministic
reply text and tool-call arguments, server-sent event framing, and the WAV
tone of ``/v1/audio/speech``. Pure functions (no server, no I/O); the app in
:mod:`leaklab.fakes.openai_app` serves them.

Only the standard library and Starlette are imported on purpose: the fake must
not depend on the code it is used to test.
"""

from __future__ import annotations

import array
import hashlib
import io
import json
import math
import re
import sys
import wave
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse

__all__ = [
    "FAKE_MODEL_ID",
    "BadRequest",
    "approx_tokens",
    "digest",
    "error_response",
    "parse_chat",
    "read_json_object",
    "reply_text",
    "sse",
    "wav_tone",
]

FAKE_MODEL_ID = "fake-llm"
"""The only model listed by ``GET /v1/models``."""

# WAV output: 16 kHz mono 16-bit, 20 ms of tone per input character, capped.
_SAMPLE_RATE = 16_000
_MS_PER_CHAR = 20
_MAX_AUDIO_S = 2.0
_TONE_HZ = 440.0
_FADE_S = 0.005

_WORD_RE = re.compile(r"\w+")


class BadRequest(Exception):
    """An invalid request body; becomes an OpenAI-style 400 error."""

    def __init__(self, message: str, param: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.param = param


def error_response(
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


async def read_json_object(request: Request) -> dict[str, Any]:
    """Parse the request body as a JSON object or raise :class:`BadRequest`."""
    raw = await request.body()
    try:
        body = json.loads(raw)
    except ValueError as exc:  # JSONDecodeError and UnicodeDecodeError
        raise BadRequest(f"We could not parse the JSON body of your request: {exc}") from None
    if not isinstance(body, dict):
        raise BadRequest("The request body must be a JSON object.")
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


def digest(*parts: Any) -> str:
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


def reply_text(n_sentences: int, user_text: str, tool_name: str | None, tool_text: str | None) -> str:
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


def approx_tokens(chars: int) -> int:
    """OpenAI's rule of thumb: about four characters per token."""
    return math.ceil(chars / 4)


def sse(obj: Any) -> bytes:
    """One server-sent event, framed exactly like OpenAI's stream."""
    return b"data: " + json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode("utf-8") + b"\n\n"


def wav_tone(n_chars: int) -> bytes:
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


def parse_chat(body: dict[str, Any]) -> dict[str, Any]:
    """Validate a chat completion request and decide what to answer.

    Returns:
        A plan dict: ``prompt_chars``, ``model``, ``stream``, ``include_usage``
        and either ``tool_call`` (name, arguments string) or ``text``.
    """
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise BadRequest("'messages' must be a non-empty array.", "messages")
    for i, msg in enumerate(messages):
        if not isinstance(msg, dict) or not isinstance(msg.get("role"), str):
            raise BadRequest(f"messages[{i}] must be an object with a 'role'.", f"messages[{i}]")

    tools = body.get("tools") or []
    if not isinstance(tools, list):
        raise BadRequest("'tools' must be an array.", "tools")
    functions: list[dict[str, Any]] = []
    for i, tool in enumerate(tools):
        fn = tool.get("function") if isinstance(tool, dict) else None
        if not isinstance(fn, dict) or not isinstance(fn.get("name"), str):
            raise BadRequest(f"tools[{i}] must have a function with a name.", f"tools[{i}]")
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
        "digest": digest(messages, tools),
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
