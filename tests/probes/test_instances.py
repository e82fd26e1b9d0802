"""Live instances of watched classes: counted by weak reference, subclasses
under the base name, restored exactly, nothing kept alive."""

from __future__ import annotations

import dataclasses
import gc
import types
import weakref

import pytest

from leaklab import metrics
from leaklab.metrics import Kind
from leaklab.probes import InstancesProbe, InstanceTracker, ProbeContext


class Widget:
    def __init__(self, name: str = "w") -> None:
        self.name = name


class SpecialWidget(Widget):
    def __init__(self) -> None:  # does not call super().__init__
        self.special = True


class PlainWidget(Widget):
    pass


class NoInit:
    pass


class Slotted:
    __slots__ = ("x",)

    def __init__(self) -> None:
        self.x = 1


@dataclasses.dataclass(frozen=True)
class Point:
    x: int


@dataclasses.dataclass
class Mutable:  # eq=True, so unhashable
    x: int


def test_instance_tracker_counts_live_instances_and_uninstall_restores() -> None:
    # GIVEN a tracker on Widget
    original = Widget.__init__
    tracker = InstanceTracker({"Widget": Widget}).install(seed=False)
    try:
        # WHEN three widgets are alive
        widgets = [Widget(str(i)) for i in range(3)]
        # THEN three are counted
        assert tracker.counts() == {"Widget": 3}
        # WHEN two are dropped
        del widgets[:2]
        gc.collect()
        # THEN one is counted, and it is the survivor
        assert tracker.counts() == {"Widget": 1}
        assert tracker.instances("Widget") == [widgets[0]]
        assert isinstance(tracker.created_at(widgets[0]), float)
    finally:
        tracker.uninstall()
    # THEN the class is exactly as before
    assert Widget.__init__ is original
    assert Widget.__dict__["__init__"] is original
    assert not tracker.installed


def test_instance_tracker_keeps_nothing_alive() -> None:
    # GIVEN a tracker and a tracked object
    with InstanceTracker({"Widget": Widget}) as tracker:
        obj = Widget()
        ref = weakref.ref(obj)
        assert tracker.counts()["Widget"] >= 1
        # THEN no tracker-owned container refers to it (only the weakref machinery does)
        internals = {id(tracker), id(vars(tracker))}
        internals |= {id(v) for v in vars(tracker).values()}
        internals |= {id(s) for s in tracker._sets.values()}  # noqa: SLF001 - white-box check
        internals |= {id(s._refs) for s in tracker._sets.values()}  # noqa: SLF001
        assert not [r for r in gc.get_referrers(obj) if id(r) in internals]
        before = tracker.counts()["Widget"]
        # WHEN the last strong reference goes
        del obj
        # THEN the object is freed at once and no longer counted
        assert ref() is None
        assert tracker.counts()["Widget"] == before - 1


def test_instance_tracker_counts_subclasses_under_base_name() -> None:
    # GIVEN a tracker on the base class only
    assert "__init__" not in PlainWidget.__dict__
    with InstanceTracker({"Widget": Widget}).install(seed=False) as tracker:
        # WHEN instances of a subclass that skips super().__init__ and one that inherits __init__ exist
        objs = [Widget(), SpecialWidget(), PlainWidget("p")]
        # THEN all count under the base name, and the subclasses still initialise normally
        assert tracker.counts() == {"Widget": 3}
        assert objs[1].special and objs[2].name == "p"
    # THEN the subclass wrappers are gone too
    assert "__init__" not in PlainWidget.__dict__
    assert SpecialWidget.__init__.__qualname__ == "SpecialWidget.__init__"
    assert not hasattr(SpecialWidget.__init__, "__wrapped__")


def test_instance_tracker_restores_inherited_init_and_keeps_argument_errors() -> None:
    # GIVEN a class that inherits object.__init__
    assert "__init__" not in NoInit.__dict__
    with InstanceTracker({"NoInit": NoInit}) as tracker:
        # WHEN it is created, with and without (invalid) arguments
        keep = NoInit()
        # THEN it is counted, and arguments are still rejected as without the tracker
        assert tracker.counts()["NoInit"] >= 1
        with pytest.raises(TypeError, match="takes no arguments"):
            NoInit(1)
        del keep
    # THEN the wrapper is deleted, not left behind
    assert "__init__" not in NoInit.__dict__
    assert NoInit.__init__ is object.__init__


def test_instance_tracker_counts_by_identity_not_equality() -> None:
    # GIVEN equal-valued frozen instances and unhashable ones
    with InstanceTracker({"Point": Point, "Mutable": Mutable}).install(seed=False) as tracker:
        points = [Point(1), Point(1)]
        mutables = [Mutable(1), Mutable(1)]
        # THEN each instance counts (a WeakSet would merge or reject them)
        assert tracker.counts() == {"Point": 2, "Mutable": 2}
        del points, mutables


def test_instance_tracker_falls_back_to_scan_for_slots_without_weakref() -> None:
    # GIVEN a class whose instances cannot be weakly referenced
    original = Slotted.__init__
    with InstanceTracker({"Slotted": Slotted}) as tracker:
        objs = [Slotted(), Slotted()]
        # THEN it is counted by a heap scan, and the notes say so
        assert tracker.counts() == {"Slotted": 2}
        assert any("gc.get_objects()" in note and "Slotted" in note for note in tracker.notes)
        del objs
    assert Slotted.__init__ is original


def test_instance_tracker_seeds_preexisting_instances() -> None:
    # GIVEN an instance created before the tracker
    early = Widget("early")
    # WHEN the tracker installs with seeding
    with InstanceTracker({"Widget": Widget}) as tracker:
        late = Widget("late")
        # THEN both are counted; only the late one has a creation time
        alive = tracker.instances("Widget")
        assert any(o is early for o in alive) and any(o is late for o in alive)
        del alive
        assert tracker.created_at(early) is None
        assert tracker.created_at(late) is not None
        assert len(tracker.ages("Widget")) >= 1
        assert any("seeded" in note for note in tracker.notes)


def test_instances_probe_owns_the_type_columns_and_publishes_its_tracker() -> None:
    # GIVEN the probe installed for a target watching Widget
    original = Widget.__dict__["__init__"]
    context = ProbeContext(types.SimpleNamespace(resolve_types=lambda: {"Widget": Widget}))
    probe = InstancesProbe()
    probe.install(context)
    try:
        kept = [Widget(), SpecialWidget()]
        # WHEN sampled
        out = probe.sample(context)
        # THEN one column per watched type, named by metrics.name, and the
        # tracker is the context's (the lifecycle and container probes read it)
        assert out == {metrics.name(Kind.TYPE, "Widget"): 2}
        assert context.tracker is probe.tracker and context.instances("Widget") == kept
        assert context.instances("Unwatched") == [] and context.instances(None) == []
    finally:
        probe.uninstall()
    # AND uninstall restored the class
    assert Widget.__dict__["__init__"] is original
