"""Sampled stacks as data: folded per function, grouped by owner, diffed, drawn.

Pure functions over synthetic or sampled stacks, so every one is tested
without a thread or a loop (the model is pyinstrument's session of frames
with separate renderers). A *stack* is a tuple of frames, outermost first;
a *frame* is ``(module, function, file, line)`` with an optional fifth item,
the first line of the function (``co_firstlineno``)::

    (("asyncio.events", "Handle._run", ".../events.py", 84),
     ("app.handler", "Handler.on_text", "/app/handler.py", 120, 101),
     ("app.store", "_blocking_read", "/app/store.py", 42, 40))

A function is keyed ``"module.function"`` (the qualname on 3.11+); that key
is the subject of the ``time:`` metric (``metrics.name(Kind.TIME, key)``).

    fold          stacks -> Profile (self/inclusive ms per function and per owner; a frame tree)
    grown_frames  first vs last Profile: the functions whose time grew
    render_svg    a Profile's tree -> a flame graph, one offline SVG string
    default_owner a module or file -> "yours" | "library <dist> <version>" | "stdlib" | "leaklab" | "unknown"
"""

from __future__ import annotations

import dataclasses
import functools
import types
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any
from xml.sax.saxutils import escape

from ..owners import label_of

__all__ = [
    "OWNER_COLOURS",
    "FlameNode",
    "FunctionTime",
    "GrownFrame",
    "OwnerTime",
    "Profile",
    "default_owner",
    "fold",
    "frame_key",
    "grown_frames",
    "owner_kind",
    "owner_label",
    "render_svg",
]

Frame = Sequence[Any]  # (module, function, file, line[, first_line])
Stack = Sequence[Frame]
OwnerOf = Callable[[str], Any]

#: Colours of the flame graph's boxes, by owner kind.
OWNER_COLOURS: Mapping[str, str] = types.MappingProxyType({
    "yours": "#f28e2b",
    "library": "#4e79a7",
    "stdlib": "#bab0ac",
    "leaklab": "#59a14f",
    "unknown": "#d7d7d7",
})

def frame_key(frame: Frame) -> str:
    """``"module.function"``: the key a frame's time is folded under."""
    module, function = frame[0], frame[1]
    return f"{module}.{function}" if module else str(function)


@functools.lru_cache(maxsize=4096)
def default_owner(module_or_file: str) -> str:
    """Who owns a module (or a file): :func:`leaklab.owners.label_of`,
    ``"stdlib"``, ``"library <dist> <version>"``, ``"leaklab"`` (the kit
    itself, except its reference backend, which is the user's code here),
    ``"yours"`` (anything else), ``"unknown"`` (no file)."""
    return label_of(module_or_file)


def owner_label(owner: Any) -> str:
    """An owner as one label: a string as it is; a ``(kind, name)`` pair
    (``leaklab.retention``'s ``Owner``) as ``kind`` or, for a library,
    ``"library <dist> <version>"``."""
    if isinstance(owner, str):
        return owner or "unknown"
    if isinstance(owner, tuple) and owner:
        kind = str(owner[0])
        return f"{kind} {owner[1]}" if kind == "library" and len(owner) > 1 and owner[1] else kind
    return "unknown"


def owner_kind(label: str) -> str:
    """The kind of an owner label: its first word (``"library anyio 4.12"`` -> ``"library"``)."""
    return label.partition(" ")[0] or "unknown"


@dataclasses.dataclass(frozen=True)
class FunctionTime:
    """Time sampled in one function.

    Attributes:
        key: ``"module.function"``.
        file, line: where the function is (its first line when the frames
            carry it, else the lowest line sampled in it).
        owner: the owner label of its module.
        self_ms: time it was the innermost frame.
        total_ms: time it was anywhere on the stack (counted once per
            sample, however deep the recursion).
        samples: samples it was on the stack in.
    """

    key: str
    file: str
    line: int
    owner: str
    self_ms: float
    total_ms: float
    samples: int


@dataclasses.dataclass(frozen=True)
class OwnerTime:
    """Time sampled in one owner's code: ``self_ms`` innermost (these add
    up to the profile's total), ``total_ms`` anywhere on the stack."""

    owner: str
    self_ms: float
    total_ms: float


