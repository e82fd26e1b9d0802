"""Reference chains written the way a person reads them, edge by edge.

A path of live objects (root first) becomes a tuple of :class:`Edge`: each
names the holder and *how* it holds the next object -- the attribute, dict
key, list index, closure cell (function + free variable), frame local, the
Task and how the loop schedules it. Containers a person does not think about
are folded into the edge that owns them: ``obj -> obj.__dict__ -> value`` is
one attribute edge, ``function -> __closure__ -> cell -> value`` one closure
edge, ``module -> __dict__ -> value`` one module global.

Only strings leave this module: a :class:`Chain` never holds the objects.
"""

from __future__ import annotations

import asyncio
import collections
import contextvars
import dataclasses
import functools
import gc
import os
import re
import sys
import threading
import types
import weakref
from collections.abc import Sequence
from typing import Any

from .._compat import drop_generator_frames
from ..probes.tasks import task_label
from .safe import redact, safe_repr

__all__ = ["Chain", "Edge", "LabelContext", "describe_path", "format_where"]

_ASYNCIO_DIR = os.path.dirname(asyncio.__file__) + os.sep
_HEX_RE = re.compile(r"0x[0-9a-fA-F]+")
_UUID_RE = re.compile(r"[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}")
_LONG_HEX_RE = re.compile(r"\b[0-9a-fA-F]{12,}\b")
_DIGITS_RE = re.compile(r"\d+")


@dataclasses.dataclass(frozen=True)
class Edge:
    """One hop of a chain: the holder and how it holds the next object.

    Attributes:
        kind: ``task``, ``coroutine_frame``, ``awaits``, ``frame_local``,
            ``attribute``, ``dict_key``, ``list_index``, ``tuple_index``,
            ``set_member``, ``closure_cell``, ``context_var``,
            ``weak_key_entry``, ``module_global``, ``class_attribute``,
            ``thread``, ``notebook``, ``untracked``, ``depth_limit`` or ``reference``
            (an internal reference with no Python-level name).
        label: what a person reads, e.g. ``coroutine frame local 'self'``.
        where: ``file:line`` when known (creation site of a task, the line a
            frame is at), relative to the working directory when possible.
        shape: the label with what varies between equivalent chains removed
            (dict keys, indices, addresses, timers); used for grouping.
    """

    kind: str
    label: str
    where: str | None = None
    shape: str = dataclasses.field(default="", compare=False, repr=False)

    def as_dict(self) -> dict[str, str | None]:
        """``{"kind", "label", "where"}``, JSON-ready."""
        return {"kind": self.kind, "label": self.label, "where": self.where}


@dataclasses.dataclass(frozen=True)
class Chain:
    """Why one object is alive: edges from a root down to it.

    Attributes:
        target_type: the qualified name of the object's type.
        root_kind: one of :data:`leaklab.retention.ROOT_KINDS`.
        edges: root first.
    """

    target_type: str
    root_kind: str
    edges: tuple[Edge, ...]
    #: the distribution and version whose code holds the root, when it is a
    #: third-party package's (a library leak): ``"anyio 4.12.0"``
    library: str | None = dataclasses.field(default=None, compare=False)
    #: the first hop in the user's code below the root: what their code did
    trigger: str | None = dataclasses.field(default=None, compare=False)
    #: whose code holds the root: ``yours``, ``library``, ``stdlib``, ``leaklab``, ``unknown``
    root_owner: str = dataclasses.field(default="unknown", compare=False)

    @property
    def signature(self) -> str:
        """A stable name for this chain's shape (12 hex digits): the same
        reason gives the same signature run after run (an allow-list key)."""
        import hashlib

        text = repr((self.target_type, self.root_kind, self.shape))
        return hashlib.sha1(text.encode("utf-8", "replace"), usedforsecurity=False).hexdigest()[:12]

    @property
    def shape(self) -> tuple[tuple[str, str], ...]:
        """Kinds and labels with ids, addresses, keys and indices stripped:
        equal shapes are "the same reason"."""
        return tuple((e.kind, _normalize(e.shape or e.label)) for e in self.edges)

    def as_list(self) -> list[dict[str, str | None]]:
        """The edges as JSON-ready dicts."""
        return [e.as_dict() for e in self.edges]

    def __str__(self) -> str:
        return " → ".join([*(e.label for e in self.edges), self.target_type])


