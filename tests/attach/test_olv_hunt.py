"""The hunt on the upstream-shaped app: the abrupt-chat pin through anyio's
task states, found, minimised, not on the checklist, and replayed from the
command line. Slow (the app starts its MCP servers on every connection):
marked ``extended``, run by .ci/run after the suite."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from leaklab.hunt import hunt_async
from tests.conftest import kill_children, run_async

pytestmark = pytest.mark.extended

ROOT = Path(__file__).resolve().parents[2]


def test_hunt_finds_the_abrupt_chat_pin_not_on_the_checklist_and_it_replays(olv_app, monkeypatch, tmp_path):
    # GIVEN the app with its MCP sessions entered in the conversation task
    # (its planted C3, as upstream enters them), and one candidate with more
    # steps than the pin needs
    monkeypatch.setenv("OLV_APP_FAULTS", "C3")
    try:
        result = run_async(hunt_async("olv", app_dir=olv_app, sequences=["connect,text-until-synth,close"],
                                      budget_s=600, runs_dir=tmp_path, progress=False), allow_loop_errors=True)
    finally:
        kill_children()
    # THEN the pin is found, minimised, confirmed on a fresh backend
    (finding,) = result.findings
    assert finding.sequence == "connect,text-until-synth" and finding.confirmed == "leak", finding
    assert finding.metrics.get("type:ServiceContext") == pytest.approx(1.0, abs=0.3), finding.metrics
    # not on the checklist: no item's experiment leaves mid-reply
    assert finding.items == [] and finding.where().startswith("not on the checklist"), finding.where()
    # explained through anyio's per-task state and the cancelled conversation task
    group = next(g for g in finding.chains if g["type"] == "ServiceContext")
    labels = [e["label"] for e in group["chain"]]
    assert group["root_kind"] == "immortal_weak_key"
    assert labels[0].startswith("anyio._backends._asyncio._task_states[Task process_single_conversation (cancelled)]")
    assert any("keeps its CancelledError" in label for label in labels), labels
    assert labels[-1] == "frame process_single_conversation local 'context'", labels
    # WHEN the printed sequence is replayed from the command line THEN it leaks the same
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OLV_APP_FAULTS": "C3"}
    out = subprocess.run([sys.executable, "-m", "leaklab.cli", "run", "--target", "olv", "--app-dir", str(olv_app),
                          "--scenario", finding.sequence, "--cycles", "3", "--timeline", "1", "--json",
                          "--runs-dir", str(tmp_path / "runs")],
                         capture_output=True, text=True, timeout=600, env=env, cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-2000:]
    s = json.loads(out.stdout)
    assert s["scenario"] == "connect,text-until-synth"
    assert s["types"]["ServiceContext"]["verdict"] == "leak", s["types"]
    assert s["survivors"]["alive"].get("ServiceContext") == 3, s["survivors"]
