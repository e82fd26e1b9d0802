"""The checklist's rules: pure functions of an experiment record.

A record is plain data (JSON-ready), made by :mod:`.engine` from what an
experiment measured, or by a test by hand::

    {"item": "C7",
     "roles": {...},                 # leaklab.targets.Roles.as_dict()
     "runs": {"main": summary, ...}, # RunResult.summary() dicts by run name
     "facts": {...},                 # what the active probes measured
     "applicable": True, "reason": "", "error": None}

A rule reads roles, never a backend's own names: a container is found by
the path the ``connections`` role names, not by the word "connections".
Each returns ``(verdict, evidence)``; ``evidence["answer"]`` states only
what was measured, and every ``ruled_out`` cites the measured value that
rules it out. Where a role is missing or a signal was not measured the
verdict is ``inconclusive`` and ``evidence["missing"]`` says what to declare
or run.
"""

from __future__ import annotations

import os
from collections.abc import Callable

from ..metrics import ItemVerdict, Verdict
from ..targets.base import session_memory_path
from .evidence import (
    MIN_JUDGED_CYCLES,
    VERDICTS,
    CONFIRMED,
    INCONCLUSIVE,
    NOT_APPLICABLE,
    RULED_OUT,
    Record,
    Result,
    TRANSIENT,
    base_evidence,
    container,
    containers_under,
    fmt,
    grown_function,
    is_growing,
    judged,
    missing_role,
    not_measured,
    run_of,
    staircase,
    too_few,
)
from .rules_sessions import rule_c7, rule_c8, rule_c9

__all__ = [
    "CONFIRMED", "INCONCLUSIVE", "MIN_JUDGED_CYCLES", "NOT_APPLICABLE", "RULED_OUT", "RULES", "TRANSIENT", "VERDICTS",
    "Record", "Result", "container", "containers_under", "judge_record", "judged", "run_of",
    "rule_c1", "rule_c2", "rule_c3", "rule_c4", "rule_c5", "rule_c6", "rule_c7", "rule_c8", "rule_c9",
]

# -- C1 -----------------------------------------------------------------------


def rule_c1(record: Record) -> Result:
    """Fire-and-forget forward tasks: in a proxied chat whose client leaves
    before playback, does any task coroutine stay pending per message, or
    are tasks destroyed while pending?"""
    s = run_of(record)
    ev = base_evidence(record, ("tasks_destroyed_pending",))
    if s is None:
        return not_measured("the proxied chat", ev)
    if (few := too_few(s, ev)) is not None:
        return few
    by = s.get("tasks", {}).get("by_coroutine", {})
    growing = sorted(((k, v) for k, v in by.items() if is_growing(v)), key=lambda kv: -(kv[1].get("per_cycle") or 0))
    lost = int((record.get("facts") or {}).get("tasks_destroyed_pending") or 0)
    ev["growing_tasks"] = {k: v for k, v in growing}
    if growing:
        name, v = growing[0]
        kept = "never released" if v["verdict"] == Verdict.LEAK else f"released after {fmt(v.get('lifetime_s'), ' s')}"
        ev["answer"] = f"{name} tasks stay pending per proxied message: {staircase(v)}, {kept}"
        return (CONFIRMED if v["verdict"] == Verdict.LEAK else TRANSIENT), ev
    if lost:
        ev["answer"] = f"{lost} tasks were destroyed while pending (lost, not retained)"
        return CONFIRMED, ev
    total = s.get("tasks") or {}
    if total.get("verdict") in (None, Verdict.INSUFFICIENT):
        return not_measured("the live task count", ev)
    ev["answer"] = (f"no task coroutine grew over {judged(s)} proxied chats ({fmt(total.get('start'))} tasks at baseline, "
                    f"{fmt(total.get('end'))} at the end, {fmt(total.get('per_cycle'))}/cycle) "
                    "and none was destroyed while pending")
    return RULED_OUT, ev


# -- C2 -----------------------------------------------------------------------


