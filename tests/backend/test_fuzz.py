"""Fuzzed frames never crash the server: after each one, the connection still answers."""

from __future__ import annotations

import asyncio
import json
import threading

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from websockets.sync.client import connect

from leaklab.backend import create_app
from leaklab.serving import serve

TYPES = [
    "heartbeat", "fetch-configs", "switch-config", "request-init-config", "interrupt-signal",
    "mic-audio-data", "mic-audio-end", "raw-audio-data", "ai-speak-signal", "audio-play-start",
    "frontend-playback-complete", "fetch-history-list", "fetch-and-set-history", "create-new-history",
    "delete-history", "fetch-backgrounds", "add-client-to-group", "remove-client-from-group",
    "request-group-info", "no-such-type",
]
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=10,
)
frames = st.one_of(
    st.text(max_size=50),
    st.builds(lambda t, extra: json.dumps({"type": t, **extra}), st.sampled_from(TYPES),
              st.dictionaries(st.sampled_from(["file", "text", "audio", "history_uid", "invitee_uid",
                                               "target_uid", "display_text", "images"]), json_values, max_size=3)),
    json_values.map(json.dumps),
)


@pytest.fixture(scope="module")
def server_url():
    ready = threading.Event()
    stop: dict[str, object] = {}

    def run():
        async def main():
            app = create_app(None, {"heavy_init_s": 0.05})
            async with serve(app, uvicorn_options=app.state.uvicorn_options) as srv:
                stop["loop"], stop["event"] = asyncio.get_running_loop(), asyncio.Event()
                stop["url"] = srv.url("/client-ws")
                ready.set()
                await stop["event"].wait()

        asyncio.run(main())

    thread = threading.Thread(target=run, name="fuzz-backend")
    thread.start()
    assert ready.wait(30), "backend did not start"
    yield stop["url"]
    stop["loop"].call_soon_threadsafe(stop["event"].set)
    thread.join(30)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(batch=st.lists(frames, min_size=1, max_size=5))
def test_fuzzed_frames_never_crash_the_server(server_url, batch):
    with connect(server_url, open_timeout=10, close_timeout=2) as ws:
        for _ in range(5):
            ws.recv(timeout=10)  # greeting
        for frame in batch:
            ws.send(frame)
        ws.send(json.dumps({"type": "heartbeat"}))
        while True:
            answer = json.loads(ws.recv(timeout=20))
            assert answer.get("type") != "error" or answer.get("message")
            if answer.get("type") == "heartbeat-ack":
                break