@dataclasses.dataclass
class FlameNode:
    """One node of the frame tree: a function called along one path."""

    key: str
    owner: str = "unknown"
    file: str = ""
    line: int = 0
    total_ms: float = 0.0
    self_ms: float = 0.0
    children: dict[str, FlameNode] = dataclasses.field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """Nested plain dicts (JSON-ready)."""
        return {"name": self.key, "owner": self.owner, "file": self.file, "line": self.line,
                "ms": round(self.total_ms, 3), "self_ms": round(self.self_ms, 3),
                "children": [c.as_dict() for c in self.children.values()]}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> FlameNode:
        """The node :meth:`as_dict` wrote (a saved run's profile)."""
        node = cls(str(data.get("name", "")), str(data.get("owner", "unknown")), str(data.get("file", "")),
                   int(data.get("line") or 0), float(data.get("ms") or 0.0), float(data.get("self_ms") or 0.0))
        for child in data.get("children") or []:
            c = cls.from_dict(child)
            node.children[c.key] = c
        return node


@dataclasses.dataclass(frozen=True)
class Profile:
    """Folded samples.

    Attributes:
        functions: ``"module.function"`` -> :class:`FunctionTime`.
        owners: owner label -> :class:`OwnerTime`.
        tree: the frame tree (root ``"<all>"``), flame-graph ready.
        samples: how many stacks were folded.
        ms: the time they stand for.
    """

    functions: dict[str, FunctionTime]
    owners: dict[str, OwnerTime]
    tree: FlameNode
    samples: int
    ms: float

    def top(self, n: int = 10, *, by: str = "self_ms", kinds: Iterable[str] | None = None) -> list[FunctionTime]:
        """The ``n`` functions with the most ``by`` time (``"self_ms"`` or
        ``"total_ms"``), optionally only of the owner ``kinds``."""
        kinds = set(kinds) if kinds is not None else None
        rows = [f for f in self.functions.values() if kinds is None or owner_kind(f.owner) in kinds]
        return sorted(rows, key=lambda f: (-getattr(f, by), f.key))[:n]


def fold(
    stacks: Iterable[Stack],
    interval_ms: float = 1.0,
    *,
    weights: Iterable[float] | None = None,
    owner_of: OwnerOf | None = None,
) -> Profile:
    """Fold sampled stacks into time per function, per owner and per path.

    Args:
        stacks: stacks, outermost frame first.
        interval_ms: the time one sample stands for (the sampling interval).
        weights: per-stack times in ms instead (the measured gap before each
            sample); same length as ``stacks``.
        owner_of: module name -> owner (a label or a ``(kind, name)`` pair);
            default :func:`default_owner`.
    """
    owner_of = owner_of or default_owner
    owners_cache: dict[str, str] = {}

    def owner(module: str) -> str:
        label = owners_cache.get(module)
        if label is None:
            try:
                label = owner_label(owner_of(module))
            except Exception:
                label = "unknown"
            owners_cache[module] = label
        return label

    self_ms: dict[str, float] = {}
    total_ms: dict[str, float] = {}
    counts: dict[str, int] = {}
    where: dict[str, tuple[str, int, bool]] = {}  # key -> (file, line, line is the first line)
    modules: dict[str, str] = {}
    own_self: dict[str, float] = {}
    own_total: dict[str, float] = {}
    root = FlameNode("<all>", "unknown")
    n = 0
    total = 0.0
    weight_iter = iter(weights) if weights is not None else None
    for stack in stacks:
        w = float(next(weight_iter)) if weight_iter is not None else float(interval_ms)
        n += 1
        total += w
        root.total_ms += w
        node = root
        seen: set[str] = set()
        seen_owners: set[str] = set()
        for frame in stack:
            key = frame_key(frame)
            label = owner(frame[0])
            file, line = str(frame[2]), int(frame[3] or 0)
            first = len(frame) > 4 and bool(frame[4])
            if first:
                line = int(frame[4])
            old = where.get(key)
            if old is None or (first and not old[2]) or (not first and not old[2] and 0 < line < old[1]):
                where[key] = (file, line, first)
            if key not in seen:
                seen.add(key)
                modules.setdefault(key, str(frame[0]))
                total_ms[key] = total_ms.get(key, 0.0) + w
                counts[key] = counts.get(key, 0) + 1
            if label not in seen_owners:
                seen_owners.add(label)
                own_total[label] = own_total.get(label, 0.0) + w
            child = node.children.get(key)
            if child is None:
                child = node.children[key] = FlameNode(key, label, file, where[key][1])
            child.total_ms += w
            node = child
        if stack:
            inner = stack[-1]
            key = frame_key(inner)
            label = owner(inner[0])
            self_ms[key] = self_ms.get(key, 0.0) + w
            own_self[label] = own_self.get(label, 0.0) + w
        node.self_ms += w
    functions = {
        key: FunctionTime(key, where[key][0], where[key][1], owner(modules[key]), self_ms.get(key, 0.0),
                          total_ms[key], counts[key])
        for key in total_ms
    }
    owners = {label: OwnerTime(label, own_self.get(label, 0.0), own_total[label]) for label in own_total}
    return Profile(functions, owners, root, n, total)


