"""``MCPClient`` against the real stdio MCP servers, with fault C3 off and on.

Each test runs its own event loop with ``asyncio.run`` and fails on anything
the loop only reports through its exception handler ("Task was destroyed but
it is pending!", "exception was never retrieved", errors closing async
generators). The sessions are opened in one task and closed from another, as
the backend's conversation task and disconnect handler do.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any

import psutil
import pytest

from leaklab.backend.mcp_client import MCPClient, MCPToolError
from leaklab.backend.mcp_servers import SERVER_SCRIPTS

SERVERS = {name: [sys.executable, str(path)] for name, path in SERVER_SCRIPTS.items()}
SCRIPT_NAMES = tuple(path.name for path in SERVER_SCRIPTS.values())
TOOL_NAMES = {"get_time", "add", "remember", "recall"}
CLIENT_LOGGER = "leaklab.backend.mcp_client"

# Also run by .ci/run on Python 3.10 with numpy<2, pandas<3 and mcp<2.
pytestmark = pytest.mark.lowest_env


def warnings_logged(caplog) -> list[logging.LogRecord]:
    """WARNING and above, less asyncio's debug-mode slow-callback notes."""
    return [
        r
        for r in caplog.records
        if r.levelno >= logging.WARNING and not (r.name == "asyncio" and r.msg.startswith("Executing"))
    ]


def _alive(proc: psutil.Process) -> bool:
    try:
        return proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def script_children() -> dict[int, psutil.Process]:
    """Live descendants of this process that run one of the server scripts."""
    out: dict[int, psutil.Process] = {}
    for proc in psutil.Process().children(recursive=True):
        with contextlib.suppress(psutil.Error):
            if _alive(proc) and any(arg.endswith(SCRIPT_NAMES) for arg in proc.cmdline()):
                out[proc.pid] = proc
    return out


async def wait_gone(pids: set[int], timeout_s: float) -> set[int]:
    """Poll, with the loop running so asyncio reaps its children, until ``pids``
    are gone; return those still alive."""
    deadline = time.monotonic() + timeout_s
    while True:
        left = pids & script_children().keys()
        if not left or time.monotonic() >= deadline:
            return left
        await asyncio.sleep(0.05)


async def kill_and_wait(procs: list[psutil.Process]) -> None:
    """Terminate, then kill, ``procs``; wait while the loop runs so asyncio's
    child watcher (not psutil) reaps them and does not warn about unknown pids."""
    for proc in procs:
        with contextlib.suppress(psutil.Error):
            proc.terminate()
    if await wait_gone({p.pid for p in procs}, 3.0):
        for proc in procs:
            with contextlib.suppress(psutil.Error):
                proc.kill()
        await wait_gone({p.pid for p in procs}, 3.0)


def run_clean(main: Callable[[], Awaitable[Any]]) -> Any:
    """``asyncio.run(main())``, failing on anything the loop reported."""
    errors: list[dict[str, Any]] = []

    async def wrapper() -> Any:
        asyncio.get_running_loop().set_exception_handler(lambda loop, ctx: errors.append(ctx))
        return await main()

    result = asyncio.run(wrapper())
    gc.collect()  # a pending task destroyed now still reports to our handler
    assert not errors, [ctx.get("message") for ctx in errors]
    return result


async def open_in_task(client: MCPClient) -> tuple[asyncio.Task[Any], list[dict[str, Any]]]:
    """List the tools in a task of its own (the "conversation task")."""
    task = asyncio.create_task(client.list_tools())
    tools = await task
    return task, tools


async def close_in_task(client: MCPClient) -> asyncio.Task[None]:
    """Close the client in another task (the "disconnect handler")."""
    task = asyncio.create_task(client.aclose())
    await task
    return task


