"""The chain model: :class:`Edge` (one hop, as a person reads it),
:class:`Chain` (why one object is alive, root first), and
:class:`LabelContext` (the facts labelling needs besides the path: task
creation sites, module namespaces, running tasks). :mod:`.holders` writes one
edge; :mod:`.edges` a whole path.

Only strings leave these modules: a :class:`Chain` never holds the objects.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import re
import sys
import types
from collections.abc import Sequence
from typing import Any

__all__ = ["Chain", "Edge", "LabelContext", "format_where", "normalize_label"]

_ASYNCIO_DIR = os.path.dirname(asyncio.__file__) + os.sep
_HEX_RE = re.compile(r"0x[0-9a-fA-F]+")
_UUID_RE = re.compile(r"[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}")
_LONG_HEX_RE = re.compile(r"\b[0-9a-fA-F]{12,}\b")


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
        return tuple((e.kind, normalize_label(e.shape or e.label)) for e in self.edges)

    def as_list(self) -> list[dict[str, str | None]]:
        """The edges as JSON-ready dicts."""
        return [e.as_dict() for e in self.edges]

    def __str__(self) -> str:
        return " → ".join([*(e.label for e in self.edges), self.target_type])


def normalize_label(text: str) -> str:
    """``text`` with uuids, addresses and long hex ids replaced by placeholders."""
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