@dataclasses.dataclass(frozen=True)
class GrownFrame:
    """A function whose inclusive time grew from the first profile to the last."""

    key: str
    owner: str
    file: str
    line: int
    first_ms: float
    last_ms: float

    @property
    def grown_ms(self) -> float:
        return self.last_ms - self.first_ms


def grown_frames(first: Profile, last: Profile, *, min_ms: float = 1.0, factor: float = 1.5,
                 by: str = "total_ms", kinds: Iterable[str] | None = None) -> list[GrownFrame]:
    """The functions whose time (``by``: ``"total_ms"`` or ``"self_ms"``)
    grew by at least ``min_ms`` and to at least ``factor`` times its first
    value (a function absent from ``first`` had 0), largest growth first;
    only of the owner ``kinds`` if given (e.g. ``("yours", "library")``: the
    loop's own poll left out)."""
    kinds = set(kinds) if kinds is not None else None
    out = []
    for key, f in last.functions.items():
        if kinds is not None and owner_kind(f.owner) not in kinds:
            continue
        before = getattr(first.functions[key], by) if key in first.functions else 0.0
        after = getattr(f, by)
        if after - before >= min_ms and after >= factor * before:
            out.append(GrownFrame(key, f.owner, f.file, f.line, before, after))
    return sorted(out, key=lambda g: (-g.grown_ms, g.key))


def render_svg(
    tree: FlameNode | Profile,
    *,
    grown: Iterable[str] = (),
    width: int = 1200,
    row: int = 17,
    title: str = "",
    min_width_px: float = 0.5,
) -> str:
    """A flame graph (root at the bottom) as one SVG string: offline, no
    script. Boxes are coloured by owner kind (:data:`OWNER_COLOURS`); a
    function in ``grown`` (keys, e.g. from :func:`grown_frames`) has a red
    outline. Every box has a ``<title>`` tooltip: key, owner, file:line, ms."""
    root = tree.tree if isinstance(tree, Profile) else tree
    grown = set(grown)
    total = root.total_ms or 1.0
    scale = (width - 20) / total
    boxes: list[tuple[int, float, float, FlameNode]] = []

    def walk(node: FlameNode, depth: int, x: float) -> int:
        boxes.append((depth, x, node.total_ms * scale, node))
        deepest = depth
        for child in sorted(node.children.values(), key=lambda c: c.key):
            w = child.total_ms * scale
            if w >= min_width_px:
                deepest = max(deepest, walk(child, depth + 1, x))
            x += w
        return deepest

    depth = walk(root, 0, 10.0)
    top = 24 if title else 4
    height = top + (depth + 1) * row + 4
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
           f'viewBox="0 0 {width} {height}" font-family="monospace" font-size="11">']
    if title:
        out.append(f'<text x="10" y="16" font-size="13">{escape(title)}</text>')
    for d, x, w, node in boxes:
        y = height - 4 - (d + 1) * row
        kind = owner_kind(node.owner)
        fill = OWNER_COLOURS.get(kind, OWNER_COLOURS["unknown"])
        stroke = ' stroke="#d62728" stroke-width="2"' if node.key in grown else ' stroke="#ffffff" stroke-width="0.5"'
        where = f" {node.file}:{node.line}" if node.file else ""
        tip = f"{node.key} ({node.owner}){where}: {node.total_ms:.1f} ms, self {node.self_ms:.1f} ms"
        out.append(f'<g><title>{escape(tip)}</title><rect x="{x:.2f}" y="{y}" width="{max(w, 0.1):.2f}" '
                   f'height="{row - 1}" fill="{fill}"{stroke}/>')
        chars = int((w - 4) / 7)
        if chars >= 3:
            label = node.key if len(node.key) <= chars else node.key[: chars - 2] + ".."
            out.append(f'<text x="{x + 2:.2f}" y="{y + row - 5}">{escape(label)}</text>')
        out.append("</g>")
    out.append("</svg>")
    return "\n".join(out)

