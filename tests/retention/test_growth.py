"""Growth between two cycles: pympler summary diff and tracemalloc diff."""

from __future__ import annotations

import json
import subprocess
import sys
import tracemalloc

from leaklab.retention import SummaryDiff, tracemalloc_diff


class Watched:
    pass


class Unwatched:
    pass


def _allocate(keep: list) -> None:
    keep.extend(Watched() for _ in range(300))
    keep.extend(Unwatched() for _ in range(200))
    keep.append(bytearray(512 * 1024))


# pympler summarizes every object of the process: in a fresh interpreter, not
# in the test process with the whole suite's heap (seconds, not tens of them).
SUMMARY_DIFF = """
import json
from pympler.tracker import SummaryTracker
from leaklab.retention import summary_diff

class Watched:
    pass

class Unwatched:
    pass

tracker = SummaryTracker(ignore_self=True)
keep = []
keep.extend(Watched() for _ in range(300))
keep.extend(Unwatched() for _ in range(200))
keep.append(bytearray(512 * 1024))
diff = summary_diff(tracker, top=50, exclude_types=["Watched"])
print(json.dumps(diff.as_dict()))
"""


def test_summary_diff_shows_growth_and_drops_watched_types():
    # GIVEN a tracker made before a "cycle" that allocates two kinds of objects
    # WHEN diffed without the watched type
    out = subprocess.run([sys.executable, "-c", SUMMARY_DIFF], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    rows = json.loads(out.stdout)
    # THEN the unexplained growth is listed, the watched type is not
    by_type = {r["type"].rsplit(".", 1)[-1]: r for r in rows}
    assert "Watched" not in by_type
    assert by_type["Unwatched"]["count"] == 200
    assert by_type["bytearray"]["bytes"] >= 512 * 1024
    assert [r["bytes"] for r in rows] == sorted((r["bytes"] for r in rows), reverse=True)
    assert {"type", "count", "bytes"} == set(rows[0])


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
