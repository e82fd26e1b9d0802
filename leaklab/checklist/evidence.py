"""What every checklist rule reads an experiment record with: the answers,
the run summaries, the measured containers, the wording of a number, and
the "cannot tell" results that name what is missing."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..metrics import ItemVerdict, Verdict

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

ROLE_HELP = {
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


def fmt(x: Any, unit: str = "") -> str:
    if x is None:
        return "-"
    if isinstance(x, float):
        x = round(x, 1) if abs(x) < 100 else round(x)
    return f"{x}{unit}"


def missing_role(role: str, evidence: dict[str, Any] | None = None) -> Result:
    ev = dict(evidence or {})
    ev["missing"] = f"role {role}"
    ev["answer"] = (f"cannot tell: role {role} is not declared: {ROLE_HELP.get(role, role)}; "
                    "declare it in a target file's [roles] table")
    return INCONCLUSIVE, ev


def not_measured(what: str, evidence: dict[str, Any] | None = None, declare: str = "") -> Result:
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


def too_few(summary: Mapping[str, Any], evidence: dict[str, Any]) -> Result | None:
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


def is_growing(v: Mapping[str, Any] | None) -> bool:
    return bool(v) and v.get("verdict") in (Verdict.LEAK, Verdict.TRANSIENT)


def staircase(v: Mapping[str, Any]) -> str:
    return (f"{fmt(v.get('start'))} -> {fmt(v.get('end'))} "
            f"({'+' if (v.get('per_cycle') or 0) >= 0 else ''}{fmt(v.get('per_cycle'))}/cycle)")


def base_evidence(record: Record, keys: tuple[str, ...] = ()) -> dict[str, Any]:
    main = run_of(record) or {}
    ev: dict[str, Any] = {"judged_cycles": judged(main) if main else 0}
    for key in keys:
        if key in (record.get("facts") or {}):
            ev[key] = record["facts"][key]
    return ev



#: A sampled function's time (10 ms a sample at 100 Hz) grew only by more than this.
GROWN_FUNCTION_MIN_MS = 15.0
#: Callers of the grown function grow as much (their time is inclusive): the
#: innermost of those within this share of the largest growth is named.
INNERMOST_SHARE = 0.8


def grown_function(before: Mapping[str, Any], after: Mapping[str, Any],
                   min_ms: float = GROWN_FUNCTION_MIN_MS) -> dict[str, Any] | None:
    """The app's own function whose loop time per cycle grew from run
    ``before`` to run ``after`` (their summaries' ``time.functions``), by
    more than ``min_ms``: of the app's functions that grew within
    :data:`INNERMOST_SHARE` of the most, the innermost (the least inclusive
    time: its callers include its time). A library's or the standard
    library's function is not named: the app's function that called it grew
    as much. ``None`` when none did or the loop was not sampled."""
    fa = (before.get("time") or {}).get("functions") or {}
    fb = (after.get("time") or {}).get("functions") or {}
    grown: dict[str, float] = {}
    for key, v in fb.items():
        if not str(v.get("owner", "")).startswith("yours"):
            continue
        grew = (v.get("last") or 0.0) - ((fa.get(key) or {}).get("last") or 0.0)
        if grew > min_ms:
            grown[key] = grew
    if not grown:
        return None
    most = max(grown.values())
    key = min((k for k, g in grown.items() if g >= INNERMOST_SHARE * most),
              key=lambda k: (fb[k].get("last") or 0.0, k))
    v = fb[key]
    return {"function": key, "file": v.get("file"), "line": v.get("line"),
            "before_ms": (fa.get(key) or {}).get("last") or 0.0, "after_ms": v.get("last")}
