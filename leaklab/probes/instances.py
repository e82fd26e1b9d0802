"""Live-instance counts of watched classes, kept by weak reference.

:class:`InstanceTracker` wraps the ``__init__`` of each watched class so that
every new instance registers a weak reference at creation. A census is then
``len()`` of a dict per class: no heap scan per cycle, and the tracker never
keeps an instance alive.

Only classes whose instances cannot be weakly referenced (``__slots__``
without ``__weakref__``) fall back to one ``gc.get_objects()`` scan per
:meth:`InstanceTracker.counts` call; :attr:`InstanceTracker.notes` says so.
"""

from __future__ import annotations

import collections
import functools
import gc
import time
import weakref
from collections.abc import Callable, Iterator, Mapping
from types import TracebackType
from typing import Any

from ..metrics import Kind, name as metric_name
from .base import BaseProbe, ProbeContext, Sample

__all__ = ["InstanceTracker", "InstancesProbe"]


#: Freed instances remembered per watched type, for their lifetimes.
MAX_DEATHS = 100_000


class _KeyedRef(weakref.ref):  # type: ignore[type-arg]
    """A weak reference that remembers the ``id()`` key it is stored under."""

    __slots__ = ("key", "created_at")

    def __new__(cls, obj: Any, callback: Callable[[Any], None], key: int, created_at: float | None) -> _KeyedRef:
        self = super().__new__(cls, obj, callback)
        self.key = key
        self.created_at = created_at
        return self

    def __init__(self, obj: Any, callback: Callable[[Any], None], key: int, created_at: float | None) -> None:
        super().__init__(obj, callback)


class _WeakIdentitySet:
    """Weakly held objects compared by identity.

    ``weakref.WeakSet`` compares by ``__eq__``/``__hash__``: two equal frozen
    dataclass instances would count once, and unhashable instances (plain
    ``@dataclass``) could not be added at all. This set is keyed by ``id()``;
    the weakref callback removes the entry when the object is freed, before
    its id can be reused.
    """

    __slots__ = ("_refs", "_remove", "deaths", "__weakref__")

    def __init__(self) -> None:
        self._refs: dict[int, _KeyedRef] = {}
        #: ``(created_at, died_at)`` of each freed instance whose creation was
        #: seen, oldest death first (at most :data:`MAX_DEATHS`)
        self.deaths: collections.deque[tuple[float, float]] = collections.deque(maxlen=MAX_DEATHS)
        selfref = weakref.ref(self)

        def _remove(ref: _KeyedRef) -> None:
            owner = selfref()
            if owner is not None and owner._refs.get(ref.key) is ref:
                del owner._refs[ref.key]
                if ref.created_at is not None:
                    owner.deaths.append((ref.created_at, time.monotonic()))

        self._remove = _remove

    def add(self, obj: Any, created_at: float | None) -> bool:
        """Register ``obj`` (idempotent); whether it was new. Raises TypeError
        if not weakref-able."""
        key = id(obj)
        current = self._refs.get(key)
        if current is not None and current() is obj:
            return False
        self._refs[key] = _KeyedRef(obj, self._remove, key, created_at)
        return True

    def __len__(self) -> int:
        return len(self._refs)

    def entries(self) -> list[_KeyedRef]:
        """A snapshot of the references (callbacks may fire during a copy)."""
        while True:
            try:
                return list(self._refs.values())
            except RuntimeError:  # resized by a weakref callback mid-copy
                continue

    def lookup(self, obj: Any) -> _KeyedRef | None:
        ref = self._refs.get(id(obj))
        return ref if ref is not None and ref() is obj else None


class _InitPatch:
    """One class's ``__init__`` replaced by a registering wrapper; restorable exactly."""

    __slots__ = ("cls", "had_own", "original", "wrapper")

    def __init__(self, cls: type, register: Callable[[Any], None]) -> None:
        self.cls = cls
        self.had_own = "__init__" in cls.__dict__
        self.original = cls.__dict__.get("__init__")
        self.wrapper = _make_init(cls, self.original, register) if self.had_own else _make_inherited_init(cls, register)

    def apply(self) -> None:
        type.__setattr__(self.cls, "__init__", self.wrapper)

    def in_place(self) -> bool:
        return self.cls.__dict__.get("__init__") is self.wrapper

    def restore(self) -> None:
        if self.had_own:
            type.__setattr__(self.cls, "__init__", self.original)
        else:
            type.__delattr__(self.cls, "__init__")


