"""The hunt's pure parts: candidates, step lists, the leak signature, the
mapping to the checklist by roles (on made-up names: no backend's)."""

from __future__ import annotations

import pytest

from leaklab.driver.scenarios import UnknownScenarioError, get_scenario
from leaklab.hunt import candidates, essential_steps, leak_signature
from leaklab.hunt.search import _map
from leaklab.targets.base import Roles


def test_candidates_short_first_multi_client_last_and_every_protocol_point():
    seqs = candidates(proxy=True, characters=2)
    # each parses as a step list, as `leaklab run --scenario` takes it
    for seq in seqs:
        assert get_scenario(seq).name == seq
    lengths = [len(s.split(",")) for s in seqs[:-2]]
    assert lengths == sorted(lengths)
    assert seqs[-2:] == ["connect,close,connect,abort", "half-open"]
    # an end at every protocol point, clean and abrupt
    for point in ("connect,close", "connect,abort", "connect,switch,close", "connect,text-until-audio,abort",
                  "connect,text-until-synth,close", "connect,text,close", "connect,switch,text-until-synth,close",
                  "proxy-connect,text-until-synth,close"):
        assert point in seqs, point
    assert not any("proxy" in s for s in candidates(proxy=False))
    assert not any("switch" in s for s in candidates(characters=0))


def test_step_lists_with_a_bad_step_are_clear_errors():
    with pytest.raises(UnknownScenarioError, match="unknown step 'jump'.*valid: connect"):
        get_scenario("connect,jump")
    with pytest.raises(UnknownScenarioError, match="needs an open tab: put 'connect' before it"):
        get_scenario("switch,close")
    with pytest.raises(UnknownScenarioError, match="wait needs seconds"):
        get_scenario("connect,wait:soon")


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
