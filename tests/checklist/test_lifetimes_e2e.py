"""C8 judged per object: a cycle stretched past the hold keeps the verdict
(the population count stays flat, each context still outlives its session)."""

from __future__ import annotations

import dataclasses

import pytest

from leaklab.checklist import get_items
from leaklab.checklist.engine import measure
from leaklab.checklist.rules import TRANSIENT, judge_record
from leaklab.session import LeakSession
from tests.conftest import run_async

# 16 s; the rule it rests on is proved on synthetic records (test_rules.py, test_lifetimes.py)
pytestmark = pytest.mark.extended


@pytest.mark.timeout(300)
def test_a_cycle_longer_than_the_hold_keeps_c8_transient():
    # GIVEN the reference with its untracked init task (C8) holding each
    # context 1.5 s after its switch, and C8's experiment with every cycle
    # stretched past that hold (a wait of 2 s after the close)
    item = get_items("C8")[0]
    stretched = dataclasses.replace(item, scenario=f"{item.scenario.replace('-then-', ',')},wait:2.0"
                                    if "," in item.scenario else "connect,switch,close,wait:2.0")
    seen = {}

    async def main():
        session = LeakSession("reference", faults="C8", options={"heavy_init_s": 1.5, "heavy_init_mb": 0.5},
                              settle_s=0.2, progress=False, runs_dir=False)
        await session.start()
        try:
            record = await measure(stretched, session, cycles=3)
        finally:
            await session.stop()
        return record

    # WHEN it runs and is judged
    record = run_async(main(), allow_loop_errors=True)
    verdict, ev = judge_record(record)
    seen.update(ev)
    # THEN no context is held at any census (the count is flat) ...
    ctx = record["runs"]["main"]["types"]["ServiceContext"]
    assert ctx["verdict"] in ("none", "normal"), ctx
    # ... and still every one outlived its session: transient, with the lifetimes and the task
    life = record["runs"]["main"]["lifetimes"]["ServiceContext"]
    assert life["outlived"] >= 3 and life["outlived_min_s"] >= 1.0, life
    assert verdict == TRANSIENT, ev["answer"]
    # and the task that ended as each was freed is named, with the line that created it
    assert "outlived their session by" in ev["answer"] and "_finish_heavy_init (service_context.py:" in ev["answer"]
