"""The checklist run for real: honest on a target that declares nothing,
items in their own processes, the CLI. The rules themselves are unit-tested
on synthetic records (test_rules.py); the fix proved side by side is
notebook 04's (tests/test_notebooks.py); the 9x2 confusion matrix is a
benchmark (benchmarks/checklist_matrix.py)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from leaklab.checklist import ITEMS, UnknownItemError, get_items, run_checklist_async
from tests.conftest import kill_children, run_async


def verdicts(result):
    return {o.id: o.verdict for o in result.outcomes}


@pytest.mark.extended  # 16 s; the rule that a guessed role never rules out: test_rules.py
def test_import_path_with_every_fault_never_rules_out_what_it_cannot_measure():
    # GIVEN the reference backend with C1-C9 on, attached by import path: no
    # roles are declared (only the per-session type is guessed by name); each
    # item in its own process, three at a time (one item in this process:
    # notebook 03's run_experiment, tests/test_notebooks.py)
    try:
        result = run_async(run_checklist_async("leaklab.backend:create_app", faults="all", progress=False),
                           allow_loop_errors=True)
    finally:
        kill_children()
    v = verdicts(result)
    # THEN no item is ruled out: each is measured present, or says what it lacks
    assert "ruled_out" not in v.values(), v
    for o in result.outcomes:
        if o.verdict == "inconclusive":
            assert "role " in o.evidence["answer"] or "cannot tell" in o.evidence["answer"], o.evidence
    assert v["C8"] in ("confirmed", "transient")  # measured through the guessed session type
    assert v["C7"] == "inconclusive" and "roles.connections" in next(
        o for o in result.outcomes if o.id == "C7").evidence["answer"]
    # the proxy route exists but is not declared: cannot tell, not "not applicable"
    assert v["C1"] == "inconclusive" and "/proxy-ws" in next(o for o in result.outcomes if o.id == "C1").evidence["answer"]
    assert result.jobs == 3
    json.dumps(result.as_dict(), allow_nan=False)


def test_unknown_item_lists_valid_ids():
    with pytest.raises(UnknownItemError, match="valid: C1, C2"):
        get_items("C1,C10")
    assert [i.id for i in ITEMS] == [f"C{i}" for i in range(1, 10)]


@pytest.mark.extended  # the CLI's checklist in children, in the suite: test_olv_end_to_end.py
def test_cli_checklist_json_runs_items_in_their_own_processes():
    out = subprocess.run([sys.executable, "-m", "leaklab.cli", "checklist", "--faults", "C9", "--items", "C9,C6",
                          "--json"], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    d = json.loads(out.stdout)
    assert {"items", "elapsed_s", "jobs"} <= set(d) and d["jobs"] == 3
    assert [(i["id"], i["verdict"]) for i in d["items"]] == [("C9", "confirmed"), ("C6", "ruled_out")]
    assert "0 of 4" in d["items"][0]["evidence"]["answer"]
    assert "stayed flat" in d["items"][1]["evidence"]["answer"]