def _normalize(text: str) -> str:
    text = _UUID_RE.sub("<uuid>", text)
    text = _HEX_RE.sub("<addr>", text)
    return _LONG_HEX_RE.sub("<hex>", text)


def format_where(filename: str | None, lineno: int | None, bases: Sequence[str] = ()) -> str | None:
    """``file:line``, the file made relative to the first of ``bases`` (then the
    working directory, then the longest ``sys.path`` entry) that contains it."""
    if not filename:
        return None
    path = filename
    if os.path.isabs(filename):
        candidates = [*bases, os.getcwd(), *sorted((p for p in sys.path if p), key=len, reverse=True)]
        for base in candidates:
            base = os.path.abspath(base)
            if filename.startswith(base + os.sep):
                path = os.path.relpath(filename, base)
                break
    return f"{path}:{lineno}" if lineno is not None else path


_MODULE_DICT = types.ModuleType.__dict__["__dict__"]


@dataclasses.dataclass
class LabelContext:
    """What labelling needs besides the path: where tasks were created, which
    dicts are module namespaces, which tasks are running now.

    Objects are recognised by ``id()``; :attr:`keep` holds every object so
    identified for the analysis' lifetime, so that an id can never be reused
    by an object created meanwhile.
    """

    site_of: Any = None
    module_dicts: dict[int, str] = dataclasses.field(default_factory=dict)
    running_tasks: set[int] = dataclasses.field(default_factory=set)
    wkd_data_ids: set[int] = dataclasses.field(default_factory=set)
    keep: list[Any] = dataclasses.field(default_factory=list, repr=False)
    #: (id of a task, id of what it holds where gc cannot see) -> how
    hidden_edges: dict[tuple[int, int], str] = dataclasses.field(default_factory=dict)
    #: id of an object a branch ended at -> what was tried to find its holder
    tried: dict[int, str] = dataclasses.field(default_factory=dict)
    #: id of a weak-key entry's weakref -> the module global of its dictionary
    weak_dict_names: dict[int, str] = dataclasses.field(default_factory=dict)
    #: id of a dict of the interactive session (IPython's namespace, its output
    #: cache ``Out``) -> how a user names it: an object held there is held by
    #: the notebook, not by the backend
    notebook_dicts: dict[int, str] = dataclasses.field(default_factory=dict)

    @classmethod
    def build(cls, creation_sites: Any = None) -> LabelContext:
        """Gather the facts once per analysis.

        Args:
            creation_sites: a :class:`~leaklab.probes.TaskCreationRecorder` or a
                callable ``task -> site``; ``None`` for none.
        """
        ctx = cls(getattr(creation_sites, "site", creation_sites))
        for name, mod in list(sys.modules.items()):
            # type(), not isinstance: some objects in sys.modules (cffi's Lib)
            # claim to be modules through __class__.
            if issubclass(type(mod), types.ModuleType):
                # The base descriptor, not getattr: a lazy-module subclass may
                # answer ``__dict__`` with a temporary dict.
                d = _MODULE_DICT.__get__(mod)
                if type(d) is dict:
                    ctx.module_dicts[id(d)] = name
                    ctx.keep.append(d)
        current = getattr(asyncio.tasks, "_current_tasks", None)
        if isinstance(current, dict):
            for task in list(current.values()):
                ctx.running_tasks.add(id(task))
                ctx.keep.append(task)
        for d, what in _notebook_dicts():
            ctx.notebook_dicts[id(d)] = what
            ctx.keep.append(d)
        return ctx

    def creation_site(self, task: Any) -> str | None:
        """Where ``task`` was created, from the recorder or asyncio debug mode."""
        if self.site_of is not None:
            try:
                site = self.site_of(task)
            except Exception:
                site = None
            if site is not None:
                filename = getattr(site, "filename", None)
                if filename is not None:
                    return format_where(filename, getattr(site, "lineno", None))
                return str(site)
        tb = getattr(task, "_source_traceback", None)
        if tb:
            for fs in reversed(list(tb)):
                if not fs.filename.startswith(_ASYNCIO_DIR):
                    return format_where(fs.filename, fs.lineno)
        return None