def test_fault_off_tools_calls_and_close_from_another_task(caplog, capfd):
    caplog.set_level(logging.INFO, logger=CLIENT_LOGGER)
    before = set(script_children())

    async def main() -> None:
        client = MCPClient(SERVERS)
        opener, tools = await open_in_task(client)
        assert {t["function"]["name"] for t in tools} == TOOL_NAMES
        assert len(tools) == 4
        for tool in tools:
            assert tool["type"] == "function"
            assert set(tool["function"]) == {"name", "description", "parameters"}
            assert tool["function"]["parameters"]["type"] == "object"
            assert tool["function"]["description"]
        add = next(t for t in tools if t["function"]["name"] == "add")
        assert set(add["function"]["parameters"]["properties"]) == {"a", "b"}

        assert "5" in await client.call_tool("add", {"a": 2, "b": 3})
        assert "T" in await client.call_tool("get_time", {})
        await client.call_tool("remember", {"note": "buy milk"})
        assert "buy milk" in await client.call_tool("recall", {})

        kids = set(script_children()) - before
        assert len(kids) == 2, kids
        assert set(client.child_pids()) == kids
        assert set(client.active_sessions) == {"clock", "notes"}

        closer = await close_in_task(client)
        assert closer is not opener
        assert not await wait_gone(kids, 5.0), "servers still running after aclose()"
        assert client.closed
        assert client.active_sessions == {}
        assert client.child_pids() == []
        await client.aclose()  # idempotent

    run_clean(main)
    messages = [r.getMessage() for r in caplog.records if r.name == CLIENT_LOGGER]
    assert "Closing MCPClient... and 2 active connections" in messages
    assert not warnings_logged(caplog)
    assert "Traceback" not in capfd.readouterr().err


def test_fault_on_cross_task_close_leaves_children_running(caplog, capfd):
    caplog.set_level(logging.INFO, logger=CLIENT_LOGGER)
    before = set(script_children())
    leaked: list[psutil.Process] = []

    async def main() -> None:
        client = MCPClient(SERVERS, leave_sessions_open=True)
        try:
            _, tools = await open_in_task(client)
            assert {t["function"]["name"] for t in tools} == TOOL_NAMES
            assert "5" in await client.call_tool("add", {"a": 2, "b": 3})
            kids = set(script_children()) - before
            assert len(kids) == 2, kids
            leaked.extend(script_children()[pid] for pid in kids)

            await close_in_task(client)  # must not raise: upstream logs and goes on
            assert client.closed
            errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
            assert len(errors) == 1, [r.getMessage() for r in errors]
            assert errors[0].name == CLIENT_LOGGER
            assert errors[0].getMessage().startswith("Error closing MCPClient: ")
            assert "different task" in errors[0].getMessage()
            assert errors[0].exc_info is None  # logged, no traceback

            await asyncio.sleep(2.0)
            assert kids <= set(script_children()), "a leaked server exited"
            assert set(client.child_pids()) == kids
            assert set(client.active_sessions) == {"clock", "notes"}
            await client.aclose()  # idempotent, nothing more logged
            assert len([r for r in caplog.records if r.levelno >= logging.ERROR]) == 1
        finally:
            await kill_and_wait(leaked)
        assert not (set(script_children()) & {p.pid for p in leaked})

    try:
        run_clean(main)
    finally:
        # Only if the test failed before its own clean-up ran.
        left = [p for p in leaked if _alive(p)]
        for proc in left:
            proc.kill()
        psutil.wait_procs(left, timeout=5)
    assert "Traceback" not in capfd.readouterr().err


def test_fault_on_close_in_the_opening_task_reaps_children():
    """The fault needs the cross-task close: upstream's stack works in one task."""
    before = set(script_children())

    async def main() -> None:
        client = MCPClient(SERVERS, leave_sessions_open=True)

        async def one_task() -> set[int]:
            await client.list_tools()
            kids = set(script_children()) - before
            await client.aclose()
            return kids

        kids = await asyncio.create_task(one_task())
        assert len(kids) == 2
        assert not await wait_gone(kids, 5.0)
        assert client.active_sessions == {}

    run_clean(main)


@pytest.mark.parametrize("close", ["never", "cross-task"])
def test_fault_on_loop_shutdown_with_live_leaked_children_is_clean(close, capfd):
    """Leaked children that are still alive when the loop ends neither hang
    ``asyncio.run`` nor make it report errors; they are stopped then."""
    before = set(script_children())
    pids: set[int] = set()

    async def main() -> None:
        client = MCPClient(SERVERS, leave_sessions_open=True)
        await open_in_task(client)
        pids.update(set(script_children()) - before)
        if close == "cross-task":
            await close_in_task(client)
        assert pids <= set(script_children())

    started = time.monotonic()
    run_clean(main)
    assert time.monotonic() - started < 20
    assert len(pids) == 2
    deadline = time.monotonic() + 5
    while pids & script_children().keys() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not pids & script_children().keys()
    assert "Traceback" not in capfd.readouterr().err


