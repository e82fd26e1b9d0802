"""summarize: every verdict grouped, JSON-ready."""

from __future__ import annotations

import json

from hypothesis import given, settings
from hypothesis import strategies as st

from leaklab.analysis import summarize
from tests.analysis.records import full_run


def test_summarize_groups_verdicts_and_round_trips_json():
    # GIVEN a run with a type leak, a task that ends in the timeline, history by design
    records, tl = full_run()
    # WHEN summarized
    out = summarize(records, tl, expected_growth=("db_rows", "db_bytes"))
    # THEN the JSON is strict (no NaN) and round-trips
    assert json.loads(json.dumps(out, allow_nan=False)) == out
    assert set(out) >= {"types", "tasks", "resources", "lifecycle", "containers", "latency_ms", "flagged"}
    assert out["types"]["ServiceContext"]["verdict"] == "leak"
    assert out["types"]["Agent"]["verdict"] == "none"
    assert out["tasks"]["verdict"] == "transient"
    assert out["tasks"]["by_coroutine"]["Session.pinger"]["verdict"] == "transient"
    assert out["tasks"]["by_coroutine"]["Session.pinger"]["lifetime_s"] == 0.0
    assert out["resources"]["db_rows"]["verdict"] == "normal"
    assert out["resources"]["rss_mb"]["verdict"] == "none"
    assert out["resources"]["fds"]["verdict"] == "none"
    assert "tracemalloc_mb" not in out["resources"]
    # containers: every measured one (flat ones too), steepest first
    assert [c["path"] for c in out["containers"]][0] == "app.state.sessions"
    assert set(out["containers"][0]) == {"path", "start", "end", "per_cycle", "verdict", "lifetime_s"}
    assert out["lifecycle"] == {"ServiceContext.close": {"calls": 10, "expected": 10}}
    assert out["latency_ms"]["verdict"] == "none"  # 1 ms/cycle is below the threshold
    assert set(out["latency_ms"]) >= {"first", "last", "per_cycle", "verdict", "llm", "backend"}
    # leaks first, then transients
    assert out["flagged"] == [
        "container:app.state.sessions", "type:ServiceContext", "task:Session.pinger", "tasks",
    ]


def test_summarize_containers_sorted_by_slope():
    # GIVEN two leaking containers, one steeper
    records = [{"cycle": c, "container:a.slow": c, "container:b.fast": 3 * c, "container:c.flat": 2} for c in range(8)]
    # WHEN summarized THEN steepest first, the flat one kept as measured-and-flat
    out = summarize(records, None)
    assert [c["path"] for c in out["containers"]] == ["b.fast", "a.slow", "c.flat"]
    assert out["containers"][-1]["verdict"] == "none"
    assert "tasks" in out and out["tasks"]["by_coroutine"] == {}


def test_summarize_of_a_baseline_only_run():
    # GIVEN a run interrupted before the first cycle ended
    records = [{"cycle": 0, "t": 0.0, "tasks": 2, "rss_mb": 100.0}]
    # WHEN summarized THEN nothing can be told (insufficient) and JSON still works
    out = summarize(records, [])
    json.dumps(out, allow_nan=False)
    assert out["flagged"] == [] and out["tasks"]["verdict"] == "insufficient"


@settings(max_examples=40, deadline=None)
@given(
    st.lists(
        st.fixed_dictionaries(
            {},
            optional={
                "tasks": st.integers(0, 20),
                "rss_mb": st.one_of(st.none(), st.floats(0, 1e4)),
                "type:A": st.integers(0, 5),
                "latency_end_ms": st.one_of(st.none(), st.floats(0, 1e4)),
                "llm_ms": st.floats(0, 1e4),
                "lifecycle:A.close": st.integers(0, 3),
            },
        ),
        max_size=12,
    )
)
def test_summarize_is_always_strict_json(rows):
    # GIVEN any census with gaps and missing values
    records = [{"cycle": c, "t": float(c), **r} for c, r in enumerate(rows)]
    # WHEN summarized THEN it serializes without NaN
    tl = [{"t": 0.0, **rows[-1]}] if rows else []
    json.dumps(summarize(records, tl), allow_nan=False)
