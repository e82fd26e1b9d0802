"""The measurement layer: each probe measures what it claims, restores what it
patches, and keeps no measured object alive."""

from __future__ import annotations

import asyncio
import dataclasses
import gc
import inspect
import socket
import sqlite3
import subprocess
import sys
import threading
import tracemalloc
import types
import weakref
from collections import deque

import psutil
import pytest

from leaklab.probes import (
    CallCounter,
    InstanceTracker,
    TaskCreationRecorder,
    TimedMethod,
    baseline,
    container_census,
    container_lengths,
    dir_snapshot,
    orphans_after,
    process_snapshot,
    sqlite_snapshot,
    task_census,
)

# --------------------------------------------------------------------- instances


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


# --------------------------------------------------------------------- tasks


async def sleeper_f() -> None:
    await asyncio.sleep(30)


async def sleeper_g() -> None:
    await asyncio.sleep(30)


def test_task_census_groups_by_qualname_and_excludes_caller() -> None:
    async def main() -> None:
        # GIVEN three tasks of f and one of g
        tasks = [asyncio.create_task(sleeper_f()) for _ in range(3)] + [asyncio.create_task(sleeper_g())]
        await asyncio.sleep(0)
        try:
            # WHEN the census runs from another task
            census = task_census()
            # THEN they are grouped by qualname and the caller is not counted
            assert census.total == 4
            assert census.by_coroutine == {"sleeper_f": 3, "sleeper_g": 1}
        finally:
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        assert task_census().total == 0

    asyncio.run(main())


class _TaskGroup310:
    """``asyncio.TaskGroup`` (3.11+) for 3.10: ``create_task`` is
    ``asyncio.ensure_future`` itself, asyncio code as ``TaskGroup.create_task``
    is, and the exit awaits the tasks created inside."""

    create_task = staticmethod(asyncio.ensure_future)

    async def __aenter__(self) -> _TaskGroup310:
        self._before = asyncio.all_tasks()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await asyncio.gather(*(asyncio.all_tasks() - self._before))


_TaskGroup = getattr(asyncio, "TaskGroup", _TaskGroup310)


def test_task_creation_recorder_records_call_site_and_restores_factory() -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        # GIVEN a recorder on a loop without a task factory
        assert loop.get_task_factory() is None
        recorder = TaskCreationRecorder().install()
        try:
            # WHEN a task is created here, and one through a TaskGroup
            task = asyncio.create_task(sleeper_f()); line = inspect.currentframe().f_lineno  # noqa: E702
            async with _TaskGroup() as group:
                grouped = group.create_task(asyncio.sleep(0)); group_line = inspect.currentframe().f_lineno  # noqa: E702
            # THEN the site is this file and line (asyncio frames skipped)
            site = recorder.site(task)
            assert site is not None
            assert (site.filename, site.lineno) == (__file__, line)
            assert site.function.endswith("main")
            assert recorder.site(grouped).lineno == group_line
            assert recorder.live_sites() == {str(site): 1}
            census = task_census(recorder=recorder)
            assert census.by_site == {str(site): 1}
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        finally:
            recorder.uninstall()
        # THEN the previous factory (none) is back
        assert loop.get_task_factory() is None

    asyncio.run(main())


def test_task_creation_recorder_chains_existing_factory() -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        made: list[asyncio.Task[object]] = []

        def factory(loop: asyncio.AbstractEventLoop, coro: object, **kwargs: object) -> asyncio.Task[object]:
            task = asyncio.Task(coro, loop=loop, **kwargs)  # type: ignore[arg-type]
            made.append(task)
            return task

        # GIVEN a loop with its own task factory
        loop.set_task_factory(factory)
        try:
            # WHEN the recorder is installed and a task created
            with TaskCreationRecorder() as recorder:
                task = asyncio.create_task(asyncio.sleep(0), name="named")
                await task
                # THEN the old factory still made the task, and the site is recorded
                assert made == [task] and task.get_name() == "named"
                assert recorder.site(task) is not None
            # THEN the old factory is back
            assert loop.get_task_factory() is factory
        finally:
            loop.set_task_factory(None)

    asyncio.run(main())


# --------------------------------------------------------------------- process


def test_process_snapshot_has_sane_values() -> None:
    # WHEN the process is measured
    snap = process_snapshot()
    # THEN the gauges are plausible
    assert snap.rss_mb > 1
    assert snap.fds > 2
    assert snap.threads >= 1 and snap.native_threads >= 1
    assert snap.children == 0
    assert snap.gc_objects is not None and snap.gc_objects > 1000
    assert snap.tracemalloc_mb is None
    assert process_snapshot(count_gc_objects=False).gc_objects is None
    # WHEN tracemalloc traces
    tracemalloc.start()
    try:
        blob = [bytearray(1024) for _ in range(100)]
        traced = process_snapshot().tracemalloc_mb
        del blob
    finally:
        tracemalloc.stop()
    # THEN its current size is reported
    assert traced is not None and traced > 0.05


