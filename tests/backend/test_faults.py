"""Each fault, measured plainly (gc, psutil, the filesystem, SQLite): its effect
when on, its absence when off."""

from __future__ import annotations

import asyncio
import gc
import logging

import pytest

from leaklab.backend import UnknownFaultError, UnknownOptionError, create_app, parse_faults
from leaklab.backend.service_context import ServiceContext
from leaklab.driver.client import SessionClient, open_half_open
from tests.conftest import kill_children, reference_backend, run_async, server_children

# Also run by .ci/run on Python 3.10 with numpy<2, pandas<3 and mcp<2.
pytestmark = pytest.mark.lowest_env


def live_session_contexts() -> int:
    gc.collect()
    return sum(1 for o in gc.get_objects() if isinstance(o, ServiceContext) and o.client_uid is not None)


def forward_tasks() -> int:
    return sum(
        1 for t in asyncio.all_tasks()
        if getattr(t.get_coro(), "__qualname__", "") == "ProxyMessageQueue._forward_message"
    )


async def chat_cycles(srv, n: int, *, playback: bool = True, path: str = "/client-ws") -> None:
    for i in range(n):
        tab = SessionClient(srv.url(path), timeout_s=30)
        if path == "/proxy-ws":
            await tab.connect(read_greeting=False)
            await tab.recv()
        else:
            await tab.connect()
        await tab.text_turn(f"hello number {i}", complete_playback=playback, timeout_s=30)
        await tab.close()
    await asyncio.sleep(0.3)


@pytest.mark.parametrize("on", [True, False])
def test_c1_proxy_forward_tasks(on):
    # GIVEN proxy clients that leave before playback completes
    async def scenario():
        async with reference_backend("C1" if on else None) as (app, srv):
            await chat_cycles(srv, 3, playback=False, path="/proxy-ws")
            return forward_tasks()

    # THEN untracked forwards stay pending, one per cycle; tracked ones are cancelled
    pending = run_async(scenario())
    assert (pending >= 2) if on else (pending == 0)


@pytest.mark.parametrize("on", [True, False])
def test_c2_agent_memory_shared_and_unbounded(on):
    async def scenario():
        async with reference_backend("C2" if on else None, memory_limit=4) as (app, srv):
            await chat_cycles(srv, 3)
            return len(app.state.default_context.agent_engine.memory)

    shared = run_async(scenario())
    # user + assistant(tool call) + tool + assistant per turn land in the default agent
    assert shared >= 12 if on else shared == 0


@pytest.mark.parametrize("on", [True, False])
def test_c3_mcp_children_survive_close(on):
    async def scenario():
        async with reference_backend("C3" if on else None) as (app, srv):
            await chat_cycles(srv, 2)
            await asyncio.sleep(0.5)
            during = len(server_children())
        # the app has shut down; the loop still runs
        return during, len(server_children())

    try:
        children, after_shutdown = run_async(scenario(), allow_loop_errors=on)
    finally:
        kill_children()
    assert (children >= 4 and after_shutdown >= 4) if on else (children == 0 and after_shutdown == 0)


@pytest.mark.parametrize("on", [True, False])
def test_c4_tts_files_left_on_abrupt_close(on):
    async def scenario():
        async with reference_backend("C4" if on else None) as (app, srv):
            await chat_cycles(srv, 2, playback=False)
            return sorted(p.suffix for p in app.state.cache_dir.iterdir())

    files = run_async(scenario())
    assert (len(files) >= 2 and set(files) == {".wav"}) if on else files == []


@pytest.mark.parametrize("on", [True, False])
def test_c5_each_turn_reads_the_whole_table(on):
    async def scenario():
        async with reference_backend("C5" if on else None, history_limit=2) as (app, srv):
            await chat_cycles(srv, 3)
            history = app.state.history
            return history.row_count(), len(history.recall("mao_pro_001", 2))

    rows, read = run_async(scenario())
    assert rows == 6
    assert read == (6 if on else 2)


