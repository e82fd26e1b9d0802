"""One edge of a chain: how a holder holds the next object of a path.

:func:`describe_edge` names the hop from ``path[i]`` to ``path[i + 1]`` --
the attribute, dict key, list index, closure cell (function + free variable),
frame local, the Task and how the loop schedules it -- folding the containers
a person does not think about into the edge that owns them
(``obj -> obj.__dict__ -> value`` is one attribute edge), and says how many
objects of the path the edge covers.
"""

from __future__ import annotations

import asyncio
import collections
import contextvars
import dataclasses
import functools
import gc
import re
import threading
import types
import weakref
from collections.abc import Sequence
from typing import Any

from ..probes.tasks import task_label
from .chain_model import Edge, LabelContext, format_where, normalize_label
from .safe import safe_repr

__all__ = ["describe_edge", "type_name"]

_DIGITS_RE = re.compile(r"\d+")


def describe_edge(path: Sequence[Any], i: int, root_kind: str, ctx: LabelContext, prev: Edge | None) -> tuple[Edge, int]:
    """The edge from ``path[i]`` to ``path[i + 1]`` (``prev``: the edge before it)
    and how many objects of the path it covers."""
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


def type_name(obj: Any) -> str:
    """The qualified name of ``obj``'s type."""
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
    shape = _DIGITS_RE.sub("#", normalize_label(text))
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
