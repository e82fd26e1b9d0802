"""Verdict rules of leaklab.analysis, on synthetic census data only."""

from __future__ import annotations

import dataclasses
import json
import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from leaklab.analysis import (
    CensusRecord,
    MetricVerdict,
    Rule,
    Thresholds,
    TimelineSample,
    census_frame,
    judge,
    latency_summary,
    lifecycle_noun,
    lifecycle_table,
    robust_slope,
    split_latency,
    summarize,
    timeline_frame,
)


def census(metric: str, values, **other) -> list[dict]:
    """Records for cycles 0..len(values)-1 with ``metric`` (and constant extras)."""
    return [{"cycle": c, "t": float(c), metric: v, **other} for c, v in enumerate(values)]


def timeline(metric: str, points: dict[float, float]) -> list[dict]:
    return [{"t": t, metric: v} for t, v in points.items()]


def ramp(per_cycle: float, cycles: int, start: float = 0.0) -> list[float]:
    return [start + per_cycle * c for c in range(cycles + 1)]


# -- frames -------------------------------------------------------------------


def test_census_frame_indexes_by_cycle_sorts_columns_and_zero_fills_counts():
    # GIVEN records out of order, a task qualname that appears only at cycle 2
    # and an fds value missing at cycle 1
    records = [
        {"cycle": 2, "t": 2.0, "tasks": 4, "task:Handler.run": 2, "fds": 12},
        {"cycle": 0, "t": 0.0, "tasks": 2, "fds": 10, "type:Ctx": 1},
        CensusRecord(cycle=1, t=1.0, metrics={"tasks": 3, "container:app.sessions": 1}),
    ]
    # WHEN the frame is built
    df = census_frame(records)
    # THEN it is indexed by cycle, columns sorted, counts filled with 0, others NaN
    assert list(df.index) == [0, 1, 2] and df.index.name == "cycle"
    assert list(df.columns) == sorted(df.columns)
    assert df["task:Handler.run"].tolist() == [0.0, 0.0, 2.0]
    assert df["type:Ctx"].tolist() == [1.0, 0.0, 0.0]
    assert df["container:app.sessions"].tolist() == [0.0, 1.0, 0.0]
    assert math.isnan(df.loc[1, "fds"])
    assert all(dt == np.float64 for dt in df.dtypes)


def test_census_frame_rejects_duplicate_or_missing_cycles():
    # GIVEN records with a duplicated cycle, and one without a cycle
    # WHEN / THEN the frame refuses them instead of guessing
    with pytest.raises(ValueError, match="duplicated"):
        census_frame([{"cycle": 1, "tasks": 1}, {"cycle": 1, "tasks": 2}])
    with pytest.raises(ValueError, match="cycle"):
        census_frame([{"t": 0.0, "tasks": 1}])


def test_census_frame_of_nothing_is_empty():
    # GIVEN no records WHEN framed THEN an empty frame indexed by cycle
    df = census_frame([])
    assert df.empty and df.index.name == "cycle"
    assert judge([]) == {}


def test_timeline_frame_indexes_by_sorted_t():
    # GIVEN samples out of order, one as a dataclass
    samples = [{"t": 0.5, "tasks": 3}, TimelineSample(t=0.0, metrics={"tasks": 4, "task:X.y": 1})]
    # WHEN framed
    df = timeline_frame(samples)
    # THEN indexed by t ascending, counts zero-filled
    assert list(df.index) == [0.0, 0.5] and df.index.name == "t"
    assert df["task:X.y"].tolist() == [1.0, 0.0]
    assert timeline_frame(None).empty


# -- robust slope ----------------------------------------------------------------


def test_robust_slope_basics():
    # GIVEN lines, outliers, NaN and degenerate inputs
    # THEN Theil–Sen gives the line's slope, ignores one outlier, skips NaN
    assert robust_slope([1, 3, 5, 7]) == pytest.approx(2.0)
    assert robust_slope([0, 1, 2, 100, 4, 5, 6]) == pytest.approx(1.0)
    assert robust_slope([0, np.nan, 2, 3], [0, 1, 2, 3]) == pytest.approx(1.0)
    assert robust_slope([]) == 0.0
    assert robust_slope([5.0]) == 0.0
    assert robust_slope([np.nan, 1.0]) == 0.0
    assert robust_slope([1.0, 2.0], [3.0, 3.0]) == 0.0
    # a Series uses its (cycle) index: gaps do not distort the per-cycle slope
    assert robust_slope(pd.Series([0.0, 2.0, 8.0], index=[1, 2, 5])) == pytest.approx(2.0)
    assert isinstance(robust_slope([1, 2, 3]), float)


