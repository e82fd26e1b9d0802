"""Reference chains written the way a person reads them, edge by edge.

A path of live objects (root first) becomes a tuple of :class:`Edge`: each
names the holder and *how* it holds the next object -- the attribute, dict
key, list index, closure cell (function + free variable), frame local, the
Task and how the loop schedules it. Containers a person does not think about
are folded into the edge that owns them: ``obj -> obj.__dict__ -> value`` is
one attribute edge, ``function -> __closure__ -> cell -> value`` one closure
edge, ``module -> __dict__ -> value`` one module global.

Here: :func:`describe_path` (a whole path) and :func:`notebook_holder`; the
model (:class:`Edge`, :class:`Chain`, :class:`LabelContext`) is in
:mod:`.chain_model`, one edge in :mod:`.holders`.

Only strings leave these modules: a :class:`Chain` never holds the objects.
"""

from __future__ import annotations

import gc
from collections.abc import Sequence
from typing import Any

from .._compat import drop_generator_frames
# The model and the one-edge writer live beside this module; their public
# names are importable from here, where the rest of leaklab found them.
from .chain_model import Chain, Edge, LabelContext, format_where  # noqa: F401
from .holders import describe_edge, type_name
from .safe import redact

__all__ = ["Chain", "Edge", "LabelContext", "describe_path", "format_where"]


#: What ``sys`` keeps of the last error an interactive session raised.
_SYS_LAST = ("last_value", "last_traceback", "last_exc", "last_type")


def notebook_holder(path: Sequence[Any], root_kind: str, ctx: LabelContext) -> str | None:
    """``"Out[12]"``, ``"variable 'ctx'"``, ``"sys.last_value"``: what of the
    interactive session holds the chain's start; ``None`` when it is not."""
    if len(path) < 2:
        return None
    holder, held = path[0], path[1]
    what = ctx.notebook_dicts.get(id(holder))
    if what is not None and type(holder) is dict:
        key = next((k for k, v in list(holder.items()) if v is held), "?")
        if what == "Out":
            return f"Out[{key!r}]"
        if isinstance(key, str) and (key in ("_", "__", "___") or (key[:1] == "_" and key[1:].isdigit())):
            return f"the output cache {key}"
        return f"variable {key!r}"
    if root_kind in ("module_global", "notebook") and type(holder) is dict and ctx.module_dicts.get(id(holder)) == "sys":
        for name in _SYS_LAST:
            if holder.get(name) is held:
                return f"sys.{name} (the last error raised in the session)"
    return None


def describe_path(
    path: Sequence[Any], root_kind: str, ctx: LabelContext, *, max_depth: int = 0
) -> tuple[list[Edge], int]:
    """Edges for a path of live objects, root first, target last.

    Args:
        path: the objects; ``path[0]`` is the root (or the last holder seen).
        root_kind: how the search ended.
        ctx: labelling facts.
        max_depth: the search depth, quoted for ``depth_limit``.

    Returns:
        ``(edges, cut)``: the edges, and the index in ``path`` of the object
        the first edge points to -- what cutting the root edge would free.
    """
    drop_generator_frames(path)  # type: ignore[arg-type]  # 3.10: coroutine -> frame -> local
    edges: list[Edge] = []
    cut = 0
    if root_kind == "untracked":
        frozen = gc.get_freeze_count()
        why = (
            f"gc.freeze() hides {frozen} objects from gc.get_referrers: call gc.unfreeze() before the analysis"
            if frozen
            else "not visible to gc: a C extension's static, or a local of a function running on a thread's stack"
        )
        if id(path[0]) in ctx.tried:
            why += f"; {ctx.tried[id(path[0])]}"
        edges.append(Edge("untracked", f"C-level or untracked holder of {type_name(path[0])} ({why})", None, "untracked"))
    elif root_kind == "depth_limit":
        edges.append(Edge("depth_limit", f"search stopped after {max_depth} levels at {type_name(path[0])}", None, "depth_limit"))
    elif root_kind == "notebook":
        held_by = notebook_holder(path, root_kind, ctx) or "its namespace"
        hint = ("%reset -f out frees it" if "Out[" in held_by or "output cache" in held_by else
                "the next error replaces it" if held_by.startswith("sys.") else "del it to free it")
        edges.append(Edge("notebook", f"held by this notebook: {held_by} (not the backend; {hint})",
                          None, "held by this notebook"))
    i = 1 if root_kind == "notebook" else 0
    cut = i
    while i < len(path) - 1:
        try:
            edge, step = describe_edge(path, i, root_kind, ctx, edges[-1] if edges else None)
        except Exception:
            # A holder with a hostile __getattr__/__eq__ must not break the chain.
            edge, step = Edge("reference", f"{type_name(path[i])} (internal reference)", None), 1
        edges.append(Edge(edge.kind, redact(edge.label), edge.where, redact(edge.shape or edge.label)))
        if i == 0 and root_kind not in ("untracked", "depth_limit"):
            cut = step
        i += step
    return edges, cut

