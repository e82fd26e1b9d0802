"""The census: after each cycle a full collection, then every registered
probe's sample in one record; after the last cycle, a timeline of the
probes that run in it. What each column means is its probe's
(:mod:`leaklab.probes`): this module only loops."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import time
from collections.abc import Sequence
from typing import Any

from .. import probes
from ..driver.scenarios import CycleState
from ..probes import Probe, ProbeContext
from .options import RunOptions

__all__ = ["Census", "allocator_after", "timeline_duration"]


class Census:
    """The registered probes of one session and the context they share.

    Args:
        probes: installed in order at :meth:`install`, sampled in order.
        context: what they read (the target, the running app...).
        collect: a full collection before each census, counting what it
            freed (``context.freed``); ``False``: automatic collection left
            as the backend has it.
    """

    def __init__(self, probes: Sequence[Probe], context: ProbeContext, *, collect: bool = True) -> None:
        self.probes = list(probes)
        self.context = context
        self.collect = collect
        #: the commonest types the census' collections freed over the
        #: current run's cycles, summed
        self.freed_types: dict[str, int] = {}

    def install(self, stack: contextlib.AsyncExitStack) -> None:
        """Install every probe; each one's ``uninstall`` goes on ``stack``
        first, so a probe that fails half-way is restored too."""
        for probe in self.probes:
            stack.callback(probe.uninstall)
            probe.install(self.context)

    def begin(self, started: float, freed_types: dict[str, int]) -> None:
        """A run starts at ``started`` (``time.monotonic()``); the freed types
        are summed into ``freed_types`` (the run result's)."""
        self.context.run_started = started
        self.freed_types = freed_types
        for probe in self.probes:
            probe.begin(self.context)

    async def take(self, cycle: int, t0: float, state: CycleState | None, settle_s: float) -> dict[str, Any]:
        """The record of ``cycle``: after ``settle_s`` and the collection,
        every probe's sample."""
        await asyncio.sleep(settle_s)
        freed = probes.collect_cyclic() if self.collect else None
        rec: dict[str, Any] = {"cycle": cycle, "t": round(time.monotonic() - t0, 3)}
        if freed is not None and cycle > 0:
            for name, n in freed.top_types:
                self.freed_types[name] = self.freed_types.get(name, 0) + n
        self.context.state, self.context.freed = state, freed
        self.context.phase = "cycle" if cycle > 0 else "baseline"
        try:
            for probe in self.probes:
                rec.update(probe.sample(self.context))
        finally:
            self.context.state = self.context.freed = None
        return rec

    def sample_timeline(self) -> dict[str, Any]:
        """What the probes that run in the timeline count now."""
        rec: dict[str, Any] = {}
        self.context.phase = "timeline"
        for probe in self.probes:
            if probe.timeline:
                rec.update(probe.sample(self.context))
        return rec

    def details(self) -> dict[str, dict[str, Any]]:
        """Each probe's :meth:`~leaklab.probes.BaseProbe.details` that has any, by name."""
        out: dict[str, dict[str, Any]] = {}
        for probe in self.probes:
            get = getattr(probe, "details", None)
            extra = get() if callable(get) else None
            if extra:
                out[probe.name] = extra
        return out

    async def timeline(self, duration: float, step_s: float) -> list[dict[str, Any]]:
        """Samples every ``step_s`` after a collection, for ``duration`` seconds:
        a return to the baseline after the last cycle shows in each column."""
        samples = []
        start = time.monotonic()
        while True:
            gc.collect()
            t = time.monotonic() - start
            samples.append({"t": round(t, 3), **self.sample_timeline()})
            if t >= duration:
                return samples
            await asyncio.sleep(step_s)


def timeline_duration(options: RunOptions, target: Any, server: Any, *, half_open: bool = False) -> float:
    """How long to sample after the last cycle, unless set: long enough for
    what the target says it may hold by design, and, when the run left
    half-open clients, for the server's real ping interval + timeout (the
    server drops them by then, if it ever does)."""
    if options.timeline_s is not None:
        return options.timeline_s
    ping = 0.0
    if server is not None and half_open:
        ping = (server.ping_interval_s or 0.0) + (server.ping_timeout_s or 0.0)
    release = target.release_s or 0.0
    return max(3.0, release + 1.5, ping + 1.5)


def allocator_after() -> dict[str, Any]:
    """After the timeline: how much RSS the allocator gives back when asked
    (glibc ``malloc_trim(0)``): freed memory it held, not objects."""
    trimmed = probes.trim_allocator()
    if trimmed is None:
        return {"available": False}
    return {"available": True, "rss_before_mb": round(trimmed[0], 2), "rss_after_mb": round(trimmed[1], 2)}
