"""The checklist's rules about a session's end: half-open connections (C7),
a task started on switch that outlives its session (C8), and the
per-session close that is never reached (C9). Pure functions of a record,
as :mod:`.rules`."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..metrics import Verdict
from .evidence import (
    CONFIRMED,
    INCONCLUSIVE,
    RULED_OUT,
    Record,
    Result,
    TRANSIENT,
    base_evidence,
    container,
    fmt,
    is_growing,
    judged,
    missing_role,
    not_measured,
    run_of,
    staircase,
    too_few,
)




#: A release by the server's ping may come this much (or a quarter of the
#: window) after ping interval + timeout: sampling and scheduling slack.
PING_SLACK_S = 0.5

# -- C7 -----------------------------------------------------------------------


def rule_c7(record: Record) -> Result:
    """Half-open connections: does one that stops answering (no pong, TCP
    left open) stay in the connection registry, or does the server's ping
    remove it (after how long)?"""
    roles = record.get("roles") or {}
    facts = record.get("facts") or {}
    s = run_of(record)
    ev = base_evidence(record, ("ping_interval_s", "ping_timeout_s", "timeline_s"))
    if not roles.get("connections"):
        return missing_role("connections", ev)
    if s is None:
        return not_measured("the reconnect storm", ev)
    if (few := too_few(s, ev)) is not None:
        return few
    conns = container(s, roles["connections"])
    ev["connections"] = conns
    if conns is None:
        return not_measured(f"the container at {roles['connections']}", ev,
                             "check roles.connections against the census's container paths")
    ping = facts.get("ping_interval_s")
    timeout = facts.get("ping_timeout_s")
    waited = facts.get("timeline_s")
    pings = ("the server's ping was not read" if "ping_interval_s" not in facts else
             "the server sends no ping" if not ping else
             f"ping every {ping:g} s, timeout {'none' if timeout is None else f'{timeout:g} s'}")
    if conns.get("verdict") == Verdict.TRANSIENT:
        released = conns.get("lifetime_s")
        window = (ping or 0) + (timeout or 0)
        if ping and timeout and released is not None and released <= window + max(PING_SLACK_S, window / 4):
            # The server's own ping released them within its configured
            # window: the protocol's design, not a finding.
            ev["released_s"], ev["ping_window_s"] = released, window
            ev["answer"] = (f"half-open clients were released after about {fmt(released, ' s')}, within the "
                            f"server's ping window ({ping:g} + {timeout:g} s): the protocol's design; "
                            f"{roles['connections']} peaked at {fmt(conns.get('end'))}")
            return RULED_OUT, ev
        later = f", later than the ping window of {window:g} s" if ping and timeout else ""
        ev["answer"] = (f"half-open clients are removed after about {fmt(released, ' s')}{later} "
                        f"({pings}); {roles['connections']} peaked at {fmt(conns.get('end'))}")
        return TRANSIENT, ev
    if ping and waited is not None and waited < ping + (timeout or 0):
        return not_measured(f"a timeline as long as the server's ping ({ping:g} + {timeout or 0:g} s; "
                             f"sampled {waited:g} s)", ev)
    if conns.get("verdict") == Verdict.LEAK:
        ev["answer"] = (f"half-open clients stay in {roles['connections']}: {staircase(conns)}, "
                        f"still there {fmt(waited)} s after the last cycle ({pings})")
        return CONFIRMED, ev
    ev["answer"] = (f"{roles['connections']} {staircase(conns)} over {judged(s)} storms: every connection, "
                    f"half-open ones included, was dropped by the end of the cycle ({pings})")
    return RULED_OUT, ev


# -- C8 -----------------------------------------------------------------------


def _pending_task_groups(facts: Mapping[str, Any], session_type: str) -> list[dict[str, Any]]:
    groups = ((facts.get("retention") or {}).get("groups")) or []
    return [g for g in groups if g.get("type") == session_type]


def outlived_text(life: Mapping[str, Any] | None, noun: str) -> str | None:
    """``"3 of 5 Sess outlived their session by 4.1-6.4 s"`` from a run's
    per-object lifetimes (``summary["lifetimes"][type]``); ``None`` when
    none outlived its session beyond the settle time."""
    if not life or not life.get("outlived"):
        return None
    lo, hi = life.get("outlived_min_s"), life.get("outlived_max_s")
    span = f"{lo:.1f} s" if lo is not None and hi is not None and abs(hi - lo) < 0.05 else (
        f"{fmt(lo)}-{fmt(hi)} s" if lo is not None else "more than the settle time")
    alive = f" ({life['alive']} still alive at the end of the run)" if life.get("alive") else ""
    return f"{life['outlived']} of {life.get('objects', '?')} {noun} outlived their session by {span}{alive}"


def rule_c8(record: Record) -> Result:
    """A task created on character switch: does it keep a closed session's
    object alive (for good, or for how long), when a control run without the
    switch keeps nothing?"""
    roles = record.get("roles") or {}
    facts = record.get("facts") or {}
    s, control = run_of(record), run_of(record, "control")
    ev = base_evidence(record)
    st = roles.get("session_type")
    if not st:
        return missing_role("session_type", ev)
    if s is None:
        return not_measured("the switch-then-close run", ev)
    if (few := too_few(s, ev)) is not None:
        return few
    ctx = (s.get("types") or {}).get(st)
    ev[st] = ctx
    if ctx is None:
        return not_measured(f"live {st} instances (not a watched type)", ev)
    groups = _pending_task_groups(facts, st)
    task_roots = [g for g in groups if g.get("root_kind") == "pending_task"]
    switch_tasks = {k: v for k, v in (s.get("tasks", {}).get("by_coroutine") or {}).items() if is_growing(v)}
    if control is not None:
        control_tasks = control.get("tasks", {}).get("by_coroutine") or {}
        switch_tasks = {k: v for k, v in switch_tasks.items() if not is_growing(control_tasks.get(k))}
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
    # Per object, whatever the cycle length: how long each one lived after
    # its session ended (a population slope misses a hold longer than a cycle).
    life = (s.get("lifetimes") or {}).get(st)
    ctrl_life = ((control.get("lifetimes") or {}).get(st) if control is not None else None)
    ev["lifetimes"] = life
    outlived = outlived_text(life, st)
    if outlived and not (ctrl_life and ctrl_life.get("outlived")) and not is_growing(ctx):
        ended_with = next(iter(((life or {}).get("ended_with") or {}).items()), None)
        held = (f": held by {root_label or 'a pending task'}" + (
            f" [{created_at}]" if created_at and created_at not in (root_label or "") else "") if task_roots else
            f"; {ended_with[1]} of them freed as task {ended_with[0]} ended" if ended_with else "")
        ev["answer"] = (f"{outlived}{held} ({st} count {staircase(ctx)}: released before the next census"
                        + ("" if control is None else "; the control run without a switch keeps none") + ")")
        return TRANSIENT, ev
    if not is_growing(ctx) and "lifetimes" in s and life is None:
        # A flat count cannot rule out a hold longer than a cycle; without
        # each object's lifetime it was not measured.
        return not_measured(f"how long each {st} lived after its session ended (its creations were not seen, "
                            f"or no session ended)", ev)
    if not is_growing(ctx):
        if switch_tasks:
            names = ", ".join(switch_tasks)
            ev["answer"] = (f"no {st} outlived its connection after a switch ({staircase(ctx)}), though "
                            f"{names} tasks grew with switches")
        else:
            ev["answer"] = (f"no {st} outlived its connection after a switch ({staircase(ctx)} over "
                            f"{judged(s)} switch-then-close cycles) and no task grew with the switch")
        if life and life.get("objects"):
            ev["answer"] += (f"; each of the {life['objects']} was freed within {fmt(life.get('threshold_s'))} s "
                             "of its session's end")
        return RULED_OUT, ev
    if control is None:
        return not_measured("the control run without a switch", ev)
    if ctrl is None or ctrl.get("verdict") == Verdict.INSUFFICIENT:
        return not_measured(f"live {st} instances in the control run", ev)
    if is_growing(ctrl):
        ev["answer"] = (f"{st} is retained with or without a switch (switch {staircase(ctx)}, control "
                        f"{staircase(ctrl)}): not the switch's task (see C9 and the chains)")
        return RULED_OUT, ev
    if not task_roots:
        roots = sorted({g.get("root_kind") for g in groups}) or ["none found"]
        ev["answer"] = (f"{st} is retained only after a switch ({staircase(ctx)}; control flat), "
                        f"but its root is not a pending task ({', '.join(map(str, roots))})")
        return INCONCLUSIVE, ev
    g = task_roots[0]
    where = f" [{created_at}]" if created_at and created_at not in (root_label or "") else ""
    size = (f"; {g['retained_bytes'] / 1024:.0f} KiB retained by {g.get('count', '?')}"
            if g.get("retained_bytes") else "")
    root = root_label or "a pending task"
    if ctx.get("verdict") == Verdict.LEAK:
        ev["answer"] = (f"+{fmt(ctx.get('per_cycle'))} {st} per switch-then-close, never released: held by "
                        f"{root}{where}{size}; the control run without a switch keeps none")
        return CONFIRMED, ev
    ev["answer"] = (f"{st} retained after a switch-then-close and released after "
                    f"{fmt(ctx.get('lifetime_s'), ' s')}: held by {root}{where}{size}; the control keeps none")
    return TRANSIENT, ev


# -- C9 -----------------------------------------------------------------------


def rule_c9(record: Record) -> Result:
    """Is the per-session close() reached for every session that ended?"""
    roles = record.get("roles") or {}
    s = run_of(record)
    ev = base_evidence(record)
    label = roles.get("session_close")
    if not label:
        return missing_role("session_close", ev)
    if s is None:
        return not_measured("the open-close run", ev)
    if (few := too_few(s, ev)) is not None:
        return few
    close = (s.get("lifecycle") or {}).get(label)
    ev["close"] = close
    if close is None or not close.get("expected"):
        return not_measured(f"calls of {label} (no session ended, or it is not counted)", ev)
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


