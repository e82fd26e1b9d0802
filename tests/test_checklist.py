"""The checklist, measured: verdicts for all faults, no faults, and the fix proof."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from leaklab.checklist import ITEMS, UnknownItemError, get_items, prove_fix_async, run_checklist_async
from tests.conftest import kill_children, run_async


def verdicts(result):
    return {o.id: o.verdict for o in result.outcomes}


def test_all_faults_every_item_confirmed_or_transient():
    # GIVEN the reference backend with C1-C9 on WHEN the checklist runs
    try:
        result = run_async(run_checklist_async("reference", faults="all", progress=False), allow_loop_errors=True)
    finally:
        kill_children()
    # THEN every cause is measured present, with an answer
    v = verdicts(result)
    assert set(v) == {f"C{i}" for i in range(1, 10)}
    assert all(x in ("confirmed", "transient") for x in v.values()), v
    assert all(o.evidence.get("answer") for o in result.outcomes)
    c8 = next(o for o in result.outcomes if o.id == "C8")
    # what holds the context, and where the task was created
    assert c8.evidence["root_kind"] == "pending_task"
    assert "_finish_heavy_init" in c8.evidence["held_by"][0]["label"]
    assert c8.evidence["held_by"][0]["where"].startswith("leaklab/backend/service_context.py:")
    assert c8.evidence["retained_bytes"] > 1_000_000  # the warmed agent state, 2 MB per context
    json.dumps(result.as_dict(), allow_nan=False)


def test_no_faults_every_item_ruled_out_or_not_applicable():
    result = run_async(run_checklist_async("reference", faults="none", progress=False))
    v = verdicts(result)
    assert all(x in ("ruled_out", "not_applicable") for x in v.values()), {
        o.id: (o.verdict, o.evidence.get("answer")) for o in result.outcomes}


def test_c1_not_applicable_without_proxy():
    result = run_async(run_checklist_async("reference", faults="C1", options={"enable_proxy": "false"},
                                           items="C1", progress=False))
    assert verdicts(result) == {"C1": "not_applicable"}
    assert "enable_proxy" in result.outcomes[0].evidence["answer"]


def test_proposed_fix_works_only_while_close_runs():
    # GIVEN the C8 experiment on six backends, an init that never ends
    outcomes = run_async(prove_fix_async("C8", options={"heavy_init_s": "inf"}), allow_loop_errors=True)
    v = {name: o.verdict for name, o in outcomes.items()}
    # THEN the proposed fix removes the leak, except where C9 keeps close() from running
    assert v == {
        "faulty (C8)": "confirmed", "proposed fix": "ruled_out", "full fix": "ruled_out",
        "faulty + C9": "confirmed", "proposed fix + C9": "confirmed", "full fix + C9": "ruled_out",
    }


def test_unknown_item_lists_valid_ids():
    with pytest.raises(UnknownItemError, match="valid: C1, C2"):
        get_items("C1,C10")
    assert [i.id for i in ITEMS] == [f"C{i}" for i in range(1, 10)]


def test_cli_checklist_json():
    out = subprocess.run([sys.executable, "-m", "leaklab.cli", "checklist", "--faults", "C9", "--items", "C9,C6",
                          "--json"], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    d = json.loads(out.stdout)
    assert {"items", "elapsed_s"} <= set(d)
    assert [(i["id"], i["verdict"]) for i in d["items"]] == [("C9", "confirmed"), ("C6", "ruled_out")]
    assert {"id", "title", "verdict", "evidence"} <= set(d["items"][0])