def test_process_snapshot_counts_child_processes() -> None:
    # GIVEN a baseline
    before = process_snapshot(count_gc_objects=False).children
    # WHEN a child process runs
    child = subprocess.Popen(["sleep", "5"])
    try:
        # THEN it is counted
        assert process_snapshot(count_gc_objects=False).children == before + 1
    finally:
        child.kill()
        child.wait()
    # THEN a reaped child is not
    assert process_snapshot(count_gc_objects=False).children == before


def test_orphans_after_sees_only_new_listeners_threads_children() -> None:
    stop = threading.Event()
    with socket.socket() as old_listener, socket.socket() as new_listener:
        # GIVEN a listener opened before the baseline
        old_listener.bind(("127.0.0.1", 0))
        old_listener.listen()
        before = baseline()
        assert old_listener.getsockname()[1] in before.listening_ports
        # WHEN a listener, a thread and a child start after it
        new_listener.bind(("127.0.0.1", 0))
        new_listener.listen()
        worker = threading.Thread(target=stop.wait, name="probe-worker")
        worker.start()
        child = subprocess.Popen(["sleep", "5"])
        try:
            orphans = orphans_after(before)
            # THEN only those are reported
            assert orphans.listening_ports == (new_listener.getsockname()[1],)
            assert orphans.threads == (worker.ident,) and orphans.thread_names == ("probe-worker",)
            assert orphans.children == (child.pid,)
            assert orphans.counts() == {"children": 1, "threads": 1, "listening_ports": 1}
        finally:
            stop.set()
            worker.join()
            child.kill()
            child.wait()
    # THEN once all are gone, nothing is an orphan
    assert not orphans_after(before)


# --------------------------------------------------------------------- files


def test_dir_snapshot_counts_files_recursively(tmp_path) -> None:
    # GIVEN a tree of three files
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "b").mkdir()
    (tmp_path / "x.bin").write_bytes(b"1" * 10)
    (tmp_path / "a" / "y.bin").write_bytes(b"2" * 20)
    (tmp_path / "a" / "b" / "z.bin").write_bytes(b"3" * 30)
    # THEN the snapshot counts them and unpacks as a pair
    files, size = dir_snapshot(tmp_path)
    assert (files, size) == (3, 60)
    # THEN a missing path is empty
    assert tuple(dir_snapshot(tmp_path / "missing")) == (0, 0)


def test_sqlite_snapshot_counts_rows_read_only_without_keeping_file_open(tmp_path) -> None:
    db = tmp_path / "history.db"
    # GIVEN no database yet: zeros, and the probe does not create it
    assert tuple(sqlite_snapshot(db)) == (0, 0)
    assert not db.exists()
    # GIVEN a database with two tables
    conn = sqlite3.connect(db)
    try:
        conn.execute("CREATE TABLE messages (id INTEGER PRIMARY KEY, content TEXT)")
        conn.execute('CREATE TABLE "odd ""name" (id INTEGER)')
        conn.executemany("INSERT INTO messages (content) VALUES (?)", [("hi",)] * 5)
        conn.execute('INSERT INTO "odd ""name" VALUES (1)')
        conn.commit()
    finally:
        conn.close()
    proc = psutil.Process()
    fds_before = proc.num_fds()
    # WHEN it is measured
    rows, size = sqlite_snapshot(db, "messages")
    total = sqlite_snapshot(db)
    # THEN rows are counted, per table or in all tables, and the size is the file's
    assert rows == 5 and size == db.stat().st_size
    assert total.rows == 6
    assert sqlite_snapshot(db, "not_yet").rows == 0
    # THEN the connection was closed: no fd left, the file not held open
    assert proc.num_fds() == fds_before
    assert str(db) not in {f.path for f in proc.open_files()}


def test_sqlite_snapshot_leaves_no_wal_files_behind(tmp_path) -> None:
    # GIVEN a WAL-mode database no connection has open
    db = tmp_path / "wal.db"
    conn = sqlite3.connect(db, isolation_level=None)
    try:
        conn.execute("PRAGMA journal_mode=wal")
        conn.execute("CREATE TABLE t (x INTEGER)")
        conn.execute("INSERT INTO t VALUES (1)")
        # WHEN it is measured while the writer is open
        assert sqlite_snapshot(db).rows == 1
    finally:
        conn.close()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["wal.db"]
    # WHEN it is measured after the writer closed
    assert sqlite_snapshot(db).rows == 1
    # THEN the read-only probe created no -wal/-shm file
    assert sorted(p.name for p in tmp_path.iterdir()) == ["wal.db"]


# --------------------------------------------------------------------- lifecycle


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


def test_timed_method_accumulates_time_inside_async_method() -> None:
    # GIVEN a timer on an async method
    original = Session.__dict__["aclose"]
    with TimedMethod(Session, "aclose") as timer:
        # WHEN it sleeps 0.06 s
        asyncio.run(Session().aclose(0.06))
        # THEN at least ~0.05 s is taken, once
        first = timer.take()
        assert 0.05 <= first < 5
        assert timer.take() == 0.0
        assert timer.calls == 1 and timer.total == first
    assert Session.__dict__["aclose"] is original