def rule_c2(record: Record) -> Result:
    """Agent memory: does memory on a shared object grow per session (and
    the LLM call slow with it); is each session's agent freed?"""
    roles = record.get("roles") or {}
    s = run_of(record)
    ev = base_evidence(record)
    if not roles.get("shared_memory"):
        return missing_role("shared_memory", ev)
    if s is None:
        return not_measured("the chat run", ev)
    if (few := too_few(s, ev)) is not None:
        return few
    shared = [c for p in roles["shared_memory"] for c in ([container(s, p)] if container(s, p) else [])]
    ev["shared_memory"] = shared
    llm = (s.get("latency_ms") or {}).get("llm") or {}
    ev["llm_ms"] = llm
    if not shared:
        return not_measured(f"no container at {', '.join(roles['shared_memory'])}", ev,
                             "check roles.shared_memory against the census's container paths")
    # what the live sessions' own agents hold, counted apart from the shared memory
    own_path = (session_memory_path(roles["session_type"], roles["session_memory"])
                if roles.get("session_type") and roles.get("session_memory") else None)
    own = container(s, own_path) if own_path else None
    ev["session_memory"] = own
    grows = [c for c in shared if c.get("verdict") == Verdict.LEAK]
    effect = (f"; time in the LLM call {fmt(llm.get('first'))} -> {fmt(llm.get('last'))} ms, "
              f"{fmt(llm.get('per_cycle'))} ms/cycle ({llm.get('verdict')})"
              if llm.get("first") is not None else "; the LLM call is not timed on this target")
    own_text = (f"; the live sessions' own memory {fmt(own.get('start'))} -> {fmt(own.get('end'))} messages"
                if own else "")
    if grows:
        c = grows[0]
        ev["answer"] = f"{c['path']} (shared by every session) grows {staircase(c)} messages{own_text}{effect}"
        return CONFIRMED, ev
    if own is not None and own.get("verdict") == Verdict.LEAK:
        ev["answer"] = (f"shared memory flat, but the memory of sessions that ended is still held: "
                        f"{own['path']} {staircase(own)} messages{effect}")
        return CONFIRMED, ev
    agent = roles.get("agent_type")
    agents = (s.get("types") or {}).get(agent) if agent else None
    ev["agents"] = agents
    if agents is not None and agents.get("verdict") == Verdict.LEAK:
        ev["answer"] = (f"shared memory flat, but {agent} instances pile up {staircase(agents)}: "
                        "each session's agent and its memory outlive the session")
        return CONFIRMED, ev
    flat = "; ".join(f"{c['path']} {fmt(c.get('start'))} -> {fmt(c.get('end'))}" for c in shared)
    if own is None and agents is None:
        ev["missing"] = "each session's own agent memory"
        ev["answer"] = (f"cannot tell: shared memory stayed flat over {judged(s)} sessions ({flat}), but whether "
                        "each session's agent is freed was not measured: declare roles.session_type with "
                        "roles.session_memory, or roles.agent_type")
        return INCONCLUSIVE, ev
    per_session = (f"; {agent} instances {fmt(agents.get('start'))} -> {fmt(agents.get('end'))}" if agents else "")
    ev["answer"] = f"over {judged(s)} sessions shared memory stayed flat ({flat}){own_text}{per_session}{effect}"
    return RULED_OUT, ev


# -- C3 -----------------------------------------------------------------------


def rule_c3(record: Record) -> Result:
    """MCP stdio subprocesses: were any ever started; when a client's close
    path runs (the backend's, or ours from another task), what happens to it
    and to its children?"""
    roles = record.get("roles") or {}
    facts = record.get("facts") or {}
    s = run_of(record)
    ev = base_evidence(record, ("children_peak", "children_baseline", "children_after_close", "close_outcomes",
                        "clients_alive"))
    if not roles.get("mcp_client_type"):
        return missing_role("mcp_client_type", ev)
    if s is None:
        return not_measured("the chat run", ev)
    if (few := too_few(s, ev)) is not None:
        return few
    children = (s.get("resources") or {}).get("children") or {}
    ev["children"] = children
    peak = facts.get("children_peak")
    base = facts.get("children_baseline")
    if base is None:
        base = children.get("start") or 0
    if peak is None:
        return not_measured("child processes", ev)
    if peak <= base:
        ev["answer"] = (f"no stdio subprocess was ever started ({peak:.0f} children at the peak, {base:.0f} at baseline): "
                        "nothing for an MCP client to leave behind")
        return NOT_APPLICABLE, ev
    outcomes = facts.get("close_outcomes") or []
    raised = [o for o in outcomes if o.get("raised")]
    after = facts.get("children_after_close")
    life = (s.get("lifecycle") or {}).get(roles.get("mcp_close") or "") or {}
    objs = life.get("objects") or {}
    ev["mcp_close"] = life
    if raised:
        first = raised[0]
        ev["answer"] = (f"the close path is broken: aclose() on {len(raised)} of {len(outcomes)} live clients raised "
                        f"{first['raised']}" + (f"; {after - base:.0f} children still running after it" if after is not None and after > base else ""))
        return CONFIRMED, ev
    if after is not None and after > base:
        ev["answer"] = (f"after aclose() ran on every live MCP client ({len(outcomes)}), "
                        f"{after - base:.0f} stdio subprocesses were still running")
        return CONFIRMED, ev
    if children.get("verdict") == Verdict.LEAK and objs.get("of") and objs.get("ran_for", 0) >= objs["of"]:
        ev["answer"] = (f"aclose() ran for {objs['ran_for']} of {objs['of']} clients, yet children grew "
                        f"{staircase(children)}: closing does not reap them")
        return CONFIRMED, ev
    if children.get("verdict") == Verdict.LEAK and not outcomes:
        return not_measured("the close path (children grew, but no MCP client was left alive to close)", ev)
    closed = f"{len(outcomes)} live clients closed from another task, none raised" if outcomes else "no client was left alive"
    reached = ""
    if objs.get("of"):
        reached = f"; the backend's aclose() ran for {objs.get('ran_for', 0)} of {objs['of']} session clients"
        if objs.get("ran_for", 0) < objs["of"]:
            reached += " (close is not reached: see C9)"
    back = after if after is not None else children.get("end")
    if back is None:
        return not_measured("child processes after closing", ev)
    ev["answer"] = (f"children rose to {peak:.0f} during sessions and were back to {back:.0f} "
                    f"(baseline {base:.0f}) after closing; {closed}{reached}")
    return RULED_OUT, ev


