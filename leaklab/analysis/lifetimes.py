"""How long each watched object lived after its session ended.

A population slope misses a hold longer than a cycle: with cycles of 2 s
and a task that holds each session's object for 4 s, two objects are alive
at every census and the count is flat. Per object, the measurement does not
depend on the cycle length: created at ``c``, its session ended at the first
disconnect after ``c``, it died at ``d`` (or is still alive at the end of
the run): it outlived its session by ``d - end``.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Sequence
from typing import Any

__all__ = ["OUTLIVED_SLACK_S", "object_lifetimes"]

#: An object outlives its session only beyond the settle time and this much:
#: the census after the settle (its full collection) takes time too.
OUTLIVED_SLACK_S = 0.5


#: A task "ended with" an object when the object was freed this close to the task's end.
ENDED_WITH_S = 0.25


def object_lifetimes(
    objects: Iterable[tuple[float, float | None]],
    disconnects: Sequence[float],
    end: float,
    threshold_s: float,
    tasks: Sequence[tuple[float, float, str]] = (),
) -> dict[str, Any]:
    """Per-object lifetimes after the session, summed up for one type.

    Args:
        objects: ``(created_at, died_at or None)`` of each instance the run
            created (``time.monotonic()``).
        disconnects: when each ended session's disconnect began.
        end: when the run's measurements ended (the end of the timeline):
            an object still alive then outlived its session until ``end``.
        threshold_s: outliving its session by more than this (the settle
            time and a slack) counts as outliving it.

    Returns:
        ``{"objects": n, "outlived": k, "alive": a, "outlived_min_s",
        "outlived_max_s", "threshold_s"}``: of the ``n`` objects whose
        session ended, ``k`` outlived it by more than ``threshold_s``
        (``min``/``max`` over those ``k``; ``None`` when ``k == 0``), ``a``
        of them still alive at ``end``. Objects of a session that had not
        ended are left out.
    """
    ends = sorted(disconnects)
    # the ended tasks by when they ended: each object looks only at the ones
    # that ended within ENDED_WITH_S of it (no scan of every task per object)
    by_end = sorted(tasks, key=lambda t: t[1])
    task_ends = [t[1] for t in by_end]
    n = alive = 0
    over: list[float] = []
    ended_with: dict[str, int] = {}
    for created, died in objects:
        i = bisect.bisect_left(ends, created)
        if i == len(ends):
            continue  # its session is still open
        session_end = ends[i]
        n += 1
        outlived = (end if died is None else died) - session_end
        if outlived > threshold_s:
            over.append(outlived)
            alive += died is None
            if died is not None:
                near = by_end[bisect.bisect_left(task_ends, died - ENDED_WITH_S):
                              bisect.bisect_right(task_ends, died + ENDED_WITH_S)]
                for label in {lb for c, _, lb in near if created <= c <= session_end}:
                    ended_with[label] = ended_with.get(label, 0) + 1
    return {
        "objects": n,
        "outlived": len(over),
        "alive": alive,
        "outlived_min_s": round(min(over), 2) if over else None,
        "outlived_max_s": round(max(over), 2) if over else None,
        "threshold_s": round(threshold_s, 2),
        "ended_with": dict(sorted(ended_with.items(), key=lambda kv: (-kv[1], kv[0]))),
    }
