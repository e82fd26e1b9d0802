"""Where the event loop's time goes, judged like every other metric: per
function (``time:<module.function>``, ms of each cycle) and for the loop as
a whole (lag, time blocked, stalls, CPU), a timing that grows cycle after
cycle ``slows`` (:func:`~leaklab.analysis.latency.timing_stats`, the rule of
the reply latency)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from .. import metrics
from ..metrics import Kind, Verdict
from .frames import LOOP_COLUMNS, Census, census_frame
from .latency import CONTROL_COLUMN, discount_load, load_control, timing_stats
from .time_parts import time_parts

__all__ = ["explain_slow", "time_summary"]

#: Functions listed beside the ones that slow: the costliest of the last cycle.
TOP_FUNCTIONS = 10
#: A function's time is sampled (10 ms a sample at 100 Hz): it slows only
#: when sampled in at least this many cycles, by at least this much over the run.
MIN_TIME_CYCLES = 5
MIN_TIME_GROWTH_MS = 15.0
#: A function that slows is its slowing callee's caller, not a cause of its
#: own, when the callee's growth is at least this share of its growth.
CALLEE_SHARE = 0.8
#: The count columns of the stores (the files and store probes): a stall
#: that recurs each cycle is costed per stored item of the largest one.
STORE_SUFFIXES = ("_files", "_rows")


def _function_stats(series: Any, control: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """:func:`timing_stats` of a sampled function time, ``slows`` only when
    the samples can tell it (sampled in enough cycles, growth beyond a
    sample or so), ``inconclusive`` when the machine got comparably slower
    (``control``, :func:`~leaklab.analysis.latency.load_control`)."""
    stats = timing_stats(series)
    if stats["verdict"] == Verdict.SLOWS and ((series > 0).sum() < MIN_TIME_CYCLES
                                               or (stats["growth"] or 0.0) < MIN_TIME_GROWTH_MS):
        stats["verdict"] = Verdict.NONE.value
    return discount_load(stats, dict(control) if control else None)


def _callees(details: Mapping[str, Any]) -> dict[str, set[str]]:
    """``"module.function"`` -> the functions seen running below it: in the
    first and last cycles' frame trees and in the stalls' caller chains."""
    out: dict[str, set[str]] = {}

    def walk(node: Mapping[str, Any], above: tuple[str, ...]) -> None:
        key = str(node.get("name", ""))
        for a in above:
            if a != key:
                out.setdefault(a, set()).add(key)
        below = (*above, key) if key not in above else above
        for child in node.get("children") or []:
            walk(child, below)

    for part in ("first", "last"):
        if details.get(part):
            walk(details[part], ())
    for stall in details.get("stalls") or []:
        chain = [f"{f[0]}.{f[1]}" if f[0] else str(f[1]) for f in stall.get("stack") or []]
        inner = stall.get("function") or (chain[-1] if chain else "")
        for a in chain:
            if a != inner:
                out.setdefault(a, set()).add(inner)
    return out


def _innermost(growing: list[str], functions: dict[str, Any],
               callees: Mapping[str, set[str]]) -> tuple[list[str], dict[str, str]]:
    """The causes and the callers among the functions that slow.

    A callee that carries at least :data:`CALLEE_SHARE` of a slowing
    function's growth (a "yours" function's by a callee of the app's own,
    not of a library it calls) explains it: the callee slows too (its own
    samples, fewer, may not tell it: it is marked ``slows`` with a ``note``),
    and the caller is its caller, not a cause of its own.

    Returns:
        ``(growing, {caller: cause})``: every function that slows (the
        promoted callees added), each caller with the innermost cause below it.
    """

    def growth(k: str) -> float:
        return float(functions[k].get("growth") or 0.0)

    def kind(k: str) -> str:
        return str(functions[k].get("owner") or "").partition(" ")[0]

    def explains(a: str, b: str) -> bool:
        if b == a or b not in callees.get(a, set()) or not growth(a) > 0:
            return False
        if a in callees.get(b, set()):
            # recursion (each runs below the other): one growing call, one
            # cause: the one that grew most (the first by name on a tie)
            if (growth(b), a) < (growth(a), b):
                return False
        return growth(b) >= CALLEE_SHARE * growth(a) and (kind(a) != "yours" or kind(b) == "yours")

    growing = list(growing)
    todo = list(growing)
    while todo:
        a = todo.pop()
        for b in sorted(callees.get(a, set())):
            if b in functions and b not in growing and functions[b]["verdict"] == Verdict.NONE and explains(a, b):
                functions[b]["verdict"] = Verdict.SLOWS.value
                functions[b]["note"] = (f"slows with its caller {a}: its time carries "
                                        f"{growth(b) / growth(a):.0%} of that growth")
                growing.append(b)
                todo.append(b)
    explained = {a: [b for b in growing if explains(a, b)] for a in growing}
    causes = [k for k in growing if not explained[k]]
    out: dict[str, str] = {}
    for a in growing:
        if explained[a]:
            inner = [c for c in causes if c in callees.get(a, set())] or explained[a]
            out[a] = max(inner, key=lambda c: (growth(c), c))
    return growing, out


def _blocking(stalls: list[Mapping[str, Any]], functions: Mapping[str, Any], where: Mapping[str, Any],
              rows: Any) -> list[dict[str, Any]]:
    """The functions that held the loop over the threshold in most cycles
    (a step each cycle runs: a page load...), with the ms the loop was held
    a time (``ms``, the median stall), the function's own sampled ms a time
    (``function_ms``) and, where the census counts a store, that per stored
    item of the largest one (``store``: ``{"metric", "size", "ms_each"}``):
    a cost that recurs every cycle at the size the store has, whether or not
    it grows."""
    cycles = len(rows)
    by: dict[str, list[Mapping[str, Any]]] = {}
    for s in stalls:
        if s.get("function"):
            by.setdefault(str(s["function"]), []).append(s)
    stores = [c for c in rows.columns if str(c).endswith(STORE_SUFFIXES) and rows[c].dtype.kind in "fiu"
              and rows[c].notna().all() and float(rows[c].iloc[-1]) > 0]
    out = []
    for key, mine in by.items():
        seen = sorted({int(s.get("cycle") or 0) for s in mine})
        if len(seen) < max(2, cycles / 2):
            continue
        ms = float(np.median([float(s.get("lag_ms") or 0.0) for s in mine]))
        info = {**where.get(key, {}), **{k: v for k, v in (functions.get(key) or {}).items() if k in ("file", "line")}}
        mask = rows.index.isin(seen)
        column = metrics.name(Kind.TIME, key)
        # its own sampled time in those cycles, a time each (a stall a cycle)
        own = (float(rows.loc[mask, column].fillna(0.0).median()) * len(seen) / len(mine)
               if column in rows.columns and mask.any() else None)
        entry: dict[str, Any] = {"function": key, "file": info.get("file") or mine[0].get("file"),
                                 "line": info.get("line") or mine[0].get("line"), "ms": round(ms, 1),
                                 "function_ms": None if own is None else round(own, 1),
                                 "cycles": len(seen), "of": cycles, "coroutine": mine[0].get("coroutine") or "",
                                 "store": None}
        if stores:
            base = rows[mask] if mask.any() else rows
            col = max(stores, key=lambda c: float(base[c].median()))
            size = float(base[col].median())
            entry["store"] = {"metric": col, "size": int(round(size)),
                              "ms_each": round((own if own else ms) / size, 4)}
        out.append(entry)
    return sorted(out, key=lambda e: -e["ms"])


def time_summary(census: Census, details: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The loop's timings and each function's time per cycle, judged.

    Args:
        census: the run's records (with the loop probe's columns).
        details: the loop probe's details (stalls, idle CPU, where each
            function is), when the run has them.

    Returns:
        ``{}`` without the loop probe's columns; else ``{"loop": {column:
        stats}, "functions": {"module.function": stats + file/line/owner},
        "slows": [the functions that slow, steepest first: the causes, the
        innermost of a chain], "callers": {a function that slows only
        because a callee does: that callee}, "inconclusive": [functions
        whose time grew with the machine's], "control": the machine's own
        slow-down (:func:`~leaklab.analysis.latency.load_control`, with the
        ``calibration_ms`` column), "stalls": [...], "blocking": [functions
        that held the loop in most cycles, ms a time and per stored item],
        "idle": {...}}``; a stats dict is ``first``, ``last``, ``per_cycle``
        (ms/cycle), ``growth``, ``verdict`` (``slows``/``none``/
        ``inconclusive`` with a ``reason``).
    """
    frame = census_frame(census)
    rows = frame[frame.index >= 1]
    if not any(c in rows.columns for c in LOOP_COLUMNS):
        return {}
    where = dict((details or {}).get("functions") or {})
    control = load_control(rows.get(CONTROL_COLUMN))
    loop = {c: discount_load(timing_stats(rows[c]), control) for c in LOOP_COLUMNS
            if c in rows.columns and c not in ("idle_app_ms", CONTROL_COLUMN)}
    # a function not sampled in a cycle the loop was watched spent 0 ms there
    # (its column starts when it is first seen): not an unknown
    watched = rows[[c for c in LOOP_COLUMNS if c in rows.columns]].notna().any(axis=1)
    functions: dict[str, Any] = {}
    for column in rows.columns:
        if metrics.is_kind(column, Kind.TIME):
            key = metrics.subject_of(column)
            series = rows[column].mask(watched & rows[column].isna(), 0.0)
            functions[key] = {**_function_stats(series, control), **where.get(key, {})}
    growing, callers = _innermost([k for k, v in functions.items() if v["verdict"] == Verdict.SLOWS], functions,
                                  _callees(details or {}))
    for caller, cause in callers.items():
        functions[caller]["caller_of"] = cause
    # the causes, steepest first: a caller slows because its callee does
    slows = sorted((k for k in growing if k not in callers), key=lambda k: -(functions[k]["per_cycle"] or 0.0))
    unsure = sorted((k for k, v in functions.items() if v["verdict"] == Verdict.INCONCLUSIVE),
                    key=lambda k: -(functions[k]["per_cycle"] or 0.0))
    top = sorted(functions, key=lambda k: -(functions[k]["last"] or 0.0))[:TOP_FUNCTIONS]
    out: dict[str, Any] = {
        "loop": loop,
        "functions": {k: functions[k] for k in dict.fromkeys([*slows, *callers, *unsure, *top])},
        "slows": slows,
        "callers": callers,
        "inconclusive": unsure,
    }
    if control is not None:
        out["control"] = control
    if details:
        out["stalls"] = list(details.get("stalls") or [])
        out["blocking"] = _blocking(out["stalls"], functions, where, rows)
        if details.get("idle"):
            out["idle"] = dict(details["idle"])
        if details.get("grown"):
            out["grown"] = list(details["grown"])
    out.update(time_parts(rows, details, _function_stats))  # "coroutines", "split"
    return out


