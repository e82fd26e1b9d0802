"""Synthetic census records the analysis tests share."""

from __future__ import annotations


def census(metric: str, values, **other) -> list[dict]:
    """Records for cycles 0..len(values)-1 with ``metric`` (and constant extras)."""
    return [{"cycle": c, "t": float(c), metric: v, **other} for c, v in enumerate(values)]


def timeline(metric: str, points: dict[float, float]) -> list[dict]:
    return [{"t": t, metric: v} for t, v in points.items()]


def ramp(per_cycle: float, cycles: int, start: float = 0.0) -> list[float]:
    return [start + per_cycle * c for c in range(cycles + 1)]


def full_run(cycles: int = 10) -> tuple[list[dict], list[dict]]:
    """A realistic run: one type leak, a transient task, flat resources, NaN gaps."""
    records = []
    for c in range(cycles + 1):
        rec = {
            "cycle": c, "t": 1.5 * c, "type:ServiceContext": c, "type:Agent": 1, "tasks": 2 + c,
            "rss_mb": 120.0 + 0.1 * (c % 3), "gc_objects": 50_000 + 20 * (c % 2), "fds": 14, "threads": 3,
            "children": 0, "db_rows": 4 * c, "db_bytes": 8192 + 4096 * c,
            "container:app.state.sessions": c, "container:app.state.cache": 1,
            "lifecycle:ServiceContext.close": 0 if c == 0 else 1, "expected:ServiceContext.close": 0 if c == 0 else 1,
        }
        if c:
            rec["task:Session.pinger"] = c
            rec["latency_end_ms"] = 250.0 + c
            rec["llm_ms"] = 150.0
            rec["latency_first_ms"] = 90.0
        if c == 3:
            rec["fds"] = None  # a probe that failed once
        records.append(rec)
    tl = [{"t": t, "type:ServiceContext": cycles, "tasks": 2, "task:Main.run": 1} for t in (0.0, 0.5, 1.0)]
    return records, tl
