"""Did the fix run? On the upstream-shaped app with C9 (``close()`` never
reached on disconnect) and the fork's untracked background init on every
switch: the checklist's proposed fix (the init task kept in a list in
``handle_config_switch``, cancelled by a loop in ``close()``) against the
original. The switch's hunk runs, ``close()``'s never does, and the answer
names C9; with ``handle_disconnect`` closing the context it pops as well,
every hunk runs."""

from __future__ import annotations

import shutil
import time

import pytest

from leaklab.cli.compare import format_comparison
from leaklab.compare import AgainstError, compare

PACKAGE = "open_llm_vtuber"
INIT_UNTRACKED = "                asyncio.create_task(self._finish_heavy_init(heavy))\n"
INIT_TRACKED = '''                task = asyncio.create_task(self._finish_heavy_init(heavy))  # the fix: kept
                self._init_tasks.append(task)
'''
CLOSE = '''        logger.info("Closing ServiceContext resources (%s)...", self.client_uid)
        await self._cancel_background_tasks()
'''
CLOSE_FIXED = CLOSE + '''        for task in self._init_tasks:  # the fix: the init tasks cancelled
            task.cancel()
        self._init_tasks.clear()
'''
FIELDS = "        self._background_tasks: set[asyncio.Task[None]] = set()\n"
FIELDS_FIXED = FIELDS + "        self._init_tasks: list[asyncio.Task[None]] = []\n"
DISCONNECT_FIX = '''        context: ServiceContext | None = None
        context = self.client_contexts.pop(client_uid, None)  # the fix: looked up as it is popped
'''


def no_mcp(app):
    conf = app / "conf.yaml"
    conf.write_text(conf.read_text().replace("use_mcpp: true", "use_mcpp: false"))
    return app


def proposed_fix(app):
    path = app / "src" / PACKAGE / "service_context.py"
    code = path.read_text()
    for old, new in ((INIT_UNTRACKED, INIT_TRACKED), (CLOSE, CLOSE_FIXED), (FIELDS, FIELDS_FIXED)):
        assert code.count(old) == 1, old
        code = code.replace(old, new)
    path.write_text(code)


def fix_disconnect(app):
    handler = app / "src" / PACKAGE / "websocket_handler.py"
    code = handler.read_text()
    start = code.index("        context: ServiceContext | None = None\n")
    end = code.index("        if fault_on(\"C7\"):", start)
    code = code[:start] + DISCONNECT_FIX + code[end:]
    handler.write_text(code.replace('        if fault_on("C9"):\n            context = self.client_contexts.get(client_uid)\n', ""))


@pytest.fixture
def fork(olv_app, monkeypatch):
    """The original with C9 on, a 3 s untracked init on every switch, MCP off."""
    monkeypatch.setenv("OLV_APP_FAULTS", "C9")
    monkeypatch.setenv("OLV_APP_HEAVY_INIT_S", "3")
    return no_mcp(olv_app)


def hunks_by_function(result, unit):
    return {h["function"]: h for h in result.coverage[unit]["hunks"]}


@pytest.mark.lowest_env  # the users' environment (Python 3.10) traces by compiling the changed file
@pytest.mark.timeout(600)
def test_the_proposed_fix_alone_never_runs_its_close_hunk_and_the_answer_names_c9(fork, tmp_path):
    # GIVEN the proposed fix alone: hunks in __init__, close() and handle_config_switch
    fixed = tmp_path / "fixed"
    shutil.copytree(fork, fixed)
    proposed_fix(fixed)
    # WHEN a switching scenario runs on both sides, 3 cycles
    started = time.monotonic()
    result = compare("olv", app_dir=fixed, against=fork, items=None, scenarios=["switch"], hunt=None,
                     runs_dir=tmp_path, cycles=3)
    elapsed = time.monotonic() - started
    # THEN the change is three hunks in service_context.py, each mapped to its function
    assert [(h.file, h.function) for h in result.change.hunks] == [
        (f"src/{PACKAGE}/service_context.py", "ServiceContext.__init__"),
        (f"src/{PACKAGE}/service_context.py", "ServiceContext.close"),
        (f"src/{PACKAGE}/service_context.py", "ServiceContext.handle_config_switch")]
    hunks = hunks_by_function(result, "switch")
    # the switch's hunk ran on every cycle, close()'s never: close() was called 0 times
    switch, close = hunks["ServiceContext.handle_config_switch"], hunks["ServiceContext.close"]
    assert (switch["status"], switch["ran"]) == ("ran", 3), switch
    assert (close["status"], close["entered"]) == ("never ran", 0), close
    assert "`close()` was called 0 times" in close["why"]
    assert "lifecycle:ServiceContext.close ran for 0 of 3" in close["why"] and "C9" in close["items"], close
    # and the rows of the unit say so first where the verdict alone would leave the user guessing
    rows = [r for r in result.rows if r.unit == "switch"]
    assert rows and all(r.coverage.startswith("your change: 3 hunks") for r in rows), rows
    close_row = next(r for r in rows if r.metric == "lifecycle:ServiceContext.close")
    assert close_row.change == "still leaks" and close_row.detail.startswith(
        "still leaks, and your change in `ServiceContext.close` never ran: `close()` was called 0 times"), close_row
    assert "that is C9" in close_row.detail
    # the CLI prints one line per hunk, the JSON has the same
    text = format_comparison(result)
    assert f"your change: src/{PACKAGE}/service_context.py:" in text
    assert "ServiceContext.close: never ran — `close()` was called 0 times" in text
    assert "ServiceContext.handle_config_switch: ran 3×, every cycle" in text
    saved = result.as_dict()
    assert saved["coverage"]["switch"]["never_ran"] == 1 and len(saved["change"]["hunks"]) == 3
    print(f"e2e proposed fix, switch x3 both sides: {elapsed:.1f} s")