def test_fault_off_loop_shutdown_without_close_stops_servers():
    before = set(script_children())
    pids: set[int] = set()

    async def main() -> None:
        client = MCPClient(SERVERS)
        await open_in_task(client)
        pids.update(set(script_children()) - before)

    run_clean(main)
    assert len(pids) == 2
    assert not pids & script_children().keys()


def test_unknown_tool_and_tool_error_raise_mcp_tool_error():
    async def main() -> None:
        client = MCPClient(SERVERS)
        try:
            # call_tool before list_tools starts the servers itself
            assert "7" in await client.call_tool("add", {"a": 3, "b": 4})
            with pytest.raises(MCPToolError, match="unknown tool 'nope'"):
                await client.call_tool("nope", {})
            with pytest.raises(MCPToolError, match="add"):
                await client.call_tool("add", {"a": "not a number", "b": 1})
        finally:
            await client.aclose()
        with pytest.raises(MCPToolError, match="closed"):
            await client.call_tool("add", {"a": 1, "b": 1})

    run_clean(main)


@pytest.mark.parametrize("fault", [False, True])
def test_aclose_without_start_and_twice(fault, caplog):
    async def main() -> None:
        client = MCPClient(SERVERS, leave_sessions_open=fault)
        await client.aclose()
        await client.aclose()
        assert client.closed
        assert client.child_pids() == []
        with pytest.raises(MCPToolError):
            await client.list_tools()

    run_clean(main)
    assert not warnings_logged(caplog)


def test_server_that_cannot_start_is_left_out(caplog):
    servers = {**SERVERS, "broken": [sys.executable, "-c", "import sys; sys.exit(3)"]}

    async def main() -> None:
        client = MCPClient(servers)
        try:
            tools = await client.list_tools()
            assert {t["function"]["name"] for t in tools} == TOOL_NAMES
        finally:
            await client.aclose()

    run_clean(main)
    assert any("'broken' failed to start" in r.getMessage() for r in caplog.records)


def test_server_exits_promptly_when_stdin_closes():
    for path in SERVER_SCRIPTS.values():
        proc = subprocess.Popen(
            [sys.executable, str(path)],
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            time.sleep(0.2)  # let it get into its read loop, or not: both must exit
            proc.stdin.close()
            assert proc.wait(timeout=5) is not None
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()


def test_mcp_servers_package_and_scripts_stay_light():
    """The package only names scripts (no ``mcp`` import); the scripts run by
    path, so they must not import ``leaklab``."""
    init = SERVER_SCRIPTS["clock"].parent / "__init__.py"
    code = (
        "import importlib.util, sys\n"
        f"spec = importlib.util.spec_from_file_location('mcp_servers', {str(init)!r})\n"
        "mod = importlib.util.module_from_spec(spec); spec.loader.exec_module(mod)\n"
        "assert set(mod.SERVER_SCRIPTS) == {'clock', 'notes'}, mod.SERVER_SCRIPTS\n"
        "assert all(p.is_file() for p in mod.SERVER_SCRIPTS.values())\n"
        "assert 'mcp' not in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=30)
    for path in SERVER_SCRIPTS.values():
        assert "leaklab" not in "".join(
            line for line in path.read_text().splitlines() if line.startswith(("import", "from"))
        )


def test_caller_cancelled_mid_start_does_not_start_servers_twice():
    """The conversation task may be cancelled while the servers start; the
    next turn reuses the start in progress instead of spawning again."""
    before = set(script_children())

    async def main() -> None:
        client = MCPClient(SERVERS)
        try:
            first = asyncio.create_task(client.list_tools())
            await asyncio.sleep(0.2)
            first.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await first
            tools = await asyncio.create_task(client.list_tools())
            assert {t["function"]["name"] for t in tools} == TOOL_NAMES
            assert len(set(script_children()) - before) == 2
            assert len(client.child_pids()) == 2
        finally:
            await client.aclose()
        assert client.child_pids() == []

    run_clean(main)


@pytest.mark.parametrize("delay_s", [0.0, 0.3])
def test_close_while_starting_leaves_no_server(delay_s, caplog):
    """A disconnect that lands while the first turn starts the servers."""
    before = set(script_children())

    async def main() -> None:
        client = MCPClient(SERVERS)
        opener = asyncio.create_task(client.list_tools())
        await asyncio.sleep(delay_s)
        await close_in_task(client)
        with contextlib.suppress(MCPToolError):
            await opener  # closed under it: an error or an empty listing
        assert not await wait_gone(set(script_children()) - before, 5.0)
        assert client.child_pids() == []

    run_clean(main)
