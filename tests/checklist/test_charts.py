"""What decided a verdict and what a session costs: pure functions of an
item and its record, read by role."""

from __future__ import annotations

import pytest

from leaklab.checklist import get_items
from leaklab.checklist.charts import chart_data, cost, headline

pytestmark = pytest.mark.lowest_env


def item(i):
    (it,) = get_items([i])
    return it


def test_a_store_reads_cost_is_its_dose_and_response_not_the_runs_slope():
    record = {"roles": {"history": ["sqlite", "db"]},
              "facts": {"size_small": 256, "size_large": 1048, "latency_small_ms": 485.2, "latency_large_ms": 1828.1},
              "runs": {"main": {"judged_cycles": 4, "resources": {"db_rows": {"per_cycle": 2.0, "verdict": "normal"}},
                                "latency_ms": {"verdict": "slows", "per_cycle": 70.0}}}}
    # (1828.1 - 485.2) ms over 792 rows, times the 2 rows a session adds by design
    assert cost(item("C5"), record, "confirmed") == {"reply_ms": 3.4}
    assert cost(item("C5"), record, "ruled_out") == {}


def test_only_the_items_own_signals_count_toward_its_cost():
    record = {"roles": {"mcp_client_type": "Client", "session_type": "Ctx"},
              "facts": {"children_baseline": 0, "children_after_close": 10},
              "runs": {"main": {"judged_cycles": 5,
                                "types": {"Client": {"verdict": "leak", "per_cycle": 1.0},
                                          "Ctx": {"verdict": "leak", "per_cycle": 1.0}},
                                "resources": {"children": {"verdict": "leak", "per_cycle": 2.0},
                                              "cache_files": {"verdict": "leak", "per_cycle": 2.0}}}}}
    # C3 reads children and its client type: another cause's contexts and files are not its cost
    assert cost(item("C3"), record, "confirmed") == {"processes": 2.0, "objects": {"Client": 1.0}}
    assert cost(item("C4"), {**record, "roles": {"tts_cache": "cache"}}, "confirmed") == {"files": 2.0}


def test_a_close_counted_per_session_is_drawn_against_the_sessions_that_ended():
    record = {"roles": {"session_close": "Ctx.close"},
              "runs": {"main": {"judged_cycles": 4, "lifecycle": {"Ctx.close": {"calls": 0, "expected": 4}}}},
              "curves": {"main": {"cycle": [0, 1, 2, 3, 4], "lifecycle:Ctx.close": [0, 0, 0, 0, 0],
                                  "expected:Ctx.close": [0, 1, 1, 1, 1]}}}
    data = chart_data(item("C9"), record)
    (panel,) = data["panels"]
    assert panel["cumulative"] and [s["y"] for s in panel["series"]] == [[0, 0, 0, 0, 0], [0, 1, 2, 3, 4]]
    assert headline(data) == "lifecycle:Ctx.close so far: open-close +0, sessions ended +4"
    assert cost(item("C9"), record, "confirmed") == {"skipped_calls": {"Ctx.close": 1.0}}


def test_children_are_drawn_against_the_runs_own_start_with_the_count_after_close():
    record = {"roles": {"mcp_client_type": "Client"}, "facts": {"children_after_close": 22},
              "curves": {"main": {"cycle": [0, 1, 2, 3], "children": [12, 14, 16, 18], "type:Client": [3, 3, 3, 3]}}}
    data = chart_data(item("C3"), record)
    (panel,) = data["panels"]  # the constant client count is listed, not drawn
    assert [(s["run"], s["y"]) for s in panel["series"]] == [("main", [0, 2, 4, 6]), ("after_close", [10.0])]
    assert data["flat"] == {"type:Client": 3.0}
    # nothing varies: no chart, the values instead
    flat = chart_data(item("C3"), {**record, "curves": {"main": {"cycle": [0, 1], "children": [4, 4]}}})
    assert flat == {"kind": "none", "panels": [], "flat": {"children": 4.0}}


def test_a_task_column_that_appears_later_counts_from_zero():
    record = {"roles": {"session_type": "Ctx"},
              "curves": {"main": {"cycle": [0, 1, 2], "type:Ctx": [1, 2, 3], "task:init": [None, 1, 2]}}}
    panels = {p["metric"]: p for p in chart_data(item("C8"), record)["panels"]}
    assert panels["task:init"]["series"][0]["y"] == [0.0, 1.0, 2.0]
