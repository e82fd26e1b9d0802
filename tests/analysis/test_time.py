"""Where the loop's time goes, judged and explained, on synthetic records."""

from __future__ import annotations

from leaklab.analysis import summarize
from leaklab.analysis.time import explain_slow, time_summary


def records(n: int = 10) -> list[dict]:
    # a reader that takes 2 ms more each cycle as the store gains 10 rows; a steady function; the loop's gauges
    out = [{"cycle": 0, "t": 0.0, "db_rows": 0}]
    for c in range(1, n + 1):
        out.append({"cycle": c, "t": float(c), "db_rows": 10 * c, "loop_lag_max_ms": 25.0, "loop_blocked_ms": 25.0,
                    "loop_stalls": 1.0, "cpu_ms": 100.0, "children_cpu_ms": 0.0,
                    "time:app.history.list_all": 10.0 + 2.0 * c, "time:app.chat.reply": 30.0 + (c % 2)})
    return out


DETAILS = {"functions": {"app.history.list_all": {"file": "/app/history.py", "line": 40, "owner": "yours"}},
           "stalls": [{"cycle": 10, "lag_ms": 26.0, "function": "app.history.list_all", "file": "/app/history.py",
                       "line": 41, "coroutine": "handle_page_load", "owner": "yours",
                       "stack": [["app.ws", "handle_page_load", "/app/ws.py", 12],
                                 ["app.history", "list_all", "/app/history.py", 41]]}],
           "idle": {"wall_s": 2.0, "cpu_s": 0.0, "ratio": 0.0}}


def test_a_function_two_ms_slower_each_cycle_slows_and_a_steady_one_does_not():
    time = time_summary(records(), DETAILS)
    assert time["slows"] == ["app.history.list_all"]
    f = time["functions"]["app.history.list_all"]
    assert f["verdict"] == "slows" and abs(f["per_cycle"] - 2.0) < 1e-6 and f["line"] == 40
    assert time["functions"]["app.chat.reply"]["verdict"] == "none"
    # the loop's own gauges are judged as timings, not as growth of a leak
    assert time["loop"]["loop_blocked_ms"]["verdict"] == "none"
    summary = summarize(records(), None, loop=DETAILS)
    assert "time:app.history.list_all" not in summary["other"] and "loop_blocked_ms" not in summary["other"]


def test_the_slowest_function_is_explained_with_its_step_callers_and_what_it_scales_with():
    why = explain_slow(records(), time_summary(records(), DETAILS))
    assert why["function"] == "app.history.list_all" and why["coroutine"] == "handle_page_load"
    assert why["callers"] == ["handle_page_load (ws.py:12)", "list_all (history.py:41)"]
    assert why["scales_with"]["metric"] == "db_rows" and why["scales_with"]["r"] == 1.0


def test_no_loop_columns_no_time_section():
    assert time_summary([{"cycle": 0, "t": 0.0}, {"cycle": 1, "t": 1.0, "tasks": 1}]) == {}


def test_too_few_cycles_or_a_rise_of_one_sample_do_not_slow():
    # GIVEN a function sampled 0, 0, 10.7 ms over three cycles (one 10 ms sample more)
    recs = [{"cycle": 0, "t": 0.0}] + [{"cycle": c, "t": float(c), "loop_blocked_ms": 0.0, "time:app.f": v}
                                       for c, v in enumerate([0.0, 0.0, 10.7], 1)]
    # THEN that is not enough to say it slows
    assert time_summary(recs)["slows"] == []