def _make_init(cls: type, original: Any, register: Callable[[Any], None]) -> Callable[..., Any]:
    """Wrap a class's own ``__init__``."""

    @functools.wraps(original)
    def __init__(self: Any, *args: Any, **kwargs: Any) -> Any:
        register(self)
        return original(self, *args, **kwargs)

    return __init__


def _make_inherited_init(cls: type, register: Callable[[Any], None]) -> Callable[..., Any]:
    """An ``__init__`` for a class that inherits it: register, then defer to
    the next ``__init__`` in the instance's MRO (so cooperative multiple
    inheritance keeps working)."""
    object_init = object.__init__

    def __init__(self: Any, *args: Any, **kwargs: Any) -> Any:
        register(self)
        if _is_object_init(type(self), cls, object_init):
            # object.__init__ now sees an overridden tp_init: it would reject
            # arguments it accepted before. Reproduce the original rule.
            if (args or kwargs) and type(self).__new__ is object.__new__:
                raise TypeError(f"{type(self).__name__}() takes no arguments")
            return None
        return super(cls, self).__init__(*args, **kwargs)

    __init__.__qualname__ = f"{cls.__qualname__}.__init__"
    __init__.__module__ = cls.__module__
    return __init__


def _is_object_init(tp: type, after: type, object_init: Any) -> bool:
    mro = tp.__mro__
    for klass in mro[mro.index(after) + 1 :]:
        if "__init__" in klass.__dict__:
            return klass.__dict__["__init__"] is object_init
    return True


def _all_subclasses(cls: type) -> Iterator[type]:
    seen: set[int] = set()
    stack = list(type.__subclasses__(cls))
    while stack:
        sub = stack.pop()
        if id(sub) in seen:
            continue
        seen.add(id(sub))
        yield sub
        stack.extend(type.__subclasses__(sub))