def _notebook_dicts() -> list[tuple[dict[Any, Any], str]]:
    """The interactive session's own dicts, where IPython runs here: its user
    namespace (the cells' variables, ``_``, ``__``, ``_12``) and its output
    cache (``Out``)."""
    ipython = sys.modules.get("IPython")
    get = getattr(ipython, "get_ipython", None)
    try:
        shell = get() if callable(get) else None
    except Exception:
        shell = None
    if shell is None:
        return []
    out: list[tuple[dict[Any, Any], str]] = []
    ns = getattr(shell, "user_ns", None)
    if type(ns) is dict:
        out.append((ns, "variable"))
    hist = getattr(getattr(shell, "history_manager", None), "output_hist", None)
    if type(hist) is dict:
        out.append((hist, "Out"))
    return out


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
        edges.append(Edge("untracked", f"C-level or untracked holder of {_type_name(path[0])} ({why})", None, "untracked"))
    elif root_kind == "depth_limit":
        edges.append(Edge("depth_limit", f"search stopped after {max_depth} levels at {_type_name(path[0])}", None, "depth_limit"))
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
            edge, step = _describe(path, i, root_kind, ctx, edges[-1] if edges else None)
        except Exception:
            # A holder with a hostile __getattr__/__eq__ must not break the chain.
            edge, step = Edge("reference", f"{_type_name(path[i])} (internal reference)", None), 1
        edges.append(Edge(edge.kind, redact(edge.label), edge.where, redact(edge.shape or edge.label)))
        if i == 0 and root_kind not in ("untracked", "depth_limit"):
            cut = step
        i += step
    return edges, cut


# -- one edge ----------------------------------------------------------------


