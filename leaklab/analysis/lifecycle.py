"""Lifecycle methods: calls counted against calls expected, per cycle and per object."""

from __future__ import annotations

import re
from typing import Any

from .. import metrics
from ..metrics import Kind
from .frames import Census, census_frame, is_lifecycle

__all__ = ["lifecycle_noun", "lifecycle_table"]

#: Per-object lifecycle columns -> their key in :func:`lifecycle_table`'s ``"objects"``.
_LIFECYCLE_OBJECT_KEYS: tuple[tuple[Kind, str], ...] = (
    (Kind.LIFECYCLE_OBJECTS, "created"), (Kind.LIFECYCLE_CLOSED, "closed"), (Kind.LIFECYCLE_RAN_FOR, "ran_for"),
    (Kind.LIFECYCLE_OWNED, "of"), (Kind.LIFECYCLE_SHORT, "short_lived"),
    (Kind.LIFECYCLE_SHORT_CALLS, "short_lived_calls"),
)


def lifecycle_table(census: Census) -> dict[str, dict[str, Any]]:
    """Calls counted vs expected per lifecycle method, summed over cycles 1..N,
    and, where the census counted them, per object.

    A method with only an ``expected:`` column was never called (calls 0); one
    with only a ``lifecycle:`` column has ``expected`` None.

    Per object (only when the census has a ``lifecycle_objects:`` column for
    the method, i.e. its class is a watched type; otherwise the entry has no
    ``"objects"`` key: calls only), summed over cycles 1..N, among the
    instances created during each cycle: ``created``; ``closed`` (the method
    ran on it by the end of the cycle's settle); ``short_lived`` (it ran
    while the instance's session was still open, before its disconnect) and
    ``short_lived_calls`` (calls on those); ``of`` (session-owned: still
    unclosed at its session's disconnect) and ``ran_for`` (session-owned
    ones it ran on after the disconnect). ``ran_for < of`` means the method
    missed objects that outlived their session.

    Returns:
        ``{"Qualified.method": {"calls": int, "expected": int | None[,
        "objects": {"created", "closed", "ran_for", "of", "short_lived",
        "short_lived_calls"} (ints)]}}``, sorted by name.
    """
    frame = census_frame(census)
    rows = frame[frame.index >= 1]
    names = sorted({metrics.subject_of(c) for c in frame.columns if is_lifecycle(c)})
    out: dict[str, dict[str, Any]] = {}

    def total(col: str) -> int | None:
        s = rows.get(col)
        return int(round(float(s.sum()))) if s is not None else None

    for name in names:
        calls = total(metrics.name(Kind.LIFECYCLE, name))
        entry: dict[str, Any] = {"calls": calls if calls is not None else 0,
                                 "expected": total(metrics.name(Kind.EXPECTED, name))}
        if metrics.name(Kind.LIFECYCLE_OBJECTS, name) in frame.columns:
            entry["objects"] = {key: total(metrics.name(kind, name)) or 0 for kind, key in _LIFECYCLE_OBJECT_KEYS}
        out[name] = entry
    return out


def lifecycle_noun(name: str) -> str:
    """What a lifecycle method's objects are called in a sentence, from the
    last word of its class name: ``"MCPClient.aclose"`` -> ``"clients"``,
    ``"ServiceContext.close"`` -> ``"contexts"``."""
    cls = name.rpartition(".")[0] or name
    words = re.findall(r"[A-Z]?[a-z0-9]+|[A-Z]+(?![a-z])", cls)
    word = words[-1].lower() if words else "object"
    return word + ("es" if word.endswith(("s", "x", "ch", "sh")) else "s")
