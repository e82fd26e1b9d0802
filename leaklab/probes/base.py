"""The probe protocol: one small interface every measurement implements.

A probe owns its columns. The session's census is a loop over the
registered probes (:data:`leaklab.probes.PROBES`)::

    probe.install(context)        # at start, before the app is built
    probe.begin(context)          # at the start of each run (optional)
    probe.sample(context)         # after each cycle's collection, and in the
                                  # timeline when ``probe.timeline``
    probe.uninstall()             # at stop

:meth:`Probe.sample` returns ``{column: number}``: the metric names it owns,
built with :func:`leaklab.metrics.name` for the namespaced families. It
prints nothing and keeps no reference to a measured object after it returns.

Adding a measurement is one file with one class and its entry in
:data:`~leaklab.probes.PROBES` (or a ``probes=`` list given to the session).
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:  # pragma: no cover
    from ..driver.scenarios import CycleState
    from ..targets import Target
    from .instances import InstanceTracker
    from .memory import CyclicGarbage
    from .tasks import TaskCreationRecorder

__all__ = ["BaseProbe", "Probe", "ProbeContext", "Sample"]

#: What a probe returns: its columns and their values.
Sample = dict[str, float | int]


@dataclasses.dataclass
class ProbeContext:
    """What probes read, shared by every probe of one session.

    Attributes:
        target: the target under test (its roles, resources, watched types).
        app: the running app; ``None`` before start and after stop.
        state: the cycle that just ran; ``None`` at the baseline census and in
            the timeline.
        freed: what the census' full collection freed (``None``: no
            collection, ``collect=False``, or in the timeline).
        run_started: ``time.monotonic()`` at the start of the current run.
        tracker: the :class:`~leaklab.probes.InstanceTracker` of the watched
            types, published by the instances probe at install.
        task_sites: where each task was created, published by the tasks probe.
    """

    target: Target
    app: Any = None
    state: CycleState | None = None
    freed: CyclicGarbage | None = None
    run_started: float = 0.0
    #: what is being sampled: ``"baseline"`` (before the first cycle),
    #: ``"cycle"`` (after one) or ``"timeline"`` (after the last)
    phase: str = "baseline"
    #: roots of process trees that are the kit's own, not the backend's (a
    #: browser driving the page): left out of the children counted
    foreign_roots: set[int] = dataclasses.field(default_factory=set)
    tracker: InstanceTracker | None = None
    task_sites: TaskCreationRecorder | None = None

    def instances(self, name: str | None) -> list[Any]:
        """Strong references to the live instances of the watched type
        ``name`` (empty when it is not watched); the caller drops the list."""
        if self.tracker is None or not name:
            return []
        try:
            return self.tracker.instances(name)
        except KeyError:
            return []


@runtime_checkable
class Probe(Protocol):
    """One measurement. ``timeline``: also sampled after the last cycle."""

    name: str
    timeline: bool

    def install(self, context: ProbeContext) -> None: ...

    def begin(self, context: ProbeContext) -> None: ...

    def sample(self, context: ProbeContext) -> Sample: ...

    def uninstall(self) -> None: ...


class BaseProbe:
    """Defaults for the optional parts of :class:`Probe`: nothing to install,
    begin or uninstall; sampled in the timeline."""

    name = "probe"
    timeline = True

    def install(self, context: ProbeContext) -> None:
        """Put wrappers in place (at session start, before the app is built)."""

    def begin(self, context: ProbeContext) -> None:
        """Reset per-run state (at the start of each run)."""

    def sample(self, context: ProbeContext) -> Sample:  # pragma: no cover - abstract
        raise NotImplementedError

    def details(self) -> dict[str, Any]:
        """What the run measured beyond its columns (JSON-ready), at its end;
        empty by default."""
        return {}

    def uninstall(self) -> None:
        """Restore what :meth:`install` changed (idempotent)."""
