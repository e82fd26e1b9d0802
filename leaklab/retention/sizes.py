"""How much memory a group of survivors stands for: shallow, deep, retained.

shallow
    ``sys.getsizeof`` of the objects themselves.
deep
    pympler's ``asizeof``: everything reachable from them, shared parts
    included (an engine shared by all sessions counts in full).
retained
    what would be freed if the root edge of each chain were cut. Computed
    dominator-style without a heap scan:

    1. ``R`` = objects reachable from the cut points with ``gc.get_referents``
       (bounded; modules, classes, module namespaces, code, event loops and
       threads are not entered: they are never freed by one session).
    2. For each object, references from inside ``R`` are counted; the rest of
       ``sys.getrefcount`` comes from outside. An object with an outside
       holder is not freed; removing it turns its children's references into
       outside ones; repeat to a fixpoint. What remains is freed with the
       cut points, and its ``sys.getsizeof`` total is the retained size.

    Approximations, all on the side of under-counting: references a type's
    ``tp_traverse`` does not report count as outside holders (str keys of
    dicts are added back explicitly); a bound on ``R`` turns the unexplored
    rest into outside holders; objects referenced only by a non-gc C
    structure look held. ``getsizeof`` is shallow per object (no allocator
    overhead, no buffers an extension keeps privately).
"""

from __future__ import annotations

import asyncio
import collections
import gc
import sys
import threading
import types
from collections.abc import Iterable, Sequence
from typing import Any

__all__ = ["deep_size", "human_size", "retained_size", "shallow_size"]

_NO_ENTER = (type, types.ModuleType, types.CodeType, asyncio.AbstractEventLoop, threading.Thread)
_CALIBRATION_KEY = -1  # never an id(): ids are addresses


def human_size(n: float) -> str:
    """Bytes for people: ``512 B``, ``72.0 KiB``, ``2.9 MiB``."""
    size = float(n)
    for unit in ("B", "KiB", "MiB"):
        if size < 1024:
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} GiB"


def shallow_size(objects: Iterable[Any]) -> int:
    """Sum of ``sys.getsizeof`` (0 for an object whose size is unknown)."""
    total = 0
    for obj in objects:
        try:
            total += sys.getsizeof(obj)
        except Exception:
            pass
    return total


def deep_size(objects: Sequence[Any]) -> int:
    """pympler ``asizeof`` of all objects together (shared parts once)."""
    if not objects:
        return 0
    from pympler import asizeof

    try:
        return int(asizeof.asizeof(*objects))
    except Exception:
        # asizeof raises on some exotic extension objects: fall back to the
        # objects themselves rather than fail the whole analysis.
        return shallow_size(objects)


def retained_size(
    cut_points: Sequence[Any],
    *,
    allowed: Iterable[Any] = (),
    not_entered: Iterable[int] = (),
    limit: int = 200_000,
) -> tuple[int, bool]:
    """Bytes freed if every cut point lost its holder on the chain.

    Args:
        cut_points: the objects the root edges point to.
        allowed: containers whose references do not count as outside holders
            (the caller's lists of survivors, the chain's holders).
        not_entered: ids of objects not to traverse (e.g. module namespaces).
        limit: at most this many objects are explored.

    Returns:
        ``(bytes, complete)``; ``complete`` is False when ``limit`` was hit
        (the size is then a lower bound).
    """
    skip = set(not_entered)
    objs: dict[int, Any] = {}
    children: dict[int, list[int]] = {}
    roots: set[int] = set()
    for obj in cut_points:
        objs[id(obj)] = obj
        roots.add(id(obj))
    complete = True
    try:
        queue = collections.deque(roots)
        while queue:
            pid = queue.popleft()
            kids = _referent_ids(objs[pid], pid in skip, objs, queue, limit)
            if kids is None:
                complete = False
                kids = []
            children[pid] = kids
        internal: collections.Counter[int] = collections.Counter()
        for pid, kids in children.items():
            for cid in kids:
                if cid in objs:
                    internal[cid] += 1
        for container in allowed:
            for ref in _safe_referents(container):
                if id(ref) in objs:
                    internal[id(ref)] += 1
        outside = _outside_refs(objs, internal)
        removed: set[int] = set()
        work = [oid for oid, n in outside.items() if n > 0 and oid not in roots]
        while work:
            oid = work.pop()
            if oid in removed:
                continue
            removed.add(oid)
            for cid in children.get(oid, ()):
                if cid in objs and cid not in roots and cid not in removed:
                    outside[cid] += 1
                    work.append(cid)
        total = shallow_size(objs[oid] for oid in objs if oid not in removed)
        return total, complete
    finally:
        objs.clear()


def _safe_referents(obj: Any) -> list[Any]:
    try:
        return gc.get_referents(obj)
    except Exception:
        return []


def _referent_ids(obj: Any, skip: bool, objs: dict[int, Any], queue: collections.deque[int], limit: int) -> list[int] | None:
    """Ids ``obj`` refers to (with multiplicity); new ones join ``objs``.
    Returns None when the bound stopped the walk."""
    if skip or isinstance(obj, _NO_ENTER) or (type(obj) is dict and "__builtins__" in obj and "__name__" in obj):
        return []
    refs = _safe_referents(obj)
    kids = [id(r) for r in refs]
    if isinstance(obj, dict):
        # dict_traverse skips str keys (they cannot form cycles): a key owned
        # by this dict alone would otherwise look held from outside.
        seen = set(kids)
        for k in list(obj):
            if type(k) is str and id(k) not in seen:
                refs.append(k)
                kids.append(id(k))
    bounded = False
    for r in refs:
        rid = id(r)
        if rid not in objs:
            if len(objs) >= limit:
                bounded = True
                continue
            objs[rid] = r
            queue.append(rid)
    refs.clear()
    return None if bounded else kids


def _outside_refs(objs: dict[int, Any], internal: collections.Counter[int]) -> dict[int, int]:
    """``getrefcount`` minus references from inside and from this function.

    The analysis' own references (``objs``, the loop variable, the argument)
    are measured on a fresh calibration object held exactly the same way.
    """
    objs[_CALIBRATION_KEY] = object()
    counts: dict[int, int] = {}
    try:
        for oid in list(objs):
            obj = objs[oid]
            counts[oid] = sys.getrefcount(obj)
            del obj
    finally:
        own = counts.pop(_CALIBRATION_KEY)
        del objs[_CALIBRATION_KEY]
    return {oid: max(0, n - own - internal[oid]) for oid, n in counts.items()}
