"""The checklist's rules on synthetic records: no backend, no network.

Each rule is fed the record shape :func:`leaklab.checklist.engine.measure`
makes (roles, run summaries as ``RunResult.summary()`` makes them, facts).
The backend names here are made up on purpose (``Sess``, ``hub.registry``):
a rule must find its signals through the roles alone.
"""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path
from typing import Any

import pytest

from leaklab.checklist import rules
from leaklab.checklist.rules import (
    CONFIRMED,
    INCONCLUSIVE,
    MIN_JUDGED_CYCLES,
    NOT_APPLICABLE,
    RULED_OUT,
    RULES,
    TRANSIENT,
    VERDICTS,
    judge_record,
    judged,
)
from leaklab.targets.base import Roles

# -- builders -------------------------------------------------------------------


def metric(start: float = 0.0, end: float | None = None, per_cycle: float | None = None, verdict: str = "none",
           lifetime_s: float | None = None) -> dict[str, Any]:
    """One ``MetricVerdict.as_dict()``."""
    end = start if end is None else end
    if per_cycle is None:
        per_cycle = 0.0 if verdict == "none" else (end - start) / 5
    return {"metric": "", "start": start, "end": end, "per_cycle": per_cycle, "verdict": verdict,
            "lifetime_s": lifetime_s, "growth": end - start, "note": ""}


def leak(start: float, end: float, per_cycle: float | None = None) -> dict[str, Any]:
    return metric(start, end, per_cycle, "leak")


def flat(value: float = 0.0) -> dict[str, Any]:
    return metric(value, value, 0.0, "none")


def transient(start: float, end: float, lifetime_s: float | None) -> dict[str, Any]:
    return metric(start, end, (end - start) / 5, "transient", lifetime_s)


def box(path: str, m: dict[str, Any]) -> dict[str, Any]:
    """One entry of a summary's ``containers``."""
    return {"path": path, "start": m["start"], "end": m["end"], "per_cycle": m["per_cycle"],
            "verdict": m["verdict"], "lifetime_s": m["lifetime_s"]}


def summary(*, types=None, tasks=None, by_coroutine=None, resources=None, containers=None, lifecycle=None,
            latency=None, judged: int = 5, cycles: int | None = None, failed=(), errors=(),
            lifetimes=None) -> dict[str, Any]:
    """A ``RunResult.summary()`` with only what a test sets."""
    cycles = judged + len(failed) if cycles is None else cycles
    task_total = dict(flat(4.0) if tasks is None else tasks)
    task_total["by_coroutine"] = dict(by_coroutine or {})
    return {"types": dict(types or {}), "tasks": task_total, "resources": dict(resources or {}), "other": {},
            "lifecycle": dict(lifecycle or {}), "containers": list(containers or []),
            "latency_ms": dict(latency or {}), "flagged": [], "cycles": cycles, "judged_cycles": judged,
            "failed_cycles": list(failed), "errors": list(errors),
            **({"lifetimes": dict(lifetimes)} if lifetimes is not None else {})}


def too_few() -> dict[str, Any]:
    """Two of five cycles judged: three failed."""
    return summary(judged=2, cycles=5, failed=[3, 4, 5],
                   errors=["cycle 3: StepTimeout: no 'audio' frame", "cycle 4: ConnectionClosed: 1011"])


def record(item: str, *, roles: dict[str, Any] | None = None, runs: dict[str, Any] | None = None,
           facts: dict[str, Any] | None = None, **extra: Any) -> dict[str, Any]:
    """An experiment record; ``roles`` as ``Roles(...).as_dict()`` makes it."""
    return {"item": item, "roles": Roles(**(roles or {})).as_dict(), "runs": dict(runs or {}),
            "facts": dict(facts or {}), "applicable": True, "reason": "", "error": None, **extra}


