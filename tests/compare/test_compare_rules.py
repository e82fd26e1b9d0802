"""The comparison's pure parts: what a verdict change means, and the rows of
a scenario run on two sides (synthetic summaries, made-up names)."""

from __future__ import annotations

import pytest

from leaklab.compare import item_change, scenario_changes


@pytest.mark.parametrize(("before", "after", "change"), [
    ("confirmed", "ruled_out", "fixed"),
    ("transient", "ruled_out", "fixed"),
    ("confirmed", "not_applicable", "fixed"),
    ("confirmed", "transient", "partly fixed"),
    ("confirmed", "confirmed", "still leaks"),
    ("transient", "transient", "unchanged"),
    ("ruled_out", "confirmed", "new leak"),
    ("ruled_out", "transient", "new leak"),
    ("transient", "confirmed", "worse"),
    ("ruled_out", "ruled_out", "unchanged"),
    ("confirmed", "inconclusive", "can't tell"),
    ("inconclusive", "ruled_out", "can't tell"),
    (None, "ruled_out", "can't tell"),
])
def test_a_verdict_change_is_named_and_inconclusive_is_never_fixed(before, after, change):
    assert item_change(before, after) == change


def summary(types=None, lifecycle=None, cycles=3):
    return {"types": {k: {"verdict": "leak" if v else "none", "per_cycle": v} for k, v in (types or {}).items()},
            "lifecycle": lifecycle or {}, "judged_cycles": cycles}


def test_scenario_rows_are_fixed_still_leaking_or_new_with_both_numbers():
    before = {"summary": summary({"Sess": 1.0, "Brain": 1.0, "Tool": 0.0},
                                 {"Sess.close": {"calls": 0, "expected": 3, "objects": {"ran_for": 0, "of": 3}}})}
    after = {"summary": summary({"Sess": 0.0, "Brain": 1.0, "Tool": 2.0},
                                {"Sess.close": {"calls": 3, "expected": 3, "objects": {"ran_for": 3, "of": 3}}})}
    rows = {r.metric: r for r in scenario_changes("connect,close", before, after)}
    assert rows["type:Sess"].change == "fixed" and (rows["type:Sess"].before, rows["type:Sess"].after) == ("+1/cycle", "flat")
    assert rows["type:Brain"].change == "still leaks"
    assert rows["type:Tool"].change == "new leak" and rows["type:Tool"].after == "+2/cycle"
    close = rows["lifecycle:Sess.close"]
    assert (close.before, close.after, close.change) == ("ran for 0 of 3", "ran for 3 of 3", "fixed")
    assert set(rows) == {"type:Sess", "type:Brain", "type:Tool", "lifecycle:Sess.close"}


def test_a_flat_scenario_is_one_unchanged_row_and_a_failed_side_cant_tell():
    flat = {"summary": summary({"Sess": 0.0})}
    (row,) = scenario_changes("connect,close", flat, flat)
    assert (row.metric, row.change) == ("(everything measured)", "unchanged")
    (row,) = scenario_changes("connect,close", flat, {"error": "AttachError: no conf.yaml"})
    assert row.change == "can't tell" and "after: AttachError: no conf.yaml" in row.detail