# --------------------------------------------------------------------- containers


class Node:
    def __init__(self) -> None:
        self.b: dict[str, int] = {}


class Holder:
    __slots__ = ("items", "__weakref__")

    def __init__(self) -> None:
        self.items: deque[int] = deque()


class Root:
    def __init__(self) -> None:
        self.a = Node()
        self.sessions: dict[str, Node] = {}
        self.config = {"llm": {"model": "x"}, "tts": Holder()}
        self.label = "root"
        self.me = self  # a cycle


def test_container_lengths_tracks_growing_dict_by_stable_path() -> None:
    # GIVEN a root with a nested dict
    root = Root()
    first = container_lengths({"root": root})
    assert first["root.a.b"] == 0
    # WHEN keys are added
    root.a.b.update(x=1, y=2)
    second = container_lengths({"root": root})
    # THEN the same path shows the growth, and the set of paths is unchanged
    assert second["root.a.b"] == 2
    assert list(second) == list(first)
    # THEN fixed str keys and __slots__ are descended
    assert second["root.config['llm']"] == 1
    assert second["root.config['tts'].items"] == 0


def test_container_lengths_does_not_descend_variable_keys_unless_aggregated() -> None:
    # GIVEN sessions keyed by uuid-like ids, each holding a dict
    root = Root()
    for i in range(3):
        node = Node()
        node.b.update({str(j): j for j in range(i)})
        root.sessions[f"3f2a9c1e-0000-4000-8000-00000000000{i}"] = node
    # THEN by default only the outer dict is measured, under a stable path
    lengths = container_lengths({"root": root})
    assert lengths["root.sessions"] == 3
    assert not [p for p in lengths if p.startswith("root.sessions[")]
    # THEN aggregated, the inner dicts are summed under one [*] path
    census = container_census({"root": root}, aggregate_variable_keys=True)
    assert census.lengths["root.sessions[*].b"] == 0 + 1 + 2


def test_container_lengths_walks_module_globals() -> None:
    # GIVEN a module with a registry dict, a class-level cache, a function and an import
    module = types.ModuleType("fake_backend")
    exec(
        "import collections\n"
        "REGISTRY = {}\n"
        "class Cache:\n"
        "    entries = []\n"
        "def helper():\n"
        "    return 1\n",
        vars(module),
    )
    module.annotations = sys.modules["__future__"].annotations  # as `from __future__ import annotations`
    # WHEN entries are registered
    before = container_lengths({"mod": module})
    module.REGISTRY["a"] = 1
    module.Cache.entries.append(1)
    after = container_lengths({"mod": module})
    # THEN the module global and the class attribute are measured; imports, classes and functions are skipped
    assert before["mod.REGISTRY"] == 0 and after["mod.REGISTRY"] == 1
    assert after["mod.Cache.entries"] == 1
    assert not [p for p in after if p.startswith(("mod.collections", "mod.helper", "mod.annotations"))]


def test_container_lengths_bounded_and_keeps_nothing_alive() -> None:
    # GIVEN a root with a cycle and a measured dict
    root = Root()
    refs = [weakref.ref(root), weakref.ref(root.a), weakref.ref(root.config["tts"])]
    # WHEN it is walked, fully and with a tiny node budget
    full = container_census({"root": root})
    tiny = container_census({"root": root}, max_nodes=2)
    # THEN the cycle terminates, the budget is honoured
    assert not full.truncated and full.nodes < 50
    assert tiny.truncated and tiny.nodes == 2
    # THEN dropping the root frees everything the walk touched (the root is in a cycle: collect)
    del root, full, tiny
    gc.collect()
    assert [r() for r in refs] == [None, None, None]
    # THEN an acyclic root is freed by reference counting alone, right after a walk
    node = Node()
    node_ref = weakref.ref(node)
    container_lengths({"node": node})
    del node
    assert node_ref() is None


def test_probes_return_without_printing(capsys) -> None:
    # GIVEN every non-async probe
    process_snapshot(count_gc_objects=False)
    orphans_after(baseline())
    container_lengths({"sys": sys})
    # THEN nothing was printed
    assert capsys.readouterr() == ("", "")


def test_probe_modules_hold_no_mutable_module_state() -> None:
    # GIVEN every module of the package
    import leaklab.probes as probes

    modules = [m for name, m in sys.modules.items() if name.startswith("leaklab.probes.")]
    assert len(modules) >= 6
    # THEN no module global (dunders aside) is a mutable container
    mutable = (dict, list, set, bytearray, deque, weakref.WeakKeyDictionary, weakref.WeakValueDictionary, weakref.WeakSet)
    offenders = [
        f"{m.__name__}.{name}"
        for m in modules
        for name, value in vars(m).items()
        if not name.startswith("__") and isinstance(value, mutable)
    ]
    assert offenders == []
    assert sorted(probes.__all__) == sorted(set(probes.__all__))
