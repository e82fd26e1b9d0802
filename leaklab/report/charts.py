"""A chart that says what it shows, and the checks every chart must pass.

:class:`Chart` is a :class:`matplotlib.figure.Figure` with a caption, the
series its caption says grow (``claims``) and the panels that may be flat on
purpose (a control run, a fixed variant). In Jupyter and in the report it
shows as a picture with its caption under it; its output also carries what
was drawn, read back from the axes (:data:`CHART_MIME`), so a test can check
every chart of an executed notebook with :func:`chart_problems`:

* no panel without data, no panel where every series is one constant (an
  all-zero chart says nothing; the evidence cites the value instead), unless
  the panel says why it is flat (bars side by side, a fixed variant); and
  not a chart whose every value is zero or that nothing in varies;
* a caption, and every series the caption says grows is drawn and grows.
"""

from __future__ import annotations

import base64
import html
import io
import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from matplotlib.figure import Figure

__all__ = ["ANNOTATION", "CHART_MIME", "Chart", "Note", "chart_problems", "describe", "grows"]

CHART_MIME = "application/vnd.leaklab.chart+json"
"""The output type that carries what a chart drew (ignored by renderers)."""

ANNOTATION = "leaklab-annotation"
"""``gid`` of a line that is a marker, not data (a baseline, a threshold)."""


def _numbers(values: Iterable[Any]) -> list[float]:
    out = []
    for v in values:
        try:
            f = float(v)
        except (TypeError, ValueError):
            continue
        if math.isfinite(f):
            out.append(f)
    return out


def grows(values: Sequence[Any]) -> bool:
    """Whether a drawn series rises above its first value (a release later
    in the series does not undo it)."""
    ys = _numbers(values)
    return len(ys) > 1 and max(ys[1:]) > ys[0] + 1e-9 * max(1.0, abs(ys[0]))


def _constant(values: Sequence[Any]) -> bool:
    ys = _numbers(values)
    return len(ys) < 2 or max(ys) - min(ys) <= 1e-12 * max(1.0, abs(max(ys)))


class Chart(Figure):
    """A figure with a caption (see the module doc)."""

    def __init__(self, *args: Any, caption: str = "", **kwargs: Any) -> None:
        kwargs.setdefault("layout", "constrained")
        super().__init__(*args, **kwargs)
        self.caption = caption
        self.claims: list[str] = []
        self.flat_ok: dict[int, str] = {}

    def say(self, caption: str, grows: Iterable[str] = ()) -> Chart:
        """Set the caption, and the labels of the series it says grow."""
        self.caption = caption
        self.claims = list(grows)
        return self

    def allow_flat(self, ax: Any, why: str) -> None:
        """A panel that may be flat, and why (a control, a fixed variant)."""
        self.flat_ok[list(self.axes).index(ax)] = why

    def describe(self) -> dict[str, Any]:
        return describe(self)

    def problems(self) -> list[str]:
        return chart_problems(self.describe())

    def png(self, dpi: int = 96) -> bytes:
        buf = io.BytesIO()
        self.savefig(buf, format="png", dpi=dpi, bbox_inches="tight", facecolor="white")
        return buf.getvalue()

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, Any]:
        meta = self.describe()
        b64 = base64.b64encode(self.png()).decode("ascii")
        esc = html.escape
        title = meta["title"] or "chart"
        figure = (f"<figure class='leaklab-chart' style='margin:0.4em 0'>"
                  f"<img alt='{esc(title, quote=True)}' src='data:image/png;base64,{b64}' style='max-width:100%'>"
                  f"<figcaption style='font-size:0.9em;color:#444;max-width:60em'>{esc(self.caption)}</figcaption>"
                  "</figure>")
        return {"text/html": figure, "image/png": b64, CHART_MIME: meta,
                "text/plain": f"<Chart {title!r}: {self.caption}>"}


class Note:
    """What is shown instead of a chart that would draw nothing but constants."""

    def __init__(self, title: str, text: str) -> None:
        self.title, self.text = title, text

    def _repr_html_(self) -> str:
        return (f"<p class='leaklab-note' style='color:#444;border-left:3px solid #c8cdd6;padding-left:0.6em'>"
                f"<b>{html.escape(self.title)}</b>: {html.escape(self.text)}</p>")

    def __repr__(self) -> str:
        return f"{self.title}: {self.text}"


