"""Python version differences, in one place (leaklab supports 3.10-3.13).

Where the standard library has the object on 3.11+ (``tomllib``, ``timeout``,
``Runner``, ``Task.cancelling``, ``contextlib.chdir``), that object is used
there, and on 3.10 a small stand-in with the same interface, limited as its
docstring says. The rest smooths over how gc sees frames and call arguments
on each version, for the retention search.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import inspect
import os
import sys
import types
from collections.abc import Coroutine, Iterator
from types import TracebackType
from typing import Any, TypeVar

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised in the Python 3.10 environment
    import tomli as tomllib

__all__ = [
    "Runner",
    "TimeoutError",
    "chdir",
    "drop_generator_frames",
    "referrers_of",
    "separate_generator_frame",
    "task_cancelling",
    "timeout",
    "tomllib",
]

_T = TypeVar("_T")


@contextlib.contextmanager
def chdir(path: str | os.PathLike[str]) -> Iterator[None]:
    """``contextlib.chdir`` (3.11+): the current directory is ``path`` inside."""
    old = os.getcwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(old)


def task_cancelling(task: Any) -> int:
    """``Task.cancelling()`` (3.11+); 0 where the loop does not count
    cancellation requests (3.10)."""
    method = getattr(task, "cancelling", None)
    return method() if method is not None else 0


# 3.10 gives every coroutine, generator and async generator a separate frame
# object, which holds its locals and is what gc.get_referrers finds; 3.11+
# embed the frame in the generator object, whose referents are then the
# locals themselves. The two functions below make a retention chain read the
# same on both (Task -> coroutine -> local).
_SEPARATE_GENERATOR_FRAMES = sys.version_info < (3, 11)
_GENERATOR_CODE_FLAGS = inspect.CO_GENERATOR | inspect.CO_COROUTINE | inspect.CO_ASYNC_GENERATOR
_GENERATOR_FRAME_ATTR = {
    types.CoroutineType: "cr_frame",
    types.GeneratorType: "gi_frame",
    types.AsyncGeneratorType: "ag_frame",
}


def separate_generator_frame(frame: types.FrameType) -> bool:
    """Whether ``frame`` is a coroutine's or generator's own frame object,
    held by that generator and visible to gc as the holder of its locals
    (3.10 only; 3.11+ embed such frames, so always False there)."""
    return _SEPARATE_GENERATOR_FRAMES and bool(frame.f_code.co_flags & _GENERATOR_CODE_FLAGS)


def drop_generator_frames(path: list[Any]) -> None:
    """Remove, in place, each frame object that directly follows its own
    coroutine or generator in a reference path (3.10), so the path reads
    generator -> local as on 3.11+. The path's last object is never removed;
    a no-op on 3.11+."""
    if not _SEPARATE_GENERATOR_FRAMES:
        return
    i = 0
    while i < len(path) - 2:
        attr = _GENERATOR_FRAME_ATTR.get(type(path[i]))
        if attr is not None and type(path[i + 1]) is types.FrameType and getattr(path[i], attr, None) is path[i + 1]:
            del path[i + 1]
        else:
            i += 1


def referrers_of(objs: tuple[Any, ...]) -> list[Any]:
    """``gc.get_referrers(*objs)``, less ``objs`` and the call's own argument
    tuples.

    gc skips the argument tuple it was handed. Up to 3.12 ``f(*objs)`` hands
    a builtin ``objs`` itself; 3.13 copies it into a fresh tuple, so ``objs``
    is then reported as a holder of every object in it. Here ``objs`` is
    left out by identity, and any copy made on the way by a fresh sentinel
    that rides last in the call (no tuple of the program can hold it).
    """
    sentinel = object()
    refs = gc.get_referrers(*objs, sentinel)
    return [r for r in refs if r is not objs and not (type(r) is tuple and r and r[-1] is sentinel)]


if sys.version_info >= (3, 11):
    from asyncio import Runner, timeout

    TimeoutError = TimeoutError  # noqa: A001, PLW0127 - the builtin, which asyncio's is on 3.11+
else:  # pragma: no cover - exercised in the Python 3.10 environment
    import builtins

    class TimeoutError(asyncio.TimeoutError, builtins.TimeoutError):  # noqa: A001
        """Raised by :func:`timeout` on 3.10: both ``except TimeoutError`` and
        ``except asyncio.TimeoutError`` catch it, as on 3.11+ where they are one."""

    class _Timeout:
        """``asyncio.timeout`` for 3.10: cancels the enclosing task at the
        deadline and turns that cancellation into :class:`TimeoutError`.

        Without 3.11's cancellation counting, an outside ``cancel()`` that
        lands in the same step as the deadline is also reported as a timeout.
        """

        def __init__(self, delay: float | None) -> None:
            self._delay = delay
            self._task: asyncio.Task[Any] | None = None
            self._handle: asyncio.TimerHandle | None = None
            self._expired = False

        def expired(self) -> bool:
            """Whether the deadline passed and cancelled the task."""
            return self._expired

        async def __aenter__(self) -> _Timeout:
            self._task = asyncio.current_task()
            if self._task is None:
                raise RuntimeError("Timeout should be used inside a task")
            if self._delay is not None:
                self._handle = asyncio.get_running_loop().call_later(max(self._delay, 0.0), self._on_timeout)
            return self

        def _on_timeout(self) -> None:
            assert self._task is not None
            self._task.cancel()
            self._expired = True
            self._handle = None

        async def __aexit__(
            self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
        ) -> None:
            if self._handle is not None:
                self._handle.cancel()
                self._handle = None
            if self._expired and exc_type is asyncio.CancelledError:
                raise TimeoutError from exc

    def timeout(delay: float | None) -> _Timeout:
        """``asyncio.timeout`` (3.11+): ``async with timeout(s):`` raises
        :class:`TimeoutError` when the block runs longer than ``s`` seconds."""
        return _Timeout(delay)

    class Runner:
        """``asyncio.Runner`` (3.11+), the part leaklab uses: a fresh event
        loop for ``run()`` calls, closed as ``asyncio.run`` closes its loop
        (remaining tasks cancelled, async generators and the default executor
        shut down). Unlike a patched ``asyncio.run`` it never reuses a loop."""

        def __init__(self, *, debug: bool | None = None) -> None:
            self._debug = debug
            self._loop: asyncio.AbstractEventLoop | None = None

        def __enter__(self) -> Runner:
            self.get_loop()
            return self

        def __exit__(self, *exc_info: object) -> None:
            self.close()

        def get_loop(self) -> asyncio.AbstractEventLoop:
            """The runner's loop, created on first use."""
            if self._loop is None:
                self._loop = asyncio.new_event_loop()
                if self._debug is not None:
                    self._loop.set_debug(self._debug)
                asyncio.set_event_loop(self._loop)
            return self._loop

        def run(self, coro: Coroutine[Any, Any, _T]) -> _T:
            """Run ``coro`` to completion on the runner's loop."""
            return self.get_loop().run_until_complete(coro)

        def close(self) -> None:
            """Cancel what is left, shut the loop down and close it."""
            loop, self._loop = self._loop, None
            if loop is None:
                return
            try:
                pending = [t for t in asyncio.all_tasks(loop) if not t.done()]
                for task in pending:
                    task.cancel()
                if pending:
                    loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
                for task in pending:
                    if not task.cancelled() and task.exception() is not None:
                        loop.call_exception_handler(
                            {
                                "message": "unhandled exception during Runner.close()",
                                "exception": task.exception(),
                                "task": task,
                            }
                        )
                loop.run_until_complete(loop.shutdown_asyncgens())
                loop.run_until_complete(loop.shutdown_default_executor())
            finally:
                asyncio.set_event_loop(None)
                loop.close()
