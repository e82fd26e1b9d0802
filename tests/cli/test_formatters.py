"""Each command's text form, on synthetic data (no backend runs)."""

from __future__ import annotations

from types import SimpleNamespace

from leaklab.checklist import ChecklistResult, Outcome
from leaklab.cli import (
    format_checklist,
    format_comparison,
    format_hunt,
    format_lifecycle,
    format_summary,
    format_survivors,
    format_why,
)
from leaklab.compare import Comparison, Side
from leaklab.compare import Change as Row
from leaklab.hunt import Finding, HuntResult
from leaklab.metrics import Change, ItemVerdict, Kind, Verdict, name


def _metric(start, end, per_cycle, verdict, **more):
    return {"start": start, "end": end, "per_cycle": per_cycle, "verdict": verdict, **more}


def _summary(**more):
    summary = {
        "run_id": "r1", "target": "reference", "scenario": "chat", "faults": ["C8"], "cycles": 4, "elapsed_s": 2.5,
        "judged_cycles": 3, "failed_cycles": [2], "step_timeout_s": 10.0, "target_notes": ["proxy mounted"],
        "types": {"ServiceContext": _metric(1.0, 5.0, 1.0, Verdict.LEAK, lifetime_s=None)},
        "tasks": {**_metric(2.0, 2.0, 0.0, Verdict.NONE),
                  "by_coroutine": {"quiet": _metric(1.0, 1.0, 0.0, Verdict.NONE),
                                   "busy": _metric(0.0, 3.0, 1.0, Verdict.TRANSIENT, lifetime_s=2.25)}},
        "resources": {"fds": _metric(15.0, 15.0, 0.0, Verdict.NONE)},
        "containers": [_metric(0.0, 0.0, 0.0, Verdict.NONE, path="a.b"), _metric(0.0, 4.0, 1.0, Verdict.LEAK, path="handler.x")],
        "latency_ms": {"first": 1.5, "last": 1234.0, "per_cycle": 3.0, "verdict": Verdict.SLOWS,
                       "connect": {"first": 1.0, "last": 2.0, "per_cycle": 0.25, "verdict": Verdict.NONE}},
        "lifecycle": {"ServiceContext.close": {"calls": 4, "expected": 4}},
        "memory": {"cyclic": {"verdict": Verdict.NONE}, "rss": {"verdict": Verdict.LEAK, "note": "grows"}},
        "survivors": {"alive": {"ServiceContext": 3}, "open": {"ServiceContext": 1}},
        "orphans": {"children": 0, "threads": 0}, "reaped": ["mcp server"], "errors": ["boom"], "path": "/runs/r1",
    }
    summary.update(more)
    return summary


def test_format_summary_is_the_verdict_table():
    lines = format_summary(_summary()).splitlines()
    assert lines[0] == "run r1: target=reference scenario=chat faults=C8 cycles=4 (2.5 s)"
    assert lines[1] == "  setup: proxy mounted"
    assert lines[2] == "judged 3 of 4 cycles (failed: 2); step timeout 10 s"
    assert lines[3].split() == ["metric", "start", "end", "/cycle", "verdict"]
    assert lines[4] == f"{'type ServiceContext':<58} {'1.00':>9} {'5.00':>9} {'1.00':>8}  leak"
    text = "\n".join(lines)
    assert "task busy" in text and "(lifetime 2.2 s)" in text and "task quiet" not in text  # flat tasks left out
    assert "container handler.x" in text and "container a.b" not in text
    assert "1 more containers reachable from the roots measured flat" in lines
    assert "reply latency (ms): first 1.50, last 1234, 3.00/cycle: slows" in lines
    assert "connect latency (ms): first 1.00, last 2.00, 0.25/cycle: none" in lines
    assert "memory not in objects: leak: grows" in lines and not any(line.startswith("cyclic") for line in lines)
    assert lines[-4:] == ["after shutdown: children 0, threads 0", "  ended, left running by the backend: mcp server",
                          "errors: boom", "saved: /runs/r1"]