def describe(fig: Figure) -> dict[str, Any]:
    """What a figure draws, read back from its axes: per visible panel its
    title, axis labels and series (lines, bars, points), plus the chart's
    caption, claims and flat-on-purpose panels."""
    panels = []
    flat_ok: Mapping[int, str] = getattr(fig, "flat_ok", {}) or {}
    for i, ax in enumerate(fig.axes):
        if not ax.get_visible():
            continue
        series: list[dict[str, Any]] = []
        for n, line in enumerate(ax.get_lines()):
            if line.get_gid() == ANNOTATION:
                continue
            label = str(line.get_label())
            series.append({"label": label if not label.startswith("_") else f"line {n + 1}",
                           "y": _numbers(line.get_ydata())})
        for n, container in enumerate(getattr(ax, "containers", [])):
            patches = list(container)
            horizontal = getattr(container, "orientation", "vertical") == "horizontal"
            label = str(container.get_label() or "")
            series.append({"label": label if label and not label.startswith("_") else f"bars {n + 1}",
                           "y": _numbers(p.get_width() if horizontal else p.get_height() for p in patches)})
        for n, coll in enumerate(ax.collections):
            offsets = getattr(coll, "get_offsets", list)()
            label = str(coll.get_label() or "")
            series.append({"label": label if label and not label.startswith("_") else f"points {n + 1}",
                           "y": _numbers(o[1] for o in offsets)})
        panels.append({"title": ax.get_title(), "xlabel": ax.get_xlabel(), "ylabel": ax.get_ylabel(),
                       "series": series, "flat_ok": flat_ok.get(i)})
    suptitle = getattr(fig, "_suptitle", None)
    return {"title": suptitle.get_text() if suptitle is not None else "",
            "caption": getattr(fig, "caption", ""), "grows": list(getattr(fig, "claims", []) or []),
            "panels": panels}


def chart_problems(meta: Mapping[str, Any]) -> list[str]:
    """What is wrong with a chart (its :func:`describe`): one line each;
    empty when it passes."""
    problems: list[str] = []
    title = meta.get("title") or "chart"
    panels = list(meta.get("panels") or [])
    if not panels:
        return [f"{title}: no panel drawn"]
    if not str(meta.get("caption") or "").strip():
        problems.append(f"{title}: no caption")
    varying = False
    for p in panels:
        name = p.get("title") or p.get("ylabel") or "panel"
        drawn = [s for s in p.get("series") or [] if s.get("y")]
        if not drawn:
            problems.append(f"{title} / {name}: nothing drawn")
            continue
        if all(_constant(s["y"]) for s in drawn):
            values = sorted({v for s in drawn for v in s["y"]})
            if not p.get("flat_ok"):
                problems.append(f"{title} / {name}: every series is constant ({', '.join(f'{v:g}' for v in values[:3])})"
                                " and the panel does not say why")
            elif any(values):
                varying = True  # flat on purpose (bars side by side, a fixed variant), and not all zero
        else:
            varying = True
    if panels and not varying and not any("nothing drawn" in x for x in problems):
        problems.append(f"{title}: every series in the chart is constant" + (
            " (all zero)" if not any(v for p in panels for s in p.get("series") or [] for v in s.get("y") or []) else ""))
    by_label: dict[str, list[list[float]]] = {}
    for p in panels:
        for s in p.get("series") or []:
            by_label.setdefault(s.get("label", ""), []).append(s.get("y") or [])
    for label in meta.get("grows") or []:
        drawn = by_label.get(label)
        if not drawn:
            problems.append(f"{title}: the caption says {label!r} grows, and the chart does not draw it")
        elif not any(grows(y) for y in drawn):
            ys = drawn[0]
            problems.append(f"{title}: the caption says {label!r} grows; it does not "
                            f"({ys[0]:g} -> {ys[-1]:g})" if ys else f"{title}: {label!r} has no values")
    return problems