@pytest.mark.parametrize("on", [True, False])
def test_c6_shared_engine_keeps_per_client_state(on):
    async def scenario():
        async with reference_backend("C6" if on else None) as (app, srv):
            for _ in range(3):
                async with SessionClient(srv.url("/client-ws")):
                    pass
            await asyncio.sleep(0.2)
            return len(app.state.default_context.asr_engine.client_streams)

    assert run_async(scenario()) == (3 if on else 0)


@pytest.mark.parametrize("on", [True, False])
def test_c7_half_open_client_stays_forever(on):
    async def scenario():
        async with reference_backend("C7" if on else None, ping_interval_s=0.5, ping_timeout_s=0.5) as (app, srv):
            writer = await open_half_open(srv.host, srv.port, "/client-ws")
            await asyncio.sleep(0.3)
            during = len(app.state.handler.client_connections)
            await asyncio.sleep(2.5)
            after = len(app.state.handler.client_connections)
            writer.transport.abort()
            return during, after

    during, after = run_async(scenario())
    assert during == 1
    assert after == (1 if on else 0)


@pytest.mark.parametrize("faults, heavy, retained_now, retained_later", [
    ("C8", 1.0, 2, 0),           # transient: released when the init ends
    ("C8", "inf", 2, 2),          # never ends: leak
    (None, "inf", 0, 0),          # full fix
    ("C8-proposed", "inf", 0, 0),  # their fix works while close() runs...
    ("C8-proposed,C9", "inf", 2, 2),  # ...and not when C9 keeps close() from running
    ("C9", "inf", 0, 0),          # the full fix does not depend on close()
])
def test_c8_switch_then_close_retains_context(faults, heavy, retained_now, retained_later):
    async def scenario():
        async with reference_backend(faults, heavy_init_s=heavy) as (app, srv):
            for i in range(2):
                async with SessionClient(srv.url("/client-ws")) as tab:
                    await tab.send({"type": "switch-config", "file": "shizuku.yaml"})
                    await tab.recv_until("config-switched")
            await asyncio.sleep(0.3)
            now = live_session_contexts()
            await asyncio.sleep(1.2)
            return now, live_session_contexts()

    assert run_async(scenario()) == (retained_now, retained_later)


@pytest.mark.parametrize("on", [True, False])
def test_c9_close_never_runs(on, monkeypatch):
    calls = []
    original = ServiceContext.close

    async def counting_close(self):
        calls.append(self.client_uid)
        await original(self)

    monkeypatch.setattr(ServiceContext, "close", counting_close)

    async def scenario():
        async with reference_backend("C9" if on else None) as (app, srv):
            for _ in range(3):
                async with SessionClient(srv.url("/client-ws")):
                    pass
            await asyncio.sleep(0.2)
            return len(app.state.handler.client_contexts)

    remaining = run_async(scenario())
    session_closes = [c for c in calls if c is not None]
    assert remaining == 0  # the dict is cleared either way: only close() is skipped
    assert len(session_closes) == (0 if on else 3)


def test_no_faults_leave_no_children_after_chat_and_shutdown():
    async def scenario():
        async with reference_backend() as (app, srv):
            await chat_cycles(srv, 2)
            during = len(server_children())
        return during, len(server_children())

    during, after_shutdown = run_async(scenario())
    assert during <= 2  # at most the last session's, still shutting down
    assert after_shutdown == 0


def test_unknown_fault_and_option_are_clear_errors():
    with pytest.raises(UnknownFaultError, match="valid: C1, C2"):
        parse_faults("C1,C42")
    with pytest.raises(UnknownOptionError, match="heavy_init_s"):
        create_app(None, {"heavy_init": "1"})
    assert parse_faults("all") == frozenset(f"C{i}" for i in range(1, 10))
    assert parse_faults("none") == frozenset()


def test_tts_failure_is_reported_and_turn_completes(caplog):
    # A sentence whose synthesis fails gets audio null; the turn still ends.
    async def scenario():
        async with reference_backend() as (app, srv):
            async with SessionClient(srv.url("/client-ws"), timeout_s=30) as tab:
                timing = await tab.text_turn("please say [[tts-fail]] now", timeout_s=30)
            return timing, list(app.state.cache_dir.iterdir())

    with caplog.at_level(logging.WARNING):
        timing, files = run_async(scenario())
    assert timing.chain_end_s is not None
    assert files == []
