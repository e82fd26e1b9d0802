"""What the report's pieces share to look alike: verdict colours and the
page's assets.

Tables, cards, the first screen and the page's summary line colour a verdict
the same way (:data:`VERDICT_COLORS`, light backgrounds); plots draw a
verdict's line in the darker :data:`VERDICT_LINE_COLORS`. The CSS and the
walkthrough's script are files under ``templates/``, read as package
resources (:func:`template`), so an installed kit finds them too.
"""

from __future__ import annotations

import functools
from importlib import resources

from ..metrics import Change, ItemVerdict, Verdict

__all__ = ["TEMPLATES", "VERDICT_COLORS", "VERDICT_LINE_COLORS", "template"]

VERDICT_COLORS: dict[str, str] = {
    ItemVerdict.CONFIRMED: "#f5b7b1", Verdict.LEAK: "#f5b7b1", Verdict.SLOWS: "#f5b7b1",
    ItemVerdict.TRANSIENT: "#fad7a0",
    ItemVerdict.RULED_OUT: "#abebc6", Verdict.NONE: "#d5f5e3",
    Verdict.NORMAL: "#d6eaf8",
    ItemVerdict.NOT_APPLICABLE: "#e5e7e9",
    ItemVerdict.INCONCLUSIVE: "#f9e79f",
    # a comparison's changes
    Change.FIXED: "#abebc6", Change.PARTLY_FIXED: "#d5f5e3", Change.UNCHANGED: "#e5e7e9", Change.STILL_LEAKS: "#f5b7b1",
    Change.NEW_LEAK: "#ec7063", Change.WORSE: "#ec7063", Change.CANT_TELL: "#f9e79f", Change.CHANGED: "#fad7a0",
    # memory verdicts (leaklab.analysis's memory explanation)
    "cyclic": "#fad7a0", "allocator": "#fad7a0", "native": "#f5b7b1", "objects": "#f5b7b1",
}
"""Background of a verdict's (or a change's) cell. Keyed by the enums of
:mod:`leaklab.metrics`; they equal their values, so a verdict read from JSON
finds its colour too."""

VERDICT_LINE_COLORS: dict[str, str] = {
    ItemVerdict.CONFIRMED: "#c0392b", Verdict.LEAK: "#c0392b", ItemVerdict.TRANSIENT: "#d68910",
    ItemVerdict.RULED_OUT: "#1e8449", Verdict.NONE: "#1e8449", Verdict.NORMAL: "#2e86c1",
    ItemVerdict.NOT_APPLICABLE: "#7f8c8d", ItemVerdict.INCONCLUSIVE: "#b7950b",
}
"""A verdict's colour in a chart (lines, titles, bars)."""

TEMPLATES = "templates"
"""The folder of the page's assets, inside this package."""


@functools.cache
def template(name: str) -> str:
    """The text of ``templates/<name>`` (a package resource: found in a
    checkout, a wheel or a zip alike).

    Raises:
        FileNotFoundError: no such template.
    """
    return resources.files(__package__).joinpath(TEMPLATES).joinpath(name).read_text(encoding="utf-8")
