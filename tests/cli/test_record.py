"""``leaklab record``: bad input stops before a browser or a backend starts,
with exit code 2 and what to do; the page's recording, written, replays."""

from __future__ import annotations

import json
import shutil
import sys

import pytest

from leaklab.cli import main
from leaklab.driver.scenarios import CycleState, get_scenario
from tests.conftest import reference_backend, run_async
from tests.driver.test_record import needs_browser


@pytest.mark.parametrize("args, message", [
    (["--target", "nope"], "unknown target 'nope'; valid: reference"),
    (["-o", "page.txt"], "-o page.txt: a scenario file's name ends .json, .yaml or .yml"),
    (["--script", "connect,fly"], "--script: unknown step 'fly'"),
    (["--wait-threshold", "0"], "--wait-threshold must be a positive number of seconds"),
])
def test_record_bad_input_exits_2_with_one_line(args, message, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["record", "--headless", *args]) == 2
    err = capsys.readouterr().err
    assert err.startswith("leaklab: error: ") and message in err and err.count("\n") == 1, err
    assert list(tmp_path.iterdir()) == []


def test_record_never_overwrites_a_file_unless_told(capsys, tmp_path):
    mine = tmp_path / "mine.json"
    mine.write_text("{}")
    assert main(["record", "--headless", "-o", str(mine)]) == 2
    assert "exists: name another file, or add --force" in capsys.readouterr().err
    assert mine.read_text() == "{}"


def test_record_without_a_browser_says_what_to_install(capsys, tmp_path, monkeypatch):
    # GIVEN a machine with no Chromium-family browser
    monkeypatch.setattr(shutil, "which", lambda name: None)
    monkeypatch.setattr(sys, "platform", "linux")
    # WHEN a recording is asked for THEN it stops, naming the package to install, and writes nothing
    assert main(["record", "--headless", "-o", str(tmp_path / "page.json")]) == 2
    err = capsys.readouterr().err
    assert "apt-get install chromium" in err and err.count("\n") == 1, err
    assert list(tmp_path.iterdir()) == []


@needs_browser
@pytest.mark.timeout(120)
def test_record_cli_writes_a_file_that_replays(capsys, tmp_path):
    # GIVEN the reference's page recorded by the command, headless: opened and closed
    out = tmp_path / "page.json"
    assert main(["record", "--headless", "--script", "connect,close", "--option", "heavy_init_s=0.05",
                 "-o", str(out)]) == 0
    text = capsys.readouterr().out
    assert "steps: connect, close" in text and f"written: {out}" in text
    assert "every frame the page sent is covered by a step word" in text
    scenario = get_scenario(str(out))
    page_sent = [e["frame"]["type"] for e in json.loads(out.read_text())["frames"]
                 if e["event"] == "sent"]

    # WHEN the file replays one cycle with the synthetic client
    async def main_():
        async with reference_backend(heavy_init_s=0.05) as (app, srv):
            state = CycleState(host=srv.host, port=srv.port, ws_path="/client-ws", proxy_path=None,
                               characters=("shizuku.yaml",), cycle=1, timeout_s=10)
            await scenario.run_cycle(state)
            return state

    state = run_async(main_())
    # THEN it sent what the page sent on open, step by step
    assert page_sent and state.sent == page_sent
    assert [r.step for r in state.step_log] == ["connect", "close"]


BAD = "format: leaklab-scenario\nsteps:\n  - connect\n  - fly\n"


@pytest.mark.parametrize("command", [
    ["run"], ["why"], ["checklist"], ["hunt"],
    ["compare", "--target", "tests.apps:leaks_contexts", "--against", "tests.apps:leaks_contexts", "--items", "none",
     "--hunt", "none"],
])
def test_every_command_reads_a_scenario_file_and_says_where_it_is_wrong(command, capsys, tmp_path):
    # GIVEN a scenario file with an unknown step on its line 4
    bad = tmp_path / "bad.yaml"
    bad.write_text(BAD)
    # WHEN a command is given it THEN it stops before running, naming the file and the line
    assert main([*command, "--scenario", str(bad)]) == 2
    err = capsys.readouterr().err
    assert f"{bad} line 4: unknown step 'fly'" in err and err.count("\n") == 1, err


@pytest.mark.extended  # ~3 s of hunting; the suite's proof that hunt reads the file is the test above
@pytest.mark.timeout(120)
def test_hunt_tries_a_scenario_file_besides_its_sequences(capsys, tmp_path):
    # GIVEN a recorded file (written here as record writes it): a tab opened and closed
    page = tmp_path / "page.json"
    page.write_text(json.dumps({"format": "leaklab-scenario", "version": 1, "steps": ["connect", "close"]}))
    # WHEN the hunt is given one sequence and the file
    assert main(["hunt", "--option", "heavy_init_s=0.05", "--sequences", "connect,close", "--scenario", str(page),
                 "--runs-dir", str(tmp_path / "runs"), "--json"]) == 0
    # THEN both were screened, the file as itself
    tried = json.loads(capsys.readouterr().out)["tried"]
    assert [t["sequence"] for t in tried] == ["connect,close", str(page)]
    assert all(t["failed_cycles"] == 0 for t in tried), tried
