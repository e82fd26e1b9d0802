"""Functions' time before/after a fix, diffed on synthetic run summaries."""

from __future__ import annotations

from types import SimpleNamespace

from leaklab.cli.compare import format_times
from leaklab.compare.timing import function_change, side_summaries, time_changes, unit_time_changes
from leaklab.metrics import Change, Verdict


def stats(first, last, per_cycle, verdict=Verdict.NONE, **more):
    return {"first": first, "last": last, "per_cycle": per_cycle, "growth": per_cycle * 5, "verdict": verdict, **more}


BEFORE = {"functions": {"app.store.load_all": stats(10.0, 40.0, 6.0, Verdict.SLOWS, file="/app/store.py"),
                        "app.reply.render": stats(20.0, 21.0, 0.1),
                        "app.tiny": stats(1.0, 1.0, 0.0)},
          "slows": ["app.store.load_all"]}
AFTER = {"functions": {"app.store.load_all": stats(10.0, 11.0, 0.2),
                       "app.reply.render": stats(20.0, 45.0, 5.0, Verdict.SLOWS),
                       "app.new": stats(30.0, 30.0, 0.0)},
         "slows": ["app.reply.render"]}


def test_time_changes_slows_first_then_the_costliest_with_their_verdict_change():
    rows = time_changes(BEFORE, AFTER, top=4)
    assert [r["function"] for r in rows] == ["app.store.load_all", "app.reply.render", "app.new", "app.tiny"]
    fixed, worse, new, tiny = rows
    assert fixed["verdicts"] == "slows -> none" and fixed["change"] == Change.FIXED
    assert fixed["before"] == {"first": 10.0, "last": 40.0, "per_cycle": 6.0, "verdict": "slows", "listed": True}
    assert fixed["after"]["last"] == 11.0
    assert worse["verdicts"] == "none -> slows" and worse["change"] == Change.WORSE
    # a side that sampled the loop lists every function that slows: one it does not list does not slow there
    assert new["before"] == {"first": None, "last": None, "per_cycle": None, "verdict": "none", "listed": False}
    assert new["verdicts"] == "none (below its top functions) -> none" and new["change"] == Change.UNCHANGED
    assert tiny["after"]["listed"] is False
    assert len(time_changes(BEFORE, AFTER, top=2)) == 2  # the slow ones always, then up to top
    assert time_changes({}, None) == []
    # a side that did not sample the loop: can't tell
    [gone] = time_changes(BEFORE, {"functions": {}}, top=1)
    assert gone["after"] is None and gone["verdicts"] == "slows -> not sampled" and gone["change"] == Change.CANT_TELL
    assert time_changes({"functions": {"f": stats(1, 9, 2, Verdict.SLOWS)}, "slows": ["f"]},
                        {"functions": {"g": stats(5, 5, 0)}})[0]["change"] == Change.FIXED
    assert function_change(stats(1, 1, 0), stats(1, 1, 0)) == Change.UNCHANGED


def test_unit_time_changes_pairs_runs_by_name_and_the_formatter_prints_them():
    times = unit_time_changes({"main": {"time": BEFORE}, "control": {"time": {}}},
                              {"main": {"time": AFTER}, "control": {}})
    assert list(times) == ["main"]
    lines = format_times({"C5": times})
    assert lines[0] == "functions' time, C5 (main run) (ms/cycle, first -> last):"
    assert lines[1] == ("  app.store.load_all: before 10.00 -> 40.00 (6.00/cycle); after 10.00 -> 11.00 (0.20/cycle): "
                        "slows -> none, fixed")
    assert lines[3] == ("  app.new: before below its top functions; after 30.00 -> 30.00 (0.00/cycle): "
                        "none (below its top functions) -> none")
    assert format_times({}) == []


def test_side_summaries_of_an_item_and_a_scenario():
    outcome = SimpleNamespace(record={"runs": {"main": {"time": BEFORE}, "bad": "x"}})
    assert side_summaries("item", "C5", "before", {"C5": {"before": outcome}}, {}) == {"main": {"time": BEFORE}}
    runs = {"chat": {"after": {"summary": {"time": AFTER}}, "before": {"error": "boom"}}}
    assert side_summaries("scenario", "chat", "after", {}, runs) == {"": {"time": AFTER}}
    assert side_summaries("scenario", "chat", "before", {}, runs) == {}
