"""The analysis keeps nothing alive and leaves no cyclic garbage behind."""

from __future__ import annotations

import asyncio
import gc
import sys
import types
import weakref

import pytest

from leaklab.probes import TaskCreationRecorder
from leaklab.retention import Chain, Edge, RetentionGroup, RetentionReport, analyze_survivors, find_chains, render_chain
from tests.conftest import run_async


class Session:
    def __init__(self) -> None:
        self.buffer = bytearray(1024)

    async def _heavy_init(self) -> None:
        await asyncio.sleep(3600)


def _leak(n: int) -> list[asyncio.Task[None]]:
    return [asyncio.create_task(Session()._heavy_init()) for _ in range(n)]


async def _cancel(tasks) -> None:
    # A helper: a loop variable left in the test's frame would hold the last
    # task, its CancelledError, the traceback's frame and so the survivor.
    for task in tasks:
        task.cancel()
    await asyncio.wait(tasks)


def _survivors(tasks):
    return [t.get_coro().cr_frame.f_locals["self"] for t in tasks]


_PLAIN = (str, int, float, bool, type(None), tuple, list, dict, Edge, Chain, RetentionGroup, RetentionReport)


def _only_plain_data(report: RetentionReport) -> bool:
    """Everything reachable from the report is plain data of our own types."""
    seen, todo = set(), [report]
    while todo:
        obj = todo.pop()
        if id(obj) in seen:
            continue
        seen.add(id(obj))
        if type(obj) not in _PLAIN:
            return False
        todo.extend(r for r in gc.get_referents(obj) if not isinstance(r, type))
    return True


def test_survivors_die_once_released_after_a_full_analysis():
    async def main():
        # GIVEN 5 sessions held by pending tasks, analysed with everything on
        recorder = TaskCreationRecorder().install()
        tasks = _leak(5)
        await asyncio.sleep(0)
        survivors = {"Session": _survivors(tasks)}
        refs = [weakref.ref(s) for s in survivors["Session"]]
        report = analyze_survivors(survivors, creation_sites=recorder)
        chains = find_chains(survivors["Session"], creation_sites=recorder)
        picture = render_chain(report.groups[0])
        html = report._repr_html_()
        del survivors
        # WHEN the leak's cause goes away (the tasks end)
        await _cancel(tasks)
        del tasks
        recorder.uninstall()
        gc.collect()
        # THEN every survivor is freed although the results are still held
        alive = sum(r() is not None for r in refs)
        return alive, report, chains, picture, html

    alive, report, chains, picture, html = run_async(main())
    assert alive == 0
    assert report.groups[0].count == 5 and len(chains) == 5
    assert _only_plain_data(report)


@pytest.fixture
def module():
    mod = types.ModuleType("leaklab_test_observer_module")
    sys.modules[mod.__name__] = mod
    yield mod
    del sys.modules[mod.__name__]
    mod.__dict__.clear()


class Context:
    pass


def _fill(mod):
    mod.registry = {f"k{i}": Context() for i in range(3)}
    mod.by_task = weakref.WeakKeyDictionary()


def test_count_falls_to_zero_when_the_module_global_lets_go(module):
    # GIVEN contexts in a module-level dict, analysed
    _fill(module)
    refs = [weakref.ref(c) for c in module.registry.values()]
    report = analyze_survivors({"Context": list(module.registry.values())})
    assert report.groups[0].root_kind == "module_global"
    # WHEN the dict is emptied
    module.registry.clear()
    gc.collect()
    # THEN the count is 0
    assert sum(r() is not None for r in refs) == 0


def test_analysis_creates_no_reference_cycles(module):
    # GIVEN a quiet heap with automatic collection off (objgraph's own test)
    _fill(module)
    survivors = {"Context": list(module.registry.values())}
    gc.collect()
    gc.disable()
    try:
        gc.collect()
        # WHEN the whole analysis runs, pictures included
        report = analyze_survivors(survivors)
        find_chains(survivors["Context"])
        render_chain(report.groups[0])
        report._repr_html_()
        # THEN a collection finds nothing the analysis left in cycles
        assert gc.collect() == 0
    finally:
        gc.enable()


def test_analysis_restores_automatic_collection():
    gc.enable()
    find_chains([Context()])
    assert gc.isenabled()
    gc.disable()
    try:
        find_chains([Context()])
        assert not gc.isenabled()
    finally:
        gc.enable()


async def _drops_its_local(go: asyncio.Event) -> None:
    session = Session()
    await go.wait()
    del session
    await asyncio.sleep(3600)


def test_naming_a_coroutine_local_does_not_pin_it_after_the_coroutine_drops_it():
    async def main():
        # GIVEN a pending task whose coroutine holds a Session in a local
        go = asyncio.Event()
        task = asyncio.create_task(_drops_its_local(go))
        await asyncio.sleep(0)
        survivors = [s for s in gc.get_objects() if type(s) is Session]
        ref = weakref.ref(survivors[0])
        # WHEN the chain is found (its label names the local, read via f_locals)
        [chain] = find_chains(survivors)
        del survivors
        # AND the coroutine then deletes the local while still pending
        go.set()
        await asyncio.sleep(0.01)
        gc.collect()
        alive = ref() is not None
        await _cancel([task])
        return chain, alive

    chain, alive = run_async(main())
    # THEN the label named it, and the f_locals snapshot did not keep it alive
    assert chain.edges[-1].label == "coroutine frame local 'session'"
    assert not alive
