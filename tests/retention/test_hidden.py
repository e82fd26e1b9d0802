"""Chains across references gc cannot see: a cancelled task's stored
CancelledError, rooted at anyio's per-task state (an immortal weak-key entry)."""

from __future__ import annotations

import asyncio
import gc
import sys
import weakref

import anyio
import objgraph
import pytest

from leaklab.probes import TaskCreationRecorder
from leaklab.retention import compare_with_objgraph, find_chains
from tests.conftest import run_async

pytestmark = pytest.mark.lowest_env  # what gc sees of a cancelled task differs on 3.10


class Session:
    """Stands for a ServiceContext."""


async def conversation(context: Session) -> None:
    # As an MCP client's exit stack entered in the conversation task and never
    # closed leaves it: a cancel scope entered, not exited.
    scope = anyio.CancelScope()
    scope.__enter__()
    await asyncio.sleep(3600)


def test_chain_crosses_the_cancelled_tasks_error_to_anyios_task_states():
    async def main():
        recorder = TaskCreationRecorder().install()
        try:
            # GIVEN a conversation task, cancelled, whose error keeps its frame
            line = sys._getframe().f_lineno + 1
            task = weakref.ref(asyncio.create_task(conversation(Session())))  # held by nothing of ours
            await asyncio.sleep(0)
            task().cancel()
            # (waited for, not awaited: awaiting a cancelled task hands its
            # stored error to the awaiting frame)
            await asyncio.wait([task()])
            states = anyio._backends._asyncio._task_states
            gc.collect()
            found = [o for o in gc.get_objects() if type(o) is Session]
            gone = weakref.ref(found[0])
            # objgraph, from the survivor back to a module: finds no chain
            seen_by_objgraph = objgraph.find_backref_chain(found[0], objgraph.is_proper_module, max_depth=30,
                                                           extra_ignore=(id(found), id(sys._getframe())))
            seen_by_objgraph = [type(o).__name__ for o in seen_by_objgraph]
            # WHEN its chain is searched
            (chain,) = find_chains(found, creation_sites=recorder)
            found.clear()
            # (the entry never dies by itself: drop it, then the session goes)
            states.pop(task(), None)
        finally:
            recorder.uninstall()
        gc.collect()
        return chain, line, seen_by_objgraph, gone

    chain, line, seen_by_objgraph, gone = run_async(main())
    # THEN it is rooted at the weak-key entry, named by its module global
    assert chain.root_kind == "immortal_weak_key", chain
    first = chain.edges[0]
    assert first.label.startswith("anyio._backends._asyncio._task_states[Task conversation (cancelled)]"), first
    # through the scope that points back at the task, the task (where it was
    # made) and the error gc cannot see, down to the frame's local
    labels = [e.label for e in chain.edges]
    assert "TaskState.cancel_scope" in labels and "CancelScope._host_task" in labels, labels
    (hop,) = [e for e in chain.edges if "keeps its CancelledError" in e.label]
    assert hop.kind == "task" and hop.label.startswith("done Task conversation (cancelled, created at "), hop
    assert hop.where.endswith(f"test_hidden.py:{line}") and "matched by" not in hop.label, hop
    assert labels[-1] == "frame conversation local 'context'", labels
    # objgraph stops at the survivor (its chain is the object alone)
    assert seen_by_objgraph == ["Session"], seen_by_objgraph
    # and the search kept nothing alive
    assert gone() is None


def test_an_error_no_task_holds_stays_untracked_and_says_what_was_tried():
    import ctypes

    def fail(context: Session) -> None:
        raise asyncio.CancelledError

    # GIVEN a CancelledError whose traceback keeps a session, held only by a
    # C-level reference (one gc cannot see, as a C extension's static would)
    try:
        fail(Session())
    except asyncio.CancelledError as exc:
        ctypes.pythonapi.Py_IncRef(ctypes.py_object(exc))
        error = weakref.ref(exc)
    gc.collect()
    found = [o for o in gc.get_objects() if type(o) is Session]
    try:
        # WHEN searched
        (chain,) = find_chains(found)
    finally:
        found.clear()
        ctypes.pythonapi.Py_DecRef(ctypes.py_object(error()))
    # THEN the branch ends at the error, untracked, saying what was tried
    assert chain.root_kind == "untracked", chain
    assert "not the stored error of a cancelled task" in chain.edges[0].label, chain.edges[0]
    assert "0 cancelled task(s) checked, none ran test_an_error" in chain.edges[0].label, chain.edges[0]
    gc.collect()
    assert error() is None