@settings(max_examples=50, deadline=None)
@given(
    slope=st.integers(-50, 50),
    intercept=st.integers(-1000, 1000),
    n=st.integers(2, 30),
)
def test_robust_slope_recovers_any_exact_line(slope, intercept, n):
    # GIVEN an exact line WHEN its robust slope is taken THEN it is the line's slope
    y = [intercept + slope * i for i in range(n)]
    assert robust_slope(y) == pytest.approx(slope)


# -- judge: leaks and transients ------------------------------------------------


def test_one_object_per_cycle_is_a_leak():
    # GIVEN a type growing by one instance per cycle over 10 cycles
    records = census("type:ServiceContext", ramp(1, 10))
    # WHEN judged without a timeline
    v = judge(records)["type:ServiceContext"]
    # THEN it is a leak of ~1 per cycle
    assert v.verdict == "leak"
    assert v.per_cycle == pytest.approx(1.0)
    assert (v.start, v.end, v.growth) == (0.0, 10.0, 10.0)
    assert v.lifetime_s is None


def test_leak_that_stays_in_the_timeline_is_still_a_leak():
    # GIVEN the same leak and a timeline where the count stays at 10
    records = census("type:ServiceContext", ramp(1, 10))
    tl = timeline("type:ServiceContext", {0.0: 10, 1.0: 10, 2.0: 10, 3.0: 10})
    # WHEN judged THEN leak
    assert judge(records, tl)["type:ServiceContext"].verdict == "leak"


def test_growth_released_in_the_timeline_is_transient_with_lifetime():
    # GIVEN the same growth, and a timeline back to baseline from t=2.0 on
    records = census("type:ServiceContext", ramp(1, 10))
    tl = timeline("type:ServiceContext", {0.0: 10, 0.5: 10, 1.0: 7, 1.5: 3, 2.0: 0, 2.5: 0, 3.0: 0})
    # WHEN judged
    v = judge(records, tl)["type:ServiceContext"]
    # THEN transient, living 2.0 s after the last cycle
    assert v.verdict == "transient"
    assert v.lifetime_s == pytest.approx(2.0)


def test_lifetime_is_when_it_stays_back_not_a_momentary_dip():
    # GIVEN a timeline that dips to baseline at 0.5, bounces, and stays back from 1.5
    records = census("tasks", ramp(1, 10, start=2))
    tl = timeline("tasks", {0.0: 12, 0.5: 2, 1.0: 6, 1.5: 2, 2.0: 2})
    # WHEN judged THEN the lifetime is 1.5
    v = judge(records, tl)["tasks"]
    assert (v.verdict, v.lifetime_s) == ("transient", 1.5)


def test_partial_release_in_the_timeline_is_transient_without_lifetime():
    # GIVEN a leak-like growth that falls to +3 (below half the growth) by the end of the timeline
    records = census("tasks", ramp(1, 10))
    tl = timeline("tasks", {0.0: 10, 1.0: 6, 2.0: 3})
    # WHEN judged THEN transient, lifetime unknown, and the note says so
    v = judge(records, tl)["tasks"]
    assert v.verdict == "transient" and v.lifetime_s is None
    assert "longer" in v.note


def test_timeline_without_the_family_gives_no_evidence_but_missing_member_is_zero():
    # GIVEN a task growing per cycle; timeline A samples no task census at all,
    # timeline B samples tasks but no longer lists that coroutine (none alive)
    records = census("task:Session.pinger", ramp(1, 10))
    tl_a = [{"t": 0.0, "children": 0}, {"t": 1.0, "children": 0}]
    tl_b = [{"t": 0.0, "tasks": 1, "task:Main.run": 1}, {"t": 1.0, "tasks": 1, "task:Main.run": 1}]
    # WHEN judged
    # THEN A cannot tell it goes away (leak); B shows it gone from t=0 (transient)
    assert judge(records, tl_a)["task:Session.pinger"].verdict == "leak"
    v = judge(records, tl_b)["task:Session.pinger"]
    assert (v.verdict, v.lifetime_s) == ("transient", 0.0)


