"""Work in a process of its own: one unit (a checklist experiment, a
comparison's scenario run) in a fresh interpreter, so every unit starts from
a clean heap and a stuck one can be ended.

The two sides of one small protocol:

* the parent, :func:`run_child`: starts ``python -m <module>``, writes the
  unit's JSON spec on its stdin, waits (bounded: a timeout or a cancel,
  Ctrl-C included, terminates the child, then kills it after 10 s) and
  returns a :class:`ChildResult`: the exit code, the last JSON line the child
  printed, the tail of its stderr;
* the child, :func:`serve`: a worker module's ``main``; SIGTERM becomes
  Ctrl-C (the backend shuts down first), the spec is read from stdin, the
  work run, its result printed as one JSON line.

What a failed unit's record says is the caller's (the checklist's
:func:`~leaklab.checklist.in_child`).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
import os
import sys
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

__all__ = ["TERMINATE_GRACE_S", "ChildResult", "child_env", "run_child", "serve"]

#: Seconds a terminated child gets to shut down before it is killed.
TERMINATE_GRACE_S = 10


@dataclasses.dataclass(frozen=True)
class ChildResult:
    """How a child ended.

    Attributes:
        returncode: its exit code.
        record: the last JSON line it printed on stdout; ``None`` when it
            exited non-zero or printed none.
        stderr_tail: the last three lines of its stderr.
    """

    returncode: int | None
    record: dict[str, Any] | None
    stderr_tail: tuple[str, ...] = ()

    @property
    def failure(self) -> str:
        """``"exited 1: last | stderr | lines"``: why there is no record."""
        return f"exited {self.returncode}: {' | '.join(self.stderr_tail)}"


def child_env(sys_path: Sequence[str] = ()) -> dict[str, str]:
    """This process' environment, with ``sys_path`` (then the working
    directory, then the inherited ``PYTHONPATH``) as the child's
    ``PYTHONPATH``."""
    path = [*sys_path, os.getcwd(), os.environ.get("PYTHONPATH", "")]
    return {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in path if p)}


async def run_child(module: str, spec: Mapping[str, Any], timeout_s: float, *,
                    sys_path: Sequence[str] = ()) -> ChildResult:
    """Run ``python -m module`` with ``spec`` as JSON on its stdin.

    Args:
        module: a module that reads a JSON spec on stdin and prints a JSON
            line (its ``main`` calls :func:`serve`).
        spec: the unit of work.
        timeout_s: bound on the child's run.
        sys_path: folders put first on the child's ``sys.path`` (a second
            checkout of the same package).

    Raises:
        asyncio.TimeoutError: the child did not finish in ``timeout_s`` (it
            is ended first, as on a cancel).

    On an event loop that can't start subprocesses (Windows' selector loop,
    which a Jupyter kernel may run), the child is started and waited for
    from a thread instead; a cancel or timeout ends it either way."""
    env = child_env(sys_path)
    argv = [sys.executable, "-m", module]
    data = json.dumps(spec, default=os.fspath).encode()  # a path (a browser's, an app's) as its string
    try:
        proc = await asyncio.create_subprocess_exec(
            *argv, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
            env=env)
    except NotImplementedError:
        returncode, out, err = await _run_from_thread(argv, env, data, timeout_s)
    else:
        try:
            out, err = await asyncio.wait_for(proc.communicate(data), timeout_s)
        except BaseException:
            with contextlib.suppress(ProcessLookupError):
                proc.terminate()
            try:
                await asyncio.wait_for(proc.wait(), TERMINATE_GRACE_S)
            except asyncio.TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
                await proc.wait()
            raise
        returncode = proc.returncode
    lines = [line for line in out.decode(errors="replace").splitlines() if line.startswith("{")]
    if returncode != 0 or not lines:
        tail = err.decode(errors="replace").strip().splitlines()[-3:]
        return ChildResult(returncode, None, tuple(tail))
    return ChildResult(returncode, json.loads(lines[-1]))


async def _run_from_thread(argv: list[str], env: dict[str, str], data: bytes,
                           timeout_s: float) -> tuple[int | None, bytes, bytes]:
    """:func:`run_child`'s child, from a thread: for loops with no subprocesses."""
    import subprocess

    child = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    try:
        out, err = await asyncio.to_thread(child.communicate, data, timeout_s)
    except BaseException as exc:
        child.terminate()
        try:
            await asyncio.to_thread(child.wait, TERMINATE_GRACE_S)
        except subprocess.TimeoutExpired:
            child.kill()
            await asyncio.to_thread(child.wait)
        for pipe in (child.stdin, child.stdout, child.stderr):
            with contextlib.suppress(OSError, ValueError):
                pipe.close()  # type: ignore[union-attr]
        if isinstance(exc, subprocess.TimeoutExpired):
            raise asyncio.TimeoutError(f"the child did not finish in {timeout_s:.0f} s") from None
        raise
    return child.returncode, out, err


def serve(work: Callable[[dict[str, Any]], Awaitable[Any]]) -> int:
    """A worker module's ``main``: SIGTERM or Ctrl-C shuts the backend down
    first; read the spec on stdin, run ``work(spec)`` on a fresh event loop,
    print its result as one JSON line on stdout. Returns the exit code."""
    from ._platform import stop_as_interrupt

    stop_as_interrupt()
    logging.basicConfig(level=logging.ERROR, format="%(levelname)s %(name)s: %(message)s")
    spec = json.loads(sys.stdin.read())
    out = asyncio.run(work(spec))
    print(json.dumps(out, default=str), flush=True)
    return 0