@pytest.mark.extended  # end to end, 5-10 s: run by .ci/run after the suite
def test_reference_backend_abrupt_chat_with_c3_pins_each_context_through_anyios_task_states():
    from leaklab.session import LeakSession
    from tests.conftest import kill_children

    async def main():
        # GIVEN the reference backend whose MCP sessions are entered inside
        # the conversation task and never closed (C3), and chats whose client
        # leaves before playback completes: each conversation task is cancelled
        session = await LeakSession("reference", faults="C3", runs_dir=False, progress=False, settle_s=0.1,
                                    timeline_s=0.5).start()
        try:
            result = await session.run("abrupt-chat", cycles=3)
            # WHEN the survivors are explained
            report = session.explain()
        finally:
            await session.stop()
        return result.summary(), report

    try:
        summary, report = run_async(main(), allow_loop_errors=True)
    finally:
        kill_children()
    # THEN each of the 3 contexts is one chain: anyio's per-task state, the
    # cancelled conversation task (where it was made) and its error, the
    # frame's local
    assert summary["survivors"]["alive"].get("ServiceContext") == 3, summary["survivors"]
    (group,) = [g for g in report.groups if g.type == "ServiceContext"]
    assert (group.count, group.root_kind) == (3, "immortal_weak_key"), group
    labels = [e.label for e in group.chain.edges]
    assert labels[0].startswith("anyio._backends._asyncio._task_states[Task process_single_conversation (cancelled)]")
    (hop,) = [e for e in group.chain.edges if "keeps its CancelledError" in e.label]
    assert "leaklab/backend/websocket_handler.py:" in hop.where, hop
    assert labels[-1] == "frame process_single_conversation local 'context'", labels
    # a library leak: anyio's code holds the root (its version named); what
    # the backend's own code did below it is the trigger
    assert group.chain.root_owner == "library" and group.chain.library.startswith("anyio "), group.chain
    assert group.chain.trigger.startswith("process_single_conversation (leaklab/backend/"), group.chain.trigger
    # and the survivors are reported by the run itself, whatever the slope
    assert summary["types"]["ServiceContext"]["verdict"] == "leak"


def test_objgraph_and_pympler_beside_our_chain_say_where_gc_stops():
    async def main():
        recorder = TaskCreationRecorder().install()
        try:
            # GIVEN the same cancelled conversation task pinning a session
            task = weakref.ref(asyncio.create_task(conversation(Session())))
            await asyncio.sleep(0)
            task().cancel()
            await asyncio.wait([task()])
            gc.collect()
            found = [o for o in gc.get_objects() if type(o) is Session]
            gone = weakref.ref(found[0])
            # WHEN objgraph, pympler and leaklab look at it side by side
            comparison = compare_with_objgraph(found.pop(), creation_sites=recorder)
            anyio._backends._asyncio._task_states.pop(task(), None)
        finally:
            recorder.uninstall()
        gc.collect()
        return comparison, gone

    comparison, gone = run_async(main())
    # THEN objgraph finds no chain, and the comparison says it stops at the error gc cannot see
    assert not comparison.objgraph_found and comparison.objgraph_hops == 1
    assert comparison.leaklab.root_kind == "immortal_weak_key"
    # (the error itself, or on 3.10 sometimes its traceback: gc shows neither's holder)
    assert comparison.where_it_stops.startswith(("gc shows no holder of the CancelledError: done Task conversation",
                                                 "gc shows no holder of the traceback: done Task conversation")), \
        comparison.where_it_stops
    # objgraph's own picture (its back-references) and pympler's tree, as text
    assert comparison.objgraph_dot.startswith("digraph ObjectGraph") and "Session" in comparison.objgraph_dot
    assert comparison.pympler_tree.splitlines()[0] == "Session"
    assert "frame" in comparison.pympler_tree and "traceback" in comparison.pympler_tree
    page = comparison._repr_html_()
    assert "objgraph finds no chain to a module" in page and "<svg" in page
    # and looking kept nothing alive
    assert gone() is None
