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

from collections.abc import Callable, Mapping
from typing import Any

from ..metrics import ItemVerdict, Verdict
from ..targets.base import session_memory_path

# The answers by their old module-level names (aliases of the enum's members).
CONFIRMED = ItemVerdict.CONFIRMED
TRANSIENT = ItemVerdict.TRANSIENT
RULED_OUT = ItemVerdict.RULED_OUT
NOT_APPLICABLE = ItemVerdict.NOT_APPLICABLE
INCONCLUSIVE = ItemVerdict.INCONCLUSIVE
VERDICTS = tuple(ItemVerdict)

#: Fewer judged (non-failed) cycles than this and no rule decides.
MIN_JUDGED_CYCLES = 3

Record = Mapping[str, Any]
Result = tuple[ItemVerdict, dict[str, Any]]

_ROLE_HELP = {
    "session_type": "the per-connection object (roles.session_type: a watched type)",
    "agent_type": "the agent type (roles.agent_type: a watched type)",
    "mcp_client_type": "the MCP client type (roles.mcp_client_type: a watched type)",
    "connections": "the registry of open connections (roles.connections: a container path such as "
                   "'handler.client_connections')",
    "session_tasks": "the per-session task registry (roles.session_tasks)",
    "shared_memory": "agent memory on shared objects (roles.shared_memory: container paths)",
    "shared_engines": "the engines every session shares (roles.shared_engines: container path prefixes)",
    "tts_cache": "the TTS audio folder (roles.tts_cache: a resource name)",
    "history": "the history store (roles.history: ['sqlite', resource] or ['json_dir', resource])",
    "session_close": "the per-session close method (roles.session_close: a lifecycle label)",
    "mcp_close": "the MCP client's close method (roles.mcp_close: a lifecycle label)",
}


# -- helpers ------------------------------------------------------------------


def _fmt(x: Any, unit: str = "") -> str:
    if x is None:
        return "-"
    if isinstance(x, float):
        x = round(x, 1) if abs(x) < 100 else round(x)
    return f"{x}{unit}"


def _missing_role(role: str, evidence: dict[str, Any] | None = None) -> Result:
    ev = dict(evidence or {})
    ev["missing"] = f"role {role}"
    ev["answer"] = (f"cannot tell: role {role} is not declared: {_ROLE_HELP.get(role, role)}; "
                    "declare it in a target file's [roles] table")
    return INCONCLUSIVE, ev


def _not_measured(what: str, evidence: dict[str, Any] | None = None, declare: str = "") -> Result:
    ev = dict(evidence or {})
    ev["missing"] = what
    ev["answer"] = f"cannot tell: {what} was not measured" + (f" ({declare})" if declare else "")
    return INCONCLUSIVE, ev


def run_of(record: Record, name: str = "main") -> dict[str, Any] | None:
    """One run's summary from a record."""
    return (record.get("runs") or {}).get(name)


def judged(summary: Mapping[str, Any]) -> int:
    """Cycles a summary's verdicts rest on (failed cycles do not count)."""
    if "judged_cycles" in summary:
        return int(summary["judged_cycles"])
    return int(summary.get("cycles") or 0) - len(summary.get("failed_cycles") or [])


def _too_few(summary: Mapping[str, Any], evidence: dict[str, Any]) -> Result | None:
    n = judged(summary)
    if n >= MIN_JUDGED_CYCLES:
        return None
    failed = summary.get("failed_cycles") or []
    ev = dict(evidence)
    ev["missing"] = f"at least {MIN_JUDGED_CYCLES} judged cycles"
    ev["answer"] = (f"cannot tell: only {n} of {summary.get('cycles')} cycles judged"
                    + (f" ({len(failed)} failed: {'; '.join((summary.get('errors') or [])[:2])})" if failed else "")
                    + f"; run at least {MIN_JUDGED_CYCLES}")
    return INCONCLUSIVE, ev


def container(summary: Mapping[str, Any], path: str) -> dict[str, Any] | None:
    """The measured container at exactly ``path`` (flat ones included)."""
    return next((c for c in summary.get("containers") or [] if c.get("path") == path), None)


def containers_under(summary: Mapping[str, Any], prefix: str) -> list[dict[str, Any]]:
    """Measured containers at ``prefix`` or below it."""
    return [c for c in summary.get("containers") or []
            if c.get("path") == prefix or str(c.get("path", "")).startswith((prefix + ".", prefix + "["))]


