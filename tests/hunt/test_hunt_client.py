"""The hunt's client reaches every session it makes: ``hunt(client=...,
browser=...)`` and ``leaklab hunt --client browser --browser PATH``."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from leaklab.driver.browser import BrowserMissing
from leaklab.hunt import hunt_async
from tests.conftest import run_async
from tests.driver.browsers import needs_browser


def test_the_hunts_sessions_run_the_browser_it_names(tmp_path):
    # GIVEN a browser path where there is none
    missing = tmp_path / "no-such-browser"
    # WHEN a hunt is asked to open its tabs with it
    with pytest.raises(BrowserMissing, match="no browser at") as err:
        run_async(hunt_async("reference", sequences=["connect,close"], cycles=3, budget_s=60, runs_dir=False,
                             progress=False, client="browser", browser=missing))
    # THEN its screening session tried to start exactly that browser
    assert str(missing) in str(err.value)


@needs_browser
@pytest.mark.extended  # a browser per run: ~15 s; the plumbing is the test above's
@pytest.mark.timeout(240)
def test_hunt_client_browser_opens_a_page_per_tab_in_one_browser(tmp_path):
    # GIVEN the reference backend, one short sequence, three cycles, tabs opened by a real browser
    out = subprocess.run(
        [sys.executable, "-m", "leaklab.cli", "hunt", "--target", "reference", "--client", "browser",
         "--sequences", "connect,close", "--cycles", "3", "--budget", "200", "--json", "--runs-dir", str(tmp_path)],
        capture_output=True, text=True, timeout=230)
    # WHEN it ran
    assert out.returncode == 0, out.stderr[-2000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    # THEN the saved hunt says the browser opened the tabs: one per cycle, each its own context
    saved = json.loads((tmp_path / next(p.name for p in tmp_path.iterdir() if p.name.startswith("hunt-"))
                        / "hunt.json").read_text())
    for record in (result, saved):
        assert record["client"] == "browser"
        assert record["browser"]["tabs"] == 3 and record["browser"]["executable"]
    assert any("3 tabs, each in a context of its own" in n for n in result["notes"])
    (tried,) = result["tried"]
    assert tried["failed_cycles"] == 0 and tried["errors"] == [] and tried["leaks"] == []
