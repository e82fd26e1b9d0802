"""Reply times: does a reply get slower cycle after cycle?"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from ..metrics import Verdict
from .frames import Census, census_frame, json_number
from .verdicts import concordance, robust_slope

__all__ = ["CONTROL_COLUMN", "discount_load", "latency_summary", "load_control", "split_connect", "split_latency"]

#: The census column of the machine's speed: the wall ms of a fixed workload
#: timed in each census (the loop probe's ``calibration_ms``).
CONTROL_COLUMN = "calibration_ms"
#: The control "grew" when its fitted rise over the run is at least this
#: share of its first level (a fixed workload does not get slower by itself)...
CONTROL_MIN_RISE = 0.2
#: ...and a timing's rise is "comparable" when the control's relative rise is
#: at least this share of the timing's.
CONTROL_SHARE = 0.5


def split_latency(census: Census) -> pd.DataFrame:
    """Per-cycle LLM time and the backend's own time, for plotting.

    ``backend_ms = latency_end_ms - llm_ms``; where either is missing the
    recorded ``backend_ms`` column (if any) is used. ``blocked_ms``: the
    part of it the loop was held by the app's stalls during the reply (the
    loop probe's ``reply_blocked_ms``, at most ``backend_ms``); the rest of
    ``backend_ms`` is waiting on I/O and other tasks.

    Returns:
        Frame indexed by cycle (1..N) with float columns ``llm_ms``,
        ``backend_ms`` and ``blocked_ms`` (NaN where unknown).
    """
    frame = census_frame(census)
    rows = frame[frame.index >= 1]
    nan = pd.Series(np.nan, index=rows.index, dtype="float64")
    llm = rows["llm_ms"] if "llm_ms" in rows.columns else nan
    end = rows["latency_end_ms"] if "latency_end_ms" in rows.columns else nan
    backend = end - llm
    if "backend_ms" in rows.columns:
        backend = backend.where(backend.notna(), rows["backend_ms"])
    blocked = rows["reply_blocked_ms"] if "reply_blocked_ms" in rows.columns else nan
    blocked = blocked.where(blocked.isna() | backend.isna() | (blocked <= backend), backend.clip(lower=0.0))
    return pd.DataFrame({"llm_ms": llm, "backend_ms": backend, "blocked_ms": blocked}, index=rows.index)


def split_connect(census: Census) -> pd.DataFrame:
    """Per-cycle connect time (to the end of the greeting), split: the part
    the loop was held by the app's stalls during the connect step (the loop
    probe's ``connect_blocked_ms``, at most the connect time) and the rest
    (waiting on I/O and other tasks).

    Returns:
        Frame indexed by cycle (1..N) with float columns ``connect_ms``,
        ``blocked_ms``, ``rest_ms`` (NaN where unknown).
    """
    frame = census_frame(census)
    rows = frame[frame.index >= 1]
    nan = pd.Series(np.nan, index=rows.index, dtype="float64")
    total = rows["latency_connect_ms"] if "latency_connect_ms" in rows.columns else nan
    blocked = rows["connect_blocked_ms"] if "connect_blocked_ms" in rows.columns else nan
    blocked = blocked.where(blocked.isna() | total.isna() | (blocked <= total), total)
    return pd.DataFrame({"connect_ms": total, "blocked_ms": blocked, "rest_ms": total - blocked}, index=rows.index)


def timing_stats(s: pd.Series | None) -> dict[str, Any]:
    """``first``, ``last``, ``per_cycle`` (Theil–Sen ms/cycle), ``growth``
    and ``verdict`` (``slows``/``none``) of one per-cycle timing (see
    :func:`latency_summary` for the rule)."""
    s = s.dropna() if s is not None else pd.Series(dtype="float64")
    if s.empty:
        return {"first": None, "last": None, "per_cycle": None, "growth": None, "verdict": Verdict.NONE.value}
    y = s.to_numpy(dtype="float64")
    x = s.index.to_numpy(dtype="float64")
    slope = robust_slope(y, x)
    # Fitted rise over the run: one noisy first or last sample cannot fake it.
    growth = slope * float(x[-1] - x[0])
    slows = (
        y.size >= 3
        and slope > max(1.0, 0.02 * float(np.median(y)))
        and growth > max(5.0, 0.1 * float(y[0]))
        and concordance(y) >= 0.6
    )
    return {
        "first": json_number(y[0]), "last": json_number(y[-1]), "per_cycle": json_number(slope),
        "growth": json_number(growth), "verdict": (Verdict.SLOWS if slows else Verdict.NONE).value,
    }


def load_control(s: pd.Series | None) -> dict[str, Any] | None:
    """How much slower the machine got over the run, from the control column
    (:data:`CONTROL_COLUMN`, the same fixed workload timed each cycle).

    Returns:
        ``None`` without the column (or fewer than 3 cycles of it); else
        ``{"metric", "first", "last", "rise", "grew", "note"}``: ``first``/
        ``last`` the median of the first/last three cycles (ms), ``rise`` the
        Theil–Sen fitted rise over the run as a share of ``first``, ``grew``
        whether it is at least :data:`CONTROL_MIN_RISE` with most later
        cycles slower than earlier ones.
    """
    s = s.dropna() if s is not None else None
    if s is None or len(s) < 3:
        return None
    y = s.to_numpy(dtype="float64")
    x = s.index.to_numpy(dtype="float64")
    first, last = float(np.median(y[:3])), float(np.median(y[-3:]))
    rise = robust_slope(y, x) * float(x[-1] - x[0]) / first if first > 0 else 0.0
    grew = bool(rise >= CONTROL_MIN_RISE and concordance(y) >= 0.6)
    return {"metric": CONTROL_COLUMN, "first": round(first, 3), "last": round(last, 3), "rise": round(rise, 3),
            "grew": grew, "note": f"the machine got slower during the run: calibration {first:.1f} -> {last:.1f} ms"
            if grew else ""}


def discount_load(stats: dict[str, Any], control: dict[str, Any] | None) -> dict[str, Any]:
    """A :func:`timing_stats` whose ``slows`` the machine's own slow-down
    (``control``, :func:`load_control`) can explain becomes ``inconclusive``
    with the ``reason``: the control grew, by at least
    :data:`CONTROL_SHARE` of the timing's relative rise. ``stats`` is changed
    in place and returned."""
    if stats.get("verdict") != Verdict.SLOWS or not control or not control.get("grew"):
        return stats
    first = abs(stats.get("first") or 0.0)
    rise = (stats.get("growth") or 0.0) / first if first > 0 else float("inf")
    if control["rise"] >= CONTROL_SHARE * rise:
        stats["verdict"] = Verdict.INCONCLUSIVE.value
        stats["reason"] = (f"{control['note']}, by {control['rise']:.0%}; this grew by "
                           f"{rise:.0%}: the run cannot tell its own slow-down from the machine's")
    return stats


def latency_summary(census: Census) -> dict[str, Any]:
    """Does a reply get slower cycle after cycle?

    Top level: ``latency_end_ms`` (full reply). Sub-dicts of the same shape,
    only when the data is present: ``"first_reply"`` (``latency_first_ms``),
    ``"llm"`` (``llm_ms``), ``"backend"`` (see :func:`split_latency`).
    Each: ``first`` (first cycle with data), ``last``, ``per_cycle`` (Theil–Sen
    ms/cycle), ``growth`` (``per_cycle`` * cycles spanned) and ``verdict``:
    ``"slows"`` when, with at least 3 cycles, ``per_cycle > max(1 ms, 2% of
    the median)``, ``growth > max(5 ms, 10% of first)`` and at least 60% of
    (earlier, later) pairs have the later one higher; else ``"none"``;
    ``"inconclusive"`` (with a ``reason``) where it would slow but the
    machine got comparably slower during the run (:func:`discount_load`).
    """
    frame = census_frame(census)
    rows = frame[frame.index >= 1]
    out = timing_stats(rows.get("latency_end_ms"))
    if "latency_first_ms" in rows.columns and rows["latency_first_ms"].notna().any():
        out["first_reply"] = timing_stats(rows["latency_first_ms"])
    if "latency_connect_ms" in rows.columns and rows["latency_connect_ms"].notna().any():
        out["connect"] = timing_stats(rows["latency_connect_ms"])
    split = split_latency(frame)
    for key, col in (("llm", "llm_ms"), ("backend", "backend_ms")):
        if split[col].notna().any():
            out[key] = timing_stats(split[col])
    # a machine that got slower during the run slows every timing with it
    control = load_control(rows.get(CONTROL_COLUMN))
    for stats in (out, *(v for v in out.values() if isinstance(v, dict))):
        discount_load(stats, control)
    return out