# -- C4 -----------------------------------------------------------------------


def rule_c4(record: Record) -> Result:
    """TTS audio files: do they pile up with abrupt closes, how fast?"""
    roles = record.get("roles") or {}
    s = run_of(record)
    ev = base_evidence(record)
    if not roles.get("tts_cache"):
        return missing_role("tts_cache", ev)
    if s is None:
        return not_measured("the abrupt chat run", ev)
    res = s.get("resources") or {}
    files, size = res.get("cache_files"), res.get("cache_bytes")
    ev.update(cache_files=files, cache_bytes=size)
    if not files:
        return not_measured(f"the {roles['tts_cache']} folder", ev, "check roles.tts_cache against the target's resources")
    if (few := too_few(s, ev)) is not None:
        return few
    if files.get("verdict") == Verdict.INSUFFICIENT:
        return not_measured(f"the {roles['tts_cache']} file count (too few values to judge)", ev)
    if files.get("verdict") == Verdict.LEAK:
        per = files.get("per_cycle") or 0
        bytes_per = (size or {}).get("per_cycle") or 0
        ev["cycles_to_1000_files"] = round(1000 / per) if per > 0 else None
        ev["answer"] = (f"audio files pile up {staircase(files)} per abrupt close ({bytes_per / 1024:.0f} KiB each cycle), "
                        f"never removed: the users' 1000-file mark after ~{ev['cycles_to_1000_files']} closes")
        return CONFIRMED, ev
    turns = ((s.get("latency_ms") or {}).get("first_reply") or {}).get("first")
    if turns is None:
        return not_measured("audio written before an abrupt close", ev, "no audio was received: check the TTS")
    ev["answer"] = f"cache files {staircase(files)} over {judged(s)} abrupt closes: removed on that path too"
    return RULED_OUT, ev


# -- C5 -----------------------------------------------------------------------


