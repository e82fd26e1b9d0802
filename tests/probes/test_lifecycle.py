"""Call counts of lifecycle methods (per object too), and time spent in a
method; every wrapper restored exactly."""

from __future__ import annotations

import asyncio
import gc
import inspect
import time
import types
import weakref

from leaklab import metrics
from leaklab.driver.scenarios import CycleState
from leaklab.metrics import Kind
from leaklab.probes import CallCounter, InstancesProbe, InstanceTracker, LifecycleProbe, ProbeContext


class Session:
    def close(self) -> str:
        return "closed"

    async def aclose(self, delay: float = 0.0) -> str:
        await asyncio.sleep(delay)
        return "aclosed"

    @classmethod
    def make(cls) -> Session:
        return cls()

    @staticmethod
    def helper(x: int) -> int:
        return x + 1


class ChildSession(Session):
    def close(self) -> str:
        return "child+" + super().close()


def test_call_counter_counts_sync_async_super_and_restores() -> None:
    # GIVEN a counter on sync, async, class and static methods
    originals = {name: Session.__dict__[name] for name in ("close", "aclose", "make", "helper")}
    counter = CallCounter(
        {
            "close": (Session, "close"),
            "aclose": (Session, "aclose"),
            "make": (Session, "make"),
            "helper": (Session, "helper"),
            "child.close": (ChildSession, "close"),
        }
    ).install()
    try:
        start = counter.snapshot()
        # THEN the async method stays a coroutine function with its metadata
        assert inspect.iscoroutinefunction(Session.aclose)
        assert Session.aclose.__name__ == "aclose"
        # WHEN methods are called directly, through a bound method, through super() and asynchronously
        session = Session.make()
        bound = session.close
        assert bound() == "closed" and Session.close(session) == "closed"
        assert ChildSession().close() == "child+closed"
        assert Session.helper(1) == 2 and session.helper(2) == 3
        assert asyncio.run(session.aclose()) == "aclosed"
        # THEN each call is counted
        assert counter.delta(start) == {"close": 3, "aclose": 1, "make": 1, "helper": 2, "child.close": 1}
        mark = counter.snapshot()
        session.close()
        assert counter.delta(mark)["close"] == 1
    finally:
        counter.uninstall()
    # THEN the class dict holds the original objects again
    for name, original in originals.items():
        assert Session.__dict__[name] is original
    assert ChildSession.__dict__["close"].__qualname__ == "ChildSession.close"
    # THEN a bound method taken while installed still works afterwards
    assert bound() == "closed"


def test_call_counter_on_inherited_method_removes_wrapper() -> None:
    # GIVEN a method the subclass only inherits
    assert "aclose" not in ChildSession.__dict__
    with CallCounter({"aclose": (ChildSession, "aclose")}) as counter:
        asyncio.run(ChildSession().aclose())
        asyncio.run(Session().aclose())
        # THEN only calls on the subclass count
        assert counter.snapshot() == {"aclose": 1}
    assert "aclose" not in ChildSession.__dict__


def test_call_counter_two_labels_on_one_method() -> None:
    # GIVEN two labels on the same method
    original = Session.__dict__["close"]
    with CallCounter({"a": (Session, "close"), "b": (Session, "close")}) as counter:
        Session().close()
        # THEN both count the call
        assert counter.snapshot() == {"a": 1, "b": 1}
    # THEN uninstall unwinds both wrappers
    assert Session.__dict__["close"] is original


class SlottedSession:
    __slots__ = ()

    def close(self) -> None:
        pass


