"""Fault C3's exit stack and its guard task, for :class:`~.mcp_client.MCPClient`.

Fault C3 (``leave_sessions_open=True``): what we found and what we model
    Upstream (Open-LLM-VTuber's ``MCPClient``) enters ``stdio_client`` and
    ``ClientSession`` on an ``AsyncExitStack`` directly in whatever task first
    needs a server (the conversation task) and later calls
    ``await exit_stack.aclose()`` from the disconnect handler, another task.

    Measured with mcp 2.3.0 + anyio 4.16 on Python 3.11, with a plain
    ``contextlib.AsyncExitStack`` (and, for comparison, mcp 1.9.4 on the same
    anyio, and mcp 1.26.0 + anyio 4.12.1 on Python 3.10): the cross-task close
    does *not* leave the children running.
    ``ClientSession.__aexit__`` cancels its task group and then raises
    ``RuntimeError("Attempted to exit cancel scope in a different task than
    it was entered in")``; ``AsyncExitStack`` keeps unwinding and throws that
    error into ``stdio_client``'s generator, whose ``finally`` block runs the
    SDK's *shielded* shutdown (close stdin, wait 2 s, kill the process tree)
    in the closing task *before* its own task-group exit raises the same
    RuntimeError again (mcp 1.x runs the same steps unshielded: close
    stdin, wait 2 s, terminate the process tree). So the process is killed and reaped, and only the
    error reaches the caller.

    To keep the upstream failure visible, the fault mode models the
    mechanism that makes it leak: *the first context exit raises, the error
    is swallowed and logged, and the remaining unwinding never happens.* The
    exit stack used in this mode (:class:`AbortingExitStack`) is a LIFO
    stack like ``AsyncExitStack`` except that it stops at the first exit that
    raises and re-raises that error. With servers entered in upstream order
    (``stdio(a), session(a), stdio(b), session(b)``), a cross-task
    :meth:`~.mcp_client.MCPClient.aclose` runs only ``session(b).__aexit__``, which cancels
    that session's dispatcher and raises the anyio RuntimeError;
    :meth:`~.mcp_client.MCPClient.aclose` logs ``Error closing MCPClient: ...`` and
    returns. Then every server subprocess is still running, ``session(a)`` is
    still usable (``session(b)`` answers "Connection closed"),
    ``active_sessions`` still holds both (upstream clears it only after a
    successful close), and the ``stdio_client``
    generators stay suspended at their ``yield``. Their pipe-reader tasks are
    registered with the event loop's selector, which keeps them, the process
    objects and the subprocess transports reachable, so nothing is garbage
    collected or killed behind our back. A close from the *same* task that
    opened the sessions unwinds fully and kills the children, as upstream.

    Two things the model adds so that the leak cannot break the process:

    * Each fault-C3 client has one *guard task* (``mcp-exit-stack-guard``),
      held in a module-level set, that owns the end of the stack's life. It
      sleeps until a close fails, then polls once a second while any leaked
      child is alive. When they have all exited (killed by someone else), or
      when the task is cancelled (``asyncio.run`` cancels every task at loop
      shutdown, closed or not), it finishes the unwinding in its own task and
      logs the expected anyio RuntimeErrors at debug level. Without it, loop
      shutdown would hang (the SDK's stdout reader drains a live child's pipe
      in a shielded scope, until EOF) and ``loop.shutdown_asyncgens()`` would
      finalize the suspended ``stdio_client`` generators and report their
      cross-task exit as an error with a traceback. So the children leak for
      as long as the event loop runs, which is what a long-running backend
      shows, and the loop still closes cleanly. A clean close cancels the
      guard.
    * The opening task must have finished before the close, as in the
      backend, where the disconnect handler cancels and awaits the
      conversation task first. If it is still running, cancelling the
      abandoned session scope would go on cancelling that task at every
      await (anyio keeps cancelling the host task of a cancelled scope it
      never left); :meth:`~.mcp_client.MCPClient.aclose` logs a warning when it sees this.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import psutil

from .._compat import timeout

__all__ = ["AbortingExitStack", "alive", "guard_exit_stack"]

# The client's logger: what the C3 model logs reads as the client's.
logger = logging.getLogger(__name__.rpartition(".")[0] + ".mcp_client")

#: How often the guard of a leaked client checks whether its children still run.
_LEAK_POLL_S = 1.0


class AbortingExitStack:
    """A LIFO exit stack whose unwinding stops at the first exit that raises.

    The C3 model (see the module docstring): ``contextlib.AsyncExitStack``
    would go on unwinding after a failed exit, and with this SDK that still
    kills the children; this stack leaves everything below the failing entry
    entered, which is the state upstream ends up in when the close fails.
    """

    def __init__(self) -> None:
        # Each entry undoes one step: the bound __aexit__ of an entered
        # context manager, or a plain callback.
        self._entries: list[Callable[[], Awaitable[Any] | None]] = []

    def __len__(self) -> int:
        return len(self._entries)

    async def enter_async_context(self, cm: Any) -> Any:
        """Enter ``cm`` in the current task and push its exit.

        Args:
            cm: an async context manager.

        Returns:
            What ``cm.__aenter__`` returned.
        """
        result = await type(cm).__aenter__(cm)
        self._entries.append(lambda: type(cm).__aexit__(cm, None, None, None))
        return result

    def callback(self, fn: Callable[[], Any]) -> None:
        """Push a synchronous callback, run when the stack unwinds past it."""
        self._entries.append(fn)

    async def _pop_and_run(self) -> None:
        undo = self._entries.pop()
        result = undo()
        if isinstance(result, Awaitable):
            await result

    async def aclose(self) -> None:
        """Unwind, last entered first; stop at and re-raise the first error."""
        while self._entries:
            await self._pop_and_run()

    async def unwind_quietly(self, timeout_s: float) -> None:
        """Unwind everything left, each step bounded, errors logged at debug.

        Used by the guard task: the errors here are the expected anyio
        "different task" RuntimeErrors, already reported once by the close.
        """
        while self._entries:
            try:
                async with timeout(timeout_s):
                    await self._pop_and_run()
            except Exception as exc:  # noqa: BLE001 - expected, see docstring
                logger.debug("leaked MCP context unwound with %s: %s", type(exc).__name__, exc)


def alive(proc: psutil.Process) -> bool:
    """Whether ``proc`` still runs (a zombie has exited; it only awaits reaping)."""
    try:
        return proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


async def guard_exit_stack(
    stack: AbortingExitStack, children: dict[str, list[psutil.Process]], leaked: asyncio.Event, close_timeout_s: float
) -> None:
    """Finish the unwinding of a fault-C3 exit stack when nothing else will.

    Runs for the life of a fault-C3 client (see the module docstring). Ends
    when the client closed cleanly (cancelled, the stack is empty), when the
    leaked children have all exited after a failed close, or when the loop
    shuts down; in every case what is left on the stack is unwound here, in
    this task, so loop shutdown neither hangs nor reports the suspended
    ``stdio_client`` generators.
    """
    try:
        await leaked.wait()
        procs = [p for group in children.values() for p in group]
        if not procs:
            await asyncio.Event().wait()  # children unknown: hold until shutdown
        while any(alive(p) for p in procs):
            await asyncio.sleep(_LEAK_POLL_S)
    finally:
        await stack.unwind_quietly(close_timeout_s)