def _describe(path: Sequence[Any], i: int, root_kind: str, ctx: LabelContext, prev: Edge | None) -> tuple[Edge, int]:
    holder, held = path[i], path[i + 1]
    rest = path[i + 2 :]
    tp = type(holder)
    if i == 0 and root_kind == "immortal_weak_key" and isinstance(holder, weakref.ref):
        return _weak_entry(holder, ctx), 1
    if issubclass(tp, asyncio.Task):
        hidden = ctx.hidden_edges.get((id(holder), id(held)))
        if hidden is not None:
            return _hidden_task_edge(holder, held, hidden, ctx), 1
        return _task(holder, held, ctx), 1
    if issubclass(tp, types.ModuleType):
        name = getattr(holder, "__name__", "?")
        if _instance_dict(holder) is held and rest:
            return Edge("module_global", f"module {name} global {_key_text(held, rest[0])}", None), 2
        return _attribute(holder, held, rest, kind="module_global", prefix=f"module {name}")
    if tp is dict and id(holder) in ctx.module_dicts:
        return Edge("module_global", f"module {ctx.module_dicts[id(holder)]} global {_key_text(holder, held)}", None), 1
    if issubclass(tp, type):
        return _class(holder, held, rest)
    if tp is types.FunctionType:
        return _function(holder, held, rest)
    if tp is types.CellType:
        return Edge("closure_cell", "closure cell contents", None), 1
    if tp in (types.CoroutineType, types.GeneratorType, types.AsyncGeneratorType):
        return _generator(holder, held, rest, prev)
    if tp is types.FrameType:
        return _frame(holder, held, rest)
    if tp is types.TracebackType:
        attr = "tb_frame" if holder.tb_frame is held else "tb_next" if holder.tb_next is held else None
        where = format_where(holder.tb_frame.f_code.co_filename, holder.tb_lineno)
        return Edge("attribute", f"traceback .{attr}" if attr else "traceback (internal reference)", where), 1
    if issubclass(tp, BaseException):
        for attr in ("__traceback__", "__context__", "__cause__"):
            if getattr(holder, attr, None) is held:
                return Edge("attribute", f"{tp.__qualname__}.{attr}", None), 1
        if holder.args is held and rest:
            return Edge("attribute", f"{tp.__qualname__}.args[{_index(held, rest[0])}]", None, f"{tp.__qualname__}.args[i]"), 2
    if tp in (types.MethodType, types.BuiltinMethodType, types.MethodWrapperType):
        name = getattr(holder, "__qualname__", getattr(holder, "__name__", "?"))
        if getattr(holder, "__self__", None) is held:
            return Edge("attribute", f"bound method {name}.__self__", None), 1
        if getattr(holder, "__func__", None) is held:
            return Edge("attribute", f"bound method {name}.__func__", None), 1
    if tp is functools.partial:
        if holder.func is held:
            return Edge("attribute", "functools.partial .func", None), 1
        if holder.args is held and rest:
            return Edge("attribute", f"functools.partial .args[{_index(held, rest[0])}]", None, "functools.partial .args[i]"), 2
        if holder.keywords is held and rest:
            return Edge("attribute", f"functools.partial .keywords{_key_text(held, rest[0])}", None), 2
    if tp is contextvars.Context:
        return _context(holder, path, i)
    if issubclass(tp, threading.Thread) and i == 0 and root_kind == "thread":
        alive = "alive" if holder.is_alive() else "stopped"
        edge, step = _attribute(holder, held, rest, kind="thread", prefix=f"Thread {safe_repr(holder.name, 60)} ({alive})")
        return edge, step
    if issubclass(tp, asyncio.Future):
        state = "pending" if not holder.done() else "done"
        return _attribute(holder, held, rest, kind="attribute", prefix=f"{tp.__qualname__} ({state})")
    if issubclass(tp, (list, collections.deque)):
        idx = _index(holder, held)
        return Edge("list_index", f"{tp.__qualname__}[{idx}]", None, f"{tp.__qualname__}[i]"), 1
    if issubclass(tp, tuple):
        idx = _index(holder, held)
        return Edge("tuple_index", f"{tp.__qualname__}[{idx}]", None, f"{tp.__qualname__}[i]"), 1
    if issubclass(tp, (set, frozenset)):
        return Edge("set_member", f"{tp.__qualname__} member", None), 1
    if issubclass(tp, dict):
        if id(holder) in ctx.wkd_data_ids:
            return Edge("dict_key", f"WeakKeyDictionary value for key {_weak_key_text(holder, held)}", None, "WeakKeyDictionary value"), 1
        return _dict_edge(holder, held, tp.__qualname__), 1
    return _attribute(holder, held, rest, kind="attribute", prefix=tp.__qualname__)


def _type_name(obj: Any) -> str:
    return type(obj).__qualname__


def _instance_dict(obj: Any) -> Any:
    try:
        return object.__getattribute__(obj, "__dict__")
    except Exception:
        return None


def _index(container: Any, item: Any) -> str:
    for i, x in enumerate(container):
        if x is item:
            return str(i)
    return "?"


def _find_key(d: Any, value: Any) -> tuple[str, Any] | None:
    """``("value", key)`` if ``d[key] is value``; ``("key", key)`` if the object
    is a key itself."""
    try:
        items = list(d.items())
    except Exception:
        return None
    for k, v in items:
        if v is value:
            return ("value", k)
    for k, _ in items:
        if k is value:
            return ("key", k)
    return None