def explain_slow(census: Census, time: Mapping[str, Any], function: str | None = None) -> dict[str, Any] | None:
    """The slowest function of a run, explained like a survivor: how its
    time per cycle grew, the step that runs it and its callers (from the
    stalls it caused), and the stored state it scales with (the census
    column that grows with it most closely: containers, store rows and
    files, open sessions...).

    Args:
        census: the run's records.
        time: the run summary's ``time`` (:func:`time_summary`).
        function: ``"module.function"``; default the one that slows most
            (the innermost of a chain of callers that slow with it), else
            the one that held the loop longest.

    Returns:
        ``None`` when the loop was not sampled or nothing stands out; else
        ``{"function", "file", "line", "series", "per_cycle", "verdict",
        "coroutine", "callers", "scales_with": {"metric", "r", "series"} |
        None, "slowing_callers": [functions that slow because it does],
        "per_run": an entry of ``time["blocking"]`` | None}`` (and
        ``"reason"`` when the verdict is ``inconclusive``).
    """
    functions = time.get("functions") or {}
    stalls = list(time.get("stalls") or [])
    if function is None:
        function = next(iter(time.get("slows") or []), None) or (stalls[0]["function"] if stalls else None)
    if not function:
        return None
    frame = census_frame(census)
    rows = frame[frame.index >= 1]
    column = metrics.name(Kind.TIME, function)
    series = rows[column].fillna(0.0) if column in rows.columns else None
    info = functions.get(function) or {}
    mine = [s for s in stalls if s.get("function") == function]
    callers = [f"{frame_[1]} ({frame_[2].rsplit('/', 1)[-1]}:{frame_[3]})" for frame_ in (mine[0].get("stack") or [])
               ] if mine else []
    out: dict[str, Any] = {
        "function": function, "file": info.get("file") or (mine[0].get("file") if mine else None),
        "line": info.get("line") or (mine[0].get("line") if mine else None),
        "series": [float(x) for x in series] if series is not None else [],
        "per_cycle": info.get("per_cycle"), "verdict": info.get("verdict", Verdict.NONE.value),
        "coroutine": mine[0].get("coroutine") if mine else None, "callers": callers,
        "stalls": len(mine), "scales_with": None,
        # the functions that slow only because this one does, and what it costs each time it holds the loop
        "slowing_callers": sorted((k for k, c in (time.get("callers") or {}).items() if c == function),
                                  key=lambda k: -((functions.get(k) or {}).get("growth") or 0.0)),
        "per_run": next((b for b in time.get("blocking") or [] if b.get("function") == function), None),
    }
    if info.get("reason"):
        out["reason"] = info["reason"]
    if series is not None and len(series) >= 3 and series.std() > 0:
        best: tuple[float, str] | None = None
        for other in rows.columns:
            if other == column or metrics.is_kind(other, Kind.TIME) or other in LOOP_COLUMNS or other in ("t",):
                continue
            col = rows[other]
            if col.dtype.kind not in "fiu" or col.isna().any() or col.std() == 0 or col.iloc[-1] <= col.iloc[0]:
                continue
            r = float(series.rank().corr(col.rank()))  # Spearman: Pearson on ranks (no scipy)
            if r == r and (best is None or r > best[0]):
                best = (r, other)
        if best is not None and best[0] >= 0.8:
            out["scales_with"] = {"metric": best[1], "r": round(best[0], 2),
                                  "series": [float(x) for x in rows[best[1]]]}
    return out
