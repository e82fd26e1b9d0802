"""Tests for the offline fake OpenAI server, driven through the real ``openai`` SDK."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import re
import socket
import threading
import time
import wave
from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest

from leaklab.fakes.openai import (
    FAKE_MODEL_ID,
    PROMPT_CHARS_HEADER,
    THREAD_NAME,
    TTS_FAIL_MARKER,
    FakeOpenAIServer,
    create_fake_openai_app,
)

TOOLS: list[dict[str, Any]] = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "Weather for a city.",
            "parameters": {
                "type": "object",
                "properties": {"city": {"type": "string"}, "days": {"type": "integer"}},
                "required": ["city", "days"],
            },
        },
    },
    {
        "type": "function",
        "function": {"name": "get_time", "parameters": {"type": "object", "properties": {}}},
    },
]


def _server_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == THREAD_NAME and t.is_alive()]


def _client(url: str, **kwargs: Any) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(api_key="sk-test", base_url=url, timeout=10, **kwargs)


async def _stream_chat(url: str, messages: list[dict[str, Any]], **kwargs: Any) -> dict[str, Any]:
    """Stream one completion with the SDK and assemble it like an agent would."""
    async with _client(url) as client:
        stream = await client.chat.completions.create(model=FAKE_MODEL_ID, messages=messages, stream=True, **kwargs)
        content: list[str] = []
        deltas = 0
        calls: dict[int, dict[str, Any]] = {}
        finish = None
        async for chunk in stream:
            if not chunk.choices:
                continue
            choice = chunk.choices[0]
            if choice.delta.content:
                content.append(choice.delta.content)
                deltas += 1
            for tc in choice.delta.tool_calls or []:
                call = calls.setdefault(tc.index, {"id": None, "name": "", "arguments": ""})
                if tc.id:
                    call["id"] = tc.id
                if tc.function and tc.function.name:
                    call["name"] += tc.function.name
                if tc.function and tc.function.arguments:
                    call["arguments"] += tc.function.arguments
            if choice.finish_reason:
                finish = choice.finish_reason
    return {"content": "".join(content), "deltas": deltas, "tool_calls": list(calls.values()), "finish": finish}


@pytest.fixture
def server() -> Iterator[FakeOpenAIServer]:
    srv = FakeOpenAIServer()
    srv.start()
    try:
        yield srv
    finally:
        srv.stop()


def test_streamed_text_reply_is_deterministic(server: FakeOpenAIServer) -> None:
    messages = [
        {"role": "system", "content": "You are a test."},
        {"role": "user", "content": "Tell me about leaky websockets. Please?"},
    ]
    first = asyncio.run(_stream_chat(server.base_url, messages))
    second = asyncio.run(_stream_chat(server.base_url, messages))

    assert first["content"]
    assert first["finish"] == "stop"
    assert first["tool_calls"] == []
    assert first["deltas"] > 1, "text should arrive as several deltas"
    assert first["content"] == second["content"]
    # Exactly `sentences` (default 2) sentences, whatever punctuation the user typed.
    assert len(re.findall(r"[.!?](?:\s|$)", first["content"])) == 2


def test_sentence_count_is_configurable() -> None:
    with FakeOpenAIServer(sentences=5) as url:
        reply = asyncio.run(_stream_chat(url, [{"role": "user", "content": "a.b? c! d e f"}]))
    assert len(re.findall(r"[.!?](?:\s|$)", reply["content"])) == 5


def test_tool_call_then_text(server: FakeOpenAIServer) -> None:
    messages: list[dict[str, Any]] = [{"role": "user", "content": "What is the weather in Paris?"}]
    reply = asyncio.run(_stream_chat(server.base_url, messages, tools=TOOLS))

    assert reply["finish"] == "tool_calls"
    assert reply["content"] == ""
    assert len(reply["tool_calls"]) == 1
    call = reply["tool_calls"][0]
    offered = {t["function"]["name"] for t in TOOLS}
    assert call["name"] in offered
    assert call["id"]
    args = json.loads(call["arguments"])
    assert isinstance(args, dict)
    spec = next(t["function"] for t in TOOLS if t["function"]["name"] == call["name"])
    assert set(args) == set(spec["parameters"].get("required", []))

    messages.append(
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {"id": call["id"], "type": "function", "function": {"name": call["name"], "arguments": call["arguments"]}}
            ],
        }
    )
    messages.append({"role": "tool", "tool_call_id": call["id"], "content": "sunny and 21 degrees"})
    final = asyncio.run(_stream_chat(server.base_url, messages, tools=TOOLS))

    assert final["finish"] == "stop"
    assert final["tool_calls"] == []
    assert "sunny and 21 degrees" in final["content"]
    assert call["name"] in final["content"]


def test_tool_arguments_follow_required_schema() -> None:
    # len("abcd") % 2 == 0 -> the first tool, which has required props.
    with FakeOpenAIServer() as url:
        reply = asyncio.run(_stream_chat(url, [{"role": "user", "content": "abcd"}], tools=TOOLS))
        other = asyncio.run(_stream_chat(url, [{"role": "user", "content": "abcde"}], tools=TOOLS))
    assert reply["tool_calls"][0]["name"] == "get_weather"
    assert json.loads(reply["tool_calls"][0]["arguments"]) == {"city": "abcd", "days": 1}
    assert other["tool_calls"][0]["name"] == "get_time"
    assert json.loads(other["tool_calls"][0]["arguments"]) == {}


def test_non_streaming_completion(server: FakeOpenAIServer) -> None:
    async def scenario() -> tuple[Any, Any]:
        async with _client(server.base_url) as client:
            text = await client.chat.completions.create(
                model=FAKE_MODEL_ID, messages=[{"role": "user", "content": "hi there"}], stream=False
            )
            tool = await client.chat.completions.create(
                model=FAKE_MODEL_ID, messages=[{"role": "user", "content": "hi there"}], tools=TOOLS
            )
            return text, tool

    text, tool = asyncio.run(scenario())
    assert text.object == "chat.completion"
    assert text.choices[0].finish_reason == "stop"
    assert text.choices[0].message.content
    assert text.usage is not None and text.usage.prompt_tokens > 0
    assert tool.choices[0].finish_reason == "tool_calls"
    assert tool.choices[0].message.tool_calls[0].function.name in {"get_weather", "get_time"}


def test_latency_grows_with_prompt_size() -> None:
    per_kchar = 0.01
    small, big = "x" * 100, "y" * 50_000
    expected = per_kchar * (len(big) - len(small)) / 1000  # ~0.5 s

    async def timed(url: str, text: str) -> float:
        t0 = time.perf_counter()
        reply = await _stream_chat(url, [{"role": "user", "content": text}])
        assert reply["finish"] == "stop"
        return time.perf_counter() - t0

    with FakeOpenAIServer(base_latency_s=0.0, latency_per_kchar_s=per_kchar) as url:
        t_small = asyncio.run(timed(url, small))
        t_big = asyncio.run(timed(url, big))
    assert t_big - t_small >= expected / 2, (t_small, t_big)


def test_prompt_chars_header_and_counters(server: FakeOpenAIServer) -> None:
    before = server.requests_served
    body = {
        "model": FAKE_MODEL_ID,
        "stream": True,
        "messages": [
            {"role": "system", "content": "abc"},
            {"role": "user", "content": [{"type": "text", "text": "defg"}]},
        ],
    }
    r = httpx.post(f"{server.base_url}/chat/completions", json=body, timeout=10)
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/event-stream")
    assert r.headers[PROMPT_CHARS_HEADER] == "7"
    assert r.text.endswith("data: [DONE]\n\n")
    assert server.requests_served == before + 1
    assert server.prompt_chars == 7


def test_audio_speech_returns_wav_and_marker_fails(server: FakeOpenAIServer) -> None:
    async def scenario() -> bytes:
        async with _client(server.base_url, max_retries=0) as client:
            resp = await client.audio.speech.create(
                model="fake-tts", voice="alloy", input="hello there", response_format="wav"
            )
            data = resp.content
            with pytest.raises(openai.APIStatusError) as info:
                await client.audio.speech.create(
                    model="fake-tts", voice="alloy", input=f"say {TTS_FAIL_MARKER} this", response_format="wav"
                )
            assert info.value.status_code == 500
            assert isinstance(info.value, openai.InternalServerError)
            return data

    data = asyncio.run(scenario())
    assert data[:4] == b"RIFF"
    with wave.open(io.BytesIO(data)) as wav:
        assert wav.getnchannels() == 1
        assert wav.getsampwidth() == 2
        assert wav.getframerate() == 16_000
        # 20 ms per character of "hello there".
        assert wav.getnframes() == 11 * 320


def test_audio_length_is_capped_and_deterministic() -> None:
    bodies = []
    with FakeOpenAIServer() as url:
        for _ in range(2):
            r = httpx.post(f"{url}/audio/speech", json={"model": "m", "input": "z" * 1000, "voice": "alloy"}, timeout=10)
            assert r.status_code == 200
            assert r.headers["content-type"] == "audio/wav"
            bodies.append(r.content)
    assert bodies[0] == bodies[1]
    with wave.open(io.BytesIO(bodies[0])) as wav:
        assert wav.getnframes() == 2 * 16_000


def test_models_and_openai_shaped_errors(server: FakeOpenAIServer) -> None:
    url = server.base_url
    models = httpx.get(f"{url}/models", timeout=10).json()
    assert [m["id"] for m in models["data"]] == [FAKE_MODEL_ID]

    missing = httpx.post(f"{url}/nope", json={}, timeout=10)
    assert missing.status_code == 404
    assert missing.json()["error"]["type"] == "invalid_request_error"

    bad = httpx.post(
        f"{url}/chat/completions", content=b"{not json", headers={"content-type": "application/json"}, timeout=10
    )
    assert bad.status_code == 400
    assert set(bad.json()["error"]) == {"message", "type", "param", "code"}

    no_messages = httpx.post(f"{url}/chat/completions", json={"model": "m"}, timeout=10)
    assert no_messages.status_code == 400
    assert no_messages.json()["error"]["param"] == "messages"


def test_authorization_is_not_echoed_or_logged(server: FakeOpenAIServer, caplog: pytest.LogCaptureFixture) -> None:
    secret = "sk-secret-must-not-leak-123"
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.DEBUG, logger="uvicorn.error")
    headers = {"Authorization": f"Bearer {secret}"}
    responses = [
        httpx.post(f"{server.base_url}/chat/completions", content=b"{", headers=headers, timeout=10),
        httpx.get(f"{server.base_url}/missing", headers=headers, timeout=10),
        httpx.post(
            f"{server.base_url}/chat/completions",
            json={"messages": [{"role": "user", "content": "hi"}]},
            headers=headers,
            timeout=10,
        ),
    ]
    for r in responses:
        assert secret not in r.text
        assert all(secret not in v for v in r.headers.values())
    assert secret not in caplog.text


def test_stop_leaves_no_thread_and_no_listener() -> None:
    srv = FakeOpenAIServer()
    with pytest.raises(RuntimeError):
        _ = srv.base_url
    url = srv.start()
    assert url == srv.base_url
    assert re.fullmatch(r"http://127\.0\.0\.1:\d+/v1", url)
    assert srv.start() == url, "start() while running returns the same URL"
    port = srv.port
    assert len(_server_threads()) == 1
    assert httpx.get(f"{url}/models", timeout=10).status_code == 200

    srv.stop()
    srv.stop()  # idempotent

    assert _server_threads() == []
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
    with pytest.raises(RuntimeError):
        _ = srv.base_url


def test_context_manager_and_restart() -> None:
    srv = FakeOpenAIServer()
    with srv as url:
        assert httpx.get(f"{url}/models", timeout=10).status_code == 200
    assert _server_threads() == []
    with srv as url2:  # a stopped server can be started again
        assert httpx.get(f"{url2}/models", timeout=10).status_code == 200
    assert _server_threads() == []
    assert srv.requests_served == 2


def test_start_failure_raises_clear_error() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        srv = FakeOpenAIServer(port=port)
        with pytest.raises(RuntimeError, match="could not start"):
            srv.start()
    assert _server_threads() == []
    srv.stop()  # nothing to stop; must not raise


def test_works_inside_running_event_loop() -> None:
    async def scenario() -> str:
        asyncio.get_running_loop()  # we really are inside a loop, like Jupyter
        srv = FakeOpenAIServer()
        url = srv.start()
        try:
            reply = await _stream_chat(url, [{"role": "user", "content": "from inside a loop"}])
        finally:
            srv.stop()
        assert reply["finish"] == "stop"
        return reply["content"]

    assert asyncio.run(scenario())
    assert _server_threads() == []


def test_app_rejects_bad_settings() -> None:
    with pytest.raises(ValueError):
        create_fake_openai_app(sentences=0)
    with pytest.raises(ValueError):
        create_fake_openai_app(base_latency_s=-1)