def _key_text(d: Any, value: Any) -> str:
    found = _find_key(d, value)
    if found is None:
        return "(unknown key)"
    k = found[1]
    return f"'{k}'" if isinstance(k, str) and k.isidentifier() else safe_repr(k, 60)


def _dict_edge(d: Any, held: Any, tpname: str) -> Edge:
    found = _find_key(d, held)
    if found is None:
        return Edge("dict_key", f"{tpname} (internal reference)", None)
    how, k = found
    text = safe_repr(k, 60)
    # Keys that differ only by an id (session-0007, a uuid, an address) are
    # one reason; 'default_context' and 'handler' are two.
    shape = _DIGITS_RE.sub("#", _normalize(text))
    if how == "key":
        return Edge("dict_key", f"{tpname} key {text}", None, f"{tpname} key {shape}")
    return Edge("dict_key", f"{tpname}[{text}]", None, f"{tpname}[{shape}]")


def _attribute(holder: Any, held: Any, rest: Sequence[Any], *, kind: str, prefix: str) -> tuple[Edge, int]:
    """``prefix.name`` from ``__dict__`` (folded when the dict is the next
    node) or ``__slots__``; else an internal reference."""
    d = _instance_dict(holder)
    if isinstance(d, dict):
        if d is held and rest:
            k = _find_key(d, rest[0])
            if k is not None and k[0] == "value":
                return Edge(kind, f"{prefix}.{_name_text(k[1])}", None), 2
        for k, v in list(d.items()):
            if v is held:
                return Edge(kind, f"{prefix}.{_name_text(k)}", None), 1
    for cls in type(holder).__mro__:
        slots = cls.__dict__.get("__slots__", ())
        for name in (slots,) if isinstance(slots, str) else slots:
            try:
                if object.__getattribute__(holder, name) is held:
                    return Edge(kind, f"{prefix}.{name}", None), 1
            except Exception:
                continue
    return Edge(kind if kind != "attribute" else "reference", f"{prefix} (internal reference)", None), 1


def _name_text(k: Any) -> str:
    return k if isinstance(k, str) and k.isidentifier() else f"[{safe_repr(k, 60)}]"


def _class(cls: type, held: Any, rest: Sequence[Any]) -> tuple[Edge, int]:
    name = f"{getattr(cls, '__module__', '?')}.{cls.__qualname__}"
    try:
        tp_dict = gc.get_referents(cls.__dict__)[0]  # the mappingproxy's dict
    except Exception:
        tp_dict = None
    if tp_dict is held and rest:
        return Edge("class_attribute", f"class {name} attribute {_key_text(held, rest[0])}", None), 2
    return Edge("class_attribute", f"class {name} (internal reference)", None), 1


def _function(fn: types.FunctionType, held: Any, rest: Sequence[Any]) -> tuple[Edge, int]:
    code = fn.__code__
    where = format_where(code.co_filename, code.co_firstlineno)
    closure = fn.__closure__
    if closure is not None and closure is held and len(rest) >= 1:
        cell = rest[0]
        for i, c in enumerate(closure):
            if c is cell:
                var = code.co_freevars[i] if i < len(code.co_freevars) else "?"
                # function -> __closure__ -> cell -> value is one edge to a person.
                step = 3 if len(rest) >= 2 else 2
                return Edge("closure_cell", f"closure of {fn.__qualname__}: free variable '{var}'", where), step
    if fn.__defaults__ is held and rest:
        return Edge("attribute", f"function {fn.__qualname__} default [{_index(held, rest[0])}]", where), 2
    if fn.__kwdefaults__ is held and rest:
        return Edge("attribute", f"function {fn.__qualname__} default {_key_text(held, rest[0])}", where), 2
    edge, step = _attribute(fn, held, rest, kind="attribute", prefix=f"function {fn.__qualname__}")
    return dataclasses.replace(edge, where=where), step


