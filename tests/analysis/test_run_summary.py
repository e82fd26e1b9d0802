"""RunSummary: the typed view of a run's summary, still read as its dict."""

from __future__ import annotations

import copy
import json
import math
import pickle
from collections.abc import Mapping

import pytest

from leaklab.analysis import MetricVerdict, RunSummary, Verdict, judge, summarize
from leaklab.session import RunResult
from tests.analysis.records import full_run

META = {"run_id": "r1", "target": "reference", "scenario": "open-close", "faults": ["C1"], "cycles": 10,
        "failed_cycles": [], "judged_cycles": 10, "errors": ["cycle 4: timeout"], "path": None,
        "survivors": {"alive": {"ServiceContext": 10}, "open": {}}}


@pytest.fixture
def summary_dict() -> dict:
    records, tl = full_run()
    out = summarize(records, tl, expected_growth=("db_rows", "db_bytes"))
    out.update(META)
    return out


def test_verdict_of_every_group(summary_dict):
    # GIVEN the summary of a run with a type leak, a transient task, history by design
    s = RunSummary.from_dict(summary_dict)
    # WHEN asked what each metric did, by its metric name
    # THEN the verdicts come back as the enum, wherever the dict files them
    assert s.verdict_of("type:ServiceContext") is Verdict.LEAK
    assert s.verdict_of("type:Agent") is Verdict.NONE
    assert s.verdict_of("tasks") is Verdict.TRANSIENT
    assert s.verdict_of("task:Session.pinger") is Verdict.TRANSIENT
    assert s.verdict_of("container:app.state.sessions") is Verdict.LEAK
    assert s.verdict_of("container:app.state.cache") is Verdict.NONE
    assert s.verdict_of("db_rows") is Verdict.NORMAL
    assert s.verdict_of("rss_mb") is Verdict.NONE
    # AND reply times by their column: latency_end_ms grows 1 ms/cycle (under 2% of 255 ms), llm_ms flat
    assert s.verdict_of("latency_end_ms") is Verdict.NONE and s.verdict_of("llm_ms") is Verdict.NONE
    # AND what the run did not measure is None, not "none"
    assert s.verdict_of("type:Nothing") is None and s.verdict_of("tracemalloc_mb") is None
    assert s.verdict_of("latency_connect_ms") is None


def test_metric_gives_the_numbers(summary_dict):
    s = RunSummary.from_dict(summary_dict)
    v = s.metric("type:ServiceContext")
    assert isinstance(v, MetricVerdict)
    assert (v.metric, v.start, v.end, v.per_cycle, v.verdict) == ("type:ServiceContext", 0.0, 10.0, 1.0, Verdict.LEAK)
    # a container entry has no growth of its own in the dict: end - start
    c = s.metric("container:app.state.sessions")
    assert c.growth == 10.0 and c.note == ""
    assert s.metric("task:Session.pinger").lifetime_s == 0.0
    assert s.metric("nope") is None


def test_typed_attributes(summary_dict):
    s = RunSummary.from_dict(summary_dict)
    assert (s.run_id, s.target, s.scenario, s.faults) == ("r1", "reference", "open-close", ("C1",))
    assert (s.cycles, s.judged_cycles, s.failed_cycles, s.errors) == (10, 10, (), ("cycle 4: timeout",))
    assert s.flagged == tuple(summary_dict["flagged"]) and "type:ServiceContext" in s.flagged
    assert s.survivors == {"ServiceContext": 10}
    assert s.lifecycle["ServiceContext.close"] == {"calls": 10, "expected": 10}
    assert s.latency["verdict"] == "none" and s.memory == summary_dict["memory"]
    assert set(s.verdicts) >= {"type:ServiceContext", "tasks", "task:Session.pinger", "container:app.state.cache"}


def test_judged_cycles_without_the_key_leave_out_failed_ones():
    s = RunSummary.from_dict({"cycles": 6, "failed_cycles": [2, 5]})
    assert s.judged_cycles == 4 and s.failed_cycles == (2, 5)
    # and a bare summarize() dict (no run metadata) is a summary too
    empty = RunSummary.from_dict(summarize([{"cycle": 0, "t": 0.0, "tasks": 1}], None))
    assert empty.run_id is None and empty.cycles == 0 and empty.verdict_of("tasks") is Verdict.INSUFFICIENT