@pytest.mark.timeout(300)
def test_no_python_change_runs_nothing_and_a_folder_that_is_not_the_app_fails_first(fork, tmp_path):
    # GIVEN a copy of the app with only its character files changed
    same = tmp_path / "same"
    shutil.copytree(fork, same)
    # WHEN compared, nothing runs: there is no code change
    started = time.monotonic()
    result = compare("olv", app_dir=same, against=fork, items="C8", scenarios=["switch"], hunt=None, runs_dir=False)
    assert time.monotonic() - started < 30
    assert result.rows == [] and not result.outcomes and not result.runs
    assert any(n.startswith("no code change between the sides") for n in result.notes), result.notes
    assert format_comparison(result).splitlines()[0].endswith(" s): nothing ran")
    # and a folder that is not a version of the app is refused before anything starts
    other = tmp_path / "other"
    (other / "pkg").mkdir(parents=True)
    (other / "pkg" / "main.py").write_text("x = 1\n")
    with pytest.raises(AgainstError, match="not a version of the app"):
        compare("olv", app_dir=same, against=other, items="C8", hunt=None, runs_dir=False)
    # and so is a revision that does not exist (the app is in no git repository)
    with pytest.raises(AgainstError, match="not a folder or a git revision"):
        compare("olv", app_dir=same, against="no-such-revision", items="C8", hunt=None, runs_dir=False)


@pytest.mark.extended
@pytest.mark.timeout(1200)
def test_c8_unchanged_by_the_proposed_fix_names_c9_and_the_full_fix_runs_every_hunk(fork, tmp_path):
    # GIVEN the proposed fix alone, and the proposed fix with handle_disconnect closing
    # the context it pops; the full one also adds a file the app never imports
    proposed, full = tmp_path / "proposed", tmp_path / "full"
    shutil.copytree(fork, proposed)
    proposed_fix(proposed)
    shutil.copytree(proposed, full)
    fix_disconnect(full)
    (full / "src" / PACKAGE / "unused_helper.py").write_text("def helper():\n    return 1\n")
    # WHEN the C8 and C9 experiments run on each against the original
    started = time.monotonic()
    alone = compare("olv", app_dir=proposed, against=fork, items="C8,C9", hunt=None, runs_dir=tmp_path, cycles=4)
    middle = time.monotonic()
    whole = compare("olv", app_dir=full, against=fork, items="C8,C9", hunt=None, runs_dir=tmp_path, cycles=4)
    print(f"e2e C8,C9 x4: proposed fix {middle - started:.0f} s, full fix {time.monotonic() - middle:.0f} s")
    # THEN the proposed fix leaves C8 as it was, and says first that its close() hunk never ran: C9
    rows = {r.unit: r for r in alone.rows}
    assert rows["C8"].change in ("unchanged", "still leaks"), rows["C8"]
    assert rows["C8"].detail.startswith(f"{rows['C8'].change}, and your change in `ServiceContext.close` never ran: "
                                        "`close()` was called 0 times"), rows["C8"]
    assert "C9" in rows["C8"].detail
    assert hunks_by_function(alone, "C8")["ServiceContext.handle_config_switch"]["status"] == "ran"
    # and the full fix: every hunk of service_context.py and websocket_handler.py ran, C8 and C9 fixed,
    # the leak coming back without the change; the file never imported is said so
    rows = {r.unit: r for r in whole.rows}
    assert (rows["C8"].change, rows["C9"].change) == ("fixed", "fixed"), (rows["C8"], rows["C9"])
    states = {unit: {(h["file"].rpartition("/")[2], h["function"]): h["status"] for h in whole.coverage[unit]["hunks"]}
              for unit in ("C8", "C9")}
    for unit in ("C8", "C9"):
        assert states[unit].pop(("unused_helper.py", "helper")) == "not imported during the run", states
    assert set(states["C8"].values()) == {"ran"}, states
    # (C9's experiment opens and closes tabs: no switch, so the switch's hunk did not run there)
    assert states["C9"].pop(("service_context.py", "ServiceContext.handle_config_switch")) == "never ran", states
    assert set(states["C9"].values()) == {"ran"}, states
    assert rows["C8"].detail.startswith("fixed, and the leak comes back without your change"), rows["C8"]
    text = format_comparison(whole)
    assert "unused_helper.py:1 helper: not imported during the run" in text, text
