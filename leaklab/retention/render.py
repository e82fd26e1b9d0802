"""Pictures of a retention chain, for notebooks and the HTML report.

With a graphviz ``dot`` binary on ``PATH`` the chain is laid out by graphviz
(objgraph's look: boxes, one arrow per reference, root at the top); without
one, a small SVG is drawn here, so a plain ``pip install`` still shows the
chain. Both are drawn from the chain's labels, which are already redacted,
and both HTML-escape every label.

objgraph's own ``show_chain`` is not called: it needs the live objects (a
picture kept in a notebook would keep the survivors alive) and it labels
nodes with raw ``repr`` text, where a token would show.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import html
import re
import shutil
import subprocess
import textwrap
from collections.abc import Mapping, Sequence
from typing import Any

from .edges import Chain
from .safe import redact
from .sizes import human_size

__all__ = ["ChainPicture", "chain_to_dot", "render_chain", "render_tree", "retention_trees"]

_WRAP = 72
_CHAR_W = 7.0  # px per character of 12 px monospace
_LINE_H = 16
_GAP = 34
_PAD = 10


@dataclasses.dataclass(frozen=True)
class ChainPicture:
    """A rendered chain that Jupyter displays inline.

    Attributes:
        data: SVG or DOT text, or PNG bytes.
        fmt: ``"svg"``, ``"png"`` or ``"dot"``.
        engine: ``"graphviz"`` or ``"python"``.
    """

    data: str | bytes
    fmt: str
    engine: str

    def _repr_svg_(self) -> str | None:
        return self.data if self.fmt == "svg" and isinstance(self.data, str) else None

    def _repr_png_(self) -> bytes | None:
        return self.data if self.fmt == "png" and isinstance(self.data, bytes) else None

    def _repr_html_(self) -> str:
        if self.fmt == "svg" and isinstance(self.data, str):
            return _strip_prolog(self.data)
        if self.fmt == "png" and isinstance(self.data, bytes):
            return f'<img src="data:image/png;base64,{base64.b64encode(self.data).decode()}"/>'
        return f"<pre>{html.escape(str(self.data))}</pre>"


@dataclasses.dataclass(frozen=True)
class _Box:
    kind: str
    lines: tuple[str, ...]
    where: str | None


def _strip_prolog(svg: str) -> str:
    start = svg.find("<svg")
    return svg[start:] if start >= 0 else svg


def _boxes(chain_or_group: Any) -> tuple[list[_Box], str]:
    """Boxes (root first, the survivor's type last) and a title, from a Chain,
    a RetentionGroup, or their ``as_dict()`` / ``as_list()`` forms."""
    count, root_kind = 1, None
    obj = chain_or_group
    if hasattr(obj, "chain") and hasattr(obj, "count"):  # RetentionGroup
        count, root_kind, type_name, obj = obj.count, obj.root_kind, obj.type, obj.chain
    else:
        type_name = None
    if isinstance(obj, Mapping) and "chain" in obj:  # a group's as_dict()
        count = int(obj.get("count", 1))
        root_kind = obj.get("root_kind")
        type_name = obj.get("type")
        obj = obj["chain"]
    if isinstance(obj, Chain):
        edges = [e.as_dict() for e in obj.edges]
        type_name = type_name or obj.target_type
        root_kind = root_kind or obj.root_kind
    elif isinstance(obj, Sequence) and not isinstance(obj, (str, bytes)):
        edges = [dict(e) for e in obj]
    else:
        raise TypeError(f"render_chain: expected a Chain, a RetentionGroup or their dict form, got {type(obj).__name__}")
    boxes = []
    for e in edges:
        # Labels come redacted from the analysis; a dict someone built by hand
        # may not be, so redact again here.
        label = redact(str(e.get("label", "")))
        where = e.get("where")
        boxes.append(
            _Box(
                str(e.get("kind", "")),
                tuple(textwrap.wrap(label, _WRAP) or [""]),
                redact(str(where)) if where else None,
            )
        )
    target = f"{type_name or '?'}" + (f" × {count}" if count != 1 else "")
    boxes.append(_Box("survivor", (target,), None))
    title = f"why {type_name or '?'} is alive" + (f" (root: {root_kind})" if root_kind else "")
    return boxes, title


def chain_to_dot(chain_or_group: Any) -> str:
    """Graphviz DOT source for the chain (HTML-like labels, escaped)."""
    boxes, title = _boxes(chain_or_group)
    esc = lambda s: html.escape(s, quote=False)  # noqa: E731 -- DOT HTML labels: <, >, & only
    out = [
        "digraph chain {",
        f'  graph [rankdir=TB, fontname="monospace", fontsize=11, labelloc=t, label=<{esc(title)}>];',
        '  node [shape=box, style="rounded,filled", fillcolor="#eef2fb", fontname="monospace", fontsize=10];',
        '  edge [color="#555555"];',
    ]
    for i, b in enumerate(boxes):
        parts = [f"<b>{esc(b.kind)}</b>"] + [esc(line) for line in b.lines]
        if b.where:
            parts.append(f'<font color="#777777">{esc(b.where)}</font>')
        fill = ', fillcolor="#fde2e2"' if b.kind == "survivor" else ""
        out.append(f"  n{i} [label=<{'<br/>'.join(parts)}>{fill}];")
    out.extend(f"  n{i} -> n{i + 1};" for i in range(len(boxes) - 1))
    out.append("}")
    return "\n".join(out) + "\n"


def _svg(chain_or_group: Any) -> str:
    """A dependency-free SVG: one box per hop, arrows down to the survivor."""
    boxes, title = _boxes(chain_or_group)
    esc = lambda s: html.escape(s, quote=True)  # noqa: E731

    def rows(b: _Box) -> list[tuple[str, str]]:
        r = [("kind", b.kind)] + [("label", line) for line in b.lines]
        return r + [("where", b.where)] if b.where else r

    width = int(max([len(title)] + [len(t) for b in boxes for _, t in rows(b)]) * _CHAR_W + 2 * _PAD)
    width = max(width, 240)
    # A per-content marker id: several pictures inline in one page must not
    # share (and overwrite) one arrow definition.
    marker = "ll-arrow-" + hashlib.sha1(repr([(b.kind, b.lines, b.where) for b in boxes]).encode()).hexdigest()[:10]
    body = []
    y = 28
    body.append(f'<text x="{_PAD}" y="18" font-weight="bold">{esc(title)}</text>')
    for i, b in enumerate(boxes):
        r = rows(b)
        h = len(r) * _LINE_H + _PAD
        fill = "#fde2e2" if b.kind == "survivor" else "#eef2fb"
        body.append(f'<rect x="1" y="{y}" width="{width - 2}" height="{h}" rx="6" fill="{fill}" stroke="#8a94a6"/>')
        for j, (role, text) in enumerate(r):
            style = {"kind": ' font-weight="bold" fill="#334"', "where": ' fill="#777"'}.get(role, "")
            body.append(f'<text x="{_PAD}" y="{y + _PAD + 2 + j * _LINE_H + 8}"{style}>{esc(text)}</text>')
        y += h
        if i < len(boxes) - 1:
            x = width // 2
            body.append(f'<line x1="{x}" y1="{y}" x2="{x}" y2="{y + _GAP - 4}" stroke="#555" marker-end="url(#{marker})"/>')
            y += _GAP
    height = y + 2
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" font-family="monospace" font-size="12">'
        f'<defs><marker id="{marker}" markerWidth="10" markerHeight="8" refX="9" refY="4" orient="auto">'
        '<path d="M0,0 L10,4 L0,8 z" fill="#555"/></marker></defs>'
        + "".join(body)
        + "</svg>"
    )


def render_chain(chain_or_group: Any, fmt: str = "svg", *, engine: str = "auto") -> ChainPicture:
    """Draw a chain.

    Args:
        chain_or_group: a :class:`Chain`, a :class:`RetentionGroup`, or their
            ``as_dict()``/``as_list()`` forms (a saved ``--json`` report).
        fmt: ``"svg"``, ``"png"`` (graphviz only) or ``"dot"`` (the source).
        engine: ``"auto"`` (graphviz if ``dot`` is on PATH, else Python),
            ``"graphviz"`` or ``"python"``.

    Returns:
        A :class:`ChainPicture`; ``.data`` is ``str`` (svg, dot) or ``bytes`` (png).

    Raises:
        ValueError: unknown ``fmt``/``engine``, or PNG/graphviz asked for
            without a ``dot`` binary.
    """
    if fmt not in ("svg", "png", "dot"):
        raise ValueError(f"fmt must be 'svg', 'png' or 'dot', not {fmt!r}")
    if engine not in ("auto", "graphviz", "python"):
        raise ValueError(f"engine must be 'auto', 'graphviz' or 'python', not {engine!r}")
    if fmt == "dot":
        return ChainPicture(chain_to_dot(chain_or_group), "dot", "graphviz")
    dot = shutil.which("dot") if engine != "python" else None
    if dot is None:
        if engine == "graphviz" or fmt == "png":
            raise ValueError(f"{fmt} with graphviz needs a 'dot' binary on PATH (conda install graphviz)")
        return ChainPicture(_svg(chain_or_group), "svg", "python")
    try:
        proc = subprocess.run(
            [dot, f"-T{fmt}"], input=chain_to_dot(chain_or_group).encode(), capture_output=True, timeout=30, check=True
        )
    except (OSError, subprocess.SubprocessError):
        if engine == "graphviz" or fmt == "png":
            raise
        # A broken graphviz install must not cost the user the picture.
        return ChainPicture(_svg(chain_or_group), "svg", "python")
    data: str | bytes = proc.stdout.decode("utf-8", "replace") if fmt == "svg" else proc.stdout
    return ChainPicture(data, fmt, "graphviz")


# -- one picture per root: the tree of what it keeps ------------------------------

_VOLATILE = re.compile(r"\s*\(due in [^)]*\)|\s+at 0x[0-9a-f]+|, \d+(\.\d+)? ?s (ago|left)")


def _hop_key(e: Mapping[str, Any]) -> tuple[str, str, str]:
    # what varies between two tasks of one kind (a timer's due time, an
    # address) must not split one root into two pictures
    return (str(e.get("kind", "")), _VOLATILE.sub("", str(e.get("label", ""))), str(e.get("where") or ""))


def _group_dict(g: Any) -> dict[str, Any]:
    return g.as_dict() if hasattr(g, "as_dict") else dict(g)


@dataclasses.dataclass
class _Node:
    hop: dict[str, Any] | None
    children: list[_Node] = dataclasses.field(default_factory=list)
    leaves: list[dict[str, Any]] = dataclasses.field(default_factory=list)

    def child(self, hop: Mapping[str, Any]) -> _Node:
        for c in self.children:
            if c.hop is not None and _hop_key(c.hop) == _hop_key(hop):
                return c
        node = _Node(dict(hop))
        self.children.append(node)
        return node


def retention_trees(groups: Any) -> list[dict[str, Any]]:
    """The groups of a retention report, one tree per root: ``{"root":
    hop, "node": tree, "retained_bytes", "survivors": {type: count},
    "groups": n}``. Groups of one type and count under one root are one
    leaf (the same objects, reached several ways); it hangs where their
    chains part, and lists each way."""
    groups = [_group_dict(g) for g in (getattr(groups, "groups", groups) or [])]
    roots: dict[tuple[str, str, str], list[dict[str, Any]]] = {}
    for g in groups:
        chain = g.get("chain") or []
        if chain:
            roots.setdefault(_hop_key(chain[0]), []).append(g)
    out = []
    for members in roots.values():
        top = _Node(None)
        root = top.child(members[0]["chain"][0])
        clusters: dict[tuple[str, int], list[dict[str, Any]]] = {}
        for g in members:
            clusters.setdefault((str(g.get("type")), int(g.get("count") or 1)), []).append(g)
        for (type_name, count), same in clusters.items():
            chains = [[_hop_key(e) for e in g["chain"][1:]] for g in same]
            common = 0
            while all(len(c) > common for c in chains) and len({c[common] for c in chains}) == 1:
                common += 1
            node = root
            for hop in same[0]["chain"][1:1 + common]:
                node = node.child(hop)
            ways = [" → ".join(redact(str(e.get("label", ""))) for e in g["chain"][1 + common:]) for g in same]
            node.leaves.append({"type": type_name, "count": count, "ways": [w for w in ways if w] if len(same) > 1 else [],
                                "n_ways": len(same),
                                "deep_bytes": max(int(g.get("deep_bytes") or 0) for g in same),
                                "retained_bytes": max(int(g.get("retained_bytes") or 0) for g in same)})
        survivors: dict[str, int] = {}
        for type_name, count in clusters:
            survivors[type_name] = survivors.get(type_name, 0) + count
        out.append({"root": root.hop, "node": root, "groups": len(members), "survivors": survivors,
                    "retained_bytes": max(int(g.get("retained_bytes") or 0) for g in members)})
    out.sort(key=lambda t: -t["retained_bytes"])
    return out



def _tree_svg(tree: Mapping[str, Any]) -> str:
    esc = lambda s: html.escape(s, quote=True)  # noqa: E731
    indent, rows = 26, []  # (depth, kind, lines, fill)

    def walk(node: _Node, depth: int) -> None:
        hop = node.hop or {}
        label = redact(str(hop.get("label", "")))
        lines = textwrap.wrap(label, _WRAP) or [""]
        if hop.get("where"):
            lines.append(redact(str(hop["where"])))
        rows.append((depth, str(hop.get("kind", "")), lines, "#eef2fb"))
        for leaf in node.leaves:
            head = f"{leaf['count']} × {leaf['type']}" + (f", reached {leaf['n_ways']} ways" if leaf["n_ways"] > 1 else "")
            text = [f"deep {human_size(leaf['deep_bytes'])}" + (
                f" · retained {human_size(leaf['retained_bytes'])}"
                if abs(leaf["retained_bytes"] - tree["retained_bytes"]) > 0.05 * max(1, tree["retained_bytes"]) else "")]
            text += [f"via {w}" for w in leaf["ways"]][:4]
            rows.append((depth + 1, head, [t for x in text for t in textwrap.wrap(x, _WRAP)], "#fde2e2"))
        for child in node.children:
            walk(child, depth + 1)

    walk(tree["node"], 0)
    survivors = ", ".join(f"{n} × {t}" for t, n in tree["survivors"].items())
    title = f"one root keeps {survivors}: {human_size(tree['retained_bytes'])} retained (freed by cutting it)"
    width = int(max([len(title)] + [len(line) + d * indent / _CHAR_W + 2 for d, k, ls, _ in rows for line in [k, *ls]])
                * _CHAR_W + 2 * _PAD + 10)
    body = [f'<text x="{_PAD}" y="18" font-weight="bold">{esc(title)}</text>']
    y, anchors = 30, []  # (depth, y of the box's middle-left)
    for depth, kind, lines, fill in rows:
        x = _PAD + depth * indent
        h = (len(lines) + 1) * _LINE_H + 6
        # the elbow from the nearest shallower box above
        parent = next((a for a in reversed(anchors) if a[0] < depth), None)
        if parent is not None:
            px = _PAD + parent[0] * indent + 10
            body.append(f'<path d="M{px},{parent[1]} V{y + h / 2} H{x}" fill="none" stroke="#8a94a6"/>')
        body.append(f'<rect x="{x}" y="{y}" width="{width - x - 2}" height="{h}" rx="5" fill="{fill}" stroke="#8a94a6"/>')
        body.append(f'<text x="{x + 8}" y="{y + _LINE_H}" font-weight="bold" fill="#334">{esc(kind)}</text>')
        for j, line in enumerate(lines):
            color = ' fill="#777"' if j == len(lines) - 1 and fill == "#eef2fb" and len(lines) > 1 else ""
            body.append(f'<text x="{x + 8}" y="{y + _LINE_H * (j + 2)}"{color}>{esc(line)}</text>')
        anchors.append((depth, y + h))
        y += h + 8
    height = y + 2
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
            f'viewBox="0 0 {width} {height}" font-family="monospace" font-size="12">' + "".join(body) + "</svg>")


def render_tree(report_or_groups: Any) -> list[ChainPicture]:
    """One picture per root of a retention report (or its groups, or their
    dict forms): a tree of every survivor type the root keeps, with counts
    and bytes on the leaves; the same objects reached several ways are one
    leaf ("8 × Agent, reached 2 ways"). The per-group chains stay in the
    report's table. Drawn here, in SVG, with every label escaped."""
    return [ChainPicture(_tree_svg(t), "svg", "python") for t in retention_trees(report_or_groups)]
