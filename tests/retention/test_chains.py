"""find_chains / analyze_survivors / analyze_tracker: the chain, its labels and its root kind."""

from __future__ import annotations

import asyncio
import gc
import json
import sys
import threading
import types
import weakref

import objgraph
import pytest

from leaklab.probes import InstanceTracker, TaskCreationRecorder
from leaklab.retention import ROOT_KINDS, analyze_survivors, analyze_tracker, find_chains
from tests.conftest import run_async


class Worker:
    """Stands for a ServiceContext whose heavy init runs as an untracked task."""

    def __init__(self) -> None:
        self.payload = [1, 2, 3]

    async def _work(self) -> None:
        await asyncio.sleep(3600)


class Context:
    """Stands for a per-request context a framework keeps in a frame local."""


def _labels(chain) -> list[str]:
    return [e.label for e in chain.edges]


def _start_workers(n: int) -> tuple[list[asyncio.Task[None]], int]:
    """Untracked tasks holding ``self``; returns them and the create_task line."""
    line = sys._getframe().f_lineno + 1
    tasks = [asyncio.create_task(Worker()._work()) for _ in range(n)]
    return tasks, line


def _survivors(tasks: list[asyncio.Task[None]]) -> list[Worker]:
    return [t.get_coro().cr_frame.f_locals["self"] for t in tasks]


async def _cancel(tasks: list[asyncio.Task[None]]) -> None:
    for task in tasks:
        task.cancel()
    await asyncio.wait(tasks)


def test_pending_task_holding_self_names_task_coroutine_local_and_creation_site():
    async def main():
        # GIVEN an untracked pending task whose coroutine holds self, created
        # while a TaskCreationRecorder is installed
        recorder = TaskCreationRecorder().install()
        try:
            tasks, line = _start_workers(1)
            await asyncio.sleep(0)
            survivors = _survivors(tasks)
            # WHEN the survivor is explained
            [chain] = find_chains(survivors, creation_sites=recorder)
            del survivors
            await _cancel(tasks)
        finally:
            recorder.uninstall()
        return chain, line

    chain, line = run_async(main())
    # THEN the chain is Task -> coroutine frame local 'self' -> Worker
    assert chain.root_kind == "pending_task"
    assert [e.kind for e in chain.edges] == ["task", "coroutine_frame"]
    task_edge, local_edge = chain.edges
    assert "Worker._work" in task_edge.label and "pending" in task_edge.label
    assert "sleeping on a timer handle" in task_edge.label
    assert task_edge.where is not None and task_edge.where.endswith(f"test_chains.py:{line}")
    assert f"created at {task_edge.where}" in task_edge.label
    assert local_edge.label == "coroutine frame local 'self'"
    assert chain.target_type == "Worker"
    assert str(chain).endswith("coroutine frame local 'self' → Worker")


def test_pending_task_without_recorder_falls_back_to_the_coroutine_definition():
    async def main():
        # GIVEN the same shape and no recorder, no asyncio debug mode
        tasks, _ = _start_workers(1)
        await asyncio.sleep(0)
        survivors = _survivors(tasks)
        # WHEN the survivor is explained
        [chain] = find_chains(survivors)
        del survivors
        await _cancel(tasks)
        return chain

    chain = run_async(main())
    # THEN the task edge points at where the coroutine is defined
    line = Worker._work.__code__.co_firstlineno
    assert chain.edges[0].where.endswith(f"test_chains.py:{line}")
    assert "coroutine defined at" in chain.edges[0].label


def test_pending_task_in_asyncio_debug_mode_uses_the_source_traceback():
    async def main():
        # GIVEN asyncio debug mode (tasks keep a _source_traceback), no recorder
        asyncio.get_running_loop().slow_callback_duration = 60
        tasks, line = _start_workers(1)
        await asyncio.sleep(0)
        survivors = _survivors(tasks)
        # WHEN explained
        [chain] = find_chains(survivors)
        del survivors
        await _cancel(tasks)
        return chain, line

    chain, line = asyncio.run(main(), debug=True)
    # THEN the creation site is the create_task line of this file
    assert chain.edges[0].where.endswith(f"test_chains.py:{line}")
    assert "created at" in chain.edges[0].label


