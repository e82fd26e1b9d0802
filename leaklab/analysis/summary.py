"""A run's verdicts grouped, JSON-ready (:func:`summarize`), and the typed
view of them with the run's metadata (:class:`RunSummary`)."""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping
from types import MappingProxyType
from typing import Any

from .. import metrics
from ..metrics import Kind, Verdict
from .frames import RESOURCE_METRICS, Census, Timeline, census_frame
from .latency import latency_summary
from .lifecycle import lifecycle_table
from .memory import memory_summary
from .time import time_summary
from .verdicts import MetricVerdict, Rule, Thresholds, judge

__all__ = ["RunSummary", "summarize"]


def summarize(
    census: Census,
    timeline: Timeline | None,
    *,
    expected_growth: Iterable[str] = (),
    cycles_excluded: int = 0,
    thresholds: Thresholds | Mapping[str, Rule | Mapping[str, Any]] | None = None,
    failed_cycles: Iterable[int] = (),
    allocator: Mapping[str, Any] | None = None,
    freed_types: Mapping[str, int] | None = None,
    loop: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Every verdict, grouped, JSON-ready (``json.dumps(..., allow_nan=False)`` works).

    Returns:
        ``{"types": {Name: verdict}, "tasks": {<'tasks' verdict>,
        "by_coroutine": {qualname: verdict}}, "resources": {name: verdict}
        (those of :data:`RESOURCE_METRICS` present), "other": {metric: verdict}
        (judged metrics of no group above), "lifecycle": lifecycle_table,
        "containers": [{"path", "start", "end", "per_cycle", "verdict"}] (not
        ``none``, steepest first), "latency_ms": latency_summary, "flagged":
        [leaks then transients, by name]}``; a verdict is
        :meth:`MetricVerdict.as_dict`.
    """
    frame = census_frame(census)
    verdicts = judge(frame, timeline, cycles_excluded=cycles_excluded,
                     expected_growth=expected_growth, thresholds=thresholds, failed_cycles=failed_cycles)
    types: dict[str, Any] = {}
    by_coroutine: dict[str, Any] = {}
    resources: dict[str, Any] = {}
    other: dict[str, Any] = {}
    containers: list[dict[str, Any]] = []
    for metric, v in verdicts.items():
        parsed = metrics.parse(metric)
        if parsed.kind is Kind.TYPE:
            types[parsed.subject] = v.as_dict()
        elif parsed.kind is Kind.TASK:
            by_coroutine[parsed.subject] = v.as_dict()
        elif parsed.kind is Kind.CONTAINER:
            # Flat ones too: "measured and flat" is not "never measured".
            d = v.as_dict()
            containers.append({"path": parsed.subject, "start": d["start"], "end": d["end"],
                               "per_cycle": d["per_cycle"], "verdict": d["verdict"], "lifetime_s": d["lifetime_s"]})
        elif metric in RESOURCE_METRICS:
            resources[metric] = v.as_dict()
        elif metric != "tasks":
            other[metric] = v.as_dict()
    containers.sort(key=lambda c: (-(c["per_cycle"] or 0.0), c["path"]))
    tasks = verdicts["tasks"].as_dict() if "tasks" in verdicts else {}
    tasks["by_coroutine"] = by_coroutine
    flagged = sorted((m for m, v in verdicts.items() if v.verdict in (Verdict.LEAK, Verdict.TRANSIENT)),
                     key=lambda m: (verdicts[m].verdict != Verdict.LEAK, m))
    return {
        "types": types,
        "tasks": tasks,
        "resources": {m: resources[m] for m in RESOURCE_METRICS if m in resources},
        "other": other,
        "lifecycle": lifecycle_table(frame),
        "containers": containers,
        "latency_ms": latency_summary(frame),
        "memory": memory_summary(frame, verdicts, allocator, freed_types),
        "time": time_summary(frame, loop),
        "flagged": flagged,
    }


#: Where :func:`summarize` puts each latency column's verdict (``None``: the top level).
_LATENCY_KEYS: Mapping[str, str | None] = MappingProxyType({
    "latency_end_ms": None, "latency_first_ms": "first_reply", "latency_connect_ms": "connect",
    "llm_ms": "llm", "backend_ms": "backend",
})


class RunSummary(dict[str, Any]):
    """One run's summary, typed: what :func:`summarize` gives plus the run's
    metadata (``RunResult.summary()`` makes it).

    The typed attributes are what consumers ask. It also reads as the dict it
    was built from (``summary["types"]``, ``summary.get("flagged")``: a
    read-only :class:`collections.abc.Mapping`), so code that took that dict
    takes this; it is a ``dict`` underneath, so ``json.dumps`` and a notebook
    show it as before. :meth:`as_dict` gives the plain dict (the JSON form).

    Attributes:
        run_id, target, scenario: what ran (``None`` when not said).
        faults: fault ids the target ran with.
        cycles: cycles done; judged_cycles: those the verdicts rest on
            (failed cycles do not count); failed_cycles: the failed ones.
        errors: what went wrong, in words.
        flagged: metrics judged ``leak`` then ``transient``, by name.
        verdicts: metric name (``type:Name``, ``task:qualname``, ``tasks``,
            ``container:path``, resources, other metrics) -> :class:`MetricVerdict`.
        lifecycle: :func:`~leaklab.analysis.lifecycle_table` of the run.
        latency: :func:`~leaklab.analysis.latency_summary` of the run.
        memory: :func:`~leaklab.analysis.memory_summary` of the run.
        survivors: watched instances still alive after the timeline, by type.
        path: where the run was saved, if it was.
    """

    def __init__(self, data: Mapping[str, Any]) -> None:
        # dict.__init__ fills the dict without __setitem__ (read-only below).
        super().__init__(copy.deepcopy(dict(data)))
        d: Mapping[str, Any] = self
        self.run_id: str | None = d.get("run_id")
        self.target: str | None = d.get("target")
        self.scenario: str | None = d.get("scenario")
        self.faults: tuple[str, ...] = tuple(d.get("faults") or ())
        self.failed_cycles: tuple[int, ...] = tuple(d.get("failed_cycles") or ())
        self.cycles: int = int(d.get("cycles") or 0)
        self.judged_cycles: int = (int(d["judged_cycles"]) if d.get("judged_cycles") is not None
                                   else self.cycles - len(self.failed_cycles))
        self.errors: tuple[str, ...] = tuple(d.get("errors") or ())
        self.flagged: tuple[str, ...] = tuple(d.get("flagged") or ())
        self.lifecycle: Mapping[str, Mapping[str, Any]] = MappingProxyType(d.get("lifecycle") or {})
        self.latency: Mapping[str, Any] = MappingProxyType(d.get("latency_ms") or {})
        self.memory: Mapping[str, Any] = MappingProxyType(d.get("memory") or {})
        self.survivors: Mapping[str, int] = MappingProxyType((d.get("survivors") or {}).get("alive") or {})
        self.path: str | None = d.get("path")
        self.verdicts: Mapping[str, MetricVerdict] = MappingProxyType(_metric_verdicts(d))

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> RunSummary:
        """The summary of ``d``: :func:`summarize`'s dict, with or without the
        run's metadata (``run_id``, ``target``, ``cycles`` ...). ``d`` is copied."""
        return cls(d)

    def as_dict(self) -> dict[str, Any]:
        """The dict it was built from, as a plain ``dict`` (a copy): the JSON form."""
        return copy.deepcopy(dict(self))

    def metric(self, metric: str) -> MetricVerdict | None:
        """The verdict of a judged metric with its numbers, ``None`` when the
        run did not judge it."""
        return self.verdicts.get(metric)

    def verdict_of(self, metric: str) -> Verdict | None:
        """What ``metric`` did over the run: a judged metric's verdict, or for a
        latency column (``latency_end_ms``, ``llm_ms`` ...) ``slows``/``none``;
        ``None`` when the run did not measure it."""
        judged = self.verdicts.get(metric)
        if judged is not None:
            return judged.verdict
        if metric in _LATENCY_KEYS:
            key = _LATENCY_KEYS[metric]
            stats = self.latency if key is None else self.latency.get(key) or {}
            if stats.get("verdict") is not None:
                return Verdict(stats["verdict"])
        return None

    def _read_only(self, *args: Any, **kwargs: Any) -> Any:
        raise TypeError("a RunSummary is read-only: as_dict() gives a dict to change")

    __setitem__ = __delitem__ = __ior__ = _read_only
    clear = pop = popitem = setdefault = update = _read_only

    def __reduce__(self) -> tuple[Any, ...]:
        # pickle and copy rebuild it from the dict (the default would fill it by __setitem__)
        return (type(self), (dict(self),))


def _metric_verdicts(d: Mapping[str, Any]) -> dict[str, MetricVerdict]:
    """Metric name -> verdict, from :func:`summarize`'s groups."""
    out: dict[str, MetricVerdict] = {}
    for subject, v in (d.get("types") or {}).items():
        out[metrics.name(Kind.TYPE, subject)] = MetricVerdict.from_dict(v, metrics.name(Kind.TYPE, subject))
    tasks = d.get("tasks") or {}
    if tasks.get("verdict") is not None:
        out["tasks"] = MetricVerdict.from_dict(tasks, "tasks")
    for subject, v in (tasks.get("by_coroutine") or {}).items():
        out[metrics.name(Kind.TASK, subject)] = MetricVerdict.from_dict(v, metrics.name(Kind.TASK, subject))
    for c in d.get("containers") or []:
        out[metrics.name(Kind.CONTAINER, c["path"])] = MetricVerdict.from_dict(c, metrics.name(Kind.CONTAINER, c["path"]))
    for group in ("resources", "other"):
        for metric, v in (d.get(group) or {}).items():
            out[metric] = MetricVerdict.from_dict(v, metric)
    return out