def test_format_summary_names_no_faults_on_your_backend():
    first = format_summary(_summary(target="mine", faults=[])).splitlines()[0]
    assert first == "run r1: target=mine scenario=chat cycles=4 (2.5 s)"
    assert "faults=none" in format_summary(_summary(faults=[])).splitlines()[0]


def test_format_survivors_and_lifecycle():
    assert format_survivors(_summary()) == [
        "survivors: 3 ServiceContext created by the cycles still alive after the timeline (1 of them an open "
        "session): `leaklab why` shows the chain"]
    assert format_survivors({}) == []
    assert format_lifecycle("ServiceContext.close", {"calls": 2, "expected": None}) == (
        "lifecycle ServiceContext.close: 2 calls (calls only: its objects are not tracked)")
    ran = {"calls": 3, "expected": 3, "objects": {"of": 3, "ran_for": 1, "short_lived": 0, "created": 3}}
    assert format_lifecycle("ServiceContext.close", ran) == (
        "lifecycle ServiceContext.close: ran for 1 of 3 contexts still open when their session ended "
        "(3 calls of 3 expected)")


def test_format_hunt_prints_replayable_sequences():
    finding = Finding("connect,switch,close", found_as="connect,switch,switch,close",
                      metrics={name(Kind.TYPE, "ServiceContext"): 1.0}, confirmed=Verdict.LEAK, items=["C8"],
                      chains=[{"count": 2, "type": "ServiceContext", "root_kind": "module",
                               "chain": [{"label": "handler"}, {"label": "contexts"}]}])
    result = HuntResult("reference", ["C8"], [finding], tried=[{"sequence": "connect,close", "failed_cycles": 1,
                                                                  "errors": ["timeout"]}],
                        not_tried=["a", "b"], budget_s=60.0, elapsed_s=12.0, notes=["screened"], path="/runs/hunt.json")
    assert format_hunt(result).splitlines() == [
        "hunt: target=reference (1 sequences in 12 s, budget 60 s)",
        "  screened",
        "  not tried (budget): 2: a; b",
        "  connect,close: 1 failed cycles, not judged: timeout",
        "connect,switch,close: leak; checklist: C8",
        "    grows: type:ServiceContext +1/cycle (not fully minimised: budget)",
        "    found as connect,switch,switch,close",
        "    2 × ServiceContext [module]: handler → contexts",
        "    replay: leaklab run --scenario 'connect,switch,close'   why: leaklab why --scenario 'connect,switch,close'",
        "saved: /runs/hunt.json",
    ]
    empty = HuntResult("reference", [], [], [], [], 10.0)
    assert format_hunt(empty).splitlines()[-1] == "no sequence leaked"


def test_format_comparison_details_only_the_changes_that_need_them():
    rows = [Row("C8", "item", "verdict", ItemVerdict.CONFIRMED, ItemVerdict.RULED_OUT, Change.FIXED, "closed now"),
            Row("chat", "scenario", name(Kind.TYPE, "ServiceContext"), "leak", "leak", Change.STILL_LEAKS, "hidden")]
    out = Outcome("C8", "close", ItemVerdict.CONFIRMED, {"held_by": [{"label": "handler"}, {"label": "ctx"}]})
    result = Comparison(Side("before", {}), Side("after", {}), rows, {"C8": {"before": out}},
                        {"chat": {"after": {"groups": [{"count": 1, "type": "T", "root_kind": "task", "chain": []}]}}},
                        elapsed_s=3.0, notes=["n1"])
    lines = format_comparison(result).splitlines()
    assert lines[:2] == ["compare (3 s): 1 fixed, 1 still leaks", "  n1"]
    assert lines[2] == f"C8    {'verdict':<34} {'confirmed':>22} -> {'ruled_out':<22} fixed"
    assert lines[3] == "        closed now"
    assert lines[4].startswith("chat  type:ServiceContext") and lines[4].endswith("still leaks")
    assert "hidden" not in "\n".join(lines)
    assert lines[5:] == ["held by, C8:", "  before: handler → ctx", "  after: nothing",
                         "held by, chat:", "  before: nothing", "  after: 1 × T [task]: T"]


