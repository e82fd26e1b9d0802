"""objgraph and pympler beside leaklab's chain, for one survivor.

objgraph's ``find_backref_chain`` walks ``gc.get_referrers`` back from the
object to a module; pympler's ``refbrowser`` draws the same referrers as a
tree. Both see what gc sees. Where a reference is kept out of gc's sight (a
cancelled task's stored error, :mod:`leaklab.retention.hidden`) or the root
is an entry gc cannot name (a weak-key entry whose value refers back to its
key), they stop; the comparison says where, and why, from leaklab's chain.

The result holds strings only: objgraph's DOT (labels redacted), pympler's
tree as text, the chains, the times.
"""

from __future__ import annotations

import dataclasses
import gc
import html
import io
import re
import shutil
import subprocess
import sys
import time
from typing import Any

from .chains import find_chains
from .edges import Chain
from .render import render_chain
from .safe import redact

__all__ = ["ObjgraphComparison", "compare_with_objgraph"]

_NODE_RE = re.compile(r'^\s*(o\d+)\[label="((?:[^"\\]|\\.)*)"\];', re.M)
_EDGE_RE = re.compile(r'^\s*(o\d+) -> (o\d+)(?: \[label="((?:[^"\\]|\\.)*)")?', re.M)


@dataclasses.dataclass(frozen=True)
class ObjgraphComparison:
    """One survivor seen by objgraph, pympler and leaklab.

    Attributes:
        type: the survivor's type.
        leaklab: leaklab's chain.
        objgraph_found: objgraph's ``find_backref_chain`` reached a module.
        objgraph_hops: objects in objgraph's chain (1: the survivor alone).
        objgraph_dot: objgraph's picture, DOT source (``show_chain`` of its
            chain, or ``show_backrefs`` of the survivor when it found none),
            labels redacted.
        pympler_tree: pympler's ``refbrowser`` tree of referrers, as text.
        where_it_stops: what gc shows last on the way back, and why the
            search cannot go on there (from leaklab's chain).
        objgraph_s / leaklab_s: seconds each search took.
    """

    type: str
    leaklab: Chain
    objgraph_found: bool
    objgraph_hops: int
    objgraph_dot: str
    pympler_tree: str
    where_it_stops: str
    objgraph_s: float
    leaklab_s: float

    def as_dict(self) -> dict[str, Any]:
        return {"type": self.type, "leaklab": {"root_kind": self.leaklab.root_kind, "chain": self.leaklab.as_list()},
                "objgraph_found": self.objgraph_found, "objgraph_hops": self.objgraph_hops,
                "where_it_stops": self.where_it_stops, "objgraph_s": round(self.objgraph_s, 3),
                "leaklab_s": round(self.leaklab_s, 3)}

    def objgraph_picture(self) -> str:
        """objgraph's graph as SVG: graphviz when ``dot`` is on PATH, else
        drawn here from the DOT source (boxes and labelled arrows)."""
        return dot_to_svg(self.objgraph_dot)

    def _repr_html_(self) -> str:
        esc = html.escape
        ours = render_chain(self.leaklab)._repr_html_()
        found = (f"objgraph finds a chain of {self.objgraph_hops} objects" if self.objgraph_found
                 else "objgraph finds no chain to a module")
        return (
            f"<div class='ll-compare'><p><b>{esc(self.type)}</b>: {esc(found)} "
            f"({self.objgraph_s:.2f} s); leaklab: root <code>{esc(self.leaklab.root_kind)}</code> "
            f"({self.leaklab_s:.2f} s).</p>"
            f"<p>{esc(self.where_it_stops)}</p>"
            "<table><tr><th>leaklab</th><th>objgraph</th></tr><tr>"
            f"<td style='vertical-align:top'>{ours}</td>"
            f"<td style='vertical-align:top'>{self.objgraph_picture()}</td></tr></table>"
            f"<details><summary>pympler refbrowser (referrers gc shows)</summary><pre>{esc(self.pympler_tree)}</pre>"
            "</details></div>"
        )


def compare_with_objgraph(obj: Any, *, creation_sites: Any = None, max_depth: int = 20,
                          tree_depth: int = 4) -> ObjgraphComparison:
    """Search ``obj``'s holders with objgraph, pympler and leaklab.

    Call ``gc.collect()`` first. The caller's frame and ``obj``'s own
    containers are not holders; the result keeps no reference to ``obj``.
    """
    import objgraph
    from pympler import refbrowser

    caller = sys._getframe(1)
    ignore = (id(caller), id(sys._getframe()))
    try:
        started = time.perf_counter()
        chain = objgraph.find_backref_chain(obj, objgraph.is_proper_module, max_depth=max_depth, extra_ignore=ignore)
        objgraph_s = time.perf_counter() - started
        found = len(chain) > 1
        hops = len(chain)
        out = io.StringIO()
        if found:
            objgraph.show_chain(chain, output=out)
        else:
            objs = [obj]
            objgraph.show_backrefs(objs, max_depth=3, extra_ignore=(*ignore, id(objs)), output=out)
            objs.clear()
        chain.clear()
        dot = _redact_dot(out.getvalue())
        tree = _pympler_tree(refbrowser, obj, tree_depth)
        started = time.perf_counter()
        (ours,) = find_chains([obj], creation_sites=creation_sites, ignore=[caller])
        leaklab_s = time.perf_counter() - started
        type_name = type(obj).__qualname__
    finally:
        del caller
    return ObjgraphComparison(type_name, ours, found, hops, dot, tree, where_it_stops(ours, found), objgraph_s,
                              leaklab_s)


