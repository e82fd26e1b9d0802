"""The reference backend speaks shared/PROTOCOL.md, in order."""

from __future__ import annotations

import asyncio
import base64
import io
import json
import wave

from leaklab.driver.client import SessionClient
from tests.conftest import reference_backend, run_async


def test_connect_sequence_matches_protocol():
    # GIVEN the reference backend with no faults
    async def scenario():
        async with reference_backend() as (app, srv):
            # WHEN a tab connects
            async with SessionClient(srv.url("/client-ws")) as tab:
                return tab.greeting, len(app.state.handler.client_connections)

    greeting, live = run_async(scenario())
    # THEN the five greeting frames come in the documented order
    assert [f["type"] for f in greeting] == [
        "group-update", "full-text", "set-model-and-conf", "group-update", "control",
    ]
    assert greeting[0] == {"type": "group-update", "members": [], "is_owner": False}
    assert greeting[1] == {"type": "full-text", "text": "Connection established"}
    assert greeting[2]["conf_uid"] == "mao_pro_001" and len(greeting[2]["client_uid"]) == 36
    assert greeting[4] == {"type": "control", "text": "start-mic"}
    assert live == 1


def test_fetch_configs_and_switch_config():
    async def scenario():
        async with reference_backend(heavy_init_s=0.05) as (app, srv):
            async with SessionClient(srv.url("/client-ws")) as tab:
                await tab.send({"type": "fetch-configs"})
                configs = await tab.recv()
                await tab.send({"type": "switch-config", "file": "shizuku.yaml"})
                switched = [await tab.recv(), await tab.recv()]
                await tab.send({"type": "switch-config", "file": "../conf.yaml"})
                refused = await tab.recv()
                await tab.send({"type": "switch-config", "file": "/etc/passwd"})
                refused_abs = await tab.recv()
                await tab.send({"type": "heartbeat"})
                still_usable = await tab.recv()
                return configs, switched, refused, refused_abs, still_usable

    configs, switched, refused, refused_abs, still_usable = run_async(scenario())
    assert configs["type"] == "config-files"
    names = [c["filename"] for c in configs["configs"]]
    assert names[0] == "conf.yaml" and "shizuku.yaml" in names and "natori.yaml" in names
    assert switched[0]["type"] == "set-model-and-conf" and "client_uid" not in switched[0]
    assert switched[0]["conf_uid"] == "shizuku_001"
    assert switched[1] == {"type": "config-switched", "message": "Switched to config: shizuku.yaml"}
    for frame in (refused, refused_abs):
        assert frame["type"] == "error" and frame["message"].startswith("Error switching configuration:")
    assert still_usable == {"type": "heartbeat-ack"}


def test_text_turn_order_tools_audio_history_and_cache():
    # GIVEN a connected tab
    async def scenario():
        async with reference_backend() as (app, srv):
            async with SessionClient(srv.url("/client-ws"), timeout_s=30) as tab:
                # WHEN it sends text and plays the audio back
                await tab.send({"type": "text-input", "text": "hello"})
                frames = await tab.recv_until("backend-synth-complete", timeout_s=30)
                cache_during = sorted(p.name for p in app.state.cache_dir.iterdir())
                await tab.send({"type": "frontend-playback-complete"})
                frames += await tab.recv_until("control", text="conversation-chain-end")
            await asyncio.sleep(0.2)
            rows = app.state.history.row_count()
            cache_after = list(app.state.cache_dir.iterdir())
            return frames, rows, cache_during, cache_after

    frames, rows, cache_during, cache_after = run_async(scenario())
    kinds = [f["type"] for f in frames]
    # THEN the frames follow PROTOCOL.md's text-turn order
    assert frames[0] == {"type": "control", "text": "conversation-chain-start"}
    assert frames[1] == {"type": "full-text", "text": "Thinking..."}
    statuses = [f["status"] for f in frames if f["type"] == "tool_call_status"]
    assert statuses == ["running", "completed"]
    first_audio = kinds.index("audio")
    assert kinds.index("tool_call_status") < first_audio < kinds.index("backend-synth-complete")
    assert kinds[-3:] == ["backend-synth-complete", "force-new-message", "control"] or kinds[-4:] == [
        "backend-synth-complete", "backend-synth-complete", "force-new-message", "control"]
    audio = [f for f in frames if f["type"] == "audio"]
    assert audio and all(f["audio"] for f in audio)
    with wave.open(io.BytesIO(base64.b64decode(audio[0]["audio"]))) as wf:
        assert wf.getnframes() > 0
    assert audio[0]["slice_length"] == 20 and audio[0]["display_text"]["name"] == "Mao"
    # one row per message: the user's and the AI's
    assert rows == 2
    # audio files live in the cache while playing and are gone after the turn
    assert cache_during and all(n.endswith(".wav") for n in cache_during)
    assert cache_after == []


def test_bad_frames_get_error_and_connection_stays_usable():
    async def scenario():
        async with reference_backend() as (app, srv):
            async with SessionClient(srv.url("/client-ws")) as tab:
                answers = []
                for bad in ("not json", "[1, 2]", json.dumps({"no": "type"}),
                            json.dumps({"type": "no-such-type"}), json.dumps({"type": "text-input"}),
                            json.dumps({"type": "switch-config", "file": 3}),
                            json.dumps({"type": "mic-audio-data", "audio": ["x"]})):
                    await tab.send(bad)
                    answers.append(await tab.recv())
                await tab.send({"type": "heartbeat"})
                answers.append(await tab.recv())
                return answers

    answers = run_async(scenario())
    assert [a["type"] for a in answers[:-1]] == ["error"] * 7
    assert all(a["message"] for a in answers[:-1])
    assert answers[-1] == {"type": "heartbeat-ack"}


def test_proxy_forwards_text_input_in_order():
    async def scenario():
        async with reference_backend() as (app, srv):
            viewer = SessionClient(srv.url("/proxy-ws"), timeout_s=30)
            await viewer.connect(read_greeting=False)
            hello = await viewer.recv()
            timing = await viewer.text_turn("hi via proxy", timeout_s=30)
            await viewer.close()
            return hello, timing

    hello, timing = run_async(scenario())
    assert hello == {"type": "full-text", "text": "Connected to proxy"}
    assert timing.frames[0] == "control" and "audio" in timing.frames
    assert timing.chain_end_s is not None and timing.first_audio_s is not None
