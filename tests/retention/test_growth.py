"""Growth between two cycles: pympler summary diff and tracemalloc diff."""

from __future__ import annotations

import tracemalloc

from pympler.tracker import SummaryTracker

from leaklab.retention import SummaryDiff, summary_diff, tracemalloc_diff


class Watched:
    pass


class Unwatched:
    pass


def _allocate(keep: list) -> None:
    keep.extend(Watched() for _ in range(300))
    keep.extend(Unwatched() for _ in range(200))
    keep.append(bytearray(512 * 1024))


def test_summary_diff_shows_growth_and_drops_watched_types():
    # GIVEN a tracker made before a "cycle" that allocates two kinds of objects
    tracker = SummaryTracker(ignore_self=True)
    keep: list = []
    _allocate(keep)
    # WHEN diffed without the watched type
    diff = summary_diff(tracker, top=50, exclude_types=["Watched"])
    # THEN the unexplained growth is listed, the watched type is not
    by_type = {r.type.rsplit(".", 1)[-1]: r for r in diff.rows}
    assert "Watched" not in by_type
    assert by_type["Unwatched"].count == 200
    assert by_type["bytearray"].bytes >= 512 * 1024
    assert diff.rows == tuple(sorted(diff.rows, key=lambda r: -r.bytes))
    assert {"type", "count", "bytes"} == set(diff.as_dict()[0])


def test_summary_diff_from_rows_keeps_growth_only():
    diff = SummaryDiff.from_rows([["a", 2, 100], ["b", -1, -50], ["c", 0, 0], ["d", 1, 300]])
    assert [r.type for r in diff.rows] == ["d", "a"]
    assert diff.total_bytes == 400


def test_tracemalloc_diff_names_the_allocating_line():
    # GIVEN two snapshots around an allocation
    tracemalloc.start(10)
    try:
        before = tracemalloc.take_snapshot()
        keep: list = []
        _allocate(keep)
        after = tracemalloc.take_snapshot()
    finally:
        tracemalloc.stop()
    # WHEN diffed by traceback
    top = tracemalloc_diff(before, after, top=5)
    # THEN the biggest growth is the bytearray line of _allocate, oldest frame first
    first = top[0]
    line = _allocate.__code__.co_firstlineno + 3
    assert first.where.endswith(f"test_growth.py:{line}")
    assert first.traceback[-1] == first.where and len(first.traceback) > 1
    assert first.size_diff >= 512 * 1024
    assert all(t.size_diff > 0 for t in top)
