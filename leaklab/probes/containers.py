"""Lengths of the containers reachable from long-lived roots, by stable path.

A bounded breadth-first walk from a few named roots (the WebSocket handler,
the default context, a module), not a heap scan: a container that grows
cycle after cycle shows up as a path whose length grows, e.g.
``handler.chat_group_manager.client_group_map``.

What is walked:

* objects: their instance attributes (``__dict__`` and ``__slots__``, read
  without calling properties or ``__getattr__``), except ``__dunder__`` ones;
* modules (a root, or a submodule of a module root): their globals, except
  dunders, modules that are not submodules, classes, functions and objects
  imported from another module (the same object under the same name in the
  module that defines its type). Containers directly in the class dict of a
  class defined in that module are recorded (``mod.Class._registry``), since
  class-level registries are a classic leak; those classes are not walked
  further;
* dicts: values under ``str`` keys that look fixed (``config['llm']``).
  Keys that look variable (uuids, hex ids, numbers, long text) or are not
  ``str`` are not descended, so paths stay stable from cycle to cycle; with
  ``aggregate_variable_keys=True`` their values are walked under one ``[*]``
  path and lengths at the same path are summed.

Elements of lists, tuples, sets and deques are never descended (cost stays
bounded); weak containers are measured, not descended.
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import logging
import pathlib
import re
import socket
import sys
import threading
import types
import weakref
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

from ..metrics import Kind, name as metric_name
from ..targets.base import session_memory_path
from .base import BaseProbe, ProbeContext, Sample

if TYPE_CHECKING:  # pragma: no cover
    from ..targets import Target

__all__ = [
    "ContainerCensus", "ContainersProbe", "attribute_path", "container_census", "container_lengths",
    "held_by_instances", "open_session_ids", "root_path",
]

_MEASURED: tuple[type, ...] = (
    dict,  # includes defaultdict, OrderedDict, Counter
    list,
    set,
    frozenset,
    collections.deque,
    bytearray,
    weakref.WeakValueDictionary,
    weakref.WeakKeyDictionary,
    weakref.WeakSet,
)

# Never walked into (and never measured).
_LEAVES: tuple[type, ...] = (
    str,
    bytes,
    int,
    float,
    complex,
    bool,
    type(None),
    tuple,
    range,
    slice,
    memoryview,
    type,
    re.Pattern,
    pathlib.PurePath,
    types.FunctionType,
    types.BuiltinFunctionType,
    types.MethodType,
    types.MethodWrapperType,
    types.WrapperDescriptorType,
    types.MethodDescriptorType,
    types.CodeType,
    types.FrameType,
    types.TracebackType,
    types.GeneratorType,
    types.CoroutineType,
    types.AsyncGeneratorType,
    types.MappingProxyType,
    types.CellType,
    staticmethod,
    classmethod,
    property,
    weakref.ref,
    weakref.ProxyType,
    weakref.CallableProxyType,
)

# Runtime machinery is not the application's state: an event loop's timer
# heap or a thread's internals change length on their own and are covered by
# the task and thread counts.
_SKIPPED: tuple[type, ...] = (
    *_LEAVES, types.ModuleType, asyncio.AbstractEventLoop, threading.Thread, socket.socket,
    asyncio.BaseTransport, logging.Logger, logging.Manager,
)

_VARIABLE_KEY = re.compile(r"[0-9a-fA-F]{8}|\d{4}|\s")
_MAX_STABLE_KEY_LEN = 64


@dataclasses.dataclass(frozen=True)
class ContainerCensus:
    """Result of :func:`container_census`.

    Attributes:
        lengths: path -> length, in walk order.
        nodes: objects visited.
        truncated: the walk stopped at ``max_nodes``.
        visited: ids of the objects walked (valid for objects the caller
            held alive since before the walk).
    """

    lengths: dict[str, int]
    nodes: int
    truncated: bool
    visited: frozenset[int] = frozenset()


def _is(obj: Any, kinds: type | tuple[type, ...]) -> bool:
    """``isinstance`` by the real type: never runs a ``__class__`` property."""
    return issubclass(type(obj), kinds)


def _is_stable_key(key: object) -> bool:
    return type(key) is str and len(key) <= _MAX_STABLE_KEY_LEN and _VARIABLE_KEY.search(key) is None


def _is_dunder(name: str) -> bool:
    return name.startswith("__") and name.endswith("__")


def _length(obj: Any) -> int | None:
    try:
        return len(obj)
    except Exception:
        return None


def _attributes(obj: Any) -> Iterator[tuple[str, Any]]:
    """Instance attributes, read without triggering properties or ``__getattr__``."""
    try:
        namespace = object.__getattribute__(obj, "__dict__")
    except Exception:
        namespace = None
    if type(namespace) is dict:
        for name, value in list(namespace.items()):
            if type(name) is str and not _is_dunder(name):
                yield name, value
    for klass in type(obj).__mro__:
        slots = klass.__dict__.get("__slots__")
        if slots is None:
            continue
        for slot in (slots,) if isinstance(slots, str) else slots:
            if not isinstance(slot, str) or _is_dunder(slot):
                continue
            stored = f"_{klass.__name__.lstrip('_')}{slot}" if slot.startswith("__") else slot
            descriptor = klass.__dict__.get(stored)
            if type(descriptor) is not types.MemberDescriptorType:
                continue
            try:
                yield slot, descriptor.__get__(obj, klass)
            except AttributeError:  # unset slot
                continue


def _module_members(module: types.ModuleType, include_class_attrs: bool) -> Iterator[tuple[str, Any, bool]]:
    """``(name, value, is_submodule)`` for the globals of a module worth walking."""
    module_name = getattr(module, "__name__", None)
    prefix = f"{module_name}." if isinstance(module_name, str) else None
    for name, value in list(vars(module).items()):
        if type(name) is not str or _is_dunder(name):
            continue
        if _is(value, types.ModuleType):
            if prefix is not None and isinstance(getattr(value, "__name__", None), str) and value.__name__.startswith(prefix):
                yield name, value, True
            continue
        if _is(value, type):
            if include_class_attrs and value.__dict__.get("__module__") == module_name:
                for attr, member in list(value.__dict__.items()):
                    if type(attr) is str and not _is_dunder(attr) and _is(member, _MEASURED):
                        yield f"{name}.{attr}", member, False
            continue
        if _is(value, _LEAVES):
            continue
        defining = sys.modules.get(type(value).__module__)
        if defining is not None and defining is not module and vars(defining).get(name) is value:
            continue  # imported, e.g. `from __future__ import annotations`
        yield name, value, False


def container_census(
    roots: Mapping[str, object],
    max_depth: int = 4,
    max_nodes: int = 20000,
    *,
    aggregate_variable_keys: bool = False,
    include_class_attrs: bool = True,
) -> ContainerCensus:
    """Walk from ``roots`` and measure every container found (see module doc).

    Args:
        roots: name -> long-lived object or module; the name starts each path.
        max_depth: attribute/key steps from a root to the deepest container
            measured.
        max_nodes: objects visited at most; the walk stops there
            (``truncated``).
        aggregate_variable_keys: walk the values of variable-key dicts under
            ``[*]`` and sum lengths per path (cost grows with the number of
            sessions).
        include_class_attrs: in module roots, measure containers held directly
            by classes defined in that module.

    Returns:
        A :class:`ContainerCensus`; each object is visited once (first path in
        breadth-first order), so a container shared by two paths counts once.
        No reference to a walked object survives the call.
    """
    lengths: dict[str, int] = {}
    visited: set[int] = set()
    keep: list[Any] = []  # walked objects stay alive during the walk so ids are not reused
    queue: collections.deque[tuple[Any, str, int, bool]] = collections.deque(
        (root, name, 0, _is(root, types.ModuleType)) for name, root in roots.items()
    )
    nodes = 0
    truncated = False
    try:
        while queue:
            obj, path, depth, as_module = queue.popleft()
            if id(obj) in visited:
                continue
            if nodes >= max_nodes:
                truncated = True
                break
            visited.add(id(obj))
            keep.append(obj)
            nodes += 1
            if _is(obj, _MEASURED):
                n = _length(obj)
                if n is not None:
                    lengths[path] = lengths.get(path, 0) + n
                if _is(obj, dict) and depth < max_depth and (n or 0) <= max_nodes:
                    try:
                        items = list(obj.items())
                    except RuntimeError:  # resized by another thread
                        items = []
                    for key, value in items:
                        if _is_stable_key(key):
                            child = f"{path}[{key!r}]"
                        elif aggregate_variable_keys:
                            child = f"{path}[*]"
                        else:
                            continue
                        if not _is(value, _SKIPPED):
                            queue.append((value, child, depth + 1, False))
                continue
            if depth >= max_depth:
                continue
            if as_module:
                for name, value, submodule in _module_members(obj, include_class_attrs):
                    queue.append((value, f"{path}.{name}", depth + 1, submodule))
                continue
            if _is(obj, _SKIPPED):
                continue
            for name, value in _attributes(obj):
                if not _is(value, _SKIPPED):
                    queue.append((value, f"{path}.{name}", depth + 1, False))
    finally:
        keep.clear()
        queue.clear()
    return ContainerCensus(lengths=lengths, nodes=nodes, truncated=truncated, visited=frozenset(visited))


def container_lengths(roots: Mapping[str, object], max_depth: int = 4, max_nodes: int = 20000) -> dict[str, int]:
    """Path -> length of the containers reachable from ``roots``.

    Shorthand for ``container_census(roots, max_depth, max_nodes).lengths``.

    Example::

        container_lengths({"handler": app.state.handler})
        # {"handler.client_contexts": 2, "handler.chat_group_manager.client_group_map": 0, ...}
    """
    return container_census(roots, max_depth, max_nodes).lengths


def attribute_path(obj: Any, path: str) -> Any:
    """``obj.a.b`` for ``path="a.b"`` without running properties' side
    effects beyond ``getattr``; ``None`` where a link is missing."""
    for name in path.split("."):
        try:
            obj = getattr(obj, name)
        except Exception:
            return None
        if obj is None:
            return None
    return obj


def root_path(roots: Mapping[str, Any], path: str) -> Any:
    """The object at a census path from ``roots`` (``handler.client_contexts``:
    ``roots["handler"].client_contexts``); ``None`` where a link is missing."""
    name, _, rest = path.partition(".")
    root = roots.get(name)
    return attribute_path(root, rest) if rest and root is not None else root


def held_by_instances(instances: list[Any], path: str, exclude: Mapping[int, Any] | set[int] = frozenset()) -> int:
    """The summed length of ``instance.<path>`` over ``instances``, leaving out
    the containers whose id is in ``exclude`` (ones shared by every session,
    counted apart)."""
    total = 0
    for inst in instances:
        held = attribute_path(inst, path)
        if held is None or id(held) in exclude:
            continue
        n = _length(held)
        if n is not None:
            total += n
    return total


def open_session_ids(target: Target, roots: Mapping[str, Any]) -> set[int]:
    """Ids of the sessions registered as open (``roles.open_sessions``, a dict
    of session objects reached from ``roots``); empty when the role is not
    declared."""
    path = target.roles.open_sessions
    values = getattr(root_path(roots, path), "values", None) if path else None
    try:
        return {id(v) for v in values()} if callable(values) else set()
    except Exception:  # resized by another thread, a hostile mapping
        return set()


class ContainersProbe(BaseProbe):
    """``container:<path>``: the length of every container reachable from the
    app's roots, by path; and ``container:<Session>[*].<memory>``: what the
    sessions that ended still hold in their own memory."""

    name = "containers"
    timeline = True

    def sample(self, context: ProbeContext) -> Sample:
        if context.app is None:
            return {}
        target = context.target
        roots = target.roots(context.app)
        # the sessions taken before the walk, so their ids mean them
        sessions = context.instances(target.roles.session_type) if target.roles.session_memory else []
        try:
            walk = container_census(roots)
            out: Sample = {metric_name(Kind.CONTAINER, path): n for path, n in walk.lengths.items()}
            out.update(self._session_memory(context, roots, sessions, walk.visited))
        finally:
            sessions.clear()
        return out

    @staticmethod
    def _session_memory(context: ProbeContext, roots: Mapping[str, Any], sessions: list[Any],
                        in_use: frozenset[int]) -> Sample:
        """What the sessions that ended still hold in their own agents
        (``roles.session_memory`` summed over the live ``roles.session_type``
        instances), apart from the memory every session shares
        (``roles.shared_memory``), from open sessions (in
        ``roles.open_sessions``) and from sessions the app's long-lived
        objects hold (its default context: their containers are counted on
        their own paths). Flat when each session's memory goes with it."""
        roles = context.target.roles
        if not roles.session_type or not roles.session_memory:
            return {}
        if context.tracker is None or roles.session_type not in context.tracker.types:
            return {}  # not watched: not measured
        shared = {id(held) for path in roles.shared_memory if (held := root_path(roots, path)) is not None}
        open_ids = open_session_ids(context.target, roots)
        ended = [s for s in sessions if id(s) not in in_use and id(s) not in open_ids]
        try:
            total = held_by_instances(ended, roles.session_memory, shared)
        finally:
            ended.clear()
        return {metric_name(Kind.CONTAINER, session_memory_path(roles.session_type, roles.session_memory)): total}
