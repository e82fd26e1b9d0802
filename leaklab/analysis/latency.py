"""Reply times: does a reply get slower cycle after cycle?"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from ..metrics import Verdict
from .frames import Census, census_frame, json_number
from .verdicts import concordance, robust_slope

__all__ = ["latency_summary", "split_connect", "split_latency"]


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


def latency_summary(census: Census) -> dict[str, Any]:
    """Does a reply get slower cycle after cycle?

    Top level: ``latency_end_ms`` (full reply). Sub-dicts of the same shape,
    only when the data is present: ``"first_reply"`` (``latency_first_ms``),
    ``"llm"`` (``llm_ms``), ``"backend"`` (see :func:`split_latency`).
    Each: ``first`` (first cycle with data), ``last``, ``per_cycle`` (Theil–Sen
    ms/cycle), ``growth`` (``per_cycle`` * cycles spanned) and ``verdict``:
    ``"slows"`` when, with at least 3 cycles, ``per_cycle > max(1 ms, 2% of
    the median)``, ``growth > max(5 ms, 10% of first)`` and at least 60% of
    (earlier, later) pairs have the later one higher; else ``"none"``.
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
    return out
