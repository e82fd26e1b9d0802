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

__all__ = ["time_summary"]

#: Functions listed beside the ones that slow: the costliest of the last cycle.
TOP_FUNCTIONS = 10


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
            functions[key] = {**timing_stats(rows[column]), **where.get(key, {})}
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
    return out