def _growing(v: Mapping[str, Any] | None) -> bool:
    return bool(v) and v.get("verdict") in (Verdict.LEAK, Verdict.TRANSIENT)


def _staircase(v: Mapping[str, Any]) -> str:
    return (f"{_fmt(v.get('start'))} -> {_fmt(v.get('end'))} "
            f"({'+' if (v.get('per_cycle') or 0) >= 0 else ''}{_fmt(v.get('per_cycle'))}/cycle)")


def _base(record: Record, keys: tuple[str, ...] = ()) -> dict[str, Any]:
    main = run_of(record) or {}
    ev: dict[str, Any] = {"judged_cycles": judged(main) if main else 0}
    for key in keys:
        if key in (record.get("facts") or {}):
            ev[key] = record["facts"][key]
    return ev


# -- C1 -----------------------------------------------------------------------


def rule_c1(record: Record) -> Result:
    """Fire-and-forget forward tasks: in a proxied chat whose client leaves
    before playback, does any task coroutine stay pending per message, or
    are tasks destroyed while pending?"""
    s = run_of(record)
    ev = _base(record, ("tasks_destroyed_pending",))
    if s is None:
        return _not_measured("the proxied chat", ev)
    if (few := _too_few(s, ev)) is not None:
        return few
    by = s.get("tasks", {}).get("by_coroutine", {})
    growing = sorted(((k, v) for k, v in by.items() if _growing(v)), key=lambda kv: -(kv[1].get("per_cycle") or 0))
    lost = int((record.get("facts") or {}).get("tasks_destroyed_pending") or 0)
    ev["growing_tasks"] = {k: v for k, v in growing}
    if growing:
        name, v = growing[0]
        kept = "never released" if v["verdict"] == Verdict.LEAK else f"released after {_fmt(v.get('lifetime_s'), ' s')}"
        ev["answer"] = f"{name} tasks stay pending per proxied message: {_staircase(v)}, {kept}"
        return (CONFIRMED if v["verdict"] == Verdict.LEAK else TRANSIENT), ev
    if lost:
        ev["answer"] = f"{lost} tasks were destroyed while pending (lost, not retained)"
        return CONFIRMED, ev
    total = s.get("tasks") or {}
    if total.get("verdict") in (None, Verdict.INSUFFICIENT):
        return _not_measured("the live task count", ev)
    ev["answer"] = (f"no task coroutine grew over {judged(s)} proxied chats ({_fmt(total.get('start'))} tasks at baseline, "
                    f"{_fmt(total.get('end'))} at the end, {_fmt(total.get('per_cycle'))}/cycle) "
                    "and none was destroyed while pending")
    return RULED_OUT, ev


# -- C2 -----------------------------------------------------------------------