def judge(rec: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """Judge through the public entry point; every answer is JSON-ready text."""
    verdict, ev = judge_record(rec)
    assert verdict in VERDICTS
    assert isinstance(ev.get("answer"), str) and ev["answer"]
    json.dumps(ev, allow_nan=False)
    return verdict, ev


def assert_missing(rec: dict[str, Any], *words: str) -> dict[str, Any]:
    verdict, ev = judge(rec)
    assert verdict == INCONCLUSIVE, ev
    for w in words:
        assert w in ev["missing"], ev
    assert ev["answer"].startswith("cannot tell"), ev
    return ev


# -- per-item records where the cause is present (reused by the generic tests) ---

C2_ROLES = {"shared_memory": ("hub.agent.memory",), "agent_type": "Brain"}
C3_ROLES = {"mcp_client_type": "Tool", "mcp_close": "Tool.aclose"}
C4_ROLES = {"tts_cache": "cache_dir"}
C5_ROLES = {"history": ("sqlite", "history_db")}
C6_ROLES = {"shared_engines": ("hub.asr",)}
C7_ROLES = {"connections": "hub.registry"}
C8_ROLES = {"session_type": "Sess"}
C9_ROLES = {"session_close": "Sess.close"}

PING = {"ping_interval_s": 1.0, "ping_timeout_s": 1.0, "timeline_s": 5.0}


def c1_present() -> dict[str, Any]:
    return record("C1", runs={"main": summary(by_coroutine={"Queue._forward": leak(0.0, 10.0, 2.0)})})


def c2_present() -> dict[str, Any]:
    return record("C2", roles=C2_ROLES, runs={"main": summary(
        containers=[box("hub.agent.memory", leak(0.0, 10.0, 2.0))], types={"Brain": flat(1.0)})})


def c3_facts(**kw: Any) -> dict[str, Any]:
    return {"children_peak": 2.0, "children_baseline": 0.0, "children_after_close": 0.0,
            "close_outcomes": [{"client": "Tool at 0x1", "raised": None}, {"client": "Tool at 0x2", "raised": None}],
            "clients_alive": 2, **kw}


def c3_present() -> dict[str, Any]:
    return record("C3", roles=C3_ROLES, runs={"main": summary(resources={"children": flat(0.0)})},
                  facts=c3_facts(children_after_close=4.0))


def c4_summary(files: dict[str, Any], **kw: Any) -> dict[str, Any]:
    latency = kw.pop("latency", {"first": 120.0, "first_reply": {"first": 80.0, "last": 82.0}})
    return summary(resources={"cache_files": files, "cache_bytes": leak(0.0, 10240.0, 2048.0)}, latency=latency, **kw)


def c4_present() -> dict[str, Any]:
    return record("C4", roles=C4_ROLES, runs={"main": c4_summary(leak(0.0, 10.0, 2.0))})


def c5_record(small_ms: float | None, large_ms: float | None, back_ms: float | None = -1.0,
              **runs: Any) -> dict[str, Any]:
    """Small, large, then small again (``back_ms``; -1: as fast as small)."""
    all_runs = {"main": summary(), "small": summary(judged=3), "large": summary(judged=3),
                "back": summary(judged=3), **runs}
    back = small_ms if back_ms == -1.0 else back_ms
    return record("C5", roles=C5_ROLES, runs={k: v for k, v in all_runs.items() if v is not None}, facts={
        "store": "sqlite history_db", "size_small": 200, "size_large": 800, "size_back": 200, "unit": "rows",
        "latency_metric": "llm", "latency_small_ms": small_ms, "latency_large_ms": large_ms,
        "latency_back_ms": back})


def c5_present() -> dict[str, Any]:
    return c5_record(50.0, 200.0)


def c6_present() -> dict[str, Any]:
    return record("C6", roles=C6_ROLES, runs={"main": summary(containers=[
        box("hub.asr.per_client", leak(0.0, 5.0, 1.0)), box("hub.asr.models", flat(2.0))])})


def c7_record(conns: dict[str, Any] | None, facts: dict[str, Any] | None = None, **kw: Any) -> dict[str, Any]:
    boxes = [box("hub.registry", conns)] if conns is not None else [box("hub.other", flat(1.0))]
    return record("C7", roles=C7_ROLES, runs={"main": summary(containers=boxes, **kw)},
                  facts=PING if facts is None else facts)


def c7_present() -> dict[str, Any]:
    return c7_record(leak(0.0, 4.0, 1.0))


PENDING_GROUP = {"type": "Sess", "count": 5, "root_kind": "pending_task",
                 "chain": [{"kind": "task", "label": "Task Sess._finish_init()", "where": "app/sess.py:585"},
                           {"kind": "frame", "label": "self", "where": None}],
                 "shallow_bytes": 280, "deep_bytes": 10_485_760, "retained_bytes": 10_240_000}


def c8_record(ctx: dict[str, Any] | None, control: dict[str, Any] | None = None, groups=(PENDING_GROUP,),
              main: dict[str, Any] | None = None, control_run: bool = True, **kw: Any) -> dict[str, Any]:
    runs = {"main": main or summary(types={} if ctx is None else {"Sess": ctx}, **kw)}
    if control_run:
        runs["control"] = summary(types={} if control is None else {"Sess": control})
    return record("C8", roles=C8_ROLES, runs=runs, facts={"retention": {"groups": list(groups), "elapsed_s": 0.1}})


def c8_present() -> dict[str, Any]:
    return c8_record(leak(1.0, 6.0, 1.0), flat(1.0))


def c9_record(lifecycle: dict[str, Any], **kw: Any) -> dict[str, Any]:
    return record("C9", roles=C9_ROLES, runs={"main": summary(lifecycle=lifecycle, **kw)})


def c9_present() -> dict[str, Any]:
    return c9_record({"Sess.close": {"calls": 0, "expected": 5}})


PRESENT = {"C1": c1_present, "C2": c2_present, "C3": c3_present, "C4": c4_present, "C5": c5_present,
           "C6": c6_present, "C7": c7_present, "C8": c8_present, "C9": c9_present}
#: The role each rule cannot do without.
REQUIRED_ROLE = {"C2": "shared_memory", "C3": "mcp_client_type", "C4": "tts_cache", "C5": "history",
                 "C6": "shared_engines", "C7": "connections", "C8": "session_type", "C9": "session_close"}


# -- every rule ------------------------------------------------------------------


def test_every_item_has_a_rule_and_a_present_case():
    # GIVEN the rule table WHEN listed THEN C1..C9, each covered here
    assert list(RULES) == [f"C{i}" for i in range(1, 10)]
    assert set(PRESENT) == set(RULES)


@pytest.mark.parametrize("item", sorted(PRESENT))
def test_cause_present_is_confirmed(item):
    # GIVEN a record where the item's signal grows for good WHEN judged THEN confirmed
    verdict, ev = judge(PRESENT[item]())
    assert verdict == CONFIRMED, ev
    assert "missing" not in ev


@pytest.mark.parametrize("item", sorted(REQUIRED_ROLE))
def test_role_missing_is_inconclusive_naming_the_role(item):
    # GIVEN the present case's runs but a target that declares no roles
    rec = PRESENT[item]()
    rec["roles"] = Roles().as_dict()
    # WHEN judged THEN inconclusive, and the evidence names the role to declare
    ev = assert_missing(rec, f"role {REQUIRED_ROLE[item]}")
    assert f"roles.{REQUIRED_ROLE[item]}" in ev["answer"]


@pytest.mark.parametrize("item", sorted(PRESENT))
def test_too_few_judged_cycles_is_inconclusive(item):
    # GIVEN the present case, but 3 of its 5 cycles failed (for C5: at one of the store sizes)
    rec = PRESENT[item]()
    if item == "C5":
        rec["runs"]["large"] = too_few()
    else:
        few = too_few()
        rec["runs"]["main"].update({k: few[k] for k in ("judged_cycles", "cycles", "failed_cycles", "errors")})
    # WHEN judged THEN inconclusive: the count of judged cycles and the failures are in the answer
    ev = assert_missing(rec, f"at least {MIN_JUDGED_CYCLES} judged cycles")
    assert "only 2 of 5 cycles judged" in ev["answer"]
    assert "3 failed" in ev["answer"] and "StepTimeout" in ev["answer"]


@pytest.mark.parametrize("item", sorted(PRESENT))
def test_nothing_run_is_inconclusive_never_ruled_out(item):
    # GIVEN the item's roles but no run at all WHEN judged THEN inconclusive, saying what was not measured
    rec = PRESENT[item]()
    rec["runs"] = {}
    rec["facts"] = {}
    ev = assert_missing(rec)
    assert "was not measured" in ev["answer"]


def test_judged_falls_back_to_cycles_minus_failed():
    # GIVEN a summary without judged_cycles WHEN counted THEN cycles minus failed ones
    s = summary(judged=5, failed=[2])
    del s["judged_cycles"]
    assert judged(s) == 5
    s["failed_cycles"] = [1, 2, 3, 4]
    assert judged(s) == 2


# -- judge_record ------------------------------------------------------------------


def test_judge_record_error_first():
    # GIVEN a record whose experiment raised, even with a present-looking run
    rec = {**c9_present(), "error": "StepTimeout: no 'set-model' frame within 10 s"}
    # WHEN judged THEN inconclusive, quoting the error
    verdict, ev = judge(rec)
    assert verdict == INCONCLUSIVE
    assert "StepTimeout" in ev["answer"]
    assert ev["missing"] == "a run that completes"


def test_judge_record_not_applicable_with_reason():
    # GIVEN C1 on a backend without the proxy route WHEN judged THEN not_applicable, with the reason
    verdict, ev = judge({**record("C1"), "applicable": False, "reason": "no route at /proxy-ws: the proxy is off"})
    assert verdict == NOT_APPLICABLE
    assert ev["answer"] == "no route at /proxy-ws: the proxy is off"
    # and without a reason it still says why
    verdict, ev = judge({**record("C1"), "applicable": False})
    assert (verdict, ev["answer"]) == (NOT_APPLICABLE, "the target does not have this feature")


def test_judge_record_dispatches_on_item():
    # GIVEN a C9 record WHEN judged THEN the C9 rule answered (about close())
    assert judge_record(c9_present()) == rules.rule_c9(c9_present())
    assert "close()" in judge(c9_present())[1]["answer"]


# -- C1 -------------------------------------------------------------------------------


def test_c1_pending_forward_tasks_confirmed():
    # GIVEN forward tasks piling up per proxied message, never released
    verdict, ev = judge(c1_present())
    # THEN confirmed, naming the coroutine and its staircase
    assert verdict == CONFIRMED
    assert "Queue._forward tasks stay pending" in ev["answer"]
    assert "0.0 -> 10.0 (+2.0/cycle)" in ev["answer"] and "never released" in ev["answer"]
    assert set(ev["growing_tasks"]) == {"Queue._forward"}


def test_c1_tasks_released_later_are_transient():
    # GIVEN forward tasks that end 2.5 s after the last cycle
    rec = record("C1", runs={"main": summary(by_coroutine={"Queue._forward": transient(0.0, 10.0, 2.5)})})
    verdict, ev = judge(rec)
    # THEN transient, with how long
    assert verdict == TRANSIENT
    assert "released after 2.5 s" in ev["answer"]


def test_c1_tasks_destroyed_while_pending_confirmed():
    # GIVEN no task grows, but the loop reported 3 tasks destroyed while pending
    rec = record("C1", runs={"main": summary(by_coroutine={"Queue._forward": flat(0.0)})},
                 facts={"tasks_destroyed_pending": 3})
    verdict, ev = judge(rec)
    # THEN confirmed: lost, not retained
    assert verdict == CONFIRMED
    assert "3 tasks were destroyed while pending" in ev["answer"]
    assert ev["tasks_destroyed_pending"] == 3


def test_c1_ruled_out_cites_the_task_counts():
    # GIVEN flat task counts and no task lost
    rec = record("C1", runs={"main": summary(tasks=flat(4.0), by_coroutine={"Queue._forward": flat(0.0)})},
                 facts={"tasks_destroyed_pending": 0})
    verdict, ev = judge(rec)
    # THEN ruled out, citing the measured count
    assert verdict == RULED_OUT
    assert "4.0 tasks at baseline, 4.0 at the end, 0.0/cycle" in ev["answer"] and "over 5 proxied chats" in ev["answer"]


def test_c1_task_count_not_measured_is_inconclusive():
    # GIVEN a run whose census counted no tasks (measure off)
    s = summary()
    s["tasks"] = {"by_coroutine": {}}
    # WHEN judged THEN inconclusive, not "no task grew"
    assert_missing(record("C1", runs={"main": s}), "task count")


# -- C2 -------------------------------------------------------------------------------


def test_c2_shared_memory_growth_confirmed_with_llm_effect():
    # GIVEN shared agent memory +2 per session and an LLM call that slows
    rec = c2_present()
    rec["runs"]["main"]["latency_ms"] = {"llm": {"first": 40.0, "last": 90.0, "per_cycle": 10.0, "verdict": "slows"}}
    verdict, ev = judge(rec)
    # THEN confirmed, path, staircase and the effect in the answer
    assert verdict == CONFIRMED
    assert "hub.agent.memory (shared by every session) grows 0.0 -> 10.0" in ev["answer"]
    assert "40.0 -> 90.0 ms" in ev["answer"] and "(slows)" in ev["answer"]


def test_c2_per_session_agents_piling_up_confirmed():
    # GIVEN flat shared memory but one agent instance more per session
    rec = record("C2", roles=C2_ROLES, runs={"main": summary(
        containers=[box("hub.agent.memory", flat(3.0))], types={"Brain": leak(1.0, 6.0, 1.0)})})
    verdict, ev = judge(rec)
    # THEN confirmed through the agent type
    assert verdict == CONFIRMED
    assert "Brain instances pile up 1.0 -> 6.0" in ev["answer"]


def test_c2_ruled_out_cites_memory_and_agents():
    # GIVEN flat shared memory and one agent throughout, the LLM call untimed
    rec = record("C2", roles=C2_ROLES, runs={"main": summary(
        containers=[box("hub.agent.memory", flat(3.0))], types={"Brain": flat(1.0)})})
    verdict, ev = judge(rec)
    # THEN ruled out, citing both, and saying the LLM call was not timed
    assert verdict == RULED_OUT
    assert "hub.agent.memory 3.0 -> 3.0" in ev["answer"] and "Brain instances 1.0 -> 1.0" in ev["answer"]
    assert "not timed" in ev["answer"]


C2_OWN = {**C2_ROLES, "session_type": "Sess", "session_memory": "brain.memory"}


def test_c2_memory_of_ended_sessions_still_held_confirmed():
    # GIVEN flat shared memory, the agent type not watched, but the live
    # sessions' own memory +2 messages per session
    rec = record("C2", roles={**C2_OWN, "agent_type": None}, runs={"main": summary(
        containers=[box("hub.agent.memory", flat(3.0)), box("Sess[*].brain.memory", leak(0.0, 10.0, 2.0))])})
    verdict, ev = judge(rec)
    # THEN confirmed through the per-session count, measured apart from the shared one
    assert verdict == CONFIRMED, ev
    assert "memory of sessions that ended is still held: Sess[*].brain.memory 0.0 -> 10.0" in ev["answer"]


def test_c2_shared_flat_but_per_session_not_measured_is_inconclusive():
    # GIVEN flat shared memory and neither the agent type nor the sessions' own memory declared
    rec = record("C2", roles={"shared_memory": ("hub.agent.memory",)}, runs={"main": summary(
        containers=[box("hub.agent.memory", flat(3.0))])})
    # WHEN judged THEN inconclusive: half the question was not measured, and what to declare
    ev = assert_missing(rec, "each session's own agent memory")
    assert "hub.agent.memory 3.0 -> 3.0" in ev["answer"] and "roles.session_memory" in ev["answer"]


def test_c2_ruled_out_cites_the_sessions_own_memory():
    # GIVEN flat shared memory and live sessions holding nothing after each cycle
    rec = record("C2", roles=C2_OWN, runs={"main": summary(
        containers=[box("hub.agent.memory", flat(3.0)), box("Sess[*].brain.memory", flat(0.0))],
        types={"Brain": flat(1.0)})})
    verdict, ev = judge(rec)
    # THEN ruled out, citing the per-session count too
    assert verdict == RULED_OUT, ev
    assert "the live sessions' own memory 0.0 -> 0.0 messages" in ev["answer"]


def test_c2_shared_memory_container_absent_is_inconclusive():
    # GIVEN the role names a path the census never measured
    rec = record("C2", roles=C2_ROLES, runs={"main": summary(containers=[box("hub.other", leak(0.0, 5.0))])})
    # WHEN judged THEN inconclusive, naming the path
    assert_missing(rec, "hub.agent.memory")


# -- C3 -------------------------------------------------------------------------------


def c3(facts: dict[str, Any], children: dict[str, Any] | None = None, lifecycle=None) -> dict[str, Any]:
    resources = {"children": children} if children is not None else {}
    return record("C3", roles=C3_ROLES, runs={"main": summary(resources=resources, lifecycle=lifecycle)}, facts=facts)


def test_c3_no_children_ever_not_applicable():
    # GIVEN no child process at any point
    verdict, ev = judge(c3(c3_facts(children_peak=0.0, close_outcomes=[]), flat(0.0)))
    # THEN not applicable, with the counts
    assert verdict == NOT_APPLICABLE
    assert "0 children at the peak, 0 at baseline" in ev["answer"]


def test_c3_children_left_after_close_confirmed():
    # GIVEN 4 children still running after every live client was closed
    verdict, ev = judge(c3_present())
    assert verdict == CONFIRMED
    assert "after aclose() ran on every live MCP client (2), 4 stdio subprocesses were still running" in ev["answer"]


def test_c3_close_raising_confirmed_even_when_children_end_at_baseline():
    # GIVEN one of two closes raised, and the children are back at baseline anyway
    facts = c3_facts(close_outcomes=[{"client": "Tool at 0x1", "raised": "RuntimeError: cancel scope in another task"},
                                     {"client": "Tool at 0x2", "raised": None}])
    verdict, ev = judge(c3(facts, flat(0.0)))
    # THEN confirmed: the close path is broken
    assert verdict == CONFIRMED
    assert "1 of 2 live clients raised RuntimeError: cancel scope" in ev["answer"]
    assert "still running" not in ev["answer"]


def test_c3_backend_close_ran_for_all_yet_children_grew_confirmed():
    # GIVEN the backend's close ran for every client, children grew, and none was left alive to close
    life = {"Tool.aclose": {"calls": 5, "expected": 5, "objects": {"created": 5, "closed": 5, "ran_for": 5, "of": 5,
                                                                  "short_lived": 0, "short_lived_calls": 0}}}
    facts = c3_facts(children_peak=5.0, children_after_close=0.0, close_outcomes=[])
    verdict, ev = judge(c3(facts, leak(0.0, 5.0, 1.0), life))
    assert verdict == CONFIRMED
    assert "aclose() ran for 5 of 5 clients, yet children grew 0.0 -> 5.0" in ev["answer"]


def test_c3_children_grew_but_nothing_left_to_close_inconclusive():
    # GIVEN children that grew, no client alive to close, no per-object count of the backend's close
    facts = c3_facts(children_peak=5.0, close_outcomes=[])
    ev = assert_missing(c3(facts, leak(0.0, 5.0, 1.0)), "close path")
    assert ev["children"]["verdict"] == "leak"


def test_c3_ruled_out_cites_children_counts():
    # GIVEN children up to 2 during sessions and back to 0 after closing, no close raised
    verdict, ev = judge(c3(c3_facts(), flat(0.0)))
    assert verdict == RULED_OUT
    assert "children rose to 2 during sessions and were back to 0 (baseline 0)" in ev["answer"]
    assert "2 live clients closed from another task, none raised" in ev["answer"]


def test_c3_ruled_out_points_at_c9_when_backend_close_is_not_reached():
    # GIVEN our close reaps everything, but the backend's own close ran for none of its 5 clients
    life = {"Tool.aclose": {"calls": 0, "expected": 5, "objects": {"created": 5, "closed": 0, "ran_for": 0, "of": 5,
                                                                  "short_lived": 0, "short_lived_calls": 0}}}
    verdict, ev = judge(c3(c3_facts(), flat(0.0), life))
    assert verdict == RULED_OUT
    assert "ran for 0 of 5 session clients (close is not reached: see C9)" in ev["answer"]


def test_c3_children_not_measured_is_inconclusive():
    # GIVEN the role declared, but no child count in the summary nor the facts
    rec = c3({"close_outcomes": []})
    assert_missing(rec, "child processes")


def test_c3_baseline_unknown_falls_back_to_the_summary():
    # GIVEN a peak but no baseline fact (None): the summary's start is the baseline, no crash
    verdict, ev = judge(c3(c3_facts(children_baseline=None), flat(0.0)))
    assert verdict == RULED_OUT
    assert "(baseline 0)" in ev["answer"]


# -- C4 -------------------------------------------------------------------------------


def test_c4_files_pile_up_confirmed_with_rate():
    # GIVEN +2 audio files (2 KiB) per abrupt close
    verdict, ev = judge(c4_present())
    # THEN confirmed, with the staircase, the size, and when the users' 1000-file mark is reached
    assert verdict == CONFIRMED
    assert "0.0 -> 10.0 (+2.0/cycle)" in ev["answer"] and "(2 KiB each cycle)" in ev["answer"]
    assert ev["cycles_to_1000_files"] == 500


def test_c4_ruled_out_cites_the_file_count():
    # GIVEN audio received every turn and the cache back to 0 files each time
    verdict, ev = judge(record("C4", roles=C4_ROLES, runs={"main": c4_summary(flat(0.0))}))
    assert verdict == RULED_OUT
    assert "cache files 0.0 -> 0.0 (+0.0/cycle) over 5 abrupt closes" in ev["answer"]


def test_c4_no_audio_received_is_inconclusive():
    # GIVEN a flat cache, but no turn ever produced audio: nothing was written to remove
    rec = record("C4", roles=C4_ROLES, runs={"main": c4_summary(flat(0.0), latency={})})
    ev = assert_missing(rec, "audio")
    assert "check the TTS" in ev["answer"]


def test_c4_cache_not_measured_is_inconclusive():
    # GIVEN the role declared, but the summary has no cache count
    rec = record("C4", roles=C4_ROLES, runs={"main": summary(resources={"children": flat(0.0)})})
    assert_missing(rec, "cache_dir")


def test_c4_unjudged_file_count_is_inconclusive():
    # GIVEN a file count the analysis could not judge (too few values)
    rec = record("C4", roles=C4_ROLES, runs={"main": c4_summary(metric(0.0, 0.0, None, "insufficient"))})
    assert_missing(rec, "file count")


# -- C5 -------------------------------------------------------------------------------


def test_c5_reply_slows_with_store_size_confirmed():
    # GIVEN the LLM call 4x slower with a 4x larger store
    verdict, ev = judge(c5_present())
    assert verdict == CONFIRMED
    assert "store 200 -> 800 rows: time in the LLM call 50 -> 200 ms" in ev["answer"]
    assert (ev["latency_small_ms"], ev["latency_large_ms"]) == (50.0, 200.0)


def test_c5_slow_down_that_stays_with_the_store_shrunk_back_is_not_the_store():
    # GIVEN 50 -> 200 ms with the store grown, and still 190 ms with it back at its small size
    rec = c5_record(50.0, 200.0, 190.0)
    # WHEN judged THEN inconclusive: something that piles up with time, not the store
    ev = assert_missing(rec, "follows the store's size")
    assert "back to 200 rows: 190 ms" in ev["answer"] and "something else slowed them" in ev["answer"]


def test_c5_slow_down_without_the_shrunk_back_run_is_inconclusive():
    assert_missing(c5_record(50.0, 200.0, None), "shrunk back")


def test_c5_prompt_carrying_the_store_confirmed_whatever_the_noise_in_reply_time():
    # GIVEN reply times that drift down (a noisy machine), but each LLM call's
    # prompt 4x bigger with the store grown, and back with it shrunk
    rec = c5_record(900.0, 700.0, 500.0)
    rec["facts"].update(prompt_small_chars=2_000, prompt_large_chars=8_000, prompt_back_chars=2_100)
    verdict, ev = judge(rec)
    # THEN confirmed on the prompt, with the numbers
    assert verdict == CONFIRMED, ev
    assert "the prompt of each LLM call 2000 -> 8000 chars, back to 2100" in ev["answer"]


def test_c5_flat_reply_time_ruled_out_with_numbers():
    # GIVEN the same time at both sizes
    verdict, ev = judge(c5_record(50.0, 52.0))
    assert verdict == RULED_OUT
    assert "store 200 -> 800 rows: time in the LLM call 50 -> 52 ms" in ev["answer"]


def test_c5_small_absolute_difference_is_not_a_slowdown():
    # GIVEN 10 -> 25 ms: above 1.5x but under 20 ms apart
    verdict, ev = judge(c5_record(10.0, 25.0))
    assert verdict == RULED_OUT
    assert "10 -> 25 ms" in ev["answer"]


def test_c5_without_the_two_runs_is_inconclusive():
    # GIVEN the store could not be grown: no small/large runs
    rec = c5_record(None, None, small=None, large=None)
    rec["facts"]["store_error"] = "the sqlite store at history_db is empty after the cycles: nothing to grow"
    ev = assert_missing(rec, "two sizes")
    assert "empty after the cycles" in ev["answer"]


def test_c5_no_turn_timed_is_inconclusive():
    # GIVEN both runs, but no turn finished at the larger size
    assert_missing(c5_record(50.0, None), "reply time")


# -- C6 -------------------------------------------------------------------------------


def test_c6_engine_state_growing_confirmed():
    verdict, ev = judge(c6_present())
    assert verdict == CONFIRMED
    assert "hub.asr.per_client (inside a shared engine) keeps one entry per client: 0.0 -> 5.0" in ev["answer"]
    assert [c["path"] for c in ev["growing"]] == ["hub.asr.per_client"]


def test_c6_ruled_out_cites_the_flat_containers():
    rec = record("C6", roles=C6_ROLES, runs={"main": summary(containers=[box("hub.asr.models", flat(2.0)),
                                                                         box("hub.asr[0].buf", flat(0.0))])})
    verdict, ev = judge(rec)
    assert verdict == RULED_OUT
    assert "2 container(s)" in ev["answer"] and "hub.asr.models 2.0 -> 2.0" in ev["answer"]


def test_c6_prefix_is_a_path_not_a_substring():
    # GIVEN growth only in hub.asrx (a sibling of hub.asr, not inside it)
    rec = record("C6", roles=C6_ROLES, runs={"main": summary(containers=[box("hub.asrx.per_client", leak(0.0, 5.0))])})
    # THEN nothing inside the engine was measured
    assert_missing(rec, "hub.asr")


# -- C7 -------------------------------------------------------------------------------


def test_c7_half_open_clients_stay_confirmed_without_ping():
    # GIVEN a server that sends no ping, and the registry +1 per storm
    rec = c7_record(leak(0.0, 4.0, 1.0), {"ping_interval_s": None, "ping_timeout_s": None, "timeline_s": 1.0})
    verdict, ev = judge(rec)
    assert verdict == CONFIRMED
    assert "hub.registry: 0.0 -> 4.0 (+1.0/cycle), still there 1.0 s after the last cycle" in ev["answer"]
    assert "the server sends no ping" in ev["answer"]


def test_c7_confirmed_after_waiting_out_the_ping():
    verdict, ev = judge(c7_present())
    assert verdict == CONFIRMED
    assert "ping every 1 s, timeout 1 s" in ev["answer"]


def test_c7_released_by_ping_within_its_window_is_ruled_out():
    # GIVEN ping every 1 s, timeout 1 s, and the half-open clients gone 2.1 s after the last storm
    verdict, ev = judge(c7_record(transient(0.0, 4.0, 2.1)))
    # THEN that is the protocol's design: ruled out, with the release and the window measured
    assert verdict == RULED_OUT
    assert "released after about 2.1 s, within the server's ping window (1 + 1 s)" in ev["answer"]
    assert ev["released_s"] == 2.1 and ev["ping_window_s"] == 2.0


def test_c7_released_later_than_the_ping_window_is_transient():
    verdict, ev = judge(c7_record(transient(0.0, 4.0, 6.0), {**PING, "timeline_s": 8.0}))
    assert verdict == TRANSIENT
    assert "removed after about 6.0 s, later than the ping window of 2 s" in ev["answer"]
    assert "hub.registry peaked at 4.0" in ev["answer"]


def test_c7_ruled_out_cites_the_registry():
    verdict, ev = judge(c7_record(flat(0.0)))
    assert verdict == RULED_OUT
    assert "hub.registry 0.0 -> 0.0 (+0.0/cycle) over 5 storms" in ev["answer"]


@pytest.mark.parametrize("conns", [flat(0.0), leak(0.0, 4.0, 1.0)], ids=["flat", "growing"])
def test_c7_timeline_shorter_than_ping_is_inconclusive(conns):
    # GIVEN ping 1 s + timeout 1 s, but only 1 s sampled after the last cycle
    rec = c7_record(conns, {"ping_interval_s": 1.0, "ping_timeout_s": 1.0, "timeline_s": 1.0})
    # THEN the ping could still remove them: inconclusive
    ev = assert_missing(rec, "as long as the server's ping")
    assert "1 + 1 s; sampled 1 s" in ev["missing"]


def test_c7_ping_without_timeout_does_not_break_the_answer():
    rec = c7_record(flat(0.0), {"ping_interval_s": 2.0, "ping_timeout_s": None, "timeline_s": 5.0})
    verdict, ev = judge(rec)
    assert verdict == RULED_OUT
    assert "ping every 2 s, timeout none" in ev["answer"]


def test_c7_registry_not_measured_is_inconclusive():
    assert_missing(c7_record(None), "hub.registry")


# -- C8 -------------------------------------------------------------------------------


def test_c8_held_by_pending_task_with_flat_control_confirmed():
    verdict, ev = judge(c8_present())
    assert verdict == CONFIRMED
    assert ev["root"] == "Task Sess._finish_init()" and ev["created_at"] == "app/sess.py:585"
    assert ev["retained_bytes"] == 10_240_000 and ev["count"] == 5
    assert "+1.0 Sess per switch-then-close, never released" in ev["answer"]
    assert "[app/sess.py:585]" in ev["answer"] and "10000 KiB retained by 5" in ev["answer"]


def test_c8_released_later_is_transient_with_lifetime():
    verdict, ev = judge(c8_record(transient(1.0, 6.0, 5.2), flat(1.0)))
    assert verdict == TRANSIENT
    assert "released after 5.2 s" in ev["answer"] and "Task Sess._finish_init()" in ev["answer"]


def test_c8_control_retains_too_is_not_ruled_out_while_a_task_holds_it():
    # GIVEN the session is kept with or without a switch, and a pending task found holding it
    verdict, ev = judge(c8_record(leak(1.0, 6.0, 1.0), leak(1.0, 6.0, 1.0)))
    # THEN the switch is not to blame, but what holds it is named: never ruled_out
    assert verdict == INCONCLUSIVE
    assert "with or without a switch" in ev["answer"] and "control 1.0 -> 6.0" in ev["answer"]
    assert "cannot rule out" in ev["answer"] and "Task Sess._finish_init() was found holding it" in ev["answer"]


def test_c8_control_retains_too_ruled_out_when_nothing_names_a_task():
    verdict, ev = judge(c8_record(leak(1.0, 6.0, 1.0), leak(1.0, 6.0, 1.0), groups=[]))
    assert verdict == RULED_OUT
    assert "with or without a switch" in ev["answer"]


def lifetimes(objects: int, outlived: int, lo: float | None = None, hi: float | None = None,
              alive: int = 0) -> dict[str, Any]:
    """One ``summary["lifetimes"][type]``."""
    return {"objects": objects, "outlived": outlived, "alive": alive, "outlived_min_s": lo, "outlived_max_s": hi,
            "threshold_s": 0.8}


def test_c8_objects_that_outlived_their_session_are_transient_whatever_the_population_slope():
    # GIVEN cycles slower than the hold: the population stays flat (two held at most at once),
    # but every context lived 4.1-6.4 s after its tab closed, a pending task holding it
    main = summary(types={"Sess": flat(2.0)}, lifetimes={"Sess": lifetimes(5, 5, 4.1, 6.4)})
    verdict, ev = judge(c8_record(None, flat(1.0), main=main))
    # THEN at least transient, the lifetimes and the holder said
    assert verdict == TRANSIENT
    assert "5 of 5 Sess outlived their session by 4.1-6.4 s: held by Task Sess._finish_init() [app/sess.py:585]" \
        in ev["answer"]


def test_c8_outlived_in_the_control_too_is_not_the_switch():
    main = summary(types={"Sess": flat(2.0)}, lifetimes={"Sess": lifetimes(5, 5, 4.1, 6.4)})
    rec = c8_record(None, flat(1.0), main=main, groups=[])
    rec["runs"]["control"]["lifetimes"] = {"Sess": lifetimes(5, 5, 4.0, 6.0)}
    verdict, _ = judge(rec)
    assert verdict == RULED_OUT


def test_c8_flat_and_released_in_time_but_a_task_named_is_inconclusive():
    # GIVEN nothing outlived its session, yet the retention analysis named a pending task holding one
    main = summary(types={"Sess": flat(1.0)}, lifetimes={"Sess": lifetimes(5, 0)})
    verdict, ev = judge(c8_record(None, flat(1.0), main=main))
    assert verdict == INCONCLUSIVE and ev["missing"] == "a run where nothing retains the object"


def test_c8_root_not_a_pending_task_inconclusive():
    # GIVEN retained only after a switch, but by a global, not a task
    group = {**PENDING_GROUP, "root_kind": "module_global"}
    verdict, ev = judge(c8_record(leak(1.0, 6.0, 1.0), flat(1.0), groups=[group]))
    assert verdict == INCONCLUSIVE
    assert "not a pending task (module_global)" in ev["answer"]


def test_c8_pending_task_holding_another_type_does_not_count():
    group = {**PENDING_GROUP, "type": "Other"}
    verdict, ev = judge(c8_record(leak(1.0, 6.0, 1.0), flat(1.0), groups=[group]))
    assert verdict == INCONCLUSIVE
    assert "none found" in ev["answer"]


def test_c8_nothing_retained_ruled_out_with_numbers():
    verdict, ev = judge(c8_record(flat(1.0), flat(1.0), groups=[]))
    assert verdict == RULED_OUT
    assert "no Sess outlived its connection after a switch (1.0 -> 1.0 (+0.0/cycle) over 5" in ev["answer"]
    assert "no task grew" in ev["answer"]


def test_c8_ruled_out_mentions_tasks_that_grew_with_the_switch_only():
    # GIVEN no session retained, a task growing after switches and another growing in the control too
    main = summary(types={"Sess": flat(1.0)}, by_coroutine={"Sess._finish_init": leak(0.0, 5.0),
                                                            "Poller.run": leak(0.0, 5.0)})
    rec = c8_record(None, flat(1.0), groups=[], main=main)
    rec["runs"]["control"]["tasks"]["by_coroutine"] = {"Poller.run": leak(0.0, 5.0)}
    verdict, ev = judge(rec)
    assert verdict == RULED_OUT
    assert set(ev["tasks_growing_with_switch"]) == {"Sess._finish_init"}
    assert "Sess._finish_init tasks grew with switches" in ev["answer"]


def test_c8_type_not_watched_is_inconclusive():
    assert_missing(c8_record(None, flat(1.0)), "Sess")


def test_c8_no_control_run_is_inconclusive():
    assert_missing(c8_record(leak(1.0, 6.0, 1.0), control_run=False), "control run")


def test_c8_control_without_the_type_is_inconclusive():
    # GIVEN a control run that did not count the session type: "the control keeps none" is not measured
    assert_missing(c8_record(leak(1.0, 6.0, 1.0), None), "control run")


# -- C9 -------------------------------------------------------------------------------


def objects(ran_for: int, of: int, short_lived: int = 0, short_lived_calls: int = 0) -> dict[str, int]:
    return {"created": of + short_lived, "closed": ran_for + short_lived, "ran_for": ran_for, "of": of,
            "short_lived": short_lived, "short_lived_calls": short_lived_calls}


def test_c9_per_object_close_missed_confirmed_short_lived_not_counted():
    # GIVEN 5 calls for 5 disconnects, all on short-lived objects; none on the 5 session-owned ones
    rec = c9_record({"Sess.close": {"calls": 5, "expected": 5, "objects": objects(0, 5, 5, 5)}})
    verdict, ev = judge(rec)
    # THEN confirmed: the call count alone would have said "once per disconnect"
    assert verdict == CONFIRMED
    assert "close() ran for 0 of 5 Sess objects still open when their session ended" in ev["answer"]
    assert "(5 calls for 5 disconnects; 5 of them on short-lived ones)" in ev["answer"]


def test_c9_per_object_close_reached_ruled_out():
    rec = c9_record({"Sess.close": {"calls": 5, "expected": 5, "objects": objects(5, 5)}})
    verdict, ev = judge(rec)
    assert verdict == RULED_OUT
    assert "close() ran for 5 of 5 Sess objects" in ev["answer"] and "(5 calls for 5 disconnects)" in ev["answer"]


def test_c9_calls_fallback_confirmed():
    verdict, ev = judge(c9_present())
    assert verdict == CONFIRMED
    assert ev["answer"] == "close() ran 0 times for 5 disconnects"


def test_c9_calls_fallback_ruled_out():
    verdict, ev = judge(c9_record({"Sess.close": {"calls": 5, "expected": 5}}))
    assert verdict == RULED_OUT
    assert "once per disconnect (5 of 5)" in ev["answer"]


def test_c9_more_calls_than_disconnects_is_not_once_per_disconnect():
    verdict, ev = judge(c9_record({"Sess.close": {"calls": 8, "expected": 5}}))
    assert verdict == RULED_OUT
    assert "once per disconnect" not in ev["answer"] and "8 times for 5 disconnects" in ev["answer"]


@pytest.mark.parametrize("lifecycle", [{}, {"Sess.close": {"calls": 0, "expected": 0}},
                                       {"Sess.close": {"calls": 3, "expected": None}}],
                         ids=["not-counted", "no-session-ended", "no-expected"])
def test_c9_close_not_counted_is_inconclusive(lifecycle):
    assert_missing(c9_record(lifecycle), "Sess.close")


# -- rules read roles, not a backend's names ---------------------------------------------

#: Names of the reference/olv backends a rule must not key on.
BACKEND_WORDS = ("ServiceContext", "client_connections", "handler", "default_context", "MCPClient",
                 "C8-proposed", "fault")
#: Help text telling a user what to declare (an example path), not logic.
ALLOWED_ASSIGNMENTS = {"ROLE_HELP"}


def _docstring_nodes(tree: ast.AST) -> set[int]:
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                out.add(id(body[0].value))
    return out


def _allowed_nodes(tree: ast.AST) -> set[int]:
    out = set()
    for node in ast.walk(tree):
        targets = (node.targets if isinstance(node, ast.Assign) else
                   [node.target] if isinstance(node, ast.AnnAssign) else [])
        if any(isinstance(t, ast.Name) and t.id in ALLOWED_ASSIGNMENTS for t in targets):
            out.update(id(n) for n in ast.walk(node.value))
    return out


def backend_words_in(source: str) -> list[tuple[int, str]]:
    """(line, text) of every string constant (docstrings and the allow-list
    aside), name and attribute naming a backend."""
    tree = ast.parse(source)
    skip = _docstring_nodes(tree) | _allowed_nodes(tree)
    # a word not inside a longer one: "fault" not in "default", "handler" in "ws_handler"
    pattern = re.compile("|".join(rf"(?<![A-Za-z]){re.escape(w)}" for w in BACKEND_WORDS))
    found = []
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            text = node.value
        elif isinstance(node, ast.Name):
            text = node.id
        elif isinstance(node, ast.Attribute):
            text = node.attr
        elif isinstance(node, (ast.FunctionDef, ast.arg)):
            text = getattr(node, "name", None) or node.arg
        else:
            continue
        if pattern.search(text):
            found.append((node.lineno, node.col_offset, text))
    return [(line, text) for line, _, text in sorted(found)]


def test_no_rule_names_a_backend():
    # GIVEN the rules' source WHEN its strings and names are walked THEN none is a backend's name
    folder = Path(rules.__file__).parent
    sources = {name: (folder / name).read_text(encoding="utf-8")
               for name in ("rules.py", "rules_sessions.py", "evidence.py")}
    assert {name: backend_words_in(text) for name, text in sources.items()} == {name: [] for name in sources}
    # and the allow-list is still in use (not stale)
    assert "ROLE_HELP =" in sources["evidence.py"]


def test_backend_word_check_would_catch_one():
    # GIVEN rule-like code that keys on a backend's container, in a string and as an attribute
    bad = ('"""Docstrings may say ServiceContext."""\n'
           'def rule(s):\n'
           '    """So may this handler docstring."""\n'
           '    x = s.default_context\n'
           '    return container(s, "handler.client_connections"), "no fault" , "default ok"\n')
    # THEN both are found, the docstrings and "default" are not
    assert backend_words_in(bad) == [(4, "default_context"), (5, "handler.client_connections"), (5, "no fault")]


def test_a_guessed_role_may_confirm_but_never_rule_out():
    from leaklab.checklist import get_items, outcome_of

    (c8,) = get_items("C8")
    flat_ctx = {"start": 1.0, "end": 1.0, "per_cycle": 0.0, "verdict": "none"}
    # GIVEN a clean switch-then-close measured through a session type that was guessed
    rec = {"item": "C8", "roles": {"session_type": "Sess", "guessed": ["session_type"]},
           "runs": {"main": {"judged_cycles": 5, "cycles": 5, "types": {"Sess": flat_ctx},
                             "tasks": {"by_coroutine": {}}},
                    "control": {"judged_cycles": 5, "cycles": 5, "types": {"Sess": flat_ctx}}},
           "facts": {}}
    # WHEN judged THEN the flat signal does not rule the cause out: the role must be declared
    out = outcome_of(c8, rec)
    assert out.verdict == "inconclusive" and "guessed, not declared" in out.evidence["answer"]
    # and declared, the same record rules it out
    rec["roles"]["guessed"] = []
    assert outcome_of(c8, rec).verdict == "ruled_out"


def test_c5_names_the_function_whose_loop_time_grew_with_the_store():
    # GIVEN the reply slower at the large store, and the loop's time in the app's reader grown with it
    rec = PRESENT["C5"]()
    small, large = rec["runs"]["small"], rec["runs"]["large"]
    small["time"] = {"functions": {"app.history.list_all": {"last": 3.0, "owner": "yours", "file": "/x/history.py",
                                                            "line": 40}}}
    large["time"] = {"functions": {"app.history.list_all": {"last": 48.0, "owner": "yours", "file": "/x/history.py",
                                                            "line": 40},
                                   "lib.json.loads": {"last": 60.0, "owner": "library lib 1.0"}}}
    verdict, ev = judge(rec)
    # THEN the answer names the app's function, its file and line, and its ms per session
    assert ev["store_reader"]["function"] == "app.history.list_all"
    assert "app.history.list_all (history.py:40) took 3.0 -> 48.0 ms per session" in ev["answer"]
    # AND its caller, whose inclusive time grew as much, is not the one named
    large["time"]["functions"]["app.handler.on_open"] = {"last": 55.0, "owner": "yours", "file": "/x/handler.py",
                                                         "line": 7}
    assert judge(rec)[1]["store_reader"]["function"] == "app.history.list_all"
    # AND a growth within a sample or so (10 ms at 100 Hz) names nothing
    large["time"] = {"functions": {"app.history.list_all": {"last": 12.0, "owner": "yours"},
                                   "lib.http.request": {"last": 34.0, "owner": "library lib 1.0"}}}
    assert judge(rec)[1]["store_reader"] is None


def test_c8_flat_count_without_per_object_lifetimes_is_inconclusive_not_ruled_out():
    # GIVEN a run that measured lifetimes, but not of the session type (creations unseen), and a flat count
    main = summary(types={"Sess": flat(1.0)}, lifetimes={"Other": lifetimes(5, 0)})
    # THEN a hold longer than a cycle cannot be ruled out
    ev = assert_missing(c8_record(None, flat(1.0), main=main, groups=[]), "how long each Sess lived")
    assert "not measured" in ev["answer"]


def test_c8_ruled_out_cites_each_objects_lifetime():
    main = summary(types={"Sess": flat(1.0)}, lifetimes={"Sess": lifetimes(5, 0)})
    verdict, ev = judge(c8_record(None, flat(1.0), main=main, groups=[]))
    assert verdict == RULED_OUT and "each of the 5 was freed within 0.8 s of its session's end" in ev["answer"]
