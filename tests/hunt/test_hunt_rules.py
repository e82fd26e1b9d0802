"""The hunt's pure parts: candidates, step lists, the leak signature, the
mapping to the checklist by roles (on made-up names: no backend's)."""

from __future__ import annotations

import pytest

from leaklab.driver.scenarios import get_scenario
from leaklab.hunt import candidates, checklist_rows, essential_steps, leak_signature
from leaklab.hunt.search import _map
from leaklab.targets.base import Roles


def test_candidates_short_first_multi_client_last_and_every_protocol_point():
    seqs = candidates(proxy=True, characters=2)
    # each parses as a step list, as `leaklab run --scenario` takes it
    for seq in seqs:
        assert get_scenario(seq).name == seq
    lengths = [len(s.split(",")) for s in seqs[:-4]]
    assert lengths == sorted(lengths)
    assert seqs[-4:] == ["connect,close,connect,abort", "connect,tab:2,connect,text,close,tab:1,close",
                         "connect,tab:2,connect,text-until-synth,abort,tab:1,abort", "half-open"]
    # an end at every protocol point, clean and abrupt
    for point in ("connect,close", "connect,abort", "connect,switch,close", "connect,text-until-audio,abort",
                  "connect,text-until-synth,close", "connect,text,close", "connect,switch,text-until-synth,close",
                  "proxy-connect,text-until-synth,close"):
        assert point in seqs, point
    assert not any("proxy" in s for s in candidates(proxy=False))
    assert not any("switch" in s for s in candidates(characters=0))


def test_leak_signature_counts_growth_not_design_or_noise():
    summary = {
        "types": {"Sess": {"verdict": "leak", "per_cycle": 1.0}, "Brain": {"verdict": "none", "per_cycle": 0.0}},
        "tasks": {"verdict": "leak", "per_cycle": 2.0,
                  "by_coroutine": {"Sess._warm": {"verdict": "leak", "per_cycle": 1.0}}},
        "resources": {"children": {"verdict": "leak", "per_cycle": 2.0}, "db_rows": {"verdict": "normal", "per_cycle": 4}},
        "containers": [{"path": "hub.registry", "verdict": "leak", "per_cycle": 1.0},
                       {"path": "hub.flat", "verdict": "none", "per_cycle": 0.0}],
        "other": {"rss_mb": {"verdict": "leak", "per_cycle": 3.0}, "threads": {"verdict": "leak", "per_cycle": 1.0}},
        "lifecycle": {"Sess.close": {"calls": 0, "expected": 3,
                                     "objects": {"created": 3, "closed": 0, "ran_for": 0, "of": 3}},
                      "Tool.aclose": {"calls": 3, "expected": 3}},
        "latency_ms": {"first": 10.0, "last": 30.0, "per_cycle": 7.0, "verdict": "slows"},
        "judged_cycles": 3,
    }
    sig = leak_signature(summary)
    # watched types first (a finding is minimised on its first metric)
    assert list(sig)[0] == "type:Sess"
    assert sig == {"type:Sess": 1.0, "children": 2.0, "task:Sess._warm": 1.0, "container:hub.registry": 1.0,
                   "lifecycle:Sess.close": 1.0, "threads": 1.0}


ROLES = Roles(session_type="Sess", agent_type="Brain", connections="hub.registry", shared_engines=("hub.ears",),
              session_close="Sess.close", mcp_client_type="Tool").as_dict()


def test_mapping_needs_the_signal_and_the_lifecycle_of_the_items_experiment():
    # a session pinned by a switch then a close: the switch-then-close experiment's lifecycle
    assert _map("connect,switch", {"type:Sess": 1.0}, ROLES)[0] == ["C8"]
    # pinned only when the tab leaves mid-reply after a switch: signals like C8's, not its experiment
    exact, similar = _map("connect,switch,text-until-synth,close", {"type:Sess": 1.0}, ROLES)
    assert exact == [] and "C8" in similar
    # a shared engine's state and a close that never runs, with nothing but open and close
    assert _map("connect,close", {"container:hub.ears.streams": 1.0}, ROLES)[0] == ["C6"]
    assert _map("connect", {"lifecycle:Sess.close": 1.0}, ROLES)[0] == ["C9"]
    # half-open clients kept in the registry
    assert _map("half-open", {"container:hub.registry": 1.0}, ROLES)[0] == ["C7"]
    # a metric no item's signal reads: not on the checklist, nothing similar
    assert _map("connect,text", {"container:hub.cache.entries": 1.0}, ROLES) == ([], [])


def test_essential_steps_ignore_how_a_tab_opens_and_ends():
    assert essential_steps("connect,switch,close") == essential_steps("connect,switch,abort") == {"switch"}
    assert essential_steps("connect,switch:natori.yaml,text-until-synth") == {"switch", "text-until-synth"}


def test_findings_no_item_covers_become_checklist_rows_with_an_honest_verdict():
    findings = [
        {"sequence": "connect,switch,close", "metrics": {"type:Sess": 1.0}, "confirmed": "leak", "items": ["C8"],
         "on_checklist": True},
        {"sequence": "connect,switch,text-until-synth,close", "metrics": {"type:Sess": 1.0}, "confirmed": "leak",
         "items": [], "similar": ["C8"], "on_checklist": False,
         "chains": [{"type": "Sess", "chain": [{"label": "task Sess._warm"}, {"label": "frame"}]}]},
        {"sequence": "connect,tab:2,connect,text,close", "metrics": {"container:hub.cache": 2.0},
         "confirmed": "not reproduced", "items": [], "on_checklist": False},
        {"sequence": "half-open", "metrics": {"container:hub.registry": 1.0}, "confirmed": "transient",
         "lifetime_s": 4.2, "items": [], "on_checklist": False},
    ]
    rows = checklist_rows(findings)
    # one row per finding no item covers, numbered; the covered one has its item's row already
    assert [r["id"] for r in rows] == ["H1", "H2", "H3"]
    assert [r["verdict"] for r in rows] == ["confirmed", "inconclusive", "transient"]
    first = rows[0]["evidence"]["answer"]
    assert "connect,switch,text-until-synth,close" in rows[0]["title"]
    assert "task Sess._warm → frame → Sess" in first and "signals like C8's" in first
    assert "leaklab run --scenario 'connect,switch,text-until-synth,close'" in first
    assert "after 4.2 s" in rows[2]["evidence"]["answer"]
    assert checklist_rows([]) == []


def test_a_saved_hunt_is_found_by_path_folder_or_as_the_targets_latest(tmp_path):
    import json
    import os

    from leaklab.hunt import load_findings

    for i, target in enumerate(("a", "b", "a")):
        folder = tmp_path / f"hunt-{i}"
        folder.mkdir()
        (folder / "hunt.json").write_text(json.dumps({"target": target, "findings": [{"sequence": f"s{i}"}]}))
        os.utime(folder / "hunt.json", (1000 + i, 1000 + i))
    assert load_findings("latest", runs_dir=tmp_path, target="a") == [{"sequence": "s2"}]
    assert load_findings("latest", runs_dir=tmp_path, target="b") == [{"sequence": "s1"}]
    assert load_findings("latest", runs_dir=tmp_path, target="c") == []
    assert load_findings(tmp_path / "hunt-0") == [{"sequence": "s0"}]
    assert load_findings(None) == []
    with pytest.raises(FileNotFoundError, match="no saved hunt at"):
        load_findings(tmp_path / "nowhere")
