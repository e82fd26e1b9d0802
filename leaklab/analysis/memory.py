"""Memory that is not a live object: cyclic garbage, and why RSS grew."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .. import metrics
from ..metrics import Kind, Verdict
from .frames import Census, census_frame, json_number
from .verdicts import MetricVerdict

__all__ = ["CYCLIC_MIN_BYTES", "RSS_MIN_GROWTH_MB", "memory_summary"]

#: Cyclic garbage per cycle from which it is worth saying (64 KiB).
CYCLIC_MIN_BYTES = 64 * 1024
#: RSS growth over a run below which there is nothing to explain (MiB).
RSS_MIN_GROWTH_MB = 4.0


def memory_summary(
    census: Census,
    verdicts: Mapping[str, MetricVerdict] | None = None,
    allocator: Mapping[str, Any] | None = None,
    freed_types: Mapping[str, int] | None = None,
) -> dict[str, Any]:
    """What grows that is not a live object.

    ``cyclic``: what the census's full collection freed per cycle (objects only
    a gc pass frees: reference cycles). ``cyclic`` when the median over the
    cycles is at least :data:`CYCLIC_MIN_BYTES` — freed late, not leaked —,
    ``none`` below, ``not measured`` without the counts (``collect=False``).

    ``rss``: why RSS grew, when it grew by :data:`RSS_MIN_GROWTH_MB` or more:
    ``objects`` (live objects or pymalloc blocks grew with it), ``allocator``
    (no objects grew, and asking the allocator to give freed memory back,
    ``malloc_trim(0)``, returned at least half the growth: freed memory it
    held, fragmentation or arenas), ``native`` (no objects grew and it
    returned less: memory outside Python's objects, a native library or
    buffers), ``can't tell`` (no objects grew and the allocator can't be
    asked here); ``none`` when RSS did not grow.
    """
    frame = census_frame(census)
    verdicts = verdicts or {}
    cycles = frame.loc[frame.index >= 1] if len(frame) else frame
    out: dict[str, Any] = {}
    if "gc_freed_bytes" in cycles.columns and cycles["gc_freed_bytes"].notna().any():
        b = cycles["gc_freed_bytes"].dropna()
        o = cycles["gc_freed_objects"].dropna() if "gc_freed_objects" in cycles.columns else b * 0
        o = o if len(o) else b * 0
        median = float(b.median())
        verdict = "cyclic" if median >= CYCLIC_MIN_BYTES else Verdict.NONE.value
        note = (f"freed only by a gc pass: {median / 1024:.0f} KiB/cycle ({float(o.median()):.0f} objects/cycle; "
                f"in reference cycles, collected late, not leaked)" if verdict == "cyclic" else
                f"a gc pass freed {median / 1024:.0f} KiB/cycle (under {CYCLIC_MIN_BYTES >> 10} KiB: nothing to say)")
        out["cyclic"] = {"verdict": verdict, "bytes_per_cycle": json_number(median), "objects_per_cycle": json_number(o.median()),
                         "top_types": dict(sorted((freed_types or {}).items(), key=lambda kv: -kv[1])[:5]),
                         "note": note}
    else:
        out["cyclic"] = {"verdict": "not measured", "note": "no full collection before the census (collect=False)"}
    rss_values = frame["rss_mb"].dropna() if "rss_mb" in frame.columns else frame.index[:0]
    if len(rss_values) < 2:
        out["rss"] = {"verdict": "not measured", "note": "no RSS per cycle"}
        return out
    growth = float(rss_values.iloc[-1] - rss_values.iloc[0])
    grew = [m for m, v in verdicts.items() if v.verdict == Verdict.LEAK and (
        metrics.is_kind(m, Kind.TYPE, Kind.CONTAINER) or m in ("gc_objects", "allocated_blocks", "tracemalloc_mb"))]
    rss = {"growth_mb": round(growth, 2)}
    judged = verdicts.get("rss_mb")
    per_cycle = judged.verdict == Verdict.LEAK if judged is not None else growth >= RSS_MIN_GROWTH_MB
    if not per_cycle or growth < RSS_MIN_GROWTH_MB:
        why = judged.note if judged is not None else f"under {RSS_MIN_GROWTH_MB:.0f} MiB"
        rss.update(verdict=Verdict.NONE.value, note=f"RSS did not grow per cycle ({growth:+.1f} MiB over the run: {why})")
    elif grew:
        rss.update(verdict="objects", note=f"RSS grew {growth:.1f} MiB with live objects: {', '.join(sorted(grew)[:4])}")
    elif not (allocator or {}).get("available"):
        rss.update(verdict="can't tell", note=f"RSS grew {growth:.1f} MiB and no Python objects did; the allocator "
                                              "can't be asked to give freed memory back here (no glibc malloc_trim): "
                                              "held arenas can't be told from a native leak")
    else:
        returned = float(allocator["rss_before_mb"]) - float(allocator["rss_after_mb"])
        rss["returned_mb"] = round(returned, 2)
        if returned >= 0.5 * growth:
            rss.update(verdict="allocator", note=f"RSS grew {growth:.1f} MiB, no Python objects did, and "
                                                 f"malloc_trim(0) gave {returned:.1f} MiB back: freed memory the "
                                                 "allocator held (fragmentation, arenas), not a leak of objects")
        else:
            rss.update(verdict="native", note=f"RSS grew {growth:.1f} MiB, no Python objects did, and malloc_trim(0) "
                                              f"gave only {returned:.1f} MiB back: memory outside Python's objects "
                                              "(a native library, buffers)")
    out["rss"] = rss
    return out
