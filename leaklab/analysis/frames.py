"""Census and timeline records -> float frames; which columns are what.

A **census** is a list of per-cycle records ``{"cycle": int, "t": float,
<metric>: number, ...}``; a **timeline** a list of records ``{"t": seconds
since the last cycle ended, <metric>: number, ...}`` (see :mod:`leaklab.analysis`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from .. import metrics
from ..metrics import LIFECYCLE_KINDS, ZERO_FILL_KINDS

__all__ = [
    "GC_FREED_COLUMNS",
    "KEY_COLUMNS",
    "LATENCY_COLUMNS",
    "LOOP_COLUMNS",
    "LIFECYCLE_PREFIXES",
    "RESOURCE_METRICS",
    "ZERO_FILL_NAMESPACES",
    "Census",
    "CensusRecord",
    "Timeline",
    "TimelineSample",
    "census_frame",
    "is_lifecycle",
    "json_number",
    "timeline_frame",
]

#: Namespaces whose columns list only what exists: a missing value is a count of 0.
ZERO_FILL_NAMESPACES: tuple[str, ...] = tuple(k.value for k in ZERO_FILL_KINDS)
#: Per-cycle call counters: tabulated by :func:`~leaklab.analysis.lifecycle_table`, not judged.
LIFECYCLE_PREFIXES: tuple[str, ...] = tuple(metrics.name(k, "") for k in LIFECYCLE_KINDS)
#: Per-cycle timings: summarized by :func:`~leaklab.analysis.latency_summary`, not judged.
LATENCY_COLUMNS: tuple[str, ...] = ("latency_first_ms", "latency_end_ms", "llm_ms", "backend_ms", "latency_connect_ms")
#: Per-cycle event-loop timings (the loop probe): summarized by
#: :func:`~leaklab.analysis.time.time_summary` with the ``time:`` columns, not judged as growth.
LOOP_COLUMNS: tuple[str, ...] = ("loop_lag_max_ms", "loop_blocked_ms", "loop_stalls", "cpu_ms", "children_cpu_ms",
                                 "idle_app_ms", "connect_blocked_ms", "reply_blocked_ms", "calibration_ms")
#: Resource metrics reported under ``"resources"`` by :func:`~leaklab.analysis.summarize`, in this order.
RESOURCE_METRICS: tuple[str, ...] = (
    "children", "fds", "cache_files", "cache_bytes", "db_rows", "db_bytes",
    "rss_mb", "gc_objects", "threads", "tracemalloc_mb",
)
#: The columns that say when a record was taken, not what it measured.
KEY_COLUMNS: tuple[str, ...] = ("cycle", "t")
#: What the census's full collection freed, per cycle: a rate, judged by
#: :func:`~leaklab.analysis.memory_summary`, not as growth.
GC_FREED_COLUMNS: tuple[str, ...] = ("gc_freed_objects", "gc_freed_bytes")


def is_lifecycle(metric: str) -> bool:
    """Whether ``metric`` is a per-cycle lifecycle counter (``lifecycle:``, ``expected:`` ...)."""
    return metrics.is_kind(metric, *LIFECYCLE_KINDS)


def json_number(v: Any) -> float | int | None:
    """A JSON-safe number: NaN/inf/None -> None, numpy scalars -> Python."""
    if v is None:
        return None
    if isinstance(v, (bool, np.bool_)):
        return int(v)
    if isinstance(v, (int, np.integer)):
        return int(v)
    f = float(v)
    return f if math.isfinite(f) else None


# -- input data model ---------------------------------------------------------


@dataclass(frozen=True)
class CensusRecord:
    """One census record: ``{"cycle": cycle, "t": t, **metrics}`` as a dataclass.

    Plain mappings of that flat shape are accepted everywhere this is.
    """

    cycle: int
    t: float
    metrics: Mapping[str, float] = field(default_factory=dict)

    def to_record(self) -> dict[str, Any]:
        """The flat mapping form."""
        return {**self.metrics, "cycle": self.cycle, "t": self.t}


@dataclass(frozen=True)
class TimelineSample:
    """One timeline sample: ``{"t": t, **metrics}``, ``t`` in seconds since the last cycle ended."""

    t: float
    metrics: Mapping[str, float] = field(default_factory=dict)

    def to_record(self) -> dict[str, Any]:
        """The flat mapping form."""
        return {**self.metrics, "t": self.t}


Census = Sequence[Mapping[str, Any] | CensusRecord] | pd.DataFrame
Timeline = Sequence[Mapping[str, Any] | TimelineSample] | pd.DataFrame


def _flat(record: Any) -> dict[str, Any]:
    if isinstance(record, (CensusRecord, TimelineSample)):
        return record.to_record()
    if isinstance(record, Mapping):
        return dict(record)
    raise TypeError(f"a record must be a mapping or CensusRecord/TimelineSample, not {type(record).__name__}")


def _numeric_frame(rows: list[dict[str, Any]], key: str) -> pd.DataFrame:
    """Rows -> float frame, zero-filling count namespaces, columns sorted."""
    df = pd.DataFrame.from_records(rows)
    df = df.drop(columns=[key])
    # astype(float) turns None into NaN and refuses non-numeric text: a string
    # in a metric is a probe bug worth an error, not a silent NaN.
    df = df.astype("float64")
    zero = [c for c in df.columns if metrics.is_kind(c, *ZERO_FILL_KINDS)]
    if zero:
        df[zero] = df[zero].fillna(0.0)
    return df.reindex(columns=sorted(df.columns))


def census_frame(records: Census) -> pd.DataFrame:
    """The census as a float frame indexed by ``cycle`` (sorted), columns sorted.

    Missing or NaN values of ``type:``/``task:``/``container:`` columns become 0
    (the probes only report what exists); other missing values stay NaN.

    Args:
        records: census records (mappings or :class:`CensusRecord`), or a frame
            already made by this function (returned as a copy).

    Returns:
        One row per cycle; ``t`` is kept as a column.

    Raises:
        ValueError: a record has no ``cycle``, a non-integer or duplicated cycle,
            or a non-numeric metric value.
    """
    if isinstance(records, pd.DataFrame):
        if records.index.name == "cycle":
            return records.copy()
        records = records.to_dict("records")
    rows = [_flat(r) for r in records]
    if not rows:
        return pd.DataFrame(index=pd.Index([], dtype="int64", name="cycle"))
    cycles = []
    for r in rows:
        c = r.get("cycle")
        if c is None or isinstance(c, bool) or float(c) != int(c):
            raise ValueError(f"census record needs an integer 'cycle': {c!r}")
        cycles.append(int(c))
    if len(set(cycles)) != len(cycles):
        raise ValueError(f"duplicated cycles in census: {sorted(cycles)}")
    df = _numeric_frame(rows, "cycle")
    df.index = pd.Index(cycles, dtype="int64", name="cycle")
    return df.sort_index()


def timeline_frame(samples: Timeline | None) -> pd.DataFrame:
    """The timeline as a float frame indexed by ``t`` (sorted), columns sorted.

    Same filling rule as :func:`census_frame`. ``None`` or ``[]`` gives an empty frame.

    Raises:
        ValueError: a sample has no numeric ``t``.
    """
    if samples is None:
        samples = []
    if isinstance(samples, pd.DataFrame):
        if samples.index.name == "t":
            return samples.copy()
        samples = samples.to_dict("records")
    rows = [_flat(s) for s in samples]
    if not rows:
        return pd.DataFrame(index=pd.Index([], dtype="float64", name="t"))
    ts = []
    for r in rows:
        t = r.get("t")
        if t is None or isinstance(t, bool) or not math.isfinite(float(t)):
            raise ValueError(f"timeline sample needs a finite 't': {t!r}")
        ts.append(float(t))
    df = _numeric_frame(rows, "t")
    df.index = pd.Index(ts, dtype="float64", name="t")
    return df.sort_index(kind="stable")
