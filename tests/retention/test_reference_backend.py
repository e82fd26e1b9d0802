"""Integration: the reference backend with C8 (heavy init as an untracked task)."""

from __future__ import annotations

import gc
import json

from leaklab.probes import TaskCreationRecorder
from leaklab.retention import analyze_tracker
from leaklab.session import LeakSession
from tests.conftest import run_async


def test_c8_survivors_are_explained_by_the_heavy_init_task():
    async def main():
        # GIVEN the reference backend with C8 and an init that never finishes
        session = LeakSession(
            "reference", faults="C8", options={"heavy_init_s": "inf"},
            runs_dir=False, progress=False, timeline_s=0, settle_s=0.1,
        )
        await session.start()
        recorder = TaskCreationRecorder().install()
        try:
            await session.run("switch-then-close", cycles=3)
            # gc.freeze() hides the start-up heap from gc.get_referrers.
            getattr(session, "thaw", gc.unfreeze)()
            gc.collect()
            # WHEN the survivors are analysed
            report = analyze_tracker(session._tracker, creation_sites=recorder, names=["ServiceContext"])
        finally:
            recorder.uninstall()
            await session.stop()
        return report

    report = run_async(main())
    # THEN the three closed sessions are one group held by the C8 task
    group = next(g for g in report.groups if g.root_kind == "pending_task")
    assert group.type == "ServiceContext" and group.count == 3
    task, local = group.chain.edges
    assert task.kind == "task" and "ServiceContext._finish_heavy_init (pending" in task.label
    assert task.where.startswith("leaklab/backend/service_context.py:")
    assert local.label == "coroutine frame local 'self'"
    # the heavy init's memory (2 MB per task by default) is what cutting the task frees
    assert group.retained_bytes >= 3 * 2 * 1024 * 1024
    assert group.deep_bytes >= group.shallow_bytes > 0
    out = json.loads(json.dumps(report.as_dict()))
    assert set(out) == {"groups", "elapsed_s"}
    assert set(out["groups"][0]) == {
        "type", "count", "root_kind", "chain", "shallow_bytes", "deep_bytes", "retained_bytes",
    }
    assert set(out["groups"][0]["chain"][0]) == {"kind", "label", "where"}
