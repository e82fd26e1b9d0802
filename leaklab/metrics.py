"""Metric names and verdicts, typed in one place.

A census record is a flat mapping of metric name -> number. Names of the
families that list only what exists are namespaced, ``<kind>:<subject>``::

    type:ServiceContext                 live instances of a watched type
    task:ServiceContext._finish_init    pending tasks by coroutine
    container:handler.client_connections   length of a container, by path
    lifecycle:ServiceContext.close      calls of a lifecycle method (per cycle)
    expected:ServiceContext.close       calls expected of it (per cycle)
    lifecycle_objects:<label> ...       per-object lifecycle accounting
    time:module.function                ms of a cycle the loop spent in a function

Plain resources (``tasks``, ``rss_mb``, ``fds`` ...) have no kind. Only this
module builds a namespaced name (:func:`name`) or takes one apart
(:func:`parse`, :func:`kind_of`, :func:`subject_of`).

The verdicts are string enums: they compare equal to their values and are
written to JSON as them, so saved runs and notebooks' data read the same.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

__all__ = [
    "LIFECYCLE_KINDS",
    "ZERO_FILL_KINDS",
    "Change",
    "ItemVerdict",
    "Kind",
    "Metric",
    "StrEnum",
    "Verdict",
    "is_kind",
    "kind_of",
    "name",
    "parse",
    "subject_of",
]

SEP = ":"


class StrEnum(str, enum.Enum):
    """:class:`enum.StrEnum` of Python 3.11, on 3.10 too: members are strings,
    ``str()`` and ``format()`` give the value."""

    def __str__(self) -> str:
        return str(self.value)

    def __format__(self, spec: str) -> str:
        return format(str(self.value), spec)


class Kind(StrEnum):
    """The namespaces of metric names."""

    TYPE = "type"
    TASK = "task"
    CONTAINER = "container"
    LIFECYCLE = "lifecycle"
    EXPECTED = "expected"
    LIFECYCLE_OBJECTS = "lifecycle_objects"
    LIFECYCLE_CLOSED = "lifecycle_closed"
    LIFECYCLE_SHORT = "lifecycle_short"
    LIFECYCLE_SHORT_CALLS = "lifecycle_short_calls"
    LIFECYCLE_OWNED = "lifecycle_owned"
    LIFECYCLE_RAN_FOR = "lifecycle_ran_for"
    TIME = "time"


#: Families whose columns list only what exists: a missing value is a count of 0.
ZERO_FILL_KINDS: tuple[Kind, ...] = (Kind.TYPE, Kind.TASK, Kind.CONTAINER, Kind.TIME)
#: Per-cycle call counters: tabulated, not judged as growth.
LIFECYCLE_KINDS: tuple[Kind, ...] = (
    Kind.LIFECYCLE, Kind.EXPECTED, Kind.LIFECYCLE_OBJECTS, Kind.LIFECYCLE_CLOSED, Kind.LIFECYCLE_SHORT,
    Kind.LIFECYCLE_SHORT_CALLS, Kind.LIFECYCLE_OWNED, Kind.LIFECYCLE_RAN_FOR,
)
_KINDS = {k.value: k for k in Kind}


@dataclass(frozen=True)
class Metric:
    """A metric name taken apart: ``kind`` is ``None`` for a plain resource."""

    kind: Kind | None
    subject: str

    def __str__(self) -> str:
        return self.subject if self.kind is None else f"{self.kind.value}{SEP}{self.subject}"


def name(kind: Kind | str, subject: str) -> str:
    """The metric name of ``subject`` in the family ``kind``:
    ``name(Kind.TYPE, "ServiceContext") == "type:ServiceContext"``."""
    return f"{Kind(kind).value}{SEP}{subject}"


def parse(metric: str) -> Metric:
    """``"type:ServiceContext"`` -> ``Metric(Kind.TYPE, "ServiceContext")``;
    a name with no known kind is a plain resource (``Metric(None, "rss_mb")``)."""
    head, sep, rest = metric.partition(SEP)
    kind = _KINDS.get(head) if sep else None
    return Metric(kind, rest) if kind is not None else Metric(None, metric)


def kind_of(metric: str) -> Kind | None:
    """The family of a metric name, ``None`` for a plain resource."""
    return parse(metric).kind


def namespace(metric: str) -> str:
    """The namespace thresholds are looked up by: the kind's value, or the
    whole name of a plain resource (``"tasks"``, ``"rss_mb"``)."""
    head, sep, _ = metric.partition(SEP)
    return head if sep else metric


def subject_of(metric: str) -> str:
    """What a metric counts: ``"type:ServiceContext"`` -> ``"ServiceContext"``,
    a plain resource -> its own name."""
    return parse(metric).subject


def is_kind(metric: str, *kinds: Kind) -> bool:
    """Whether ``metric`` is in one of the families ``kinds``."""
    return parse(metric).kind in kinds


class Verdict(StrEnum):
    """What a metric did over a run (:func:`leaklab.analysis.judge`)."""

    LEAK = "leak"
    TRANSIENT = "transient"
    NORMAL = "normal"
    NONE = "none"
    #: too few judged cycles to tell growth from none
    INSUFFICIENT = "insufficient"
    #: a timing that grows per cycle
    SLOWS = "slows"
    #: a timing that grew, but so did the machine's (a control workload): cannot tell
    INCONCLUSIVE = "inconclusive"


class ItemVerdict(StrEnum):
    """A checklist item's answer."""

    CONFIRMED = "confirmed"
    TRANSIENT = "transient"
    RULED_OUT = "ruled_out"
    NOT_APPLICABLE = "not_applicable"
    INCONCLUSIVE = "inconclusive"


class Change(StrEnum):
    """What a fix did to one row of a before/after comparison."""

    FIXED = "fixed"
    PARTLY_FIXED = "partly fixed"
    UNCHANGED = "unchanged"
    STILL_LEAKS = "still leaks"
    NEW_LEAK = "new leak"
    WORSE = "worse"
    CANT_TELL = "can't tell"
    CHANGED = "changed"