def rule_c2(record: Record) -> Result:
    """Agent memory: does memory on a shared object grow per session (and
    the LLM call slow with it); is each session's agent freed?"""
    roles = record.get("roles") or {}
    s = run_of(record)
    ev = _base(record)
    if not roles.get("shared_memory"):
        return _missing_role("shared_memory", ev)
    if s is None:
        return _not_measured("the chat run", ev)
    if (few := _too_few(s, ev)) is not None:
        return few
    shared = [c for p in roles["shared_memory"] for c in ([container(s, p)] if container(s, p) else [])]
    ev["shared_memory"] = shared
    llm = (s.get("latency_ms") or {}).get("llm") or {}
    ev["llm_ms"] = llm
    if not shared:
        return _not_measured(f"no container at {', '.join(roles['shared_memory'])}", ev,
                             "check roles.shared_memory against the census's container paths")
    # what the live sessions' own agents hold, counted apart from the shared memory
    own_path = (session_memory_path(roles["session_type"], roles["session_memory"])
                if roles.get("session_type") and roles.get("session_memory") else None)
    own = container(s, own_path) if own_path else None
    ev["session_memory"] = own
    grows = [c for c in shared if c.get("verdict") == Verdict.LEAK]
    effect = (f"; time in the LLM call {_fmt(llm.get('first'))} -> {_fmt(llm.get('last'))} ms, "
              f"{_fmt(llm.get('per_cycle'))} ms/cycle ({llm.get('verdict')})"
              if llm.get("first") is not None else "; the LLM call is not timed on this target")
    own_text = (f"; the live sessions' own memory {_fmt(own.get('start'))} -> {_fmt(own.get('end'))} messages"
                if own else "")
    if grows:
        c = grows[0]
        ev["answer"] = f"{c['path']} (shared by every session) grows {_staircase(c)} messages{own_text}{effect}"
        return CONFIRMED, ev
    if own is not None and own.get("verdict") == Verdict.LEAK:
        ev["answer"] = (f"shared memory flat, but the memory of sessions that ended is still held: "
                        f"{own['path']} {_staircase(own)} messages{effect}")
        return CONFIRMED, ev
    agent = roles.get("agent_type")
    agents = (s.get("types") or {}).get(agent) if agent else None
    ev["agents"] = agents
    if agents is not None and agents.get("verdict") == Verdict.LEAK:
        ev["answer"] = (f"shared memory flat, but {agent} instances pile up {_staircase(agents)}: "
                        "each session's agent and its memory outlive the session")
        return CONFIRMED, ev
    flat = "; ".join(f"{c['path']} {_fmt(c.get('start'))} -> {_fmt(c.get('end'))}" for c in shared)
    if own is None and agents is None:
        ev["missing"] = "each session's own agent memory"
        ev["answer"] = (f"cannot tell: shared memory stayed flat over {judged(s)} sessions ({flat}), but whether "
                        "each session's agent is freed was not measured: declare roles.session_type with "
                        "roles.session_memory, or roles.agent_type")
        return INCONCLUSIVE, ev
    per_session = (f"; {agent} instances {_fmt(agents.get('start'))} -> {_fmt(agents.get('end'))}" if agents else "")
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
    ev = _base(record, ("children_peak", "children_baseline", "children_after_close", "close_outcomes",
                        "clients_alive"))
    if not roles.get("mcp_client_type"):
        return _missing_role("mcp_client_type", ev)
    if s is None:
        return _not_measured("the chat run", ev)
    if (few := _too_few(s, ev)) is not None:
        return few
    children = (s.get("resources") or {}).get("children") or {}
    ev["children"] = children
    peak = facts.get("children_peak")
    base = facts.get("children_baseline")
    if base is None:
        base = children.get("start") or 0
    if peak is None:
        return _not_measured("child processes", ev)
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
                        f"{_staircase(children)}: closing does not reap them")
        return CONFIRMED, ev
    if children.get("verdict") == Verdict.LEAK and not outcomes:
        return _not_measured("the close path (children grew, but no MCP client was left alive to close)", ev)
    closed = f"{len(outcomes)} live clients closed from another task, none raised" if outcomes else "no client was left alive"
    reached = ""
    if objs.get("of"):
        reached = f"; the backend's aclose() ran for {objs.get('ran_for', 0)} of {objs['of']} session clients"
        if objs.get("ran_for", 0) < objs["of"]:
            reached += " (close is not reached: see C9)"
    back = after if after is not None else children.get("end")
    if back is None:
        return _not_measured("child processes after closing", ev)
    ev["answer"] = (f"children rose to {peak:.0f} during sessions and were back to {back:.0f} "
                    f"(baseline {base:.0f}) after closing; {closed}{reached}")
    return RULED_OUT, ev


# -- C4 -----------------------------------------------------------------------


def rule_c4(record: Record) -> Result:
    """TTS audio files: do they pile up with abrupt closes, how fast?"""
    roles = record.get("roles") or {}
    s = run_of(record)
    ev = _base(record)
    if not roles.get("tts_cache"):
        return _missing_role("tts_cache", ev)
    if s is None:
        return _not_measured("the abrupt chat run", ev)
    res = s.get("resources") or {}
    files, size = res.get("cache_files"), res.get("cache_bytes")
    ev.update(cache_files=files, cache_bytes=size)
    if not files:
        return _not_measured(f"the {roles['tts_cache']} folder", ev, "check roles.tts_cache against the target's resources")
    if (few := _too_few(s, ev)) is not None:
        return few
    if files.get("verdict") == Verdict.INSUFFICIENT:
        return _not_measured(f"the {roles['tts_cache']} file count (too few values to judge)", ev)
    if files.get("verdict") == Verdict.LEAK:
        per = files.get("per_cycle") or 0
        bytes_per = (size or {}).get("per_cycle") or 0
        ev["cycles_to_1000_files"] = round(1000 / per) if per > 0 else None
        ev["answer"] = (f"audio files pile up {_staircase(files)} per abrupt close ({bytes_per / 1024:.0f} KiB each cycle), "
                        f"never removed: the users' 1000-file mark after ~{ev['cycles_to_1000_files']} closes")
        return CONFIRMED, ev
    turns = ((s.get("latency_ms") or {}).get("first_reply") or {}).get("first")
    if turns is None:
        return _not_measured("audio written before an abrupt close", ev, "no audio was received: check the TTS")
    ev["answer"] = f"cache files {_staircase(files)} over {judged(s)} abrupt closes: removed on that path too"
    return RULED_OUT, ev


