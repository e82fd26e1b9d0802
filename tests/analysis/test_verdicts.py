"""robust_slope and judge: the verdict rules, on synthetic census data only."""

from __future__ import annotations

import dataclasses
import json
import math

from hypothesis import given, settings
from hypothesis import strategies as st
import numpy as np
import pandas as pd
import pytest

from leaklab.analysis import (
    MetricVerdict,
    Rule,
    Thresholds,
    judge,
    robust_slope,
    summarize,
)
from tests.analysis.records import census, timeline, ramp


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
