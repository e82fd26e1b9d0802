"""Per-object lifetimes after the session, on synthetic times."""

from __future__ import annotations

from leaklab.analysis.lifetimes import object_lifetimes


def test_a_hold_longer_than_a_cycle_is_seen_per_object():
    # GIVEN cycles of 2 s (disconnects at 1, 3, 5, 7), each object created
    # just before its disconnect and dying 4 s after it
    disconnects = [1.0, 3.0, 5.0, 7.0]
    objects = [(0.5, 5.1), (2.5, 7.2), (4.5, 9.0), (6.5, None)]
    # WHEN judged at the end of a timeline at 10 s, settle 0.3 s + slack
    out = object_lifetimes(objects, disconnects, end=10.0, threshold_s=0.8)
    # THEN every one outlived its session, by 3-4.2 s, one still alive
    assert out == {"objects": 4, "outlived": 4, "alive": 1, "outlived_min_s": 3.0, "outlived_max_s": 4.2,
                   "threshold_s": 0.8, "ended_with": {}}


def test_the_task_that_ended_as_each_object_was_freed_is_named():
    # GIVEN objects freed 4 s after their disconnect, a task created in each
    # session ending as it was freed, and another task ending at other times
    disconnects = [1.0, 3.0]
    objects = [(0.5, 5.0), (2.5, 7.0)]
    tasks = [(0.8, 5.01, "Ctx._init (ctx.py:12)"), (2.8, 6.98, "Ctx._init (ctx.py:12)"),
             (0.6, 2.0, "Poller.run (poll.py:3)"), (4.0, 5.0, "Late.run (late.py:1)")]
    out = object_lifetimes(objects, disconnects, end=9.0, threshold_s=0.8, tasks=tasks)
    # THEN the task created in the session and ending with the object is named, twice;
    # one ending at the same time but created after the session ended is not
    assert out["ended_with"] == {"Ctx._init (ctx.py:12)": 2}


def test_objects_released_with_their_session_and_open_sessions():
    # GIVEN one object dying at its disconnect, one within the settle, one of a session still open
    out = object_lifetimes([(0.0, 1.0), (1.5, 2.3), (3.5, None)], [1.0, 2.0], end=5.0, threshold_s=0.8)
    # THEN none outlived its session; the open session's object is not counted
    assert out["objects"] == 2 and out["outlived"] == 0 and out["outlived_min_s"] is None