def rule_c5(record: Record) -> Result:
    """History store: rows or files per session, and does reply time depend
    on the store's size (measured by growing it)?"""
    roles = record.get("roles") or {}
    facts = record.get("facts") or {}
    ev = base_evidence(record, ("store", "size_small", "size_large", "unit"))
    if not roles.get("history"):
        return missing_role("history", ev)
    small, large = run_of(record, "small"), run_of(record, "large")
    if small is None or large is None:
        return not_measured(f"the reply time at two sizes of the {roles['history'][0]} store", ev,
                             facts.get("store_error") or "the store was not found or could not be grown")
    for run in (small, large):
        if (few := too_few(run, ev)) is not None:
            return few
    metric = facts.get("latency_metric", "llm")
    a, b = facts.get("latency_small_ms"), facts.get("latency_large_ms")
    ev.update(latency_small_ms=a, latency_large_ms=b, latency_metric=metric)
    if a is None or b is None:
        return not_measured("reply time (no turn finished at one of the sizes)", ev)
    unit = facts.get("unit", "rows")
    sizes = f"store {facts.get('size_small')} -> {facts.get('size_large')} {unit}"
    what = "time in the LLM call" if metric == "llm" else "reply time"
    c = facts.get("latency_back_ms")
    ev["latency_back_ms"] = c
    prompts = [facts.get(f"prompt_{p}_chars") for p in ("small", "large", "back")]
    ev["prompt_chars"] = prompts
    pa, pb, pc = prompts
    prompt_text = (f"; the prompt of each LLM call {pa} -> {pb} chars, back to {pc}"
                   if None not in prompts else "")
    reader = grown_function(small, large)
    ev["store_reader"] = reader
    reader_text = ""
    if reader is not None:
        where = f" ({os.path.basename(reader['file'])}:{reader['line']})" if reader.get("file") else ""
        reader_text = (f"; on the event loop, {reader['function']}{where} took {fmt(reader['before_ms'])} -> "
                       f"{fmt(reader['after_ms'])} ms per session")

    def said(verdict: ItemVerdict) -> Result:
        ev["answer"] += reader_text
        return verdict, ev

    if None not in prompts and pb > 1.5 * max(pa, pc) and pb - max(pa, pc) > 200:
        ev["answer"] = (f"{sizes}{prompt_text}: each turn reads the whole store into the prompt "
                        f"({what} {a:.0f} -> {b:.0f} ms)")
        return said(CONFIRMED)
    slower = b > 1.5 * a and b - a > 20
    if slower and c is None:
        ev["missing"] = "the reply time with the store shrunk back"
        ev["answer"] = (f"cannot tell: {sizes}: {what} {a:.0f} -> {b:.0f} ms, but it was not measured with the "
                        "store back at its small size, so the store and time passing cannot be told apart")
        return said(INCONCLUSIVE)
    back = f", back to {facts.get('size_back')} {unit}: {c:.0f} ms" if c is not None else ""
    if slower and b > 1.5 * c and b - c > 20:
        ev["answer"] = f"{sizes}: {what} {a:.0f} -> {b:.0f} ms{back}: each turn reads the whole store"
        return said(CONFIRMED)
    if slower:
        ev["missing"] = "a slow-down that follows the store's size"
        ev["answer"] = (f"cannot tell: {sizes}: {what} {a:.0f} -> {b:.0f} ms{back}: the turns stayed slow with "
                        "the store shrunk back, so something else slowed them (it piles up with time)")
        return said(INCONCLUSIVE)
    ev["answer"] = (f"{sizes}: {what} {a:.0f} -> {b:.0f} ms{back}{prompt_text}: "
                    "the per-turn read does not grow with the store")
    return said(RULED_OUT)


# -- C6 -----------------------------------------------------------------------


def rule_c6(record: Record) -> Result:
    """Shared engines: does state inside an engine every session shares grow
    with sessions?"""
    roles = record.get("roles") or {}
    s = run_of(record)
    ev = base_evidence(record)
    if not roles.get("shared_engines"):
        return missing_role("shared_engines", ev)
    if s is None:
        return not_measured("the open-close run", ev)
    if (few := too_few(s, ev)) is not None:
        return few
    inside = [c for p in roles["shared_engines"] for c in containers_under(s, p)]
    if not inside:
        return not_measured(f"any container inside {', '.join(roles['shared_engines'])}", ev,
                             "check roles.shared_engines against the census's container paths")
    grows = sorted((c for c in inside if c.get("verdict") == Verdict.LEAK), key=lambda c: -(c.get("per_cycle") or 0))
    ev["growing"] = grows
    if grows:
        c = grows[0]
        ev["answer"] = f"{c['path']} (inside a shared engine) keeps one entry per client: {staircase(c)}"
        return CONFIRMED, ev
    flat = "; ".join(f"{c['path']} {fmt(c.get('start'))} -> {fmt(c.get('end'))}" for c in inside[:3])
    ev["answer"] = (f"{len(inside)} container(s) inside the shared engines ({', '.join(roles['shared_engines'])}) "
                    f"stayed flat over {judged(s)} sessions ({flat}{'; ...' if len(inside) > 3 else ''})")
    return RULED_OUT, ev


RULES: dict[str, Callable[[Record], Result]] = {
    "C1": rule_c1, "C2": rule_c2, "C3": rule_c3, "C4": rule_c4, "C5": rule_c5,
    "C6": rule_c6, "C7": rule_c7, "C8": rule_c8, "C9": rule_c9,
}


def judge_record(record: Record) -> Result:
    """The verdict of a record: its error or non-applicability first, then
    its item's rule."""
    if record.get("error"):
        return INCONCLUSIVE, {"answer": f"the experiment failed: {record['error']}", "missing": "a run that completes"}
    if record.get("undecidable"):
        return INCONCLUSIVE, {"answer": record["undecidable"], "missing": "a declaration the experiment needs"}
    if record.get("applicable") is False:
        return NOT_APPLICABLE, {"answer": record.get("reason") or "the target does not have this feature"}
    verdict, ev = RULES[record["item"]](record)
    if verdict == RULED_OUT and (ev.get("held_by") or ev.get("root")):
        # Evidence that names what retains the item's object can't rule it out.
        root = ev.get("root") or "a retaining root"
        ev = {**ev, "missing": "a run where nothing retains the object",
              "answer": f"cannot rule out: {ev.get('answer', '')}; yet {root} was found holding it"}
        return INCONCLUSIVE, ev
    return verdict, ev