def test_as_dict_round_trip_is_identical(summary_dict):
    # GIVEN a summary built from a dict
    before = json.dumps(summary_dict, allow_nan=False)
    s = RunSummary.from_dict(summary_dict)
    # WHEN turned back into a dict
    d = s.as_dict()
    # THEN it is the same dict, a plain one, that serialises byte for byte as before
    assert d == summary_dict and type(d) is dict
    assert json.dumps(d, allow_nan=False) == before
    # AND through JSON (a saved summary) it gives the same summary back
    assert RunSummary.from_dict(json.loads(before)).as_dict() == summary_dict
    # AND neither the dict given nor the one returned is shared with it
    d["types"].clear()
    summary_dict["flagged"].append("x")
    assert s["types"] and "x" not in s["flagged"] and s.as_dict()["types"]


def test_reads_as_a_read_only_mapping(summary_dict):
    s = RunSummary.from_dict(summary_dict)
    # Mapping access, as the readers of the dict do it
    assert isinstance(s, Mapping)
    assert s["types"]["ServiceContext"]["verdict"] == "leak"
    assert s.get("nope") is None and s.get("run_id") == "r1"
    assert "flagged" in s and "nope" not in s
    assert len(s) == len(summary_dict) and list(s) == list(summary_dict)
    assert dict(s) == summary_dict and s == summary_dict
    # json.dumps takes it as the dict it reads as
    assert json.dumps(s, allow_nan=False) == json.dumps(summary_dict, allow_nan=False)
    # it cannot be changed in place
    for change in (lambda: s.__setitem__("run_id", "x"), lambda: s.__delitem__("types"), lambda: s.update(a=1),
                   lambda: s.pop("types"), lambda: s.setdefault("a", 1), lambda: s.clear(), lambda: s.popitem()):
        with pytest.raises(TypeError):
            change()
    assert s == summary_dict


def test_copies_and_pickles_as_itself(summary_dict):
    s = RunSummary.from_dict(summary_dict)
    for other in (copy.deepcopy(s), copy.copy(s), pickle.loads(pickle.dumps(s))):
        assert type(other) is RunSummary and other == summary_dict
        assert other.verdict_of("type:ServiceContext") is Verdict.LEAK


def test_metric_verdict_dict_round_trip():
    v = judge([{"cycle": c, "t": float(c), "fds": 10 + c} for c in range(6)])["fds"]
    d = v.as_dict()
    # the dict holds the plain value; the verdict read back is the enum
    assert type(d["verdict"]) is str and d["verdict"] == "leak"
    assert MetricVerdict.from_dict(d) == v
    # a verdict given as a string (a saved summary's) becomes the enum
    assert MetricVerdict("fds", 0.0, 1.0, 0.2, "leak").verdict is Verdict.LEAK
    gone = MetricVerdict.from_dict({"verdict": "none", "start": None, "end": None, "per_cycle": None}, "x")
    assert gone.metric == "x" and math.isnan(gone.start) and math.isnan(gone.growth)


def test_run_result_summary_is_a_run_summary():
    # GIVEN a run's result built from synthetic records (no backend)
    records, tl = full_run(6)
    result = RunResult(run_id="r2", target="reference", scenario="open-close", faults=[], options={}, cycles=6,
                       records=records, timeline=tl, failed_cycles=[3])
    # WHEN summarized
    s = result.summary()
    # THEN it is typed, carries the run's metadata, and is the dict summarize() and the metadata make
    assert isinstance(s, RunSummary)
    assert (s.run_id, s.cycles, s.judged_cycles, s.failed_cycles) == ("r2", 6, 5, (3,))
    assert s.verdict_of("type:ServiceContext") is Verdict.LEAK
    expected = summarize(records, tl, failed_cycles=[3], allocator={}, freed_types={})
    assert {k: s[k] for k in expected} == expected
    json.dumps(s.as_dict(), allow_nan=False)
