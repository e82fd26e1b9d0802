"""Each fault, measured plainly (gc, psutil, the filesystem, SQLite): its effect
when on, its absence when off. C2, C4, C6 and C9 are measured in a run's
summary instead (tests/test_session.py): with the fault on, the agent's
memory, the cache folder and the engine's per-client state grow each cycle,
close() runs for none of the contexts; with none, nothing is flagged and
close() runs for each."""

from __future__ import annotations

import asyncio
import gc
import logging

import pytest

from leaklab.backend import UnknownFaultError, UnknownOptionError, create_app, parse_faults
from leaklab.backend.service_context import ServiceContext
from leaklab.driver.client import SessionClient, open_half_open
from tests.conftest import kill_children, reference_backend, run_async, server_children

# Also run by .ci/run on Python 3.10 with numpy<2, pandas<3 and mcp<2: the
# tests marked lowest_env, where the behaviour rests on what those versions change.


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


@pytest.mark.lowest_env  # the MCP SDK's task-bound cancel scopes (mcp<2 too)
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
def test_c5_each_turn_reads_the_whole_table(on):
    async def scenario():
        async with reference_backend("C5" if on else None, history_limit=2) as (app, srv):
            await chat_cycles(srv, 2)
            history = app.state.history
            return history.row_count(), len(history.recall("mao_pro_001", 2))

    rows, read = run_async(scenario())
    assert rows == 4  # user + assistant per turn
    assert read == (4 if on else 2)


@pytest.mark.lowest_env  # uvicorn's and websockets' ping/pong
@pytest.mark.parametrize("on", [True, False])
def test_c7_half_open_client_stays_forever(on):
    async def scenario():
        async with reference_backend("C7" if on else None, ping_interval_s=0.25, ping_timeout_s=0.25) as (app, srv):
            writer = await open_half_open(srv.host, srv.port, "/client-ws")
            await asyncio.sleep(0.2)
            during = len(app.state.handler.client_connections)
            await asyncio.sleep(1.5)  # three times the ping's interval + timeout
            after = len(app.state.handler.client_connections)
            writer.transport.abort()
            return during, after

    during, after = run_async(scenario())
    assert during == 1
    assert after == (1 if on else 0)


@pytest.mark.lowest_env  # asyncio task cancellation (the fixes cancel the init task)
@pytest.mark.parametrize("faults, heavy, retained_now, retained_later", [
    ("C8", 1.0, 2, 0),           # transient: released when the init ends
    # their fix does not hold when C9 keeps close() from running: on the
    # lowest environment here, in the suite through notebook 04
    pytest.param("C8-proposed,C9", "inf", 2, 2, marks=pytest.mark.extended),
    ("C9", "inf", 0, None),       # the full fix does not depend on close()
    # (faulty with an init that never ends, the proposed fix alone and the
    # full fix: notebook 04's six backends, tests/test_notebooks.py)
])
def test_c8_switch_then_close_retains_context(faults, heavy, retained_now, retained_later):
    async def scenario():
        # counted from here: contexts an earlier test's leaked fault keeps are not ours
        before = live_session_contexts()
        async with reference_backend(faults, heavy_init_s=heavy) as (app, srv):
            for i in range(2):
                async with SessionClient(srv.url("/client-ws")) as tab:
                    await tab.send({"type": "switch-config", "file": "shizuku.yaml"})
                    await tab.recv_until("config-switched")
            await asyncio.sleep(0.3)
            now = live_session_contexts() - before
            if retained_later is None:  # none retained: nothing to see released or kept
                return now, None
            await asyncio.sleep(1.2)
            return now, live_session_contexts() - before

    assert run_async(scenario()) == (retained_now, retained_later)


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


def test_slow_ms_per_session_makes_each_connect_scan_longer():
    import time

    from leaklab.backend.faults import BackendOptions
    from leaklab.backend.websocket_handler import scan_earlier_sessions

    # the option parses from the command line's text, off by default
    assert BackendOptions.from_mapping({"slow_ms_per_session": "2"}).slow_ms_per_session == 2.0
    assert BackendOptions().slow_ms_per_session == 0.0
    with pytest.raises(UnknownOptionError, match="slow_work"):
        BackendOptions.from_mapping({"slow_work": "gpu"})
    # the scan holds the thread at least the time asked
    for work in ("cpu", "io"):
        start = time.perf_counter()
        scan_earlier_sessions(15.0, work)
        assert time.perf_counter() - start >= 0.015

    async def scenario():
        async with reference_backend(None, slow_ms_per_session=1.0) as (app, srv):
            for _ in range(3):
                tab = SessionClient(srv.url("/client-ws"), timeout_s=30)
                await tab.connect()
                await tab.close()
            return app.state.handler.sessions_seen

    # each connection counts the sessions before it (the next one scans 3 ms)
    assert run_async(scenario()) == 3
