"""Where the event loop's time goes, judged like every other metric: per
function (``time:<module.function>``, ms of each cycle) and for the loop as
a whole (lag, time blocked, stalls, CPU), a timing that grows cycle after
cycle ``slows`` (:func:`~leaklab.analysis.latency.timing_stats`, the rule of
the reply latency)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .. import metrics
from ..metrics import Kind, Verdict
from .frames import LOOP_COLUMNS, Census, census_frame
from .latency import timing_stats
from .time_parts import time_parts

__all__ = ["explain_slow", "time_summary"]

#: Functions listed beside the ones that slow: the costliest of the last cycle.
TOP_FUNCTIONS = 10
#: A function's time is sampled (10 ms a sample at 100 Hz): it slows only
#: over at least this many cycles, by at least this much over the run.
MIN_TIME_CYCLES = 5
MIN_TIME_GROWTH_MS = 15.0


def _function_stats(series: Any) -> dict[str, Any]:
    """:func:`timing_stats` of a sampled function time, ``slows`` only when
    the samples can tell it (enough cycles, growth beyond a sample or so)."""
    stats = timing_stats(series)
    if stats["verdict"] == Verdict.SLOWS and (series.notna().sum() < MIN_TIME_CYCLES
                                               or (stats["growth"] or 0.0) < MIN_TIME_GROWTH_MS):
        stats["verdict"] = Verdict.NONE.value
    return stats


def time_summary(census: Census, details: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The loop's timings and each function's time per cycle, judged.

    Args:
        census: the run's records (with the loop probe's columns).
        details: the loop probe's details (stalls, idle CPU, where each
            function is), when the run has them.

    Returns:
        ``{}`` without the loop probe's columns; else ``{"loop": {column:
        stats}, "functions": {"module.function": stats + file/line/owner},
        "slows": [functions that slow, steepest first], "stalls": [...],
        "idle": {...}}``; a stats dict is ``first``, ``last``, ``per_cycle``
        (ms/cycle), ``growth``, ``verdict`` (``slows``/``none``).
    """
    frame = census_frame(census)
    rows = frame[frame.index >= 1]
    if not any(c in rows.columns for c in LOOP_COLUMNS):
        return {}
    where = dict((details or {}).get("functions") or {})
    loop = {c: timing_stats(rows[c]) for c in LOOP_COLUMNS if c in rows.columns and c != "idle_app_ms"}
    functions: dict[str, Any] = {}
    for column in rows.columns:
        if metrics.is_kind(column, Kind.TIME):
            key = metrics.subject_of(column)
            functions[key] = {**_function_stats(rows[column]), **where.get(key, {})}
    slows = sorted((k for k, v in functions.items() if v["verdict"] == Verdict.SLOWS),
                   key=lambda k: -(functions[k]["per_cycle"] or 0.0))
    top = sorted(functions, key=lambda k: -(functions[k]["last"] or 0.0))[:TOP_FUNCTIONS]
    out: dict[str, Any] = {
        "loop": loop,
        "functions": {k: functions[k] for k in dict.fromkeys([*slows, *top])},
        "slows": slows,
    }
    if details:
        out["stalls"] = list(details.get("stalls") or [])
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
        function: ``"module.function"``; default the one that slows most,
            else the one that held the loop longest.

    Returns:
        ``None`` when the loop was not sampled or nothing stands out; else
        ``{"function", "file", "line", "series", "per_cycle", "verdict",
        "coroutine", "callers", "scales_with": {"metric", "r", "series"} |
        None}``.
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
    }
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
