"""``MCPClient``: one session's connections to stdio MCP servers (cause C3).

Each websocket session of the reference backend owns one client. The client
starts its servers lazily (on the first :meth:`MCPClient.list_tools` or
:meth:`MCPClient.call_tool`), as real subprocesses, and talks to them with the
``mcp`` SDK (``stdio_client`` + ``ClientSession``, the same calls in 1.x and
2.x; the few model fields 2.x renamed are read through :func:`_field`).

Correct client (``leave_sessions_open=False``)
    Every server session lives in an *owner task* that the client creates::

        async with stdio_client(params) as (r, w), ClientSession(r, w) as s:
            await s.initialize()
            ready.set_result(s)
            await stop_event.wait()

    anyio requires a cancel scope (so every task group, so both contexts
    above) to be exited by the task that entered it. An owner task opens and
    closes its own contexts, so :meth:`MCPClient.aclose` may be called from any
    task (the disconnect handler, typically): it sets the stop events and
    awaits the owner tasks (5 s, then cancels them and, as a last resort,
    kills the recorded children). The SDK's own shutdown closes the server's
    stdin, waits, escalates to SIGTERM/SIGKILL and reaps the child.

Fault C3 (``leave_sessions_open=True``)
    Upstream's exit stack, entered in whatever task first needs a server and
    closed from another: what we found and how it is modelled is told in
    :mod:`.mcp_stack`, with the stack (:class:`~.mcp_stack.AbortingExitStack`)
    and the guard task that lets the event loop still close.

Every wait on a subprocess or session is bounded: start 15 s, call
``call_timeout_s`` (10 s), close 5 s. The servers' stderr goes to
``os.devnull`` so test and benchmark output stays clean.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import itertools
import logging
import os
import weakref
from dataclasses import dataclass, field
from typing import IO, Any

import psutil
from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client

from .._compat import timeout
from .mcp_stack import AbortingExitStack, alive, guard_exit_stack

logger = logging.getLogger(__name__)

#: Seconds to start one server (spawn, handshake).
START_TIMEOUT_S = 15.0
#: Seconds for a close to finish before owner tasks are cancelled.
CLOSE_TIMEOUT_S = 5.0
#: Environment variable that tags each server subprocess with its client and
#: server name, so a client finds exactly its own children among many
#: identical ones (every session starts the same scripts).
MARKER_ENV = "LEAKLAB_MCP_SESSION"

_client_ids = itertools.count(1)
# Tasks are only weakly referenced by asyncio; this set keeps owner and
# guard tasks alive until they finish, even if their client is dropped.
_BACKGROUND_TASKS: set[asyncio.Task[Any]] = set()


class MCPToolError(RuntimeError):
    """A tool that does not exist, failed, timed out, or whose server is gone."""


@dataclass
class _OwnedSession:
    """Bookkeeping of one server session that lives in its own owner task."""

    name: str
    ready: asyncio.Future[ClientSession]
    stop: asyncio.Event = field(default_factory=asyncio.Event)
    task: asyncio.Task[None] | None = None




def _field(obj: Any, name: str, v1_name: str) -> Any:
    """A field of an SDK model: mcp 2.x names it in snake case (``is_error``),
    mcp 1.x as on the wire (``isError``)."""
    value = getattr(obj, name, None)
    return getattr(obj, v1_name, None) if value is None else value


def _result_text(result: Any) -> str:
    """The text of a ``CallToolResult``: its text blocks, one per line."""
    parts: list[str] = []
    for block in result.content or []:
        text = getattr(block, "text", None)
        parts.append(text if isinstance(text, str) else f"[{getattr(block, 'type', 'content')}]")
    structured = _field(result, "structured_content", "structuredContent")
    if not parts and structured is not None:
        parts.append(str(structured))
    return "\n".join(parts)


def _keep_task(task: asyncio.Task[Any]) -> asyncio.Task[Any]:
    _BACKGROUND_TASKS.add(task)
    task.add_done_callback(_BACKGROUND_TASKS.discard)
    return task


def _consume_exception(fut: asyncio.Future[Any]) -> None:
    # A ready future may fail while nobody awaits it (its starter timed out or
    # was cancelled); reading the exception stops asyncio from logging
    # "Future exception was never retrieved".
    if not fut.cancelled():
        fut.exception()


class MCPClient:
    """Connections from one session to its stdio MCP servers.

    Attributes:
        active_sessions: server name -> its open ``ClientSession``.
        closed: whether :meth:`aclose` has run.
        leave_sessions_open: whether fault C3 is on.
        call_timeout_s: seconds allowed for one tool call or tool listing.
    """

    def __init__(
        self,
        servers: dict[str, list[str]],
        *,
        leave_sessions_open: bool = False,
        call_timeout_s: float = 10.0,
    ) -> None:
        """Configure the client; nothing starts until a server is needed.

        Args:
            servers: server name -> argv (``argv[0]`` is the executable).
            leave_sessions_open: switch fault C3 on (see the module docstring).
            call_timeout_s: seconds allowed for one call to a server.

        Raises:
            ValueError: for a server with an empty argv.
        """
        for name, argv in servers.items():
            if not argv:
                raise ValueError(f"MCP server {name!r} has an empty argv")
        self._servers = {name: list(argv) for name, argv in servers.items()}
        self.leave_sessions_open = leave_sessions_open
        self.call_timeout_s = call_timeout_s
        self.active_sessions: dict[str, ClientSession] = {}
        self.closed = False
        self._id = next(_client_ids)
        self._tools: list[dict[str, Any]] | None = None
        # exposed tool name -> (server name, the server's own tool name)
        self._tool_owner: dict[str, tuple[str, str]] = {}
        self._children: dict[str, list[psutil.Process]] = {}
        self._failed: dict[str, str] = {}
        self._start_lock = asyncio.Lock()
        self._owned: dict[str, _OwnedSession] = {}
        # Fault C3 only: upstream's stack, and the guard task that finishes
        # its unwinding when nothing else will (see guard_exit_stack).
        self._exit_stack = AbortingExitStack()
        self._leaked = asyncio.Event()
        self._guard: asyncio.Task[None] | None = None
        # Weak: only for a warning, and a leak-finder should not pin tasks.
        self._opener: weakref.ref[asyncio.Task[Any]] | None = None
        self._errlog: IO[str] | None = None

    # -- inspection ---------------------------------------------------------
    def child_pids(self) -> list[int]:
        """PIDs of the server subprocesses this client started that still run."""
        return [p.pid for procs in self._children.values() for p in procs if alive(p)]

    # -- tools --------------------------------------------------------------
    async def list_tools(self) -> list[dict[str, Any]]:
        """Start the servers (first call only, concurrently) and list their tools.

        Returns:
            Tools in the OpenAI chat-completions ``tools`` format, names unique
            across servers (a clash is renamed ``<server>_<tool>``). A server
            that failed to start is logged and left out.

        Raises:
            MCPToolError: if the client is closed.
        """
        self._check_open()
        async with self._start_lock:
            self._check_open()  # aclose() may have run while we waited
            if self._tools is None:
                await self._start_servers()
                self._tools = await self._collect_tools()
        return copy.deepcopy(self._tools)

    async def call_tool(self, name: str, arguments: dict[str, Any]) -> str:
        """Call tool ``name`` on the server that owns it.

        Args:
            name: a tool name as :meth:`list_tools` returns it.
            arguments: the tool's arguments.

        Returns:
            The text content of the result.

        Raises:
            MCPToolError: for an unknown tool, a tool error, a timeout, a server
                that is not running, or a closed client.
        """
        if self._tools is None:
            await self.list_tools()  # learn which server owns which tool
        self._check_open()
        owner = self._tool_owner.get(name)
        if owner is None:
            known = ", ".join(sorted(self._tool_owner)) or "none"
            raise MCPToolError(f"unknown tool {name!r}; known tools: {known}")
        server, tool = owner
        session = self.active_sessions.get(server)
        if session is None:
            raise MCPToolError(f"MCP server {server!r} for tool {name!r} is not running")
        try:
            async with timeout(self.call_timeout_s):
                result = await session.call_tool(tool, arguments)
        except asyncio.TimeoutError as exc:
            raise MCPToolError(f"tool {name!r} timed out after {self.call_timeout_s:g} s") from exc
        except Exception as exc:
            raise MCPToolError(f"tool {name!r} failed: {exc}") from exc
        text = _result_text(result)
        if _field(result, "is_error", "isError"):
            raise MCPToolError(f"tool {name!r} returned an error: {text}")
        return text

    # -- teardown -------------------------------------------------------------
    async def aclose(self) -> None:
        """Close every session and stop its server; idempotent, any task.

        With fault C3 on, a close from another task than the opening one
        fails as upstream's does: the error is logged, not raised, and the
        sessions and subprocesses stay (see the module docstring).
        """
        if self.closed:
            return
        self.closed = True
        logger.info("Closing MCPClient... and %d active connections", len(self.active_sessions))
        if self.leave_sessions_open:
            await self._aclose_exit_stack()
        else:
            await self._aclose_owned()

    # -- internals ------------------------------------------------------------
    def _check_open(self) -> None:
        if self.closed:
            raise MCPToolError("MCPClient is closed")

    def _params(self, name: str) -> StdioServerParameters:
        argv = self._servers[name]
        marker = f"{os.getpid()}:{self._id}:{name}"
        return StdioServerParameters(command=argv[0], args=argv[1:], env={MARKER_ENV: marker})

    def _devnull(self) -> IO[str]:
        """The fault-C3 client's null device for the servers' stderr.

        The subprocess gets its own copy of the descriptor at spawn; ours sits
        at the bottom of the exit stack, like upstream's other resources, so
        it is closed when (if) the stack is fully unwound.
        """
        if self._errlog is None:
            self._errlog = open(os.devnull, "w", encoding="utf-8")  # noqa: SIM115 - closed by the stack
            self._exit_stack.callback(self._close_devnull)
        return self._errlog

    def _close_devnull(self) -> None:
        if self._errlog is not None:
            self._errlog.close()
            self._errlog = None

    def _record_children(self, name: str) -> None:
        """Remember the processes that carry this server's marker.

        Called right after the spawn (``stdio_client`` returns once the child
        has exec'd), so a start that later fails or is cancelled is counted,
        and once more after the handshake: a busy machine can make one read
        of ``/proc`` miss the new child (seen once under load). Idempotent.
        """
        marker = f"{os.getpid()}:{self._id}:{name}"
        known = self._children.setdefault(name, [])
        for proc in psutil.Process().children(recursive=True):
            with contextlib.suppress(psutil.Error):
                if proc not in known and proc.environ().get(MARKER_ENV) == marker:
                    known.append(proc)

    async def _start_servers(self) -> None:
        names = [n for n in self._servers if n not in self.active_sessions and n not in self._failed]
        if not names:
            return
        if self.leave_sessions_open:
            await self._start_in_this_task(names)
        else:
            await asyncio.gather(*(self._start_owned(n) for n in names))

    def _mark_failed(self, name: str, exc: BaseException) -> None:
        reason = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        self._failed[name] = reason
        logger.error("MCP server %r failed to start: %s", name, reason)

    # correct client: one owner task per session
    async def _start_owned(self, name: str) -> None:
        owned = self._owned.get(name)
        if owned is None:
            if self.closed:
                # gather() runs this a loop turn later: aclose() may be done,
                # and an owner started now would never be stopped.
                self._mark_failed(name, MCPToolError("MCPClient is closed"))
                return
            loop = asyncio.get_running_loop()
            owned = _OwnedSession(name, ready=loop.create_future())
            owned.ready.add_done_callback(_consume_exception)
            owned.task = _keep_task(loop.create_task(self._own_session(owned), name=f"mcp-session:{name}"))
            self._owned[name] = owned
        # else: an earlier caller was cancelled mid-start; its owner goes on.
        try:
            # The owner bounds its own start; this outer bound is a backstop
            # that leaves it time to shut the server down first.
            async with timeout(START_TIMEOUT_S + CLOSE_TIMEOUT_S):
                # Shielded: a caller cancelled mid-start leaves the owner task
                # to finish the start; the session is then there for the next call.
                await asyncio.shield(owned.ready)
        except asyncio.TimeoutError as exc:
            owned.stop.set()
            owned.task.cancel()
            self._mark_failed(name, exc)
        except Exception as exc:
            self._mark_failed(name, exc)

    async def _own_session(self, owned: _OwnedSession) -> None:
        """Open, hold and close one session, all in this one task."""
        name = owned.name
        try:
            # The owner's own null device, closed with it: a client that is
            # never closed (fault C9) still releases it when the loop ends.
            with open(os.devnull, "w", encoding="utf-8") as errlog:
                async with stdio_client(self._params(name), errlog=errlog) as (read, write):
                    self._record_children(name)
                    async with ClientSession(read, write) as session:
                        async with timeout(START_TIMEOUT_S):
                            await session.initialize()
                        self._record_children(name)  # again: see _record_children
                        self.active_sessions[name] = session
                        if not owned.ready.done():
                            owned.ready.set_result(session)
                        await owned.stop.wait()
        except Exception as exc:
            if not owned.ready.done():
                owned.ready.set_exception(exc)
            else:
                logger.warning("MCP session %r ended with %s: %s", name, type(exc).__name__, exc)
        finally:
            self.active_sessions.pop(name, None)
            if not owned.ready.done():
                owned.ready.set_exception(MCPToolError(f"MCP session {name!r} stopped before it was ready"))

    async def _aclose_owned(self) -> None:
        owned = list(self._owned.values())
        for item in owned:
            item.stop.set()
        tasks = [item.task for item in owned if item.task is not None and not item.task.done()]
        if tasks:
            _, pending = await asyncio.wait(tasks, timeout=CLOSE_TIMEOUT_S)
            if pending:
                logger.warning("MCP sessions did not close within %g s; cancelling them", CLOSE_TIMEOUT_S)
                for task in pending:
                    task.cancel()
                # A native cancel can cut the SDK's shielded shutdown short:
                # kill what is left so no server outlives a correct close.
                self._kill_children()
                _, still = await asyncio.wait(pending, timeout=CLOSE_TIMEOUT_S)
                if still:
                    logger.warning("%d MCP session tasks still running after cancel", len(still))
        self.active_sessions.clear()

    def _kill_children(self) -> None:
        for procs in self._children.values():
            for proc in procs:
                if alive(proc):
                    with contextlib.suppress(psutil.Error):
                        proc.kill()

    # fault C3: upstream's exit stack, entered in the calling task
    async def _start_in_this_task(self, names: list[str]) -> None:
        task = asyncio.current_task()
        if self._opener is None and task is not None:
            self._opener = weakref.ref(task)
        if self._guard is None:
            self._guard = _keep_task(
                asyncio.get_running_loop().create_task(
                    guard_exit_stack(self._exit_stack, self._children, self._leaked, CLOSE_TIMEOUT_S),
                    name="mcp-exit-stack-guard",
                )
            )
        entered: list[tuple[str, ClientSession]] = []
        for name in names:
            # Spawning is quick; the slow part (the server's imports and the
            # handshake) runs concurrently below, so start-up time matches the
            # correct client's even though the contexts are entered one by one.
            try:
                read, write = await self._exit_stack.enter_async_context(
                    stdio_client(self._params(name), errlog=self._devnull())
                )
                self._record_children(name)
                session = await self._exit_stack.enter_async_context(ClientSession(read, write))
            except Exception as exc:
                self._mark_failed(name, exc)
                continue
            entered.append((name, session))

        async def initialize(session: ClientSession) -> None:
            async with timeout(START_TIMEOUT_S):
                await session.initialize()

        results = await asyncio.gather(*(initialize(s) for _, s in entered), return_exceptions=True)
        for (name, session), result in zip(entered, results, strict=True):
            if isinstance(result, BaseException):
                # As upstream: the contexts stay on the stack until aclose.
                self._mark_failed(name, result)
                continue
            self._record_children(name)  # again: see _record_children
            self.active_sessions[name] = session

    async def _aclose_exit_stack(self) -> None:
        opener = self._opener() if self._opener is not None else None
        if opener is not None and not opener.done() and opener is not asyncio.current_task():
            logger.warning(
                "Closing MCPClient while the task that opened its sessions (%s) still runs: "
                "a failed close will keep cancelling it",
                opener.get_name(),
            )
        try:
            async with timeout(CLOSE_TIMEOUT_S):
                await self._exit_stack.aclose()
        except Exception as exc:  # noqa: BLE001 - upstream swallows and logs it
            logger.error("Error closing MCPClient: %s: %s", type(exc).__name__, exc)
            self._leaked.set()  # the guard now waits for the children instead
            return
        self.active_sessions.clear()
        if self._guard is not None:
            self._guard.cancel()

    async def _collect_tools(self) -> list[dict[str, Any]]:
        tools: list[dict[str, Any]] = []
        for server in self._servers:  # configuration order: stable names
            session = self.active_sessions.get(server)
            if session is None:
                continue
            try:
                async with timeout(self.call_timeout_s):
                    listing = await session.list_tools()
            except Exception as exc:
                logger.error("Listing the tools of MCP server %r failed: %s: %s", server, type(exc).__name__, exc)
                continue
            for tool in listing.tools:
                exposed = tool.name
                if exposed in self._tool_owner:
                    exposed = f"{server}_{tool.name}"
                    suffix = itertools.count(2)
                    while exposed in self._tool_owner:
                        exposed = f"{server}_{tool.name}_{next(suffix)}"
                self._tool_owner[exposed] = (server, tool.name)
                schema = _field(tool, "input_schema", "inputSchema") or {"type": "object", "properties": {}}
                tools.append(
                    {
                        "type": "function",
                        "function": {
                            "name": exposed,
                            "description": tool.description or "",
                            "parameters": dict(schema),
                        },
                    }
                )
        return tools
