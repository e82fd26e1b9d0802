"""What the backend left behind when it stopped: processes, threads and
listening ports since the session's baseline; the processes it left running
are ended (terminated, then killed)."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
import time
import weakref
from collections.abc import Iterable
from typing import Any

from .. import probes
from ..probes.process import idle_pool_workers
from ..probes.stacks import default_owner, owner_kind
from ..driver.scenarios import CycleState

__all__ = [
    "CANCEL_GRACE_S", "CHILD_SAMPLE_S", "REAP_GRACE_S", "STOP_GRACE_S", "Leftovers", "cancel_app_tasks", "is_app_file",
    "judge_threads", "left_behind", "own_threads", "pending_now", "sample_children",
]

logger = logging.getLogger("leaklab.session")

#: Period of the child-process sampler that runs during each cycle.
CHILD_SAMPLE_S = 0.1
#: After shutdown: how long subprocesses and threads the backend closed may
#: take to end before they count as left behind.
STOP_GRACE_S = 3.0
#: Seconds a process the backend left gets after SIGTERM, before SIGKILL.
REAP_GRACE_S = 2.0
#: Seconds the app's tasks still pending at stop get to end once cancelled.
CANCEL_GRACE_S = 2.0

def is_app_file(filename: str) -> bool:
    """Whether code in ``filename`` is the app's own: not the standard
    library, not an installed library, not leaklab (its reference backend is
    an app): :func:`~leaklab.probes.stacks.default_owner`'s ``"yours"``."""
    return owner_kind(default_owner(filename)) == "yours"


def pending_now() -> weakref.WeakSet[asyncio.Task[Any]]:
    """The tasks pending on the running loop now (held weakly): what was
    there before the session's cycles is not the cycles' to cancel."""
    return weakref.WeakSet(t for t in asyncio.all_tasks() if not t.done())


def _describe(task: asyncio.Task[Any], sites: Any) -> str:
    coro = task.get_coro()
    code = getattr(coro, "cr_code", None) or getattr(coro, "gi_code", None)
    name = getattr(code, "co_qualname", None) or getattr(code, "co_name", None) or task.get_name()
    site = sites.site(task) if sites is not None else None
    where = f", created at {os.path.basename(site.filename)}:{site.lineno}" if site is not None else ""
    return f"task {name}{where}"


async def cancel_app_tasks(before: Iterable[asyncio.Task[Any]], sites: Any = None) -> list[str]:
    """Cancel the app's own tasks still pending at stop that were not pending
    before the session's cycles (``before``): a background task the app
    forgot must not run on after the session (and its working folder) are
    gone. Awaited up to :data:`CANCEL_GRACE_S`; one line per task, as the
    ended processes are reported."""
    earlier = set(before)
    current = asyncio.current_task()
    found: list[tuple[asyncio.Task[Any], str]] = []
    for task in asyncio.all_tasks():
        if task is current or task.done() or task in earlier:
            continue
        coro = task.get_coro()
        code = getattr(coro, "cr_code", None) or getattr(coro, "gi_code", None)
        if code is None or not is_app_file(code.co_filename):
            continue
        found.append((task, _describe(task, sites)))
    if not found:
        return []
    for task, _ in found:
        task.cancel()
    done, pending = await asyncio.wait([t for t, _ in found], timeout=CANCEL_GRACE_S)
    for task in done:
        if not task.cancelled():
            task.exception()  # retrieved: never "exception was never retrieved"
    lines = [f"{what} (still pending at stop): " + ("cancelled" if task not in pending else
                                                     f"cancelled, still running after {CANCEL_GRACE_S:g} s")
             for task, what in found]
    more = f"; and {len(lines) - 3} more" if len(lines) > 3 else ""
    logger.warning("leaklab: %d task(s) of the app still pending at stop: %s%s", len(lines), "; ".join(lines[:3]), more)
    return lines


@dataclasses.dataclass(frozen=True)
class Leftovers:
    """``orphans``: counts by kind (children, threads, listening_ports);
    ``threads``: the names of the threads left; ``reaped``: one line per
    process the session ended; ``idle``: the threads left that are idle
    workers of a library's thread pool (not counted in ``orphans``: see
    :func:`judge_threads`), one line each."""

    orphans: dict[str, int]
    threads: list[str]
    reaped: list[str]
    idle: list[str] = dataclasses.field(default_factory=list)


def own_threads(names: Iterable[str]) -> list[str]:
    """The threads that count as the backend's: the loop's own
    default-executor threads (``asyncio_N``, used for getaddrinfo) are
    pooled for the loop's lifetime, not the backend's."""
    return [n for n in names if not n.startswith("asyncio_")]


def judge_threads(left: probes.Orphans) -> tuple[list[str], list[str]]:
    """The threads left since the baseline, judged: ``(left behind, idle
    pool workers)``.

    An idle worker of a library's thread pool (``concurrent.futures``,
    anyio's: :data:`~leaklab.probes.process.POOL_WORKER_LOOPS`), parked on
    its queue waiting for work, is not a thread the session left running:
    its pool ends it, at its own shutdown or when it prunes idle workers
    (anyio: at the next call after 10 s idle, or when the event loop's main
    task ends). It is said as ``"<name>: idle pool worker (...)"``, not
    counted. A pool that grows with the sessions shows in the census'
    ``threads``, cycle after cycle, where growth is judged."""
    named = dict(zip(left.threads, left.thread_names))
    idle = idle_pool_workers(named)
    counted = own_threads(name for ident, name in named.items() if ident not in idle)
    said = [f"{named[ident]}: idle pool worker of {loop} (parked on its queue; its pool ends it)"
            for ident, loop in idle.items() if own_threads([named[ident]])]
    return counted, said


async def left_behind(baseline: probes.ProcessBaseline, children: probes.ChildWatch | None,
                      skip: Iterable[int] = ()) -> Leftovers:
    """After the server's shutdown: what is left since ``baseline``, once
    subprocesses and threads the backend closed had a grace period to end;
    then what the backend started and left running (still our child, or
    re-parented when its own parent died) is ended, so it does not outlive
    the session."""
    # Let the loop run the transports' close callbacks.
    await asyncio.sleep(0.1)
    deadline = time.monotonic() + STOP_GRACE_S
    left = probes.orphans_after(baseline, skip)
    # an idle pool worker is not waited for: it ends when its pool says so
    while (left.children or judge_threads(left)[0]) and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
        left = probes.orphans_after(baseline, skip)
    orphans = left.counts()
    threads, idle = judge_threads(left)
    orphans["threads"] = len(threads)
    if idle:
        logger.info("leaklab: not left behind: %s", "; ".join(idle))
    reaped: list[str] = []
    if children is not None and children.left():
        reaped = await asyncio.to_thread(children.reap, REAP_GRACE_S)
        if reaped:
            more = f"; and {len(reaped) - 3} more" if len(reaped) > 3 else ""
            logger.warning("leaklab: ended %d process(es) the backend left running: %s%s",
                           len(reaped), "; ".join(reaped[:3]), more)
    return Leftovers(orphans, threads, reaped, idle)


async def sample_children(children: probes.ChildWatch, state: CycleState) -> None:
    """While a cycle runs: the most live children seen (``state.children_peak``).
    Child processes a session starts (stdio MCP servers) may be gone by the
    census: the peak says they existed; the watch remembers them for
    :func:`left_behind`."""
    while True:
        state.children_peak = max(state.children_peak, children.note())
        await asyncio.sleep(CHILD_SAMPLE_S)
