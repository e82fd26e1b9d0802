"""The connect and reply split (loop held / LLM / the rest) and the loop's
time per coroutine, on synthetic censuses."""

from __future__ import annotations

import pytest

from leaklab.analysis import split_connect, split_latency
from leaklab.analysis.time import time_summary
from leaklab.metrics import Verdict

CYCLES = range(1, 7)


def census(**extra_per_cycle) -> list[dict]:
    rows = [{"cycle": 0, "loop_blocked_ms": 0.0}]
    for c in CYCLES:
        row = {"cycle": c, "loop_blocked_ms": 10.0 * c, "latency_end_ms": 1000.0 + 50 * c, "llm_ms": 600.0,
               "reply_blocked_ms": 5.0 + 20 * c, "latency_connect_ms": 200.0 + 30 * c,
               "connect_blocked_ms": 25.0 * c}
        row.update({k: f(c) for k, f in extra_per_cycle.items()})
        rows.append(row)
    return rows


DETAILS = {
    "steps": {
        "reply": {"steps": 6, "functions": {"app.store.load_all": 60.0},
                  "first": {"cycle": 1, "blocked_ms": 25.0, "busy_ms": 30.0, "functions": {"app.store.load_all": 20.0}},
                  "last": {"cycle": 6, "blocked_ms": 125.0, "functions": {"app.store.load_all": 118.0}}},
        "connect": {"steps": 6, "functions": {"app.pages.list_histories": 80.0},
                    "first": {"cycle": 1, "functions": {"app.pages.list_histories": 22.0}},
                    "last": {"cycle": 6, "functions": {"app.pages.list_histories": 149.0}}},
    },
    "coroutines": {
        "Handler.on_text": [[c, 100.0 + 20 * c] for c in CYCLES],  # 20 ms more each cycle: slows
        "Heartbeat.run": [[c, 3.0] for c in CYCLES],
        "once": [[1, 40.0]],  # a cycle it was not sampled in is 0 ms
    },
    "idle": {"wall_s": 1.0, "cpu_s": 0.5, "ratio": 0.5, "coroutines": {"Spinner.spin": 480.0}},
}


def test_split_latency_has_the_blocked_part_at_most_the_backend_part():
    rows = census(reply_blocked_ms=lambda c: 500.0 if c == 6 else 5.0 + 20 * c)
    split = split_latency(rows)
    assert list(split.columns) == ["llm_ms", "backend_ms", "blocked_ms"]
    assert split.loc[2, "blocked_ms"] == 45.0
    assert split.loc[6, "backend_ms"] == 700.0 and split.loc[6, "blocked_ms"] == 500.0
    over = split_latency(census(reply_blocked_ms=lambda c: 9999.0))
    assert (over["blocked_ms"] == over["backend_ms"]).all()
    assert split_latency([{"cycle": 1, "latency_end_ms": 5.0}])["blocked_ms"].isna().all()


def test_split_connect_is_blocked_plus_rest():
    split = split_connect(census())
    assert split.loc[1].to_dict() == {"connect_ms": 230.0, "blocked_ms": 25.0, "rest_ms": 205.0}
    assert split_connect(census(connect_blocked_ms=lambda c: 1e6)).loc[3, "rest_ms"] == 0.0


def test_time_summary_splits_the_first_and_last_reply_and_connect_with_their_functions():
    split = time_summary(census(), DETAILS)["split"]
    first, last = split["reply"]["first"], split["reply"]["last"]
    assert first == {"cycle": 1, "total_ms": 1050.0, "llm_ms": 600.0, "blocked_ms": 25.0, "rest_ms": 425.0,
                     "busy_ms": 30.0, "functions": {"app.store.load_all": 20.0}}
    assert (last["cycle"], last["blocked_ms"], last["rest_ms"]) == (6, 125.0, 575.0)
    assert split["reply"]["functions"] == {"app.store.load_all": 60.0}
    conn = split["connect"]["last"]
    assert conn == {"cycle": 6, "total_ms": 380.0, "blocked_ms": 150.0, "rest_ms": 230.0, "busy_ms": None,
                    "functions": {"app.pages.list_histories": 149.0}}
    # the loop's new columns are judged like its others
    assert time_summary(census(), DETAILS)["loop"]["reply_blocked_ms"]["verdict"] == Verdict.SLOWS


def test_no_blocked_columns_no_split_and_no_llm_timing_leaves_llm_unknown():
    plain = [{k: v for k, v in r.items() if not k.endswith("blocked_ms") or k == "loop_blocked_ms"}
             for r in census()]
    assert "split" not in time_summary(plain, DETAILS)
    no_llm = [{k: v for k, v in r.items() if k != "llm_ms"} for r in census()]
    first = time_summary(no_llm)["split"]["reply"]["first"]
    assert first["llm_ms"] is None and first["rest_ms"] == pytest.approx(1050.0 - 25.0)
    assert first["functions"] == {}  # no details: the code is not named


def test_coroutines_judged_like_functions_and_idle_names_the_spinner():
    time = time_summary(census(), DETAILS)
    coros = time["coroutines"]
    assert list(coros)[0] == "Handler.on_text" and coros["Handler.on_text"]["verdict"] == Verdict.SLOWS
    assert coros["Handler.on_text"]["per_cycle"] == pytest.approx(20.0)
    assert coros["Heartbeat.run"]["verdict"] == Verdict.NONE and coros["Heartbeat.run"]["last"] == 3.0
    assert coros["once"]["first"] == 40.0 and coros["once"]["last"] == 0.0
    assert time["idle"]["coroutines"] == {"Spinner.spin": 480.0}
    assert "coroutines" not in time_summary(census(), {})


def test_no_loop_probe_no_blocked_part():
    rows = [{"cycle": 1, "latency_end_ms": 300.0, "llm_ms": 100.0, "latency_connect_ms": 50.0}]
    assert split_latency(rows)["blocked_ms"].isna().all()
    assert split_connect(rows)["blocked_ms"].isna().all() and split_connect(rows)["rest_ms"].isna().all()
