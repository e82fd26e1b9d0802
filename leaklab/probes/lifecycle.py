"""Call counts and cumulative time of lifecycle methods, by wrapping them on the class.

:class:`CallCounter` can also count per instance (``per_instance=``): which
objects a ``close()`` ran on, when it first ran on each, and how often,
through weak references only (an instance's record outlives the instance
until it is read once with :meth:`CallCounter.take_instances`).
"""

from __future__ import annotations

import bisect
import dataclasses
import functools
import inspect
import time
import weakref
from collections.abc import Callable, Collection, Mapping, Sequence
from types import TracebackType
from typing import TYPE_CHECKING, Any

from ..metrics import Kind, name as metric_name
from .base import BaseProbe, ProbeContext, Sample
from .patching import MethodPatch, restore_all

if TYPE_CHECKING:  # pragma: no cover
    from .instances import InstanceTracker

__all__ = ["CallCounter", "InstanceCalls", "LifecycleProbe", "lifecycle_objects", "per_object_labels"]


class CallCounter:
    """Counts calls of methods, by wrapping them on their class.

    Args:
        targets: label -> ``(owner_class, method_name)``.

    Sync and ``async def`` methods are supported (and static/class methods);
    the wrapper keeps ``functools.wraps`` metadata and stays an ``async def``
    for coroutine functions (``inspect.iscoroutinefunction`` is unchanged).
    Calls through an instance, a bound method taken after :meth:`install`,
    ``super().method()`` or ``Owner.method(obj)`` are counted. A coroutine
    call is counted when it starts running (a coroutine never awaited is not
    counted). Generator and async-generator functions are wrapped by a plain
    function that counts the call and returns the generator.

    Not counted: bound methods captured before :meth:`install` (e.g. stored in
    a dispatch dict in ``__init__``) still point to the original function.

    Per instance (``per_instance``): for each label named there (or every
    label with ``True``) whose method is a plain instance method, the calls
    are also counted per object, keyed by ``id()`` and guarded by a weak
    reference, so the counter never keeps an object alive and a reused id is
    never mistaken for the old object. Each record keeps the time of the
    first call (``clock``, ``time.monotonic``), the call count and the
    object's creation time as ``created_at(obj)`` tells it (e.g.
    :meth:`InstanceTracker.created_at`; ``None`` without it). When the
    object is freed its record is kept until the next
    :meth:`take_instances` of the label, which returns it once and forgets
    it: call it regularly, or dead objects' records pile up. Calls on
    objects that cannot be weakly referenced are counted in
    :meth:`untracked_calls` only.

    Example::

        with CallCounter({"close": (ServiceContext, "close")}) as calls:
            before = calls.snapshot()
            ...
            calls.delta(before)  # {"close": 1}
    """

    def __init__(
        self,
        targets: Mapping[str, tuple[type, str]],
        *,
        per_instance: bool | Collection[str] = False,
        created_at: Callable[[Any], float | None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        for label, target in targets.items():
            if not (isinstance(target, tuple) and len(target) == 2 and isinstance(target[0], type) and isinstance(target[1], str)):
                raise TypeError(f"CallCounter target {label!r} must be (class, method_name), got {target!r}")
        self._targets = dict(targets)
        self._counts: dict[str, int] = {label: 0 for label in self._targets}
        self._patches: list[MethodPatch] = []
        wanted = set(self._targets) if per_instance is True else set(per_instance or ())
        unknown = wanted - set(self._targets)
        if unknown:
            raise KeyError(f"per_instance names labels that are not targets: {sorted(unknown)}")
        self._ledgers: dict[str, _InstanceLedger] = {
            label: _InstanceLedger(created_at, clock) for label in self._targets if label in wanted
        }

    @property
    def installed(self) -> bool:
        """Whether the wrappers are in place."""
        return bool(self._patches)

    def install(self) -> CallCounter:
        """Wrap every target (idempotent). All or nothing.

        Raises:
            AttributeError: a class has no such method.
            TypeError: the attribute is not a method (e.g. a property).
        """
        if self._patches:
            return self
        patches: list[MethodPatch] = []
        try:
            for label, (owner, name) in self._targets.items():
                # Applied one by one: a second label on the same method wraps the first wrapper.
                patch = MethodPatch(
                    owner, name,
                    functools.partial(_counting_wrapper, counts=self._counts, label=label, ledger=self._ledgers.get(label)),
                    pass_binds=True,
                )
                patch.apply()
                patches.append(patch)
        except BaseException:
            for patch in reversed(patches):
                patch.restore()
            raise
        self._patches = patches
        return self

    def uninstall(self) -> None:
        """Restore every wrapped method exactly (idempotent). Counts are kept.

        Raises:
            RuntimeError: a wrapped method was replaced after :meth:`install`;
                nothing is restored in that case.
        """
        if self._patches:
            restore_all(self._patches)
            self._patches = []

    def __enter__(self) -> CallCounter:
        return self.install()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.uninstall()

    def snapshot(self) -> dict[str, int]:
        """Cumulative calls per label since construction."""
        return dict(self._counts)

    def delta(self, prev: Mapping[str, int]) -> dict[str, int]:
        """Calls per label since ``prev`` (an earlier :meth:`snapshot`)."""
        return {label: count - prev.get(label, 0) for label, count in self._counts.items()}

    def per_instance_labels(self) -> tuple[str, ...]:
        """The labels counted per instance, in target order (a static or
        class method is counted in calls only, even when asked for)."""
        return tuple(label for label in self._ledgers if _binds(self._targets[label]))

    def take_instances(self, label: str) -> list[InstanceCalls]:
        """One record per object the method of ``label`` ran on: every object
        still alive, and every one freed since the previous call (returned
        this once, then forgotten). Holds no reference to any object.

        Raises:
            KeyError: ``label`` is not counted per instance.
        """
        return self._ledgers[label].take()

    def untracked_calls(self, label: str) -> int:
        """Calls of ``label`` on objects that could not be weakly referenced
        (counted in :meth:`snapshot`, in no :meth:`take_instances` record)."""
        ledger = self._ledgers.get(label)
        return ledger.untracked if ledger is not None else 0


def _binds(target: tuple[type, str]) -> bool:
    owner, name = target
    for klass in owner.__mro__:
        if name in klass.__dict__:
            raw = klass.__dict__[name]
            return not isinstance(raw, (staticmethod, classmethod)) and hasattr(type(raw), "__get__")
    return False


@dataclasses.dataclass(frozen=True)
class InstanceCalls:
    """What one object's method saw: ``created_at`` (``None`` if unknown),
    ``first_at`` (clock time of the first call), ``calls``, and whether the
    object was still ``alive`` when the record was taken."""

    created_at: float | None
    first_at: float
    calls: int
    alive: bool


class _KeyRef(weakref.ref):  # type: ignore[type-arg]
    """A weak reference that remembers the ``id()`` key it is stored under."""

    __slots__ = ("key",)

    def __new__(cls, obj: Any, callback: Callable[[Any], None], key: int) -> _KeyRef:
        self = super().__new__(cls, obj, callback)
        self.key = key
        return self

    def __init__(self, obj: Any, callback: Callable[[Any], None], key: int) -> None:
        super().__init__(obj, callback)


class _Entry:
    __slots__ = ("ref", "created_at", "first_at", "calls")

    def __init__(self, ref: _KeyRef | None, created_at: float | None, first_at: float) -> None:
        self.ref = ref
        self.created_at = created_at
        self.first_at = first_at
        self.calls = 1

    def frozen(self, alive: bool) -> InstanceCalls:
        return InstanceCalls(self.created_at, self.first_at, self.calls, alive)


class _InstanceLedger:
    """Per-object calls of one method, keyed by ``id()``; a weak reference per
    entry moves it to ``_gone`` when the object is freed (before its id can
    be reused). The ledger is never referenced by what it watches: the
    callbacks hold it weakly."""

    __slots__ = ("_live", "_gone", "_remove", "_created_at", "_clock", "untracked", "__weakref__")

    def __init__(self, created_at: Callable[[Any], float | None] | None, clock: Callable[[], float]) -> None:
        self._live: dict[int, _Entry] = {}
        self._gone: list[_Entry] = []
        self._created_at = created_at
        self._clock = clock
        self.untracked = 0
        selfref = weakref.ref(self)

        def _remove(ref: _KeyRef) -> None:
            ledger = selfref()
            if ledger is None:
                return
            entry = ledger._live.get(ref.key)
            if entry is not None and entry.ref is ref:
                del ledger._live[ref.key]
                entry.ref = None
                ledger._gone.append(entry)

        self._remove = _remove

    def record(self, obj: Any) -> None:
        now = self._clock()
        key = id(obj)
        entry = self._live.get(key)
        if entry is not None:
            if entry.ref is not None and entry.ref() is obj:
                entry.calls += 1
                return
            # A freed object whose callback has not run yet: retire it.
            del self._live[key]
            entry.ref = None
            self._gone.append(entry)
        try:
            ref = _KeyRef(obj, self._remove, key)
        except TypeError:  # not weakref-able: an id() alone could be reused
            self.untracked += 1
            return
        created = self._created_at(obj) if self._created_at is not None else None
        self._live[key] = _Entry(ref, created, now)

    def take(self) -> list[InstanceCalls]:
        gone, self._gone = self._gone, []
        while True:
            try:
                live = list(self._live.values())
                break
            except RuntimeError:  # resized by a weakref callback mid-copy
                continue
        # Freed while the live entries were copied: already in ``live``, or not.
        late, self._gone = self._gone, []
        seen = {id(e) for e in live}
        out = [e.frozen(alive=e.ref is not None and e.ref() is not None) for e in live]
        out.extend(e.frozen(alive=False) for e in gone)
        out.extend(e.frozen(alive=False) for e in late if id(e) not in seen)
        return out


def _counting_wrapper(
    func: Callable[..., Any], *, counts: dict[str, int], label: str, ledger: _InstanceLedger | None = None,
    binds: bool = True,
) -> Callable[..., Any]:
    record = ledger.record if ledger is not None and binds else None
    if inspect.iscoroutinefunction(func):

        @functools.wraps(func)
        async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
            counts[label] += 1
            if record is not None and args:
                _safe_record(record, args[0])
            return await func(*args, **kwargs)

        return async_wrapper

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        counts[label] += 1
        if record is not None and args:
            _safe_record(record, args[0])
        return func(*args, **kwargs)

    return wrapper


def _safe_record(record: Callable[[Any], None], obj: Any) -> None:
    # Measuring must never break the measured method.
    try:
        record(obj)
    except Exception:  # pragma: no cover - defensive
        pass


def per_object_labels(
    methods: Mapping[str, tuple[type, str]], types: Mapping[str, type], tracked: Mapping[str, int]
) -> dict[str, str]:
    """Lifecycle label -> the watched name of its class (the very class, with
    its creations tracked by weak reference); labels of unwatched classes
    are left out (counted in calls only)."""
    out: dict[str, str] = {}
    for label, (owner, _method) in methods.items():
        name = next((n for n, cls in types.items() if cls is owner and n in tracked), None)
        if name is not None:
            out[label] = name
    return out


def lifecycle_objects(
    calls: CallCounter,
    tracker: InstanceTracker,
    per_object: Mapping[str, str],
    *,
    since: float,
    created_before: Mapping[str, int],
    disconnects: Sequence[float],
    now: float,
    created_now: Mapping[str, int],
) -> Sample:
    """Per-object lifecycle accounting of the cycle since the previous census.

    For each label counted per object (``per_object``: label -> watched type
    name), among the instances of its class created since ``since``:
    ``lifecycle_objects`` (created), ``lifecycle_closed`` (the method ran on
    it, by ``now``), ``lifecycle_short`` / ``lifecycle_short_calls``
    (short-lived: the method first ran while its session was still open,
    i.e. before the first disconnect that followed the instance's creation,
    or with no disconnect after it), ``lifecycle_owned`` (session-owned:
    created, and still unclosed at its session's disconnect; an instance
    still alive and unclosed with no disconnect after its creation belongs to
    a session that has not ended and is left out) and ``lifecycle_ran_for``
    (session-owned instances the method ran on after the disconnect). With
    one session per cycle, "its session's disconnect" is the cycle's
    disconnect (``disconnects``: :attr:`CycleState.closed_at`).

    Drains ``calls.take_instances`` of every label (read once per census).
    """
    disconnects = sorted(disconnects)
    open_after = disconnects[-1] if disconnects else since
    out: Sample = {}
    for label, name in per_object.items():
        records = calls.take_instances(label)  # drained every census
        if name not in created_now:  # switched to a heap scan: creations unseen
            continue
        closed = short = short_calls = ran_for = closed_open = 0
        for r in records:
            if r.created_at is None or not since < r.created_at <= now:
                continue
            closed += 1
            i = bisect.bisect_left(disconnects, r.created_at)
            if i == len(disconnects) or r.first_at < disconnects[i]:
                short += 1
                short_calls += r.calls
                closed_open += i == len(disconnects) and r.alive
            else:
                ran_for += 1
        still_open = sum(1 for t in tracker.creation_times(name) if max(since, open_after) < t <= now)
        created = created_now[name] - created_before.get(name, 0)
        out[metric_name(Kind.LIFECYCLE_OBJECTS, label)] = created
        out[metric_name(Kind.LIFECYCLE_CLOSED, label)] = closed
        out[metric_name(Kind.LIFECYCLE_SHORT, label)] = short
        out[metric_name(Kind.LIFECYCLE_SHORT_CALLS, label)] = short_calls
        out[metric_name(Kind.LIFECYCLE_OWNED, label)] = max(0, created - short - max(0, still_open - closed_open))
        out[metric_name(Kind.LIFECYCLE_RAN_FOR, label)] = ran_for
    return out


class LifecycleProbe(BaseProbe):
    """After each cycle: ``lifecycle:<label>`` (calls of each lifecycle method
    of the target since the previous census), ``expected:<label>`` (sessions
    that ended in the cycle) and, for methods of watched classes, the
    per-object accounting of :func:`lifecycle_objects`. Reads the instance
    tracker the instances probe published."""

    name = "lifecycle"
    timeline = False

    def __init__(self) -> None:
        self.calls: CallCounter | None = None
        #: label -> watched type name, for the labels counted per object
        self.per_object: dict[str, str] = {}
        self._prev: dict[str, int] = {}
        self._since: tuple[float, dict[str, int]] = (0.0, {})

    def install(self, context: ProbeContext) -> None:
        tracker = context.tracker
        methods = context.target.resolve_methods(context.target.lifecycle)
        types = tracker.types if tracker is not None else {}
        created = tracker.created_counts() if tracker is not None else {}
        # A close counts against the object it closes when its class is
        # watched (creations are seen); other labels are counted in calls.
        per_object = per_object_labels(methods, types, created)
        created_at = tracker.created_at if tracker is not None else None
        self.calls = CallCounter(methods, per_instance=set(per_object), created_at=created_at)
        self.per_object = {k: per_object[k] for k in self.calls.per_instance_labels()}
        self.calls.install()

    def begin(self, context: ProbeContext) -> None:
        if self.calls is not None:
            self._prev = self.calls.snapshot()
        created = context.tracker.created_counts() if context.tracker is not None else {}
        self._since = (context.run_started, created)

    def sample(self, context: ProbeContext) -> Sample:
        if self.calls is None:
            return {}
        calls, prev = self.calls.snapshot(), self._prev
        state = context.state
        ended = state.sessions_ended if state is not None else 0
        out: Sample = {}
        for label in context.target.lifecycle:
            out[metric_name(Kind.LIFECYCLE, label)] = calls.get(label, 0) - prev.get(label, 0)
            out[metric_name(Kind.EXPECTED, label)] = ended
        if context.tracker is not None:
            since, created_before = self._since
            now = time.monotonic()
            created_now = context.tracker.created_counts()
            self._since = (now, created_now)
            out.update(lifecycle_objects(
                self.calls, context.tracker, self.per_object, since=since, created_before=created_before,
                disconnects=state.closed_at if state is not None else [], now=now, created_now=created_now))
        self._prev = self.calls.snapshot()
        return out

    def uninstall(self) -> None:
        if self.calls is not None:
            self.calls.uninstall()
