"""Verdicts over census data: does a metric grow per session, and does it stay?

This layer is pure: it never touches ``gc``, ``asyncio`` or the backend. It takes
the plain records the session wrote (or the frozen dataclasses of
:mod:`.frames`) and returns pandas frames, verdicts and JSON-ready dicts, so
every rule can be tested with synthetic numbers.

Data model:

* A **census** is a list of per-cycle records
  ``{"cycle": int, "t": float, <metric>: number, ...}``. Cycle 0 is the baseline
  taken after warm-up, before the first cycle; cycles 1..N are taken after each
  cycle's settle phase.
* A **timeline** is a list of records ``{"t": seconds since the last cycle
  ended, <metric>: number, ...}`` sampled for a few seconds after the last cycle.

Metric names are namespaced (:mod:`leaklab.metrics` builds and parses them):
``type:<Name>``, ``task:<coroutine qualname>``, ``container:<access path>``
(instance counts: only the non-zero ones may be reported, so a missing value
means 0), ``lifecycle:<Q.method>`` and ``expected:<Q.method>`` (calls counted /
expected during the cycle), the per-object lifecycle counts
``lifecycle_objects:``, ``lifecycle_closed:``, ``lifecycle_short:``,
``lifecycle_short_calls:``, ``lifecycle_owned:`` and
``lifecycle_ran_for:<Q.method>`` (see :func:`lifecycle_table`), latency
columns (``latency_first_ms``, ``latency_end_ms``, ``llm_ms``, ``backend_ms``)
and plain resources (``tasks``, ``rss_mb``, ``gc_objects``, ``tracemalloc_mb``,
``fds``, ``threads``, ``children``, ``cache_files``, ``cache_bytes``,
``db_rows``, ``db_bytes``).

Modules, in the order data flows: :mod:`.frames` (records -> frames, which
columns are what), :mod:`.verdicts` (slopes, thresholds, :func:`judge`),
:mod:`.lifecycle`, :mod:`.latency`, :mod:`.memory` (the tables beside the
verdicts), :mod:`.summary` (:func:`summarize`, :class:`RunSummary`).
"""

from __future__ import annotations

from ..metrics import Verdict, namespace
# The column lists, COUNT_RULE and the memory limits stay importable from here, as
# before the split, beside the curated API of __all__.
from .frames import (  # noqa: F401
    GC_FREED_COLUMNS,
    LATENCY_COLUMNS,
    LIFECYCLE_PREFIXES,
    RESOURCE_METRICS,
    ZERO_FILL_NAMESPACES,
    Census,
    CensusRecord,
    Timeline,
    TimelineSample,
    census_frame,
    timeline_frame,
)
from .latency import latency_summary, split_connect, split_latency
from .lifecycle import lifecycle_noun, lifecycle_table
from .memory import CYCLIC_MIN_BYTES, RSS_MIN_GROWTH_MB, memory_summary  # noqa: F401
from .summary import RunSummary, summarize
from .verdicts import (  # noqa: F401
    COUNT_RULE,
    INSUFFICIENT,
    LEAK,
    NONE,
    NORMAL,
    TRANSIENT,
    MetricVerdict,
    Rule,
    Thresholds,
    judge,
    robust_slope,
)

__all__ = (
    "INSUFFICIENT",
    "LEAK",
    "NONE",
    "NORMAL",
    "TRANSIENT",
    "CensusRecord",
    "MetricVerdict",
    "Rule",
    "RunSummary",
    "Thresholds",
    "TimelineSample",
    "Verdict",
    "census_frame",
    "judge",
    "latency_summary",
    "lifecycle_noun",
    "memory_summary",
    "lifecycle_table",
    "namespace",
    "robust_slope",
    "split_connect",
    "split_latency",
    "summarize",
    "timeline_frame",
)
