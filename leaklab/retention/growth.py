"""Growth between two cycles that the watched types do not explain.

Two views, both from objects the caller owns (no module state, no baseline
kept here):

* pympler: a ``SummaryTracker(ignore_self=True)`` created before the cycle;
  :func:`summary_diff` reads its diff (objects per type, bytes).
* tracemalloc: two snapshots taken by the caller; :func:`tracemalloc_diff`
  groups the new allocations by traceback and names the line that made them.
"""

from __future__ import annotations

import dataclasses
import os
import tracemalloc
from collections.abc import Iterable, Sequence
from typing import Any

from .edges import format_where

__all__ = ["AllocationGrowth", "SummaryDiff", "TypeGrowth", "summary_diff", "tracemalloc_diff"]

_OWN_DIR = os.path.dirname(os.path.abspath(__file__))


@dataclasses.dataclass(frozen=True)
class TypeGrowth:
    """Objects of one type gained (or lost) between two summaries."""

    type: str
    count: int
    bytes: int


@dataclasses.dataclass(frozen=True)
class SummaryDiff:
    """pympler summary diff rows, largest byte growth first."""

    rows: tuple[TypeGrowth, ...]

    @classmethod
    def from_rows(cls, rows: Iterable[Sequence[Any]], *, top: int | None = None) -> SummaryDiff:
        """From pympler rows ``[type, count_diff, size_diff]``; only growth is kept."""
        grown = [TypeGrowth(str(r[0]), int(r[1]), int(r[2])) for r in rows if int(r[1]) > 0 or int(r[2]) > 0]
        grown.sort(key=lambda g: (-g.bytes, -g.count, g.type))
        return cls(tuple(grown[:top] if top is not None else grown))

    @property
    def total_bytes(self) -> int:
        return sum(r.bytes for r in self.rows)

    def excluding(self, type_names: Iterable[str]) -> SummaryDiff:
        """Without the rows of the given types (``Qualname`` or ``module.Qualname``):
        what the watched types do not explain."""
        names = set(type_names)
        return SummaryDiff(tuple(r for r in self.rows if r.type not in names and r.type.rsplit(".", 1)[-1] not in names))

    def top(self, n: int) -> SummaryDiff:
        """The first ``n`` rows."""
        return SummaryDiff(self.rows[:n])

    def as_dict(self) -> list[dict[str, Any]]:
        """``[{"type", "count", "bytes"}]``."""
        return [dataclasses.asdict(r) for r in self.rows]


def summary_diff(tracker: Any, *, top: int = 20, exclude_types: Iterable[str] = ()) -> SummaryDiff:
    """What grew since the tracker's last summary (this advances the tracker).

    Args:
        tracker: a ``pympler.tracker.SummaryTracker`` (use ``ignore_self=True``
            so its own summaries are left out).
        top: rows kept.
        exclude_types: type names explained elsewhere (the watched types).
    """
    return SummaryDiff.from_rows(tracker.diff()).excluding(exclude_types).top(top)


@dataclasses.dataclass(frozen=True)
class AllocationGrowth:
    """Memory allocated between two snapshots from one traceback.

    Attributes:
        where: ``file:line`` of the most recent frame (where it was allocated).
        traceback: ``file:line`` frames, oldest first.
        size_diff: bytes gained.
        count_diff: blocks gained.
        size: bytes held at the second snapshot.
    """

    where: str
    traceback: tuple[str, ...]
    size_diff: int
    count_diff: int
    size: int

    def as_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["traceback"] = list(self.traceback)
        return d


def tracemalloc_diff(
    before: tracemalloc.Snapshot,
    after: tracemalloc.Snapshot,
    *,
    top: int = 10,
    key_type: str = "traceback",
    exclude: Iterable[str] = (),
) -> tuple[AllocationGrowth, ...]:
    """The allocations that grew most between two snapshots.

    Args:
        before: the snapshot taken before the cycle.
        after: the snapshot taken after it.
        top: entries kept.
        key_type: ``"traceback"`` (group by whole traceback) or ``"lineno"``.
        exclude: more filename patterns to leave out; tracemalloc itself,
            importlib and this package are always left out (their
            allocations are the measurement, not the program).

    Returns:
        Growing entries, largest first.
    """
    patterns = [
        tracemalloc.__file__,
        "<frozen importlib._bootstrap*>",
        "<unknown>",
        os.path.join(_OWN_DIR, "*"),
        *exclude,
    ]
    filters = [tracemalloc.Filter(False, p) for p in patterns]
    stats = after.filter_traces(filters).compare_to(before.filter_traces(filters), key_type)
    out = []
    for stat in stats:
        if stat.size_diff <= 0:
            continue
        frames = tuple(format_where(f.filename, f.lineno) or "?" for f in stat.traceback)
        # A tracemalloc Traceback is oldest first: the allocating line is last.
        out.append(AllocationGrowth(frames[-1] if frames else "?", frames, stat.size_diff, stat.count_diff, stat.size))
        if len(out) >= top:
            break
    return tuple(out)