class InstanceTracker:
    """Counts live instances of watched classes (subclasses count under the base name).

    Args:
        type_names: display name -> class. A class may appear under several
            names; an instance counts under every watched class in its MRO.

    Mechanism: :meth:`install` replaces ``__init__`` in the class dict of each
    watched class and of every existing subclass that defines its own
    ``__init__`` (so subclasses that do not call ``super().__init__`` still
    register). The wrapper adds a weak reference to the new instance, then
    runs the original. :meth:`uninstall` puts back the exact original object
    (or deletes the wrapper when ``__init__`` was inherited).

    Limits: instances created by ``cls.__new__(cls)`` alone (``copy``,
    ``pickle``) skip ``__init__`` and are only found by the install-time seed
    scan; subclasses defined after :meth:`install` that override ``__init__``
    without calling ``super().__init__`` are not counted; classes whose
    instances are not weakref-able (``__slots__`` without ``__weakref__``)
    are counted by a ``gc.get_objects()`` scan at each :meth:`counts` call.

    Example::

        with InstanceTracker({"ServiceContext": ServiceContext}) as tracker:
            ...
            gc.collect()
            tracker.counts()  # {"ServiceContext": 2}
    """

    def __init__(self, type_names: Mapping[str, type]) -> None:
        for name, cls in type_names.items():
            if not isinstance(cls, type):
                raise TypeError(f"InstanceTracker: {name!r} is not a class: {cls!r}")
        self._types: dict[str, type] = dict(type_names)
        self._sets: dict[str, _WeakIdentitySet] = {name: _WeakIdentitySet() for name in self._types}
        self._created: dict[str, int] = {name: 0 for name in self._types}
        self._scan: set[str] = {name for name, cls in self._types.items() if cls.__weakrefoffset__ == 0}
        self._patches: list[_InitPatch] = []
        self._notes: list[str] = [
            f"{name}: instances of {cls.__qualname__} are not weakref-able (__slots__ without "
            "__weakref__); counted by a gc.get_objects() scan at every counts() call"
            for name, cls in self._types.items()
            if name in self._scan
        ]
        self._installed = False

    # -- installation ---------------------------------------------------

    @property
    def installed(self) -> bool:
        """Whether the ``__init__`` wrappers are in place."""
        return self._installed

    @property
    def types(self) -> dict[str, type]:
        """The watched classes by display name (a copy)."""
        return dict(self._types)

    @property
    def notes(self) -> tuple[str, ...]:
        """Human-readable remarks: fallbacks used, seeding, patch failures."""
        return tuple(self._notes)

    def install(self, *, seed: bool = True) -> InstanceTracker:
        """Wrap ``__init__`` of the watched classes (idempotent).

        Args:
            seed: also register the instances that already exist, with one
                ``gc.get_objects()`` scan (their ``created_at`` is ``None``).

        Returns:
            The tracker, for chaining.

        Raises:
            TypeError: a watched class's ``__init__`` cannot be replaced
                (built-in/extension type); nothing is left patched.
        """
        if self._installed:
            return self
        register = self._register
        targets: dict[int, type] = {}
        for name, cls in self._types.items():
            if name in self._scan:
                continue
            targets.setdefault(id(cls), cls)
            for sub in _all_subclasses(cls):
                if "__init__" in sub.__dict__:
                    targets.setdefault(id(sub), sub)
        patches: list[_InitPatch] = []
        try:
            for cls in targets.values():
                patch = _InitPatch(cls, register)
                patch.apply()
                patches.append(patch)
        except TypeError as exc:
            for patch in reversed(patches):
                patch.restore()
            raise TypeError(f"InstanceTracker cannot wrap __init__ of {cls.__qualname__}: {exc}") from None
        self._patches = patches
        self._installed = True
        if seed:
            seeded = self._seed()
            self._notes.append(f"install: {seeded} pre-existing instance(s) seeded by one gc.get_objects() scan")
        return self

    def uninstall(self) -> None:
        """Restore every wrapped ``__init__`` exactly (idempotent).

        Raises:
            RuntimeError: another tool replaced a wrapped ``__init__`` after
                :meth:`install` (uninstall in reverse order); nothing is
                restored in that case.
        """
        if not self._installed:
            return
        displaced = [p.cls.__qualname__ for p in self._patches if not p.in_place()]
        if displaced:
            raise RuntimeError(f"__init__ of {displaced} was replaced after install(); uninstall that tool first")
        for patch in reversed(self._patches):
            patch.restore()
        self._patches = []
        self._installed = False

    def __enter__(self) -> InstanceTracker:
        return self.install()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.uninstall()

    # -- registration ---------------------------------------------------

    def _register(self, obj: Any) -> None:
        mro = type(obj).__mro__
        now = time.monotonic()
        for name, cls in self._types.items():
            if cls in mro and name not in self._scan:
                try:
                    if self._sets[name].add(obj, now):
                        self._created[name] += 1
                except TypeError:  # a subclass instance that is not weakref-able
                    self._scan.add(name)
                    self._notes.append(
                        f"{name}: an instance of {type(obj).__qualname__} is not weakref-able; "
                        "switched to a gc.get_objects() scan at every counts() call"
                    )

    def _seed(self) -> int:
        watched = [(name, cls) for name, cls in self._types.items() if name not in self._scan]
        if not watched:
            return 0
        seeded = 0
        objects = gc.get_objects()
        try:
            for obj in objects:
                mro = type(obj).__mro__
                for name, cls in watched:
                    if cls in mro:
                        try:
                            self._sets[name].add(obj, None)
                            seeded += 1
                        except TypeError:
                            pass
        finally:
            del objects
        return seeded

    def _scan_instances(self, names: set[str]) -> dict[str, list[Any]]:
        found: dict[str, list[Any]] = {name: [] for name in names}
        watched = [(name, self._types[name]) for name in names]
        objects = gc.get_objects()
        try:
            for obj in objects:
                mro = type(obj).__mro__
                for name, cls in watched:
                    if cls in mro:
                        found[name].append(obj)
        finally:
            del objects
        return found

    # -- reading --------------------------------------------------------

    def counts(self) -> dict[str, int]:
        """Live instances per name.

        Objects in unreachable cycles count until the garbage collector frees
        them: call ``gc.collect()`` first for a census of reachable objects.

        Returns:
            ``{name: count}`` in the order given to the constructor.
        """
        scanned: dict[str, int] = {}
        if self._scan:
            scanned = {name: len(objs) for name, objs in self._scan_instances(set(self._scan)).items()}
        return {name: scanned[name] if name in scanned else len(self._sets[name]) for name in self._types}

    def created_counts(self) -> dict[str, int]:
        """Instances registered at ``__init__`` since construction, per name,
        freed ones included (pre-existing seeded ones are not). Names counted
        by a heap scan are left out: their creations are not seen."""
        return {name: n for name, n in self._created.items() if name not in self._scan}

    def creation_times(self, name: str) -> list[float]:
        """``created_at`` of each live instance of ``name`` whose creation time
        is known (no strong reference is kept)."""
        if name not in self._types:
            raise KeyError(name)
        return [ref.created_at for ref in self._sets[name].entries() if ref.created_at is not None and ref() is not None]

    def lifetimes(self, name: str, since: float) -> list[tuple[float, float | None]]:
        """``(created_at, died_at or None)`` of every instance of ``name``
        created at or after ``since`` whose creation was seen (freed ones
        with the time they were freed; live ones with ``None``). No strong
        reference is kept.

        Raises:
            KeyError: ``name`` is not watched.
        """
        if name not in self._types:
            raise KeyError(name)
        watched = self._sets[name]
        dead = [(c, d) for c, d in list(watched.deaths) if c >= since]
        live: list[tuple[float, float | None]] = [
            (ref.created_at, None) for ref in watched.entries()
            if ref.created_at is not None and ref.created_at >= since and ref() is not None]
        return sorted([*dead, *live])

    def instances(self, name: str) -> list[Any]:
        """Strong references to the live instances of ``name``.

        The caller owns the list: drop it before the next census, or the
        instances it holds stay alive.

        Raises:
            KeyError: ``name`` is not watched.
        """
        if name not in self._types:
            raise KeyError(name)
        if name in self._scan:
            return self._scan_instances({name})[name]
        return [obj for obj in (ref() for ref in self._sets[name].entries()) if obj is not None]

    def created_at(self, obj: Any) -> float | None:
        """``time.monotonic()`` at which ``obj`` registered, ``None`` if unknown
        (seeded at install, scan-counted, or not watched)."""
        for name in self._types:
            ref = self._sets[name].lookup(obj)
            if ref is not None:
                return ref.created_at
        return None

    def ages(self, name: str, now: float | None = None) -> list[float]:
        """Seconds since creation of each live instance of ``name`` whose
        creation time is known, oldest first."""
        if name not in self._types:
            raise KeyError(name)
        now = time.monotonic() if now is None else now
        ages = [now - ref.created_at for ref in self._sets[name].entries() if ref.created_at is not None and ref() is not None]
        return sorted(ages, reverse=True)


class InstancesProbe(BaseProbe):
    """``type:<name>``: live instances of each watched type of the target.

    Installs the :class:`InstanceTracker` and publishes it on the context
    (``context.tracker``): the lifecycle and container probes and the
    session's survivor queries read it.
    """

    name = "instances"
    timeline = True

    def __init__(self) -> None:
        self.tracker: InstanceTracker | None = None

    def install(self, context: ProbeContext) -> None:
        self.tracker = InstanceTracker(context.target.resolve_types())
        self.tracker.install()
        context.tracker = self.tracker

    def sample(self, context: ProbeContext) -> Sample:
        if self.tracker is None:
            return {}
        return {metric_name(Kind.TYPE, n): count for n, count in self.tracker.counts().items()}

    def uninstall(self) -> None:
        if self.tracker is not None:
            self.tracker.uninstall()