def test_format_checklist_rows_hunt_and_reply_time():
    o = Outcome("C8", "contexts never closed", ItemVerdict.CONFIRMED, {"answer": "0 of 4 closed"},
                latency_ms={"first": 10.0, "last": 20.5, "verdict": Verdict.NONE,
                            "llm": {"first": 5.0, "last": 5.0, "verdict": Verdict.NONE}, "backend": {}})
    result = ChecklistResult("reference", ["C8"], [o], elapsed_s=41.6)
    assert format_checklist(result).splitlines() == [
        "checklist: target=reference faults=C8 (42 s)",
        "C8   confirmed       contexts never closed",
        "     0 of 4 closed",
        "reply time (ms, first -> last cycle): whole 10.00 -> 20.50 (none); LLM call 5.00 -> 5.00 (none); "
        "backend - -> - (None)",
    ]
    result.extra_rows = [{"id": "H1", "verdict": "leak", "title": "found by the hunt", "evidence": {"answer": "a"}}]
    assert format_checklist(result, hunt="latest").splitlines()[3:5] == ["H1   leak            found by the hunt", "     a"]
    result.extra_rows = []
    assert "hunt (latest): every finding is on the checklist, or there were none" in format_checklist(result, hunt="latest")


def test_format_why():
    result = SimpleNamespace(target="reference", scenario="switch", cycles_done=3, errors=["e1", "e2", "e3", "e4"])
    assert format_why(result, None).splitlines() == [
        "why: target=reference scenario=switch cycles=3",
        "no survivors: nothing created by the cycles is alive",
        "errors: e1; e2; e3",
    ]
    report = type("Report", (), {"groups": [1], "__str__": lambda self: "chain text"})()
    assert format_why(SimpleNamespace(target="t", scenario="s", cycles_done=1, errors=[]), report).splitlines() == [
        "why: target=t scenario=s cycles=1", "chain text"]


def test_format_time_prints_the_connect_and_reply_split_and_the_loop_time_by_task():
    from leaklab.cli.run import format_time

    part = {"cycle": 1, "total_ms": 1050.0, "llm_ms": 600.0, "blocked_ms": 25.0, "rest_ms": 425.0, "busy_ms": 24.0,
            "functions": {"app.store.load_all": 20.0, "app.a": 3.0, "app.b": 1.0}}
    time = {"loop": {"loop_blocked_ms": {"first": 1.0, "last": 2.0, "per_cycle": 0.2, "verdict": Verdict.NONE}},
            "split": {"reply": {"first": part, "last": {**part, "cycle": 6, "llm_ms": None, "functions": {}}},
                      "connect": {"first": {"cycle": 1, "total_ms": 30.0, "blocked_ms": 0.0, "rest_ms": 30.0,
                                            "functions": {}},
                                  "last": {"cycle": 1, "total_ms": 30.0, "blocked_ms": 0.0, "rest_ms": 30.0}}},
            "coroutines": {"Handler.on_text": {"first": 120.0, "last": 220.0, "per_cycle": 20.0,
                                               "verdict": Verdict.SLOWS},
                           "Heartbeat.run": {"first": 3.0, "last": 3.0, "per_cycle": 0.0, "verdict": Verdict.NONE}},
            "idle": {"ratio": 0.5, "cpu_s": 0.5, "wall_s": 1.0, "coroutines": {"Spinner.spin": 480.0}}}
    lines = format_time(time)
    assert lines[1:4] == [
        "connect time, cycle 1: 30.00 ms = loop held 0.00 + I/O and other tasks 30.00",
        "reply time, cycle 1: 1050 ms = LLM 600.00 + loop held 25.00 + I/O and other tasks 425.00; the app's code "
        "ran 24.00 ms on the loop during the step: app.store.load_all 20.00, app.a 3.00",
        "reply time, cycle 6: 1050 ms = loop held 25.00 + the rest (the LLM call not timed) 425.00; the app's "
        "code ran 24.00 ms on the loop during the step",
    ]
    assert lines[-2].endswith("tasks left running; Spinner.spin 480.00 ms")
    assert lines[-1] == ("loop time by task (ms/cycle, first -> last): Handler.on_text 120.00 -> 220.00 "
                         "(slows, 20.00/cycle), Heartbeat.run 3.00 -> 3.00")
