"""What the backend left behind when it stopped: processes, threads and
listening ports since the session's baseline; the processes it left running
are ended (terminated, then killed)."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections.abc import Iterable

from .. import probes
from ..driver.scenarios import CycleState

__all__ = [
    "CHILD_SAMPLE_S", "REAP_GRACE_S", "STOP_GRACE_S", "Leftovers", "left_behind", "own_threads", "sample_children",
]

logger = logging.getLogger("leaklab.session")

#: Period of the child-process sampler that runs during each cycle.
CHILD_SAMPLE_S = 0.1
#: After shutdown: how long subprocesses and threads the backend closed may
#: take to end before they count as left behind.
STOP_GRACE_S = 3.0
#: Seconds a process the backend left gets after SIGTERM, before SIGKILL.
REAP_GRACE_S = 2.0


@dataclasses.dataclass(frozen=True)
class Leftovers:
    """``orphans``: counts by kind (children, threads, listening_ports);
    ``threads``: the names of the threads left; ``reaped``: one line per
    process the session ended."""

    orphans: dict[str, int]
    threads: list[str]
    reaped: list[str]


def own_threads(names: Iterable[str]) -> list[str]:
    """The threads that count as the backend's: the loop's own
    default-executor threads (``asyncio_N``, used for getaddrinfo) are
    pooled for the loop's lifetime, not the backend's."""
    return [n for n in names if not n.startswith("asyncio_")]


async def left_behind(baseline: probes.ProcessBaseline, children: probes.ChildWatch | None) -> Leftovers:
    """After the server's shutdown: what is left since ``baseline``, once
    subprocesses and threads the backend closed had a grace period to end;
    then what the backend started and left running (still our child, or
    re-parented when its own parent died) is ended, so it does not outlive
    the session."""
    # Let the loop run the transports' close callbacks.
    await asyncio.sleep(0.1)
    deadline = time.monotonic() + STOP_GRACE_S
    left = probes.orphans_after(baseline)
    while (left.children or own_threads(left.thread_names)) and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
        left = probes.orphans_after(baseline)
    orphans = left.counts()
    threads = own_threads(left.thread_names)
    orphans["threads"] = len(threads)
    reaped: list[str] = []
    if children is not None and children.left():
        reaped = await asyncio.to_thread(children.reap, REAP_GRACE_S)
        if reaped:
            more = f"; and {len(reaped) - 3} more" if len(reaped) > 3 else ""
            logger.warning("leaklab: ended %d process(es) the backend left running: %s%s",
                           len(reaped), "; ".join(reaped[:3]), more)
    return Leftovers(orphans, threads, reaped)


async def sample_children(children: probes.ChildWatch, state: CycleState) -> None:
    """While a cycle runs: the most live children seen (``state.children_peak``).
    Child processes a session starts (stdio MCP servers) may be gone by the
    census: the peak says they existed; the watch remembers them for
    :func:`left_behind`."""
    while True:
        state.children_peak = max(state.children_peak, children.note())
        await asyncio.sleep(CHILD_SAMPLE_S)