def test_flat_counts_are_none():
    # GIVEN counts that do not change
    records = [{"cycle": c, "t": float(c), "tasks": 3, "fds": 12, "type:Ctx": 0, "children": 1} for c in range(11)]
    # WHEN judged THEN nothing grows
    assert {m: v.verdict for m, v in judge(records).items()} == dict.fromkeys(["children", "fds", "tasks", "type:Ctx"], "none")


@pytest.mark.parametrize(
    "values",
    [
        [0, 0, 0, 0, 5, 5, 5, 5, 5, 5, 5],  # jump early: the Theil–Sen slope is 0
        [0, 0, 0, 0, 0, 0, 5, 5, 5, 5, 5],  # jump mid-run: slope 0.625, one step carries it all
        [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 5],  # jump at the end
    ],
)
def test_a_single_jump_is_not_a_leak(values):
    # GIVEN a count that jumps once and stays (a lazily built cache, a pool)
    records = census("cache_files", values)
    # WHEN judged THEN not a leak
    assert judge(records)["cache_files"].verdict == "none"


@pytest.mark.parametrize("cycles", [6, 10])
def test_one_object_per_cycle_is_flagged_within_the_run(cycles):
    # GIVEN a 1-object-per-cycle leak over only `cycles` cycles
    records = census("type:Conversation", ramp(1, cycles))
    # WHEN summarized THEN it is flagged as a leak
    out = summarize(records, [])
    assert out["flagged"] == ["type:Conversation"]
    assert out["types"]["Conversation"]["verdict"] == "leak"


def test_two_cycles_are_too_few_to_call_a_leak():
    # GIVEN growth over only 2 cycles WHEN judged THEN not enough evidence: insufficient, not none
    v = judge(census("type:X", ramp(3, 2)))["type:X"]
    assert v.verdict == "insufficient" and "only 2 cycle(s) judged, 3 needed" in v.note


def test_failed_cycles_are_not_judged():
    # GIVEN a clean +1/cycle staircase over 4 cycles, two of which failed
    records = [{"cycle": c, "type:X": c} for c in range(5)]
    # WHEN judged with the failures left out THEN too few cycles remain
    assert judge(records)["type:X"].verdict == "leak"
    assert judge(records, failed_cycles=[2, 3])["type:X"].verdict == "insufficient"
    # and the baseline is never dropped
    assert judge(records, failed_cycles=[0])["type:X"].verdict == "leak"