async def _worker_storing_its_exception(context: Context, registry: weakref.WeakKeyDictionary) -> None:
    me = asyncio.current_task()
    try:
        await asyncio.sleep(3600)
    except asyncio.CancelledError as exc:
        # What anyio-style task-state tables do: the exception (with its
        # traceback and frames) is stored under the task as a weak key.
        registry[me] = exc
        raise


async def _cancel_one(registry: weakref.WeakKeyDictionary) -> None:
    task = asyncio.create_task(_worker_storing_its_exception(Context(), registry))
    await asyncio.sleep(0)
    task.cancel()
    await asyncio.wait([task])


def _context_in(registry: weakref.WeakKeyDictionary) -> Context:
    [exc] = list(registry.values())
    tb = exc.__traceback__
    while "context" not in tb.tb_frame.f_locals:
        tb = tb.tb_next
    return tb.tb_frame.f_locals["context"]


def test_immortal_weak_key_entry_is_found_where_objgraph_finds_nothing():
    # GIVEN a cancelled task stored as a WeakKeyDictionary key whose value (its
    # CancelledError) refers back to the task through traceback -> frame
    # local 'me'; the frame also holds 'context'. The dictionary itself is
    # held only by this function's local (no module reaches it).
    registry: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
    asyncio.run(_cancel_one(registry))
    gc.collect()
    context = _context_in(registry)
    ref = weakref.ref(context)
    # WHEN objgraph looks for a chain to a module
    og = objgraph.find_backref_chain(context, objgraph.is_proper_module)
    # THEN it finds none (a chain of length 1, or not ending at a module)
    assert len(og) == 1 or not objgraph.is_proper_module(og[0])
    del og
    # WHEN leaklab explains the same object
    [chain] = find_chains([context])
    # THEN the root is the immortal weak-key entry, and the chain goes
    # through the stored exception's traceback frame to the local 'context'
    assert chain.root_kind == "immortal_weak_key"
    kinds = [e.kind for e in chain.edges]
    assert kinds[0] == "weak_key_entry"
    assert "Task _worker_storing_its_exception (cancelled)" in chain.edges[0].label
    assert "can never die" in chain.edges[0].label
    assert "CancelledError.__traceback__" in _labels(chain)
    assert "traceback .tb_frame" in _labels(chain)
    assert chain.edges[-1].kind == "frame_local"
    assert chain.edges[-1].label == "frame _worker_storing_its_exception local 'context'"
    # AND the entry really is what keeps it: clearing the dict frees it
    del context
    registry.clear()
    gc.collect()
    assert ref() is None


@pytest.fixture
def leaky_module():
    mod = types.ModuleType("leaklab_test_leaky_module")
    mod.sessions = {}
    sys.modules[mod.__name__] = mod
    yield mod
    del sys.modules[mod.__name__]
    mod.__dict__.clear()


def _grow(registry: dict, n: int) -> None:
    for i in range(n):
        registry[f"session-{i:04d}-7f3a9c2e-1b2c-4d5e-8f90-a1b2c3d4e5f6"] = Context()


def test_growing_module_level_dict_is_a_module_global_naming_the_key(leaky_module):
    # GIVEN a module-level dict that gains one Context per session
    _grow(leaky_module.sessions, 5)
    survivors = list(leaky_module.sessions.values())
    # WHEN the survivors are analysed
    report = analyze_survivors({"Context": survivors})
    del survivors
    # THEN one group: module global 'sessions' -> dict[key] -> Context
    [group] = report.groups
    assert group.count == 5 and group.root_kind == "module_global"
    first, second = group.chain.edges
    assert first.kind == "module_global"
    assert first.label == "module leaklab_test_leaky_module global 'sessions'"
    assert second.kind == "dict_key"
    assert "'session-0" in second.label and "-7f3a9c2e-" in second.label


def _install_callback(mod: types.ModuleType) -> None:
    session_context = Context()

    def on_message() -> Context:
        return session_context

    mod.callback = on_message


