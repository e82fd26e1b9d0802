"""The comparison's client reaches every unit's session, in each unit's own
process: ``compare(client=..., browser=...)`` and ``leaklab compare
--client browser --browser PATH``."""

from __future__ import annotations

import pytest

from leaklab.compare import compare
from leaklab.compare.checkouts import Side
from leaklab.compare.engine import unit_spec
from leaklab.driver.browser import BrowserMissing
from leaklab.metrics import Change
from tests.driver.browsers import needs_browser


def test_each_units_spec_carries_the_client_to_its_child():
    side = Side("after", {"target": "mypkg.app:create_app"}, source="mypkg.app:create_app")
    settings = {"client": "browser", "browser": "/usr/bin/chromium", "timeline_s": 0.5, "step_timeout_s": None}
    # a scenario's child: every setting given
    scenario = unit_spec(side, "scenario", "connect,close", None, settings)
    assert scenario["session"] == {"client": "browser", "browser": "/usr/bin/chromium", "timeline_s": 0.5}
    assert scenario["target"] == "mypkg.app:create_app" and scenario["cycles"] == 5
    # an experiment's child: the client too, its own timeline
    item = unit_spec(side, "item", "C9", 3, settings, trace={"app.py": {"lines": [3]}})
    assert item["session"] == {"client": "browser", "browser": "/usr/bin/chromium"}
    assert item["item"] == "C9" and item["trace"] == {"app.py": {"lines": [3]}}


def test_a_missing_browser_is_said_before_any_unit_runs(tmp_path):
    missing = tmp_path / "no-such-browser"
    with pytest.raises(BrowserMissing, match="no browser at"):
        compare("leaklab.backend:create_app", against="leaklab.backend.server:create_app", items=None,
                scenarios=["connect,close"], hunt=None, runs_dir=False, client="browser", browser=missing)
    with pytest.raises(ValueError, match="client must be 'synthetic' or 'browser'"):
        compare("leaklab.backend:create_app", against="leaklab.backend.server:create_app", items=None,
                scenarios=["connect,close"], hunt=None, runs_dir=False, client="firefox")


@needs_browser
@pytest.mark.extended  # a browser in each side's process: ~20 s; the plumbing is the tests above's
@pytest.mark.timeout(300)
def test_both_sides_open_their_tabs_in_a_browser(tmp_path):
    # GIVEN two versions of a backend (two import paths of the same code)
    # WHEN a scenario is compared with its tabs opened by a real browser
    result = compare("leaklab.backend:create_app", against="leaklab.backend.server:create_app", items=None,
                     scenarios=["connect,close"], hunt=None, cycles=3, runs_dir=False, trace_fix=False,
                     client="browser")
    # THEN each side's child ran its tabs in a browser, one per cycle, and nothing changed
    runs = result.runs["connect,close"]
    assert {side: (r.get("error"), r["client"], r["browser_tabs"]) for side, r in runs.items()} == {
        "before": (None, "browser", 3), "after": (None, "browser", 3)}
    assert [r.change for r in result.rows] == [Change.UNCHANGED]
    assert any(n.startswith("tabs opened by") for n in result.notes)