def test_leak_every_other_cycle_is_a_leak():
    # GIVEN one object leaked every second cycle (0.5/cycle) over 10 cycles
    values = [c // 2 for c in range(11)]
    # WHEN judged THEN leak
    assert judge(census("container:app.sessions", values))["container:app.sessions"].verdict == "leak"


def test_warm_up_cycles_can_be_excluded():
    # GIVEN a cache that shrinks over warm-up cycles 1-4, then leaks 1/cycle
    values = [0, 20, 15, 10, 5, 6, 7, 8, 9, 10, 11]
    records = census("cache_files", values)
    # WHEN judged with and without the 4 warm-up cycles
    # THEN only the judgement without warm-up sees the leak
    assert judge(records)["cache_files"].verdict == "none"
    v = judge(records, cycles_excluded=4)["cache_files"]
    assert v.verdict == "leak" and v.per_cycle == pytest.approx(1.0)
    assert v.start == 0.0  # the baseline stays cycle 0


def test_mid_run_peak_of_a_count_is_transient_but_of_rss_is_none():
    # GIVEN tasks that lingered after one cycle's settle phase, then went away
    records = [{"cycle": c, "t": float(c), "tasks": 3 + (4 if c == 4 else 0), "rss_mb": 100.0 + (30 if c == 4 else 0)}
               for c in range(11)]
    # WHEN judged
    v = judge(records)
    # THEN the count is transient (lifetime unknown); RSS, never transient, is none
    assert v["tasks"].verdict == "transient" and v["tasks"].lifetime_s is None
    assert "cycle 4" in v["tasks"].note
    assert v["rss_mb"].verdict == "none"


# -- judge: noisy measures -----------------------------------------------------


@pytest.mark.parametrize("seed", range(20))
def test_noisy_flat_rss_is_not_a_leak(seed):
    # GIVEN a flat RSS with jitter, and a random walk of small steps (seeded)
    rng = np.random.default_rng(seed)
    jitter = 150 + rng.normal(0, 0.5, 21)
    walk = 150 + np.cumsum(rng.normal(0, 0.2, 21))
    for values in (jitter, walk):
        # WHEN judged THEN not a leak
        assert judge(census("rss_mb", values.tolist()))["rss_mb"].verdict == "none"


@pytest.mark.parametrize("seed", range(20))
def test_noisy_flat_gc_objects_are_neither_leak_nor_transient(seed):
    # GIVEN a flat object count jittering by hundreds, and a timeline near baseline
    rng = np.random.default_rng(seed)
    values = (60_000 + rng.normal(0, 300, 11)).round().tolist()
    tl = timeline("gc_objects", {0.0: values[0], 1.0: values[0]})
    # WHEN judged THEN none: a single high sample is noise, not a transient
    assert judge(census("gc_objects", values), tl)["gc_objects"].verdict == "none"


def test_rss_ramp_of_2mb_per_cycle_is_a_leak():
    # GIVEN RSS rising 2 MB per cycle with a little noise
    rng = np.random.default_rng(7)
    values = (np.array(ramp(2.0, 10, start=150.0)) + rng.normal(0, 0.3, 11)).tolist()
    # WHEN judged
    v = judge(census("rss_mb", values))["rss_mb"]
    # THEN leak of about 2 MB per cycle
    assert v.verdict == "leak"
    assert v.per_cycle == pytest.approx(2.0, abs=0.3)


def test_rss_is_never_transient():
    # GIVEN an RSS ramp that falls back to baseline in a timeline
    records = census("rss_mb", ramp(2.0, 10, start=150.0))
    tl = timeline("rss_mb", {0.0: 170.0, 1.0: 150.0, 2.0: 150.0})
    # WHEN judged THEN none (not transient), and no lifetime
    v = judge(records, tl)["rss_mb"]
    assert v.verdict == "none" and v.lifetime_s is None


# -- judge: expected growth and thresholds ----------------------------------------


def test_expected_growth_is_normal():
    # GIVEN history rows growing 4 per cycle, kept by design
    records = census("db_rows", ramp(4, 10))
    # WHEN judged with and without db_rows in expected_growth
    # THEN normal (by design) vs leak
    v = judge(records, expected_growth=("db_rows", "db_bytes"))["db_rows"]
    assert v.verdict == "normal" and "by design" in v.note
    assert judge(records)["db_rows"].verdict == "leak"
    # patterns work too, and a flat expected metric is just none
    assert judge(records, expected_growth=["db_*"])["db_rows"].verdict == "normal"
    assert judge(census("db_rows", [5] * 11), expected_growth=["db_rows"])["db_rows"].verdict == "none"


def test_thresholds_can_be_overridden_per_namespace():
    # GIVEN a 1/cycle type leak
    records = census("type:Ctx", ramp(1, 10))
    # WHEN the type namespace demands 2/cycle (as a Thresholds or a plain mapping)
    strict = Thresholds().override(type={"min_slope": 2.0})
    # THEN it no longer counts as a leak; other namespaces keep their defaults
    assert judge(records, thresholds=strict)["type:Ctx"].verdict == "none"
    assert judge(records, thresholds={"type": Rule(2.0, 2.0, 0.5)})["type:Ctx"].verdict == "none"
    assert strict.rule_for("rss_mb") == Thresholds().rule_for("rss_mb")
    assert Thresholds().rule_for("task:Foo.bar") == Thresholds().rule_for("tasks")
    looser = dataclasses.replace(Thresholds(), max_step_frac=1.0)
    assert judge(census("fds", [0, 0, 0, 0, 0, 0, 5, 5, 5, 5, 5]), thresholds=looser)["fds"].verdict == "leak"


def test_verdict_as_dict_is_json_safe():
    # GIVEN a verdict holding NaN WHEN turned into a dict THEN NaN became None
    d = MetricVerdict("fds", math.nan, 3.0, 0.0, "none", None, math.nan, "").as_dict()
    assert d["start"] is None and d["growth"] is None
    json.dumps(d, allow_nan=False)


# -- lifecycle and latency ---------------------------------------------------------


def test_lifecycle_table_sums_calls_and_expected_over_cycles():
    # GIVEN per-cycle counters; cycle 0 counts are not a cycle's and are ignored;
    # close was never called so only its expected column exists; stop has no expectation
    records = [
        {"cycle": 0, "lifecycle:Ctx.open": 9, "expected:Ctx.open": 0},
        {"cycle": 1, "lifecycle:Ctx.open": 1, "expected:Ctx.open": 1, "expected:Ctx.close": 1, "lifecycle:Ctx.stop": 1},
        {"cycle": 2, "lifecycle:Ctx.open": 2, "expected:Ctx.open": 1, "expected:Ctx.close": 1},
        {"cycle": 3, "expected:Ctx.open": 1, "expected:Ctx.close": 1},
    ]
    # WHEN tabulated
    table = lifecycle_table(records)
    # THEN sums over cycles 1..N, missing counts are 0, missing expectation None
    assert table == {
        "Ctx.close": {"calls": 0, "expected": 3},
        "Ctx.open": {"calls": 3, "expected": 3},
        "Ctx.stop": {"calls": 1, "expected": None},
    }
    assert all(type(v["calls"]) is int for v in table.values())
    # and lifecycle counters are not judged as metrics
    assert judge(records) == {}


def test_lifecycle_table_per_object_counts_short_lived_clients_apart():
    # GIVEN an OLV-like session: each cycle opens 2 short-lived MCP clients that are
    # closed during the connect, and the session's own client, never closed; the
    # context's close ran for 1 session of 2 (and cycle 0's numbers are ignored)
    def cyc(c, ctx_closed):
        per = {"cycle": c, "t": float(c)}
        for label, created, closed, short, short_calls, owned, ran in (
            ("MCPClient.aclose", 3, 2, 2, 2, 1, 0),
            ("ServiceContext.close", 1, ctx_closed, 0, 0, 1, ctx_closed),
        ):
            per.update({f"lifecycle:{label}": closed, f"expected:{label}": 1, f"lifecycle_objects:{label}": created,
                        f"lifecycle_closed:{label}": closed, f"lifecycle_short:{label}": short,
                        f"lifecycle_short_calls:{label}": short_calls, f"lifecycle_owned:{label}": owned,
                        f"lifecycle_ran_for:{label}": ran})
        return per

    records = [{**cyc(0, 1), "lifecycle_objects:MCPClient.aclose": 50}, cyc(1, 1), cyc(2, 0),
               {"cycle": 3, "t": 3.0, "lifecycle:ASR.cleanup_client": 1, "expected:ASR.cleanup_client": 1}]
    # WHEN tabulated
    table = lifecycle_table(records)
    # THEN the raw calls are there, and per object the session's client was never closed
    assert table["MCPClient.aclose"] == {
        "calls": 4, "expected": 2,
        "objects": {"created": 6, "closed": 4, "ran_for": 0, "of": 2, "short_lived": 4, "short_lived_calls": 4},
    }
    assert table["ServiceContext.close"]["objects"]["ran_for"] == 1
    assert table["ServiceContext.close"]["objects"]["of"] == 2
    # a class whose objects are not tracked: calls only, no "objects" key
    assert table["ASR.cleanup_client"] == {"calls": 1, "expected": 1}
    assert all(type(n) is int for v in table.values() for n in v.get("objects", {}).values())
    # the per-object columns are not judged as metrics either, and the summary is strict JSON
    assert judge(records) == {}
    assert json.loads(json.dumps(summarize(records, None)["lifecycle"], allow_nan=False)) == table


def test_lifecycle_noun_from_the_class_name():
    assert lifecycle_noun("MCPClient.aclose") == "clients"
    assert lifecycle_noun("ServiceContext.close") == "contexts"
    assert lifecycle_noun("BasicMemoryAgent.close") == "agents"
    assert lifecycle_noun("FakeASR.cleanup_client") == "asrs"


def test_latency_ramp_of_10ms_per_cycle_slows():
    # GIVEN the full reply 10 ms slower every cycle, LLM time flat
    records = [{"cycle": 0, "t": 0.0}] + [
        {"cycle": c, "t": float(c), "latency_end_ms": 200.0 + 10 * c, "llm_ms": 150.0, "latency_first_ms": 80.0}
        for c in range(1, 11)
    ]
    # WHEN summarized
    lat = latency_summary(records)
    # THEN the reply slows, by the backend's share, not the LLM's
    assert lat["verdict"] == "slows"
    assert lat["per_cycle"] == pytest.approx(10.0)
    assert (lat["first"], lat["last"]) == (210.0, 300.0)
    assert lat["llm"]["verdict"] == "none"
    assert lat["backend"]["verdict"] == "slows"
    assert lat["first_reply"]["verdict"] == "none"


@pytest.mark.parametrize("seed", range(20))
def test_noisy_flat_latency_does_not_slow(seed):
    # GIVEN a flat reply time with ±20 ms noise (seeded)
    rng = np.random.default_rng(seed)
    records = [{"cycle": c, "latency_end_ms": float(200 + rng.normal(0, 20))} for c in range(1, 21)]
    # WHEN summarized THEN no slowdown
    assert latency_summary(records)["verdict"] == "none"


def test_latency_summary_without_latency_data():
    # GIVEN no latency columns WHEN summarized THEN empty fields, verdict none
    lat = latency_summary(census("tasks", [1, 1, 1]))
    assert lat["first"] is None and lat["verdict"] == "none"
    assert "llm" not in lat and "backend" not in lat


def test_split_latency_backend_is_end_minus_llm():
    # GIVEN end and LLM times, plus one cycle with only a recorded backend_ms
    records = [
        {"cycle": 0},
        {"cycle": 1, "latency_end_ms": 300.0, "llm_ms": 120.0},
        {"cycle": 2, "latency_end_ms": 310.0, "llm_ms": 100.0, "backend_ms": 999.0},
        {"cycle": 3, "backend_ms": 50.0},
    ]
    # WHEN split
    df = split_latency(records)
    # THEN backend = end - llm where both exist, else the recorded value; baseline excluded
    assert list(df.columns) == ["llm_ms", "backend_ms"]
    assert df["backend_ms"].tolist() == [180.0, 210.0, 50.0]
    assert list(df.index) == [1, 2, 3]


# -- summary ----------------------------------------------------------------------------


def full_run(cycles: int = 10) -> tuple[list[dict], list[dict]]:
    """A realistic run: one type leak, a transient task, flat resources, NaN gaps."""
    records = []
    for c in range(cycles + 1):
        rec = {
            "cycle": c, "t": 1.5 * c, "type:ServiceContext": c, "type:Agent": 1, "tasks": 2 + c,
            "rss_mb": 120.0 + 0.1 * (c % 3), "gc_objects": 50_000 + 20 * (c % 2), "fds": 14, "threads": 3,
            "children": 0, "db_rows": 4 * c, "db_bytes": 8192 + 4096 * c,
            "container:app.state.sessions": c, "container:app.state.cache": 1,
            "lifecycle:ServiceContext.close": 0 if c == 0 else 1, "expected:ServiceContext.close": 0 if c == 0 else 1,
        }
        if c:
            rec["task:Session.pinger"] = c
            rec["latency_end_ms"] = 250.0 + c
            rec["llm_ms"] = 150.0
            rec["latency_first_ms"] = 90.0
        if c == 3:
            rec["fds"] = None  # a probe that failed once
        records.append(rec)
    tl = [{"t": t, "type:ServiceContext": cycles, "tasks": 2, "task:Main.run": 1} for t in (0.0, 0.5, 1.0)]
    return records, tl


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
