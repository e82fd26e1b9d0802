"""Where a step's time and the loop's time per task go: the connect and the
reply split into the loop held / the LLM call / the rest, and each
coroutine's ms per cycle judged like a function's (parts of
:func:`~leaklab.analysis.time.time_summary`)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import pandas as pd

from ..metrics import Verdict
from .frames import json_number
from .latency import split_connect, split_latency

__all__ = ["coroutine_summary", "step_split", "time_parts"]

#: Coroutines listed beside the ones that slow: the costliest of the last cycle.
TOP_COROUTINES = 10

Judge = Callable[[pd.Series], dict[str, Any]]


def _num(v: Any) -> float | None:
    n = json_number(v)
    return None if n is None else round(float(n), 3)


def coroutine_summary(rows: pd.DataFrame, details: Mapping[str, Any] | None, judge: Judge) -> dict[str, Any]:
    """Each coroutine's (or loop callback's) ms per cycle on the loop
    thread, judged by ``judge`` (the rule of the functions' time).

    Args:
        rows: the census frame's cycles (index 1..N).
        details: the loop probe's details: ``coroutines`` is ``{name:
            [[cycle, ms], ...]}`` (a cycle it was not sampled in: 0 ms).
        judge: a per-cycle series -> stats dict (``first``, ``last``,
            ``per_cycle``, ``verdict``...).

    Returns:
        ``{name: stats}``: the ones that slow first (steepest first), then the
        costliest of the last cycle, at most :data:`TOP_COROUTINES` besides
        those that slow; ``{}`` when no coroutine was sampled.
    """
    per = (details or {}).get("coroutines") or {}
    if not per or rows.empty:
        return {}
    out: dict[str, dict[str, Any]] = {}
    for name, pairs in per.items():
        values = dict((int(c), float(ms)) for c, ms in pairs)
        series = pd.Series([values.get(int(c), 0.0) for c in rows.index], index=rows.index, dtype="float64")
        out[name] = judge(series)
    slows = sorted((k for k, v in out.items() if v["verdict"] == Verdict.SLOWS),
                   key=lambda k: -(out[k]["per_cycle"] or 0.0))
    top = sorted(out, key=lambda k: -(out[k]["last"] or 0.0))[:TOP_COROUTINES]
    return {k: out[k] for k in dict.fromkeys([*slows, *top])}


def _part(row: pd.Series, total: str, llm: str | None, blocked: str, functions: Mapping[str, Any] | None,
          cycle: int) -> dict[str, Any]:
    out: dict[str, Any] = {"cycle": int(cycle), "total_ms": _num(row[total])}
    if llm is not None:
        out["llm_ms"] = _num(row[llm])
    out["blocked_ms"] = _num(row[blocked])
    known = [out[k] for k in ("llm_ms", "blocked_ms") if out.get(k) is not None]
    out["rest_ms"] = None if out["total_ms"] is None else round(max(0.0, out["total_ms"] - sum(known)), 3)
    mine = functions if functions and functions.get("cycle") == cycle else None
    out["busy_ms"] = _num((mine or {}).get("busy_ms"))
    out["functions"] = dict((mine or {}).get("functions") or {})
    return out


def step_split(rows: pd.DataFrame, details: Mapping[str, Any] | None) -> dict[str, Any]:
    """The connect and the reply of the first and the last cycle split into
    the time the app's stalls held the loop (and the code that ran on it
    meanwhile), the time in the LLM call (the reply; where the target times
    it) and the rest: waiting on I/O and other tasks.

    Returns:
        ``{"reply"|"connect": {"first": part, "last": part, "functions":
        {"module.function": ms per step over the run}}}`` for each step kind
        whose loop time was measured (``{}``: none); a part is ``{"cycle",
        "total_ms", "llm_ms" (the reply), "blocked_ms", "rest_ms",
        "busy_ms", "functions"}`` (``None``: not measured): ``busy_ms`` is
        the time the app's code was sampled running on the loop during the
        step, stalls or not, and ``functions`` the code that ran, ms each.
    """
    steps = (details or {}).get("steps") or {}
    out: dict[str, Any] = {}
    if rows.empty:
        return out
    reply, connect = split_latency(rows), split_connect(rows)
    kinds = (
        ("reply", reply.assign(total_ms=rows["latency_end_ms"] if "latency_end_ms" in rows.columns
                               else reply["llm_ms"] + reply["backend_ms"]), "total_ms", "llm_ms", "reply_blocked_ms"),
        ("connect", connect, "connect_ms", None, "connect_blocked_ms"),
    )
    for kind, frame, total, llm, column in kinds:
        if column not in rows.columns:
            continue
        timed = frame[frame[total].notna() & frame["blocked_ms"].notna()]
        if timed.empty:
            continue
        info = steps.get(kind) or {}
        first, last = timed.index[0], timed.index[-1]
        out[kind] = {
            "first": _part(timed.loc[first], total, llm, "blocked_ms", info.get("first"), first),
            "last": _part(timed.loc[last], total, llm, "blocked_ms", info.get("last"), last),
            "functions": dict(info.get("functions") or {}),
        }
    return out


def time_parts(rows: pd.DataFrame, details: Mapping[str, Any] | None, judge: Judge) -> dict[str, Any]:
    """The parts of the run's ``time`` summary this module adds:
    ``"coroutines"`` (:func:`coroutine_summary`) and ``"split"``
    (:func:`step_split`), each only when measured."""
    out: dict[str, Any] = {}
    coroutines = coroutine_summary(rows, details, judge)
    if coroutines:
        out["coroutines"] = coroutines
    split = step_split(rows, details)
    if split:
        out["split"] = split
    return out