def _generator(gen: Any, held: Any, rest: Sequence[Any], prev: Edge | None) -> tuple[Edge, int]:
    tp = type(gen)
    word, fattr, aattr, rattr = {
        types.CoroutineType: ("coroutine", "cr_frame", "cr_await", "cr_running"),
        types.GeneratorType: ("generator", "gi_frame", "gi_yieldfrom", "gi_running"),
    }.get(tp, ("async generator", "ag_frame", "ag_await", "ag_running"))
    qualname = getattr(gen, "__qualname__", tp.__name__)
    frame = getattr(gen, fattr, None)
    where = format_where(frame.f_code.co_filename, frame.f_lineno) if frame is not None else None
    running = "running " if getattr(gen, rattr, False) else ""
    if getattr(gen, aattr, None) is held:
        return Edge("awaits", f"{running}{word} {qualname} awaits {_obj_text(held)}", where, f"{word} {qualname} awaits"), 1
    # Right after "Task X (...)" the coroutine is X's: name it once.
    named = prev is not None and prev.kind == "task" and f"Task {qualname} " in prev.label + " "
    who = f"{running}{word}" if named else f"{running}{word} {qualname}"
    name, step = _local_name(gen, frame, held, rest)
    if name is None:
        return Edge("coroutine_frame", f"{who} frame (value stack)", where, f"{word} {qualname} frame (value stack)"), 1
    return Edge("coroutine_frame", f"{who} frame local '{name}'", where, f"{word} {qualname} frame local '{name}'"), step


def _frame(frame: types.FrameType, held: Any, rest: Sequence[Any]) -> tuple[Edge, int]:
    where = format_where(frame.f_code.co_filename, frame.f_lineno)
    qualname = getattr(frame.f_code, "co_qualname", frame.f_code.co_name)
    if frame.f_back is held:
        return Edge("attribute", f"frame {qualname} .f_back", where), 1
    name, step = _local_name(frame, frame, held, rest)
    if name is None:
        return Edge("frame_local", f"frame {qualname} (value stack)", where), 1
    return Edge("frame_local", f"frame {qualname} local '{name}'", where, f"frame {qualname} local '{name}'"), step


def _local_name(owner: Any, frame: types.FrameType | None, held: Any, rest: Sequence[Any]) -> tuple[str | None, int]:
    """The name of the local holding ``held`` (a cell var counts: the edge then
    covers the cell too). Reading ``f_locals`` makes CPython store a snapshot
    dict on the frame; a snapshot we created is emptied again, because a stale
    copy would keep a value alive after the coroutine drops it."""
    if frame is None:
        return None, 1
    try:
        before = {id(x) for x in gc.get_referents(owner) if type(x) is dict}
        loc = frame.f_locals
    except Exception:
        return None, 1
    try:
        contents = held.cell_contents if type(held) is types.CellType else _MISSING
    except ValueError:
        contents = _MISSING
    name, step = None, 1
    try:
        for k, v in list(loc.items()):
            if v is held:
                name = k
                break
            if contents is not _MISSING and v is contents and rest and rest[0] is contents:
                name, step = k, 2
                break
    finally:
        if type(loc) is dict and id(loc) not in before:
            loc.clear()
        del loc
    return name, step


_MISSING = object()


def _context(ctx_obj: contextvars.Context, path: Sequence[Any], i: int) -> tuple[Edge, int]:
    # The values hang off internal HAMT nodes: fold them into one edge.
    later = {id(x): j for j, x in enumerate(path[i + 1 :], start=i + 1)}
    for var, value in list(ctx_obj.items()):
        j = later.get(id(value))
        if j is not None:
            return Edge("context_var", f"contextvars.Context var '{var.name}'", None), j - i
    return Edge("context_var", "contextvars.Context (internal reference)", None), 1


def _obj_text(obj: Any) -> str:
    tp = type(obj)
    if issubclass(tp, asyncio.Task):
        return f"Task {task_label(obj)}"
    if tp in (types.CoroutineType, types.GeneratorType, types.AsyncGeneratorType):
        return f"{tp.__name__} {getattr(obj, '__qualname__', '?')}"
    return tp.__qualname__