def test_closure_cell_names_function_and_free_variable(leaky_module):
    # GIVEN a module-level callback closing over a Context
    _install_callback(leaky_module)
    survivors = [leaky_module.callback.__closure__[0].cell_contents]
    # WHEN explained
    [chain] = find_chains(survivors)
    del survivors
    # THEN module global 'callback' -> closure cell of on_message / 'session_context'
    assert chain.root_kind == "module_global"
    assert [e.kind for e in chain.edges] == ["module_global", "closure_cell"]
    cell = chain.edges[1]
    assert "_install_callback.<locals>.on_message" in cell.label
    assert "'session_context'" in cell.label
    assert cell.where.endswith(f"test_chains.py:{_install_callback.__code__.co_firstlineno + 3}")


class Registry:
    instances: list[Context] = []


def test_class_attribute_root():
    # GIVEN a class-level list holding a Context
    Registry.instances.append(Context())
    try:
        survivors = list(Registry.instances)
        # WHEN explained
        [chain] = find_chains(survivors)
        del survivors
    finally:
        Registry.instances.clear()
    # THEN class attribute 'instances' -> list[0]
    assert chain.root_kind == "class_attribute"
    assert chain.edges[0].label.endswith("Registry attribute 'instances'")
    assert chain.edges[1].kind == "list_index" and chain.edges[1].label == "list[0]"


def test_twenty_instances_behind_twenty_similar_tasks_are_one_group():
    async def main():
        # GIVEN 20 workers each held by its own pending task
        tasks, _ = _start_workers(20)
        await asyncio.sleep(0)
        survivors = _survivors(tasks)
        # WHEN analysed
        report = analyze_survivors({"Worker": survivors})
        del survivors
        await _cancel(tasks)
        return report

    report = run_async(main())
    # THEN one reason, twenty instances
    [group] = report.groups
    assert group.type == "Worker" and group.count == 20 and group.root_kind == "pending_task"
    assert report.elapsed_s > 0


def test_thread_root():
    # GIVEN a live thread whose arguments hold a Context
    stop = threading.Event()
    thread = threading.Thread(target=lambda ctx: stop.wait(), args=(Context(),), name="keeper")
    thread.start()
    try:
        survivors = [thread._args[0]]
        # WHEN explained
        [chain] = find_chains(survivors)
        del survivors
    finally:
        stop.set()
        thread.join()
    # THEN the root is the thread, named
    assert chain.root_kind == "thread"
    assert chain.edges[0].kind == "thread" and "Thread 'keeper' (alive)._args" in chain.edges[0].label


def test_object_with_no_visible_holder_is_untracked():
    # GIVEN an object only this function's frame holds (frames running on a
    # thread's stack are not traversed by gc)
    lonely = Context()
    # WHEN explained
    [chain] = find_chains([lonely])
    # THEN the search says it ran out of visible holders
    assert chain.root_kind == "untracked"
    assert chain.edges[0].kind == "untracked" and "C-level or untracked holder" in chain.edges[0].label


def test_root_kinds_are_the_documented_ones():
    assert set(ROOT_KINDS) == {
        "pending_task", "running_frame", "module_global", "class_attribute",
        "thread", "notebook", "immortal_weak_key", "untracked", "depth_limit",
    }


def test_the_last_error_an_interactive_session_kept_is_the_sessions_not_the_backends(monkeypatch):
    class Held:
        pass

    held = Held()
    # what an interactive session keeps after a failed cell
    monkeypatch.setattr(sys, "last_value", RuntimeError("cell failed", held), raising=False)
    (chain,) = find_chains([held])
    del held
    assert chain.root_kind == "notebook"
    assert str(chain).startswith("held by this notebook: sys.last_value (the last error raised in the session)")


def _nest(mod: types.ModuleType, depth: int) -> None:
    inner = [Context()]
    for _ in range(depth):
        inner = [inner]
    mod.deep = inner


def test_a_chain_longer_than_max_depth_says_so(leaky_module):
    # GIVEN a Context ten lists below a module global
    _nest(leaky_module, 10)
    inner = leaky_module.deep
    while type(inner[0]) is list:
        inner = inner[0]
    survivors = [inner[0]]
    del inner
    # WHEN searched three levels deep only
    [chain] = find_chains(survivors, max_depth=3)
    # THEN the chain ends in a depth_limit edge, not a made-up root
    assert chain.root_kind == "depth_limit"
    assert chain.edges[0].kind == "depth_limit" and "3 levels" in chain.edges[0].label
    # AND with the default depth the module global is found
    [full] = find_chains(survivors)
    assert full.root_kind == "module_global" and len(full.edges) == 12