# -- C5 -----------------------------------------------------------------------


def rule_c5(record: Record) -> Result:
    """History store: rows or files per session, and does reply time depend
    on the store's size (measured by growing it)?"""
    roles = record.get("roles") or {}
    facts = record.get("facts") or {}
    ev = _base(record, ("store", "size_small", "size_large", "unit"))
    if not roles.get("history"):
        return _missing_role("history", ev)
    small, large = run_of(record, "small"), run_of(record, "large")
    if small is None or large is None:
        return _not_measured(f"the reply time at two sizes of the {roles['history'][0]} store", ev,
                             facts.get("store_error") or "the store was not found or could not be grown")
    for run in (small, large):
        if (few := _too_few(run, ev)) is not None:
            return few
    metric = facts.get("latency_metric", "llm")
    a, b = facts.get("latency_small_ms"), facts.get("latency_large_ms")
    ev.update(latency_small_ms=a, latency_large_ms=b, latency_metric=metric)
    if a is None or b is None:
        return _not_measured("reply time (no turn finished at one of the sizes)", ev)
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
    if None not in prompts and pb > 1.5 * max(pa, pc) and pb - max(pa, pc) > 200:
        ev["answer"] = (f"{sizes}{prompt_text}: each turn reads the whole store into the prompt "
                        f"({what} {a:.0f} -> {b:.0f} ms)")
        return CONFIRMED, ev
    slower = b > 1.5 * a and b - a > 20
    if slower and c is None:
        ev["missing"] = "the reply time with the store shrunk back"
        ev["answer"] = (f"cannot tell: {sizes}: {what} {a:.0f} -> {b:.0f} ms, but it was not measured with the "
                        "store back at its small size, so the store and time passing cannot be told apart")
        return INCONCLUSIVE, ev
    back = f", back to {facts.get('size_back')} {unit}: {c:.0f} ms" if c is not None else ""
    if slower and b > 1.5 * c and b - c > 20:
        ev["answer"] = f"{sizes}: {what} {a:.0f} -> {b:.0f} ms{back}: each turn reads the whole store"
        return CONFIRMED, ev
    if slower:
        ev["missing"] = "a slow-down that follows the store's size"
        ev["answer"] = (f"cannot tell: {sizes}: {what} {a:.0f} -> {b:.0f} ms{back}: the turns stayed slow with "
                        "the store shrunk back, so something else slowed them (it piles up with time)")
        return INCONCLUSIVE, ev
    ev["answer"] = (f"{sizes}: {what} {a:.0f} -> {b:.0f} ms{back}{prompt_text}: "
                    "the per-turn read does not grow with the store")
    return RULED_OUT, ev


# -- C6 -----------------------------------------------------------------------


def rule_c6(record: Record) -> Result:
    """Shared engines: does state inside an engine every session shares grow
    with sessions?"""
    roles = record.get("roles") or {}
    s = run_of(record)
    ev = _base(record)
    if not roles.get("shared_engines"):
        return _missing_role("shared_engines", ev)
    if s is None:
        return _not_measured("the open-close run", ev)
    if (few := _too_few(s, ev)) is not None:
        return few
    inside = [c for p in roles["shared_engines"] for c in containers_under(s, p)]
    if not inside:
        return _not_measured(f"any container inside {', '.join(roles['shared_engines'])}", ev,
                             "check roles.shared_engines against the census's container paths")
    grows = sorted((c for c in inside if c.get("verdict") == Verdict.LEAK), key=lambda c: -(c.get("per_cycle") or 0))
    ev["growing"] = grows
    if grows:
        c = grows[0]
        ev["answer"] = f"{c['path']} (inside a shared engine) keeps one entry per client: {_staircase(c)}"
        return CONFIRMED, ev
    flat = "; ".join(f"{c['path']} {_fmt(c.get('start'))} -> {_fmt(c.get('end'))}" for c in inside[:3])
    ev["answer"] = (f"{len(inside)} container(s) inside the shared engines ({', '.join(roles['shared_engines'])}) "
                    f"stayed flat over {judged(s)} sessions ({flat}{'; ...' if len(inside) > 3 else ''})")
    return RULED_OUT, ev


