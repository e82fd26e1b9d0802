"""Where the event loop's time went, shown: the functions that slow, the
longest stalls with the code that held the loop, and flame graphs of the
first and the last cycle (offline SVG, the grown frames outlined in red)."""

from __future__ import annotations

import html
import json
import os
from collections.abc import Mapping
from typing import Any

from ..probes.stacks import FlameNode, render_svg
from .tables import DATA_MIME

__all__ = ["LoopTime", "loop_time"]

#: Frames drawn below the root; deeper ones are folded into their ancestor
#: (a recursion of a library's validators would make the graph a tower).
MAX_DEPTH = 22


def pruned(node: FlameNode, depth: int = MAX_DEPTH) -> FlameNode:
    """``node`` with the frames deeper than ``depth`` left out (their time
    stays in their ancestors' boxes)."""
    out = FlameNode(node.key, node.owner, node.file, node.line, node.total_ms, node.self_ms)
    if depth > 0:
        for key, child in node.children.items():
            out.children[key] = pruned(child, depth - 1)
    return out


class LoopTime:
    """A run's loop time as HTML (and text elsewhere); its output carries
    the numbers as data (:data:`~leaklab.report.tables.DATA_MIME`, kind ``loop``)."""

    def __init__(self, time: Mapping[str, Any], first: Mapping[str, Any] | None, last: Mapping[str, Any] | None,
                 cycles: int) -> None:
        self.time, self.first, self.last, self.cycles = dict(time), first, last, cycles

    def _rows(self) -> list[tuple[str, str]]:
        t, rows = self.time, []
        blocked = (t.get("loop") or {}).get("loop_blocked_ms") or {}
        if blocked.get("first") is not None:
            rows.append(("loop blocked per cycle", f"{blocked['first']:.0f} -> {blocked['last']:.0f} ms "
                                                   f"({blocked['per_cycle']:+.1f} ms/cycle: {blocked['verdict']})"))
        functions = t.get("functions") or {}
        for key in (t.get("slows") or [])[:5]:
            f = functions.get(key) or {}
            where = f" ({os.path.basename(f['file'])}:{f.get('line')})" if f.get("file") else ""
            rows.append(("slows", f"{key}{where}: {f.get('first', 0):.0f} -> {f.get('last', 0):.0f} ms per cycle, "
                                  f"{f.get('per_cycle', 0):+.1f} ms/cycle"))
        for s in (t.get("stalls") or [])[:5]:
            where = f"{os.path.basename(s.get('file') or '')}:{s.get('line')}"
            rows.append(("stall", f"{s.get('lag_ms', 0):.0f} ms in cycle {s.get('cycle')}: {s.get('function')} "
                                  f"({where})" + (f", in {s['coroutine']}" if s.get("coroutine") else "")))
        idle = t.get("idle") or {}
        if idle:
            rows.append(("idle after the cycles", f"the app's code ran {idle.get('ratio', 0):.0%} of "
                                                  f"{idle.get('wall_s', 0):.1f} s"))
        return rows

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, Any]:
        payload = {"kind": "loop", "slows": list(self.time.get("slows") or []),
                   "stalls": [{k: s.get(k) for k in ("cycle", "lag_ms", "function", "file", "line", "coroutine")}
                              for s in (self.time.get("stalls") or [])[:10]]}
        return {"text/html": self._repr_html_(), "text/plain": repr(self),
                DATA_MIME: json.loads(json.dumps(payload, default=str))}

    def _repr_html_(self) -> str:
        esc = html.escape
        if not self.time:
            return "<p>The event loop was not sampled in this run.</p>"
        body = "".join(f"<tr><th style='text-align:left;padding-right:1em'>{esc(k)}</th><td>{esc(v)}</td></tr>"
                       for k, v in self._rows())
        grown = {g.get("key") for g in self.time.get("grown") or []}
        graphs = []
        for label, tree in (("first cycle", self.first), (f"last cycle ({self.cycles})", self.last)):
            if tree:
                svg = render_svg(pruned(FlameNode.from_dict(tree)), grown=grown, width=900,
                                 title=f"where the loop's time went, {label}")
                graphs.append(f"<figure style='margin:0.5em 0'>{svg}<figcaption>{esc(label)}: each box a function, "
                              "its width the time the loop spent in it; red outline: grew since the first cycle"
                              "</figcaption></figure>")
        return f"<table>{body}</table>" + "".join(graphs)

    def __repr__(self) -> str:
        return "\n".join(f"{k}: {v}" for k, v in self._rows()) or "the event loop was not sampled"


def loop_time(result: Any) -> LoopTime:
    """Where the loop's time went in a run (a :class:`~leaklab.session.RunResult`)."""
    details = (getattr(result, "details", None) or {}).get("loop") or {}
    return LoopTime(result.summary().get("time") or {}, details.get("first"), details.get("last"),
                    int(getattr(result, "cycles_done", 0)))