def test_different_reasons_make_different_groups(leaky_module):
    async def main():
        # GIVEN two Workers behind pending tasks and two in a module-level dict
        tasks, _ = _start_workers(2)
        leaky_module.sessions.update({f"w{i}": Worker() for i in range(2)})
        await asyncio.sleep(0)
        survivors = _survivors(tasks) + list(leaky_module.sessions.values())
        report = analyze_survivors({"Worker": survivors})
        del survivors
        await _cancel(tasks)
        return report

    report = run_async(main())
    # THEN two groups of two, one per reason
    assert sorted((g.root_kind, g.count) for g in report.groups) == [("module_global", 2), ("pending_task", 2)]


def test_a_local_of_the_calling_coroutine_is_a_running_frame():
    async def caller():
        # GIVEN a Context held only by this running coroutine's local
        held_here = Context()
        await asyncio.sleep(0)
        # WHEN explained from inside the coroutine
        [chain] = find_chains([held_here])
        return chain

    chain = run_async(caller())
    # THEN the root is the running coroutine, and the local is named
    assert chain.root_kind == "running_frame"
    assert chain.edges[-1].label.startswith("running coroutine")
    assert "local 'held_here'" in chain.edges[-1].label


def test_dict_keys_group_by_name_not_by_id(leaky_module):
    # GIVEN contexts under per-session keys, and one under a named key
    _grow(leaky_module.sessions, 4)
    leaky_module.sessions["default_context"] = Context()
    survivors = list(leaky_module.sessions.values())
    # WHEN analysed
    report = analyze_survivors({"Context": survivors}, sizes=False)
    del survivors
    # THEN the four session-<n>-<uuid> keys are one reason, 'default_context' another
    assert sorted(g.count for g in report.groups) == [1, 4]


class Warmed:
    """Stands for a ServiceContext whose heavy init holds a megabyte of state."""

    def __init__(self) -> None:
        self.state = bytearray(1 << 20)

    async def _init(self) -> None:
        await asyncio.sleep(3600)


def test_analyze_tracker_explains_the_trackers_survivors_and_lets_them_go():
    async def main():
        # GIVEN three tracked instances, each held by an untracked pending task
        recorder = TaskCreationRecorder().install()
        tracker = InstanceTracker({"Warmed": Warmed}).install()
        try:
            line = sys._getframe().f_lineno + 1
            tasks = [asyncio.create_task(Warmed()._init()) for _ in range(3)]
            await asyncio.sleep(0)
            # WHEN the tracker's survivors are analysed
            report = analyze_tracker(tracker, creation_sites=recorder, names=["Warmed"])
            await _cancel(tasks)
            del tasks
            gc.collect()
            left = tracker.counts()["Warmed"]
        finally:
            tracker.uninstall()
            recorder.uninstall()
        return report, line, left

    report, line, left = run_async(main())
    # THEN the three are one group held by the task, named where it was created
    (group,) = report.groups
    assert (group.type, group.count, group.root_kind) == ("Warmed", 3, "pending_task")
    task, local = group.chain.edges
    assert task.kind == "task" and "Warmed._init (pending" in task.label
    assert task.where.endswith(f"test_chains.py:{line}")
    assert local.label == "coroutine frame local 'self'"
    # what cutting the task frees: the state each holds
    assert group.retained_bytes >= 3 * (1 << 20)
    assert group.deep_bytes >= group.shallow_bytes > 0
    out = json.loads(json.dumps(report.as_dict()))
    assert set(out) == {"groups", "elapsed_s"}
    assert set(out["groups"][0]) == {"type", "count", "root_kind", "chain", "shallow_bytes", "deep_bytes",
                                     "retained_bytes", "signature", "root_owner", "library", "trigger"}
    # the test's own code holds the root (a task of this file): not a library's
    assert out["groups"][0]["root_owner"] == "yours" and out["groups"][0]["library"] is None
    assert set(out["groups"][0]["chain"][0]) == {"kind", "label", "where"}
    # and the analysis kept none of them alive once their task was gone
    assert left == 0