# -- C7 -----------------------------------------------------------------------


def rule_c7(record: Record) -> Result:
    """Half-open connections: does one that stops answering (no pong, TCP
    left open) stay in the connection registry, or does the server's ping
    remove it (after how long)?"""
    roles = record.get("roles") or {}
    facts = record.get("facts") or {}
    s = run_of(record)
    ev = _base(record, ("ping_interval_s", "ping_timeout_s", "timeline_s"))
    if not roles.get("connections"):
        return _missing_role("connections", ev)
    if s is None:
        return _not_measured("the reconnect storm", ev)
    if (few := _too_few(s, ev)) is not None:
        return few
    conns = container(s, roles["connections"])
    ev["connections"] = conns
    if conns is None:
        return _not_measured(f"the container at {roles['connections']}", ev,
                             "check roles.connections against the census's container paths")
    ping = facts.get("ping_interval_s")
    timeout = facts.get("ping_timeout_s")
    waited = facts.get("timeline_s")
    pings = ("the server's ping was not read" if "ping_interval_s" not in facts else
             "the server sends no ping" if not ping else
             f"ping every {ping:g} s, timeout {'none' if timeout is None else f'{timeout:g} s'}")
    if conns.get("verdict") == Verdict.TRANSIENT:
        ev["answer"] = (f"half-open clients are removed after about {_fmt(conns.get('lifetime_s'), ' s')} "
                        f"({pings}); {roles['connections']} peaked at {_fmt(conns.get('end'))}")
        return TRANSIENT, ev
    if ping and waited is not None and waited < ping + (timeout or 0):
        return _not_measured(f"a timeline as long as the server's ping ({ping:g} + {timeout or 0:g} s; "
                             f"sampled {waited:g} s)", ev)
    if conns.get("verdict") == Verdict.LEAK:
        ev["answer"] = (f"half-open clients stay in {roles['connections']}: {_staircase(conns)}, "
                        f"still there {_fmt(waited)} s after the last cycle ({pings})")
        return CONFIRMED, ev
    ev["answer"] = (f"{roles['connections']} {_staircase(conns)} over {judged(s)} storms: every connection, "
                    f"half-open ones included, was dropped by the end of the cycle ({pings})")
    return RULED_OUT, ev


# -- C8 -----------------------------------------------------------------------


def _pending_task_groups(facts: Mapping[str, Any], session_type: str) -> list[dict[str, Any]]:
    groups = ((facts.get("retention") or {}).get("groups")) or []
    return [g for g in groups if g.get("type") == session_type]


