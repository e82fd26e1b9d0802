"""A real hunt on the reference backend: found, minimised, confirmed on a
fresh backend, explained, mapped, saved, and replayable as printed. Marked
``extended`` (run by .ci/run after the suite): the suite's notebook 06 run
proves find, confirm, map and the report rows; the pure parts are
test_hunt_rules.py's."""

from __future__ import annotations

import json

import pytest

from leaklab.hunt import hunt_async
from leaklab.session import run_async as run_session
from tests.conftest import kill_children, run_async

pytestmark = pytest.mark.extended


def test_hunt_finds_minimises_and_maps_the_switch_leak_and_its_replay_leaks_the_same(tmp_path):
    # GIVEN C8 with an init that never ends, and three candidates: one that
    # leaks nothing, one that leaks with more steps than it needs
    async def go():
        found = await hunt_async("reference", faults="C8", options={"heavy_init_s": "inf"}, budget_s=240,
                                 sequences=["connect,close", "connect,switch,close"], runs_dir=tmp_path,
                                 progress=False)
        # and the printed sequence replayed as `leaklab run --scenario` takes it
        replay = await run_session("reference", found.findings[0].sequence if found.findings else "connect,close", 3,
                                   faults="C8", options={"heavy_init_s": "inf"}, runs_dir=False, progress=False,
                                   timeline_s=0.5)
        return found, replay

    try:
        result, replay = run_async(go(), allow_loop_errors=True)
    finally:
        kill_children()
    # THEN one finding: the switch, minimised to its two steps, confirmed a leak on a fresh backend
    assert [t["sequence"] for t in result.tried] == ["connect,close", "connect,switch,close"]
    assert result.tried[0]["leaks"] == []
    (finding,) = result.findings
    assert (finding.found_as, finding.sequence, finding.minimised) == ("connect,switch,close", "connect,switch", True)
    assert finding.metrics["type:ServiceContext"] == pytest.approx(1.0, abs=0.3)
    assert finding.confirmed == "leak" and finding.items == ["C8"], finding
    # explained on the confirming run: the init task, where it was created
    group = finding.chains[0]
    assert group["type"] == "ServiceContext" and group["root_kind"] == "pending_task"
    assert "_finish_heavy_init" in group["chain"][0]["label"]
    assert "leaklab/backend/service_context.py:" in group["chain"][0]["where"]
    # saved as JSON in the runs folder
    saved = json.loads(result.path.read_text())
    assert saved["findings"][0]["sequence"] == "connect,switch" and saved["findings"][0]["where"] == "C8"
    # the replay shows the same growth
    s = replay.summary()
    assert s["scenario"] == "connect,switch"
    assert s["types"]["ServiceContext"]["verdict"] == "leak", s["types"]