def test_call_counter_per_instance_counts_and_keeps_no_instance_alive() -> None:
    # GIVEN per-instance counting on close and aclose, creation times from a tracker
    ticks = iter(range(100, 1000))
    with InstanceTracker({"Session": Session}) as tracker, CallCounter(
        {"close": (Session, "close"), "aclose": (Session, "aclose"), "helper": (Session, "helper"),
         "slotted": (SlottedSession, "close")},
        per_instance=True, created_at=tracker.created_at, clock=lambda: float(next(ticks)),
    ) as counter:
        # THEN a static method is counted in calls only
        assert counter.per_instance_labels() == ("close", "aclose", "slotted")
        created = tracker.created_counts()["Session"]
        a, b, c = Session(), Session(), ChildSession()
        refs = [weakref.ref(o) for o in (a, b, c)]
        # WHEN a is closed twice (directly and through the class), c through super(), b only aclosed
        a.close()
        Session.close(a)
        c.close()
        asyncio.run(b.aclose())
        Session.helper(1)
        SlottedSession().close()
        # THEN each object has its own record: first call time, calls, creation time
        closes = sorted(counter.take_instances("close"), key=lambda r: r.first_at)
        assert [(r.first_at, r.calls, r.alive) for r in closes] == [(100.0, 2, True), (102.0, 1, True)]
        assert all(r.created_at == tracker.created_at(o) is not None for r, o in zip(closes, (a, c)))
        assert [r.calls for r in counter.take_instances("aclose")] == [1]
        assert tracker.created_counts()["Session"] == created + 3
        # and objects that cannot be weakly referenced are counted, not tracked
        assert counter.snapshot()["slotted"] == 1 and counter.untracked_calls("slotted") == 1
        assert counter.take_instances("slotted") == []
        # WHEN the objects are dropped
        del a, b, c, closes
        gc.collect()
        # THEN the counter kept none of them alive...
        assert [r() for r in refs] == [None, None, None]
        # ...their records are returned once more (not alive), then forgotten
        assert [(r.calls, r.alive) for r in sorted(counter.take_instances("close"), key=lambda r: r.first_at)] == [
            (2, False), (1, False)]
        assert counter.take_instances("close") == []
        # and a new object at a reused id gets a fresh record
        d = Session()
        d.close()
        assert [r.calls for r in counter.take_instances("close")] == [1]
        del d
        # THEN the creation counts include the freed instances
        assert tracker.created_counts()["Session"] == created + 4
    assert Session.__dict__["close"].__qualname__ == "Session.close"


def test_lifecycle_probe_owns_the_call_and_per_object_columns() -> None:
    # GIVEN Session watched and its close() a lifecycle method, counted from the run's start
    original = Session.__dict__["close"]
    target = types.SimpleNamespace(
        resolve_types=lambda: {"Session": Session}, lifecycle={"Session.close": "1"},
        resolve_methods=lambda methods: {label: (Session, "close") for label in methods},
    )
    context = ProbeContext(target, run_started=time.monotonic())
    instances, probe = InstancesProbe(), LifecycleProbe()
    instances.install(context)
    probe.install(context)
    try:
        probe.begin(context)
        # WHEN a cycle ends one session, closed after its disconnect
        state = CycleState("127.0.0.1", 0, "/client-ws", None, (), 1, 1.0)
        kept = Session()
        state.closed_at.append(time.monotonic())
        state.sessions_ended = 1
        kept.close()
        context.state = state
        out = probe.sample(context)
        # and the next census sees no new call
        context.state = None
        again = probe.sample(context)
    finally:
        probe.uninstall()
        instances.uninstall()
    # THEN the calls against the sessions that ended, and the object it ran for
    label = "Session.close"
    assert out[metrics.name(Kind.LIFECYCLE, label)] == 1 and out[metrics.name(Kind.EXPECTED, label)] == 1
    assert out[metrics.name(Kind.LIFECYCLE_OBJECTS, label)] == 1
    assert out[metrics.name(Kind.LIFECYCLE_RAN_FOR, label)] == 1 and out[metrics.name(Kind.LIFECYCLE_OWNED, label)] == 1
    assert again[metrics.name(Kind.LIFECYCLE, label)] == 0 and again[metrics.name(Kind.EXPECTED, label)] == 0
    assert Session.__dict__["close"] is original and probe.timeline is False