def rule_c8(record: Record) -> Result:
    """A task created on character switch: does it keep a closed session's
    object alive (for good, or for how long), when a control run without the
    switch keeps nothing?"""
    roles = record.get("roles") or {}
    facts = record.get("facts") or {}
    s, control = run_of(record), run_of(record, "control")
    ev = _base(record)
    st = roles.get("session_type")
    if not st:
        return _missing_role("session_type", ev)
    if s is None:
        return _not_measured("the switch-then-close run", ev)
    if (few := _too_few(s, ev)) is not None:
        return few
    ctx = (s.get("types") or {}).get(st)
    ev[st] = ctx
    if ctx is None:
        return _not_measured(f"live {st} instances (not a watched type)", ev)
    groups = _pending_task_groups(facts, st)
    task_roots = [g for g in groups if g.get("root_kind") == "pending_task"]
    switch_tasks = {k: v for k, v in (s.get("tasks", {}).get("by_coroutine") or {}).items() if _growing(v)}
    if control is not None:
        control_tasks = control.get("tasks", {}).get("by_coroutine") or {}
        switch_tasks = {k: v for k, v in switch_tasks.items() if not _growing(control_tasks.get(k))}
    ev["tasks_growing_with_switch"] = switch_tasks
    root_label = created_at = None
    if task_roots:
        g = task_roots[0]
        first = (g.get("chain") or [{}])[0]
        root_label, created_at = first.get("label"), first.get("where")
        ev.update(held_by=g.get("chain"), root=root_label, created_at=created_at, count=g.get("count"),
                  deep_bytes=g.get("deep_bytes"), retained_bytes=g.get("retained_bytes"))
    ctrl = (control.get("types") or {}).get(st) if control is not None else None
    ev["control"] = ctrl
    if not _growing(ctx):
        if switch_tasks:
            names = ", ".join(switch_tasks)
            ev["answer"] = (f"no {st} outlived its connection after a switch ({_staircase(ctx)}), though "
                            f"{names} tasks grew with switches")
        else:
            ev["answer"] = (f"no {st} outlived its connection after a switch ({_staircase(ctx)} over "
                            f"{judged(s)} switch-then-close cycles) and no task grew with the switch")
        return RULED_OUT, ev
    if control is None:
        return _not_measured("the control run without a switch", ev)
    if ctrl is None or ctrl.get("verdict") == Verdict.INSUFFICIENT:
        return _not_measured(f"live {st} instances in the control run", ev)
    if _growing(ctrl):
        ev["answer"] = (f"{st} is retained with or without a switch (switch {_staircase(ctx)}, control "
                        f"{_staircase(ctrl)}): not the switch's task (see C9 and the chains)")
        return RULED_OUT, ev
    if not task_roots:
        roots = sorted({g.get("root_kind") for g in groups}) or ["none found"]
        ev["answer"] = (f"{st} is retained only after a switch ({_staircase(ctx)}; control flat), "
                        f"but its root is not a pending task ({', '.join(map(str, roots))})")
        return INCONCLUSIVE, ev
    g = task_roots[0]
    where = f" [{created_at}]" if created_at and created_at not in (root_label or "") else ""
    size = (f"; {g['retained_bytes'] / 1024:.0f} KiB retained by {g.get('count', '?')}"
            if g.get("retained_bytes") else "")
    root = root_label or "a pending task"
    if ctx.get("verdict") == Verdict.LEAK:
        ev["answer"] = (f"+{_fmt(ctx.get('per_cycle'))} {st} per switch-then-close, never released: held by "
                        f"{root}{where}{size}; the control run without a switch keeps none")
        return CONFIRMED, ev
    ev["answer"] = (f"{st} retained after a switch-then-close and released after "
                    f"{_fmt(ctx.get('lifetime_s'), ' s')}: held by {root}{where}{size}; the control keeps none")
    return TRANSIENT, ev


# -- C9 -----------------------------------------------------------------------


def rule_c9(record: Record) -> Result:
    """Is the per-session close() reached for every session that ended?"""
    roles = record.get("roles") or {}
    s = run_of(record)
    ev = _base(record)
    label = roles.get("session_close")
    if not label:
        return _missing_role("session_close", ev)
    if s is None:
        return _not_measured("the open-close run", ev)
    if (few := _too_few(s, ev)) is not None:
        return few
    close = (s.get("lifecycle") or {}).get(label)
    ev["close"] = close
    if close is None or not close.get("expected"):
        return _not_measured(f"calls of {label} (no session ended, or it is not counted)", ev)
    obj = close.get("objects") or {}
    noun = label.rpartition(".")[0] or "session"
    if obj.get("of"):
        short = f"; {obj.get('short_lived_calls', 0)} of them on short-lived ones" if obj.get("short_lived") else ""
        counts = f"({close['calls']} calls for {close['expected']} disconnects{short})"
        if obj.get("ran_for", 0) < obj["of"]:
            ev["answer"] = (f"close() ran for {obj.get('ran_for', 0)} of {obj['of']} {noun} objects still open when "
                            f"their session ended {counts}")
            return CONFIRMED, ev
        ev["answer"] = f"close() ran for {obj['ran_for']} of {obj['of']} {noun} objects when their session ended {counts}"
        return RULED_OUT, ev
    if close["calls"] < close["expected"]:
        ev["answer"] = f"close() ran {close['calls']} times for {close['expected']} disconnects"
        return CONFIRMED, ev
    ev["answer"] = (f"close() ran once per disconnect ({close['calls']} of {close['expected']})"
                    if close["calls"] == close["expected"] else
                    f"close() ran {close['calls']} times for {close['expected']} disconnects (counted in total, "
                    "not per object)")
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
    return RULES[record["item"]](record)