def _weak_key_text(data: dict[Any, Any], held: Any) -> str:
    for kr, v in list(data.items()):
        if v is held:
            key = kr() if isinstance(kr, weakref.ref) else None
            return _obj_text(key) if key is not None else "(dead)"
    return "(unknown)"


def _weak_entry(kr: weakref.ref, ctx: LabelContext) -> Edge:
    key = kr()
    if key is None:
        return Edge("weak_key_entry", "WeakKeyDictionary entry (key already dead)", None)
    where = None
    desc = _obj_text(key)
    if issubclass(type(key), asyncio.Task):
        desc = f"{desc} ({_task_state(key, ctx)})"
        where = ctx.creation_site(key)
    owner = ctx.weak_dict_names.get(id(kr))
    if owner is not None:
        label = f"{owner}[{desc}] (a WeakKeyDictionary entry whose value refers back to its key: the key can never die)"
        return Edge("weak_key_entry", label, where, f"{owner}[{_obj_text(key)}]")
    label = f"WeakKeyDictionary entry [key {desc}]: its value refers back to its key, so the key can never die"
    return Edge("weak_key_entry", label, where, f"WeakKeyDictionary entry [key {_obj_text(key)}]")


def _hidden_task_edge(task: Any, held: Any, note: str, ctx: LabelContext) -> Edge:
    """A done task holding its stored error where gc cannot see
    (:mod:`leaklab.retention.hidden`)."""
    name = task_label(task)
    state = _task_state(task, ctx)
    site = ctx.creation_site(task)
    where = site
    if site is None:
        code = getattr(task.get_coro(), "cr_code", None)
        where = format_where(code.co_filename, code.co_firstlineno) if code is not None else None
    made = f", created at {site}" if site else (f", coroutine defined at {where}" if where else "")
    return Edge("task", f"done Task {name} ({state}{made}) {note}", where,
                f"done Task {name} ({state}) @{where} {note.split(' (matched')[0]}")


def _task(task: Any, held: Any, ctx: LabelContext) -> Edge:
    name = task_label(task)
    state = _task_state(task, ctx)
    site = ctx.creation_site(task)
    coro = task.get_coro()
    if site is not None:
        text, where = f"{state}, created at {site}", site
    else:
        code = getattr(coro, "cr_code", None) or getattr(coro, "gi_code", None)
        where = format_where(code.co_filename, code.co_firstlineno) if code is not None else None
        text = f"{state}, coroutine defined at {where}" if where else state
    how = "" if coro is held else " (context)" if task.get_context() is held else " (internal reference)"
    shape_state = state.split(",")[0]
    return Edge("task", f"Task {name} ({text}){how}", where, f"Task {name} ({shape_state}) @{where}{how}")


def _task_state(task: Any, ctx: LabelContext) -> str:
    """pending / running / done, and how a pending task is scheduled."""
    try:
        if task.done():
            if task.cancelled():
                return "cancelled"
            return "failed" if task.exception() is not None else "done"
    except Exception:
        return "done"
    if id(task) in ctx.running_tasks:
        return "running"
    loop = task.get_loop()
    waiter = getattr(task, "_fut_waiter", None)
    if waiter is None:
        for handle in list(getattr(loop, "_ready", ())):
            if getattr(getattr(handle, "_callback", None), "__self__", None) is task:
                return "pending, in the ready queue"
        return "pending"
    if issubclass(type(waiter), asyncio.Task):
        return f"pending, awaiting Task {task_label(waiter)}"
    for handle in list(getattr(loop, "_scheduled", ())):
        args = getattr(handle, "_args", None) or ()
        if any(a is waiter for a in args) and not handle.cancelled():
            due = handle.when() - loop.time()
            when = "never due" if due == float("inf") else f"due in {due:.0f}s"
            return f"pending, sleeping on a timer handle ({when})"
    return f"pending, waiting on a {type(waiter).__qualname__}"
