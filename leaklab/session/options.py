"""How a run runs: settle, timeline, step bound, progress, where it is saved.

A :class:`RunOptions` is frozen. A session holds its default options (built
from its constructor's keyword arguments); a caller that wants other ones
for a run (the hunt's short screens, a checklist item's timeline) passes its
own to :meth:`LeakSession.run`, e.g.
``dataclasses.replace(session.options, timeline_s=1.0)``, and the session
is left as it was.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

__all__ = [
    "FIRST_STEP_TIMEOUT_S", "MAX_STEP_TIMEOUT_S", "MIN_STEP_TIMEOUT_S", "STEP_TIMEOUT_FACTOR", "RunOptions",
    "option", "step_timeout",
]

#: With ``step_timeout_s=None``: the bound of every step in the first cycle,
#: before any connect was timed...
FIRST_STEP_TIMEOUT_S = 60.0
#: ...and after: this many times the slowest connect seen, at least
#: ``MIN_STEP_TIMEOUT_S`` and at most ``MAX_STEP_TIMEOUT_S``.
STEP_TIMEOUT_FACTOR = 4.0
MIN_STEP_TIMEOUT_S = 10.0
MAX_STEP_TIMEOUT_S = 120.0


@dataclasses.dataclass(frozen=True)
class RunOptions:
    """The settings of one run.

    Attributes:
        settle_s: wait after each cycle before the census (then its collection).
        timeline_s: how long to sample after the last cycle; ``None`` picks
            enough for the target's ``release_s`` and, after half-open
            clients, the running server's ping interval + timeout.
        timeline_step_s: sampling period of the timeline.
        step_timeout_s: bound on every protocol step (a turn gets three
            times it); ``None``: 60 s in the first cycle, then four times the
            slowest connect measured (10-120 s).
        progress: show a progress bar.
        runs_dir: the folder the run is saved in; ``None``: not saved.
    """

    settle_s: float = 0.3
    timeline_s: float | None = None
    timeline_step_s: float = 0.25
    step_timeout_s: float | None = None
    progress: bool = True
    runs_dir: Path | None = None

    def __post_init__(self) -> None:
        if self.step_timeout_s is not None and not self.step_timeout_s > 0:
            raise ValueError(f"step_timeout_s must be a positive number of seconds, not {self.step_timeout_s!r}")
        if self.runs_dir is False:
            object.__setattr__(self, "runs_dir", None)
        elif self.runs_dir is not None and not isinstance(self.runs_dir, Path):
            object.__setattr__(self, "runs_dir", Path(self.runs_dir))


def step_timeout(options: RunOptions, slowest_connect_s: float) -> float:
    """The bound on each step of the next cycle: the one given, or one
    derived from the slowest connect measured so far (a backend that starts
    MCP servers on every connection takes seconds to greet)."""
    if options.step_timeout_s is not None:
        return float(options.step_timeout_s)
    if slowest_connect_s <= 0:
        return FIRST_STEP_TIMEOUT_S
    return min(MAX_STEP_TIMEOUT_S, max(MIN_STEP_TIMEOUT_S, STEP_TIMEOUT_FACTOR * slowest_connect_s))


def option(name: str) -> property:
    """A read-only attribute of a session that reads its default options'
    ``name`` (change a run's settings with ``run(options=...)``)."""

    def get(self: object) -> object:
        return getattr(self.options, name)  # type: ignore[attr-defined]

    return property(get, doc=f"The session's default ``RunOptions.{name}`` (read-only).")