def where_it_stops(chain: Chain, objgraph_found: bool) -> str:
    """Where a gc-only backward search ends on ``chain``, and why (from its edges)."""
    labels = [e.label for e in chain.edges]
    hidden = next((i for i, e in enumerate(chain.edges) if "gc does not see" in e.label), None)
    if objgraph_found:
        return "objgraph reaches a module too: everything on this chain is visible to gc."
    if hidden is not None:
        below = labels[hidden + 1] if hidden + 1 < len(labels) else chain.target_type
        held = re.split(r"[ .\[]", below, maxsplit=1)[0] or "object"
        return (f"gc shows no holder of the {held}: {labels[hidden]}. "
                "objgraph and pympler stop there; leaklab matched it to its holder and went on.")
    if chain.root_kind == "immortal_weak_key":
        return ("The root is a weak-key dictionary entry whose value refers back to its key: gc reports no "
                "weakref -> key edge, so objgraph's search never reaches a module.")
    if chain.root_kind == "untracked":
        return f"leaklab stops too: {labels[0] if labels else 'no holder'}."
    return (f"objgraph's search (to a module, within its depth) found nothing; leaklab's root is "
            f"{chain.root_kind}: {labels[0] if labels else ''}")


def _pympler_tree(refbrowser: Any, obj: Any, depth: int) -> str:
    def name(o: Any) -> str:
        return redact(f"{type(o).__qualname__}")

    try:
        tree = refbrowser.RefBrowser(obj, maxdepth=depth, str_func=name, repeat=False).get_tree()
    except Exception as exc:  # a hostile object must not cost the comparison
        return f"(pympler refbrowser failed: {type(exc).__name__})"
    lines: list[str] = []

    def walk(node: Any, indent: int) -> None:
        # a node is a _Node (its str is str_func of its object) or a leaf string
        lines.append("  " * indent + (str(node) if hasattr(node, "children") else redact(str(node))))
        for child in getattr(node, "children", ()):
            walk(child, indent + 1)

    try:
        walk(tree, 0)
    finally:
        del tree
        gc.collect()
    # pympler's own browser holds the root: not the program's
    return "\n".join(line for line in lines[:200] if line.strip() != "RefBrowser")


def _redact_dot(dot: str) -> str:
    """objgraph labels nodes with raw reprs: redact what would show a secret."""
    return _NODE_RE.sub(lambda m: f'  {m.group(1)}[label="{_dot_escape(redact(_dot_unescape(m.group(2))))}"];', dot)


def _dot_unescape(s: str) -> str:
    return s.replace('\\"', '"')


def _dot_escape(s: str) -> str:
    return s.replace('"', '\\"')


def dot_to_svg(dot: str) -> str:
    """An objgraph DOT graph as SVG: graphviz's when ``dot`` is on PATH,
    else a plain list of boxes and the references between them."""
    exe = shutil.which("dot")
    if exe is not None:
        try:
            proc = subprocess.run([exe, "-Tsvg"], input=dot.encode(), capture_output=True, timeout=30, check=True)
            svg = proc.stdout.decode("utf-8", "replace")
            return svg[svg.find("<svg"):] if "<svg" in svg else svg
        except (OSError, subprocess.SubprocessError):
            pass
    labels = {n: _dot_unescape(text).replace("\\n", " ") for n, text in _NODE_RE.findall(dot)}
    edges = [(a, b, _dot_unescape(lab or "")) for a, b, lab in _EDGE_RE.findall(dot)]
    rows = [f"{labels.get(a, a)}  --{lab or 'ref'}-->  {labels.get(b, b)}" for a, b, lab in edges]
    if not rows:
        rows = [f"{text} (no referrer gc shows)" for text in labels.values()] or ["(empty graph)"]
    width = max(240, int(max(len(r) for r in rows) * 7.0) + 20)
    height = 16 * len(rows) + 40
    esc = lambda s: html.escape(s, quote=True)  # noqa: E731
    body = "".join(f'<text x="10" y="{36 + 16 * i}">{esc(r)}</text>' for i, r in enumerate(rows))
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="monospace" '
            f'font-size="12"><text x="10" y="18" font-weight="bold">objgraph (DOT drawn without graphviz)</text>'
            f"{body}</svg>")
