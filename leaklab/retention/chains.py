"""Backward reference chains from many objects at once, asyncio-aware.

objgraph's ``find_backref_chain`` runs one breadth-first search per object
and calls ``gc.get_referrers(node)`` -- a full heap scan -- for every node it
visits. Here the search starts from *all* objects together and scans the heap
once per level with ``gc.get_referrers(*frontier)``; the referrer found for
each frontier node is then told apart with ``gc.get_referents`` (cheap: one
object at a time).

A branch stops at a *root*:

    pending_task       an asyncio Task that is not done: the loop holds it
                       (ready queue, timer handle, a future's callback)
    running_frame      the Task or coroutine/generator running right now
    module_global      a module's ``__dict__`` (or a module object)
    class_attribute    a class (its ``__dict__``)
    thread             a live ``threading.Thread``
    notebook           the interactive session itself: IPython's namespace
                       (a cell's variable, ``_``, ``_12``), its output cache
                       ``Out``, or ``sys.last_value``/``last_traceback``: held
                       by the notebook, not by the backend
    immortal_weak_key  an entry of a ``WeakKeyDictionary`` whose value refers
                       back to its key: the key can never die. ``gc`` sees no
                       weakref -> key edge, so objgraph never finds these; the
                       search looks the data dicts up explicitly.

When a branch runs out of referrers at an exception or a traceback, the
holders CPython keeps out of gc's sight are consulted
(:mod:`leaklab.retention.hidden`: a cancelled Task's stored CancelledError)
and the search goes on from the task. When a branch runs out otherwise, the
holder is ``untracked``: something ``gc`` cannot see (a C extension's static,
or a local variable of a function running on some thread's stack: CPython
3.11 does not traverse executing frames), and the label says what was tried.
``depth_limit`` means ``max_depth`` levels were not enough.

Cost: one heap scan per level, plus, inside that C scan, a comparison per
reference and frontier node -- so a level over a frontier of ``F`` nodes costs
about one plain scan plus ``F`` cheap comparisons per heap reference.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import gc
import os
import sys
import threading
import types
import weakref
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from .._compat import referrers_of, separate_generator_frame
from .edges import Chain, Edge, LabelContext, describe_path, notebook_holder
from .hidden import HiddenHolders
from .owners import module_of, owner_of_module

__all__ = ["ROOT_KINDS", "Chain", "Edge", "find_chains"]

ROOT_KINDS = (
    "pending_task",
    "running_frame",
    "module_global",
    "class_attribute",
    "thread",
    "notebook",
    "immortal_weak_key",
    "untracked",
    "depth_limit",
)

_OWN_DIR = os.path.dirname(os.path.abspath(__file__)) + os.sep
_GEN_TYPES = (types.CoroutineType, types.GeneratorType, types.AsyncGeneratorType)
# An immortality check walks forward from a weak-key entry's value; beyond
# this many objects the entry is assumed mortal (no false "immortal" root).
_IMMORTAL_SCAN_LIMIT = 50_000


class _Found:
    """What the search found for one target: the path (root first, target
    last, live objects) and how it ends. Internal: callers turn it into
    strings and drop it."""

    __slots__ = ("path", "root_kind")

    def __init__(self, path: list[Any], root_kind: str) -> None:
        self.path = path
        self.root_kind = root_kind


def find_chains(
    objects: Iterable[Any],
    *,
    max_depth: int = 30,
    ignore: Iterable[Any] = (),
    creation_sites: Any = None,
) -> list[Chain]:
    """A chain of references from a root to each object, for all of them at once.

    Call ``gc.collect()`` first: an object in unreachable garbage has no root.

    Args:
        objects: the survivors to explain.
        max_depth: heap scans (levels) at most.
        ignore: objects that must not count as holders (e.g. the caller's own
            lists of survivors); the argument's own container is ignored too.
        creation_sites: where tasks were created: a
            :class:`leaklab.probes.TaskCreationRecorder` (``.site(task)``) or a
            callable ``task -> CreationSite | str | None``. Without it, the
            task's ``_source_traceback`` (asyncio debug mode), else the
            coroutine's definition.

    Returns:
        One :class:`Chain` per object, in order. Chains hold strings only.
    """
    targets = list(objects)
    found: list[_Found] = []
    try:
        ctx = LabelContext.build(creation_sites)
        try:
            found = search(targets, ctx, max_depth=max_depth, ignore=[objects, *ignore], creation_sites=creation_sites)
            with paused_gc():
                return [_label(f, ctx, max_depth) for f in found]
        finally:
            ctx.keep.clear()
    finally:
        # No result may keep a survivor alive, even if labelling raised.
        for f in found:
            f.path.clear()
        found.clear()
        targets.clear()


def _label(found: _Found, ctx: LabelContext, max_depth: int) -> Chain:
    return label_found(found, ctx, max_depth)[0]


def label_found(found: _Found, ctx: LabelContext, max_depth: int) -> tuple[Chain, int]:
    """A found path as a :class:`Chain` of strings (with whose code holds its
    root), and the index of what cutting the root edge frees."""
    kind = found.root_kind
    if kind == "module_global" and notebook_holder(found.path, kind, ctx) is not None:
        kind = "notebook"  # sys.last_value / last_traceback: the session's last error
    edges, cut = describe_path(found.path, kind, ctx, max_depth=max_depth)
    owner, library, trigger = _ownership(found, kind, ctx)
    return Chain(target_type=type(found.path[-1]).__qualname__, root_kind=kind, edges=tuple(edges),
                 library=library, trigger=trigger, root_owner=owner), cut


def _root_module(found: _Found, kind: str, ctx: LabelContext) -> str | None:
    root = found.path[0]
    if kind == "immortal_weak_key":
        name = ctx.weak_dict_names.get(id(root), "")
        while name and name not in sys.modules:
            name = name.rpartition(".")[0]
        return name or None
    return module_of(root, ctx.module_dicts)


def _ownership(found: _Found, kind: str, ctx: LabelContext) -> tuple[str, str | None, str | None]:
    """(whose code holds the root, the library when it is a third party's,
    the first hop in the user's code below it)."""
    if kind in ("untracked", "depth_limit", "notebook"):
        return ("notebook" if kind == "notebook" else "unknown"), None, None
    try:
        owner = owner_of_module(_root_module(found, kind, ctx) or "")
        trigger = None
        for obj in found.path[1:-1]:
            module = module_of(obj, ctx.module_dicts)
            if module and owner_of_module(module).kind == "yours":
                trigger = _code_place(obj) or f"{type(obj).__qualname__} ({module})"
                break
    except Exception:  # attribution is a label: it must not break the chain
        return "unknown", None, None
    return owner.kind, (owner.name if owner.kind == "library" else None), trigger


def _code_place(obj: Any) -> str | None:
    """``qualname (file:line)`` of a frame, coroutine or task's code."""
    if isinstance(obj, asyncio.Task):
        try:
            obj = obj.get_coro()
        except Exception:
            return None
    frame = obj if type(obj) is types.FrameType else (
        getattr(obj, "cr_frame", None) or getattr(obj, "gi_frame", None) or getattr(obj, "ag_frame", None))
    code = frame.f_code if frame is not None else (getattr(obj, "cr_code", None) or getattr(obj, "gi_code", None))
    if code is None:
        return None
    line = frame.f_lineno if frame is not None else code.co_firstlineno
    from .edges import format_where

    return f"{getattr(code, 'co_qualname', code.co_name)} ({format_where(code.co_filename, line)})"


class _Roots:
    """What is a root, decided from facts gathered once before the search."""

    def __init__(self, ctx: LabelContext) -> None:
        self.module_dicts: set[int] = set(ctx.module_dicts)
        self.running_tasks: set[int] = set(ctx.running_tasks)
        self.notebook: set[int] = set(ctx.notebook_dicts)

    def kind(self, obj: Any) -> str | None:
        tp = type(obj)
        if tp is dict:
            if id(obj) in self.notebook:
                return "notebook"
            return "module_global" if id(obj) in self.module_dicts else None
        if issubclass(tp, types.ModuleType):
            return "module_global"
        if issubclass(tp, type):
            return "class_attribute"
        if issubclass(tp, asyncio.Task):
            try:
                done = obj.done()
            except Exception:
                return None
            if done:
                return None
            return "running_frame" if id(obj) in self.running_tasks else "pending_task"
        if tp in _GEN_TYPES:
            running = getattr(obj, {types.CoroutineType: "cr_running", types.GeneratorType: "gi_running"}.get(tp, "ag_running"), False)
            return "running_frame" if running else None
        if issubclass(tp, threading.Thread):
            try:
                return "thread" if obj.is_alive() else None
            except Exception:
                return None
        return None


def _weak_key_classes() -> tuple[type, ...]:
    out: list[type] = [weakref.WeakKeyDictionary]
    i = 0
    while i < len(out):
        out.extend(s for s in out[i].__subclasses__() if s not in out)
        i += 1
    return tuple(out)


def _own_generator(obj: Any) -> bool:
    """A generator of this package (a genexpr inside the search) is part of the
    analysis, not of the program analysed."""
    code = getattr(obj, "gi_code", None) or getattr(obj, "cr_code", None) or getattr(obj, "ag_code", None)
    return code is not None and code.co_filename.startswith(_OWN_DIR)


def _value_reaches(value: Any, key: Any, stop: set[int]) -> bool:
    """Whether ``key`` is strongly reachable from ``value`` (bounded walk)."""
    if value is key:
        return True
    kid = id(key)
    seen = {id(value)}
    queue = collections.deque([value])
    try:
        while queue and len(seen) < _IMMORTAL_SCAN_LIMIT:
            obj = queue.popleft()
            if id(obj) in stop or isinstance(obj, (type, types.ModuleType)):
                continue
            for ref in gc.get_referents(obj):
                rid = id(ref)
                if rid == kid:
                    return True
                if rid not in seen:
                    seen.add(rid)
                    queue.append(ref)
        return False
    finally:
        queue.clear()


def search(targets: Sequence[Any], ctx: LabelContext, *, max_depth: int, ignore: Iterable[Any],
           creation_sites: Any = None) -> list[_Found]:
    """Multi-source backward BFS (internal: the result holds live objects).

    Returns one :class:`_Found` per target and records the weak-key data dicts
    it met in ``ctx.wkd_data_ids``; the caller labels the paths and clears them.
    """
    ignore_ids: set[int] = {id(o) for o in ignore}
    ignore_ids.update((id(targets), id(ctx.keep)))
    frame = sys._getframe()
    while frame is not None:
        # Frames on this stack (ours and our callers') are where the search
        # runs from, not holders of the program's objects.
        if not separate_generator_frame(frame) or frame.f_code.co_filename.startswith(_OWN_DIR):  # 3.10
            ignore_ids.add(id(frame))
        frame = frame.f_back
    del frame
    hidden = HiddenHolders(creation_sites)
    ignore_ids.update(hidden.own_ids())
    state = _Search(targets, ignore_ids, _Roots(ctx), ctx.keep, hidden)
    try:
        with paused_gc():
            found = state.run(max_depth)
        ctx.wkd_data_ids.update(state.wkd_data)
        ctx.hidden_edges.update(hidden.edges)
        ctx.tried.update(hidden.tried)
        ctx.keep.extend(hidden.keep)  # ids in hidden_edges stay valid while labelling
        ctx.weak_dict_names.update(_weak_dict_names(state.entry_dicts, ctx))
        return found
    finally:
        state.release()
        hidden.release()


def _weak_dict_names(entry_dicts: dict[int, Any], ctx: LabelContext) -> dict[int, str]:
    """Weak-key entry (its weakref's id) -> the module global naming its
    dictionary (``anyio._backends._asyncio._task_states``), where one does."""
    if not entry_dicts:
        return {}
    wanted = {id(w): w for w in entry_dicts.values()}
    names: dict[int, str] = {}
    for d in ctx.keep:
        if type(d) is not dict or id(d) not in ctx.module_dicts:
            continue
        for key, value in list(d.items()):
            if id(value) in wanted and id(value) not in names and isinstance(key, str):
                names[id(value)] = f"{ctx.module_dicts[id(d)]}.{key}"
    return {eid: names[id(w)] for eid, w in entry_dicts.items() if id(w) in names}


@contextlib.contextmanager
def paused_gc() -> Iterator[None]:
    """No automatic collection inside: one would cost a full traversal of a big
    heap, and could free an object recognised by id while the analysis runs
    (the caller collected before calling). Restores the previous state."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


class _Search:
    """State of one search. Ownership bitmasks let one BFS serve every
    target: bit ``i`` on a node means target ``i`` is reachable from it; a
    target is done when a root carries its bit, and a node is expanded only
    while one of its bits is not done. Ids stay valid because :attr:`nodes`
    holds every visited object until :meth:`release`."""

    def __init__(self, targets: Sequence[Any], ignore_ids: set[int], roots: _Roots, keep: list[Any],
                 hidden: HiddenHolders | None = None) -> None:
        self.roots = roots
        self.hidden = hidden
        self.wkd_of_data: dict[int, Any] = {}  # weak-key dict's data id -> the dict object
        self.entry_dicts: dict[int, Any] = {}  # immortal entry (weakref id) -> its WeakKeyDictionary
        self.keep = keep  # holds the weak-key data dicts recognised by id
        self.nodes: dict[int, Any] = {}
        self.ignore_ids = ignore_ids
        ignore_ids.add(id(self.nodes))
        self.owners: dict[int, int] = {}
        self.up: dict[int, list[int]] = {}  # node id -> ids of the nodes holding it
        self.root_kind: dict[int, str] = {}
        self.expanded: set[int] = set()
        self.dead: set[int] = set()  # expanded, no visible holder
        self.target_ids: list[int] = []
        for i, t in enumerate(targets):
            tid = id(t)
            self.target_ids.append(tid)
            self.nodes.setdefault(tid, t)
            self.owners[tid] = self.owners.get(tid, 0) | (1 << i)
        self.all_bits = (1 << len(targets)) - 1
        self.wkd_data: set[int] = set()
        self.immortal: dict[tuple[int, int], bool] = {}

    def release(self) -> None:
        self.nodes.clear()
        self.wkd_of_data.clear()
        self.entry_dicts.clear()

    def run(self, max_depth: int) -> list[_Found]:
        frontier_ids = list(dict.fromkeys(self.target_ids))
        satisfied = 0
        depth = 0
        while frontier_ids and satisfied != self.all_bits and depth < max_depth:
            depth += 1
            touched = self._level(frontier_ids, first=depth == 1)
            satisfied = 0
            for rid in self.root_kind:
                satisfied |= self.owners[rid]
            frontier_ids = [
                n for n in dict.fromkeys(touched)
                if n not in self.expanded and n not in self.root_kind and self.owners[n] & ~satisfied
            ]
        cut_by_depth = bool(frontier_ids) and satisfied != self.all_bits
        return [self._path_for(tid, cut_by_depth) for tid in self.target_ids]

    def _level(self, frontier_ids: list[int], *, first: bool) -> list[int]:
        """One heap scan: record every holder of the frontier. Returns the ids
        of the holders (new or already known) whose bits changed."""
        nodes = self.nodes
        fset = set(frontier_ids)
        self.expanded.update(fset)
        # The WeakKeyDictionary classes ride along in the first scan: their
        # instances refer to them (heap types), so the same scan finds every
        # weak-key dict's ``data`` without a pass of its own.
        extra = _weak_key_classes() if first else ()
        frontier = tuple([nodes[i] for i in frontier_ids]) + extra
        self.ignore_ids.add(id(frontier))
        refs = referrers_of(frontier)  # gc.get_referrers(*frontier), less frontier on 3.13 too
        self.ignore_ids.discard(id(frontier))
        del frontier
        if extra:
            for r in refs:
                if type(r) in extra:
                    data = getattr(r, "data", None)
                    if type(data) is dict:
                        self.wkd_data.add(id(data))
                        self.keep.append(data)
                        self.wkd_of_data[id(data)] = r
        touched: list[int] = []
        held: set[int] = set()
        target_set = set(self.target_ids)
        for r in refs:
            rid = id(r)
            if rid in self.ignore_ids or (type(r) in _GEN_TYPES and _own_generator(r)):
                continue
            hits = [id(c) for c in gc.get_referents(r) if id(c) in fset]
            if hits and rid in self.wkd_data:
                hits = self._weak_entries(r, hits, touched, held)
            if not hits:
                continue
            if rid not in nodes:
                nodes[rid] = r
                self.owners[rid] = 0
                # A survivor held by another survivor is explained through it:
                # targets are never roots.
                kind = None if rid in target_set else self.roots.kind(r)
                if kind is not None:
                    self.root_kind[rid] = kind
            for cid in hits:
                self.up.setdefault(cid, []).append(rid)
                self.owners[rid] |= self.owners[cid]
                held.add(cid)
            touched.append(rid)
        del refs
        for nid in fset - held:
            if self.hidden is not None and self._hidden_holder(nid, touched):
                continue
            self.dead.add(nid)
        self._propagate(touched)
        return touched

    def _hidden_holder(self, nid: int, touched: list[int]) -> bool:
        """A branch ended at ``nid``: a holder gc cannot see (a cancelled
        task's stored error), recorded as an edge; whether one was found."""
        obj = self.nodes[nid]
        if not isinstance(obj, (BaseException, types.TracebackType)):
            return False
        task = self.hidden.holder_of(obj) if self.hidden is not None else None
        if task is None:
            return False
        tid = id(task)
        if tid not in self.nodes:
            self.nodes[tid] = task
            self.owners[tid] = 0
            kind = self.roots.kind(task)
            if kind is not None:
                self.root_kind[tid] = kind
        self.up.setdefault(nid, []).append(tid)
        self.owners[tid] |= self.owners[nid]
        touched.append(tid)
        return True

    def _weak_entries(self, data: dict[Any, Any], hits: list[int], touched: list[int], held: set[int]) -> list[int]:
        """``data`` is a ``WeakKeyDictionary.data`` holding frontier values. An
        entry whose value refers back to its key is a root of its own; its
        weakref key object stands for the entry in the graph. Returns the hits
        that remain ordinary dict edges."""
        plain: list[int] = []
        hit_set = set(hits)
        entries = [(kr, v) for kr, v in list(data.items()) if id(v) in hit_set]
        for kr, value in entries:
            vid = id(value)
            key = kr() if isinstance(kr, weakref.ref) else None
            immortal = False
            if key is not None:
                ck = (id(kr), vid)
                if ck not in self.immortal:
                    self.immortal[ck] = _value_reaches(value, key, self.roots.module_dicts)
                immortal = self.immortal[ck]
            del key
            if not immortal:
                plain.append(vid)
                continue
            eid = id(kr)
            if id(data) in self.wkd_of_data:
                self.entry_dicts[eid] = self.wkd_of_data[id(data)]
            if eid not in self.nodes:
                self.nodes[eid] = kr
                self.owners[eid] = 0
                self.root_kind[eid] = "immortal_weak_key"
            self.up.setdefault(vid, []).append(eid)
            self.owners[eid] |= self.owners[vid]
            held.add(vid)
            touched.append(eid)
        entries.clear()
        return list(dict.fromkeys(plain))

    def _propagate(self, start: list[int]) -> None:
        """Push ownership bits upwards until nothing changes: a holder found
        at this level may be a node with holders from earlier levels."""
        owners, up = self.owners, self.up
        work = list(dict.fromkeys(start))
        while work:
            n = work.pop()
            bits = owners[n]
            for p in up.get(n, ()):
                if owners[p] | bits != owners[p]:
                    owners[p] |= bits
                    work.append(p)

    def _path_for(self, tid: int, cut_by_depth: bool) -> _Found:
        """The shortest recorded path from a root -- else from the nearest
        dead end, else from the farthest node reached -- down to the target."""
        parent: dict[int, int | None] = {tid: None}
        queue = collections.deque([tid])
        first_dead: int | None = None
        last = tid
        end: int | None = None
        while queue:
            n = queue.popleft()
            last = n
            if n in self.root_kind:
                end = n
                break
            if first_dead is None and n in self.dead:
                first_dead = n
            for p in self.up.get(n, ()):
                if p not in parent:
                    parent[p] = n
                    queue.append(p)
        if end is not None:
            kind = self.root_kind[end]
        elif first_dead is not None:
            end, kind = first_dead, "untracked"
        else:
            end, kind = last, ("depth_limit" if cut_by_depth else "untracked")
        path = []
        cur: int | None = end
        while cur is not None:
            path.append(self.nodes[cur])
            cur = parent[cur]
        return _Found(path, kind)
