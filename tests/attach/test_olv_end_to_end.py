"""Your backend, end to end: every command, notebook 05 and the report on the
upstream-shaped app, from the command line as a user runs them; the default
upstream config offline. Also run in the lowest supported environment
(Python 3.10, numpy<2, pandas<3, mcp 1.x)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from leaklab.report.browser import find_chromium, screenshot
from leaklab.report.build import build_report, external_assets
from leaklab.session import LeakSession
from leaklab.targets import AttachError
from tests.attach.conftest import OLV_APP, tree_digest
from tests.conftest import run_async, server_children

pytestmark = pytest.mark.lowest_env

ROOT = Path(__file__).resolve().parents[2]


def leaklab(*commands: list[str], cwd: Path, timeout: float = 300) -> list[subprocess.CompletedProcess]:
    """Run ``leaklab`` commands side by side, as a user in several shells; their results, in order."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    procs = [subprocess.Popen([sys.executable, "-m", "leaklab.cli", *args], cwd=cwd, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, env=env) for args in commands]
    try:
        return [_finish(p, timeout) for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.communicate()


def _finish(proc: subprocess.Popen, timeout: float) -> subprocess.CompletedProcess:
    out, err = proc.communicate(timeout=timeout)
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


@pytest.fixture
def app_copy(tmp_path):
    dst = tmp_path / "my-backend"
    shutil.copytree(OLV_APP, dst, ignore=shutil.ignore_patterns("__pycache__"))
    return dst


# Python 3.10 with mcp 1.x: an MCP server takes seconds to import (its
# jsonschema loads rfc3987-syntax, which builds a grammar), and this app
# starts two per connection: minutes, not seconds, for the three commands.
@pytest.mark.timeout(900)
@pytest.mark.extended  # also in the lowest environment (lowest_env); 40 s here
def test_run_why_and_checklist_on_your_backend_from_the_command_line(app_copy, tmp_path):
    # GIVEN a user's checkout, its tree recorded, and a working folder of their own
    before = tree_digest(app_copy)
    work = tmp_path / "work"
    work.mkdir()
    target = ["--target", "olv", "--app-dir", str(app_copy)]
    # WHEN they run, ask why and run a checklist item on it, in three shells
    # (C8, the planted leak, is the report's: test_report_and_notebook_05_on_your_backend)
    run, why, checklist = leaklab(
        ["run", *target, "--scenario", "switch-then-close", "--cycles", "3", "--json"],
        ["why", *target, "--cycles", "3", "--json"],
        ["checklist", *target, "--items", "C9", "--json"],
        cwd=work, timeout=600)
    # THEN each works and says what it measured there: the untracked warm-up
    # task holds each closed session's context and its agent
    assert run.returncode == 0, run.stderr
    s = json.loads(run.stdout)  # stdout is exactly one JSON object, with the documented keys
    assert {"types", "tasks", "resources", "lifecycle", "containers", "latency_ms", "orphans",
            "run_id", "target", "scenario", "faults", "cycles"} <= set(s)
    assert {"start", "end", "per_cycle", "verdict", "lifetime_s"} <= set(s["types"]["ServiceContext"])
    assert {"children", "fds", "rss_mb"} <= set(s["resources"]) and {"first", "last", "per_cycle"} <= set(s["latency_ms"])
    assert s["target"].startswith("olv:") and s["judged_cycles"] == 3 and s["errors"] == []
    assert (s["scenario"], s["cycles"]) == ("switch-then-close", 3)
    ctx = s["types"]["ServiceContext"]
    assert ctx["verdict"] == "leak" and 0.7 <= ctx["per_cycle"] <= 1.3, ctx
    assert s["types"]["BasicMemoryAgent"]["verdict"] == "leak"
    assert s["tasks"]["by_coroutine"]["ServiceContext._warm_up_agent"]["verdict"] == "leak"
    # close() and the message handler's cleanup ran for every session all the same
    close = s["lifecycle"]["ServiceContext.close"]
    assert (close["calls"], close["expected"], close["objects"]["ran_for"], close["objects"]["of"]) == (3, 3, 3, 3)
    assert s["lifecycle"]["MessageHandler.cleanup_client"] == {"calls": 3, "expected": 3}
    assert any(n.startswith("LLM: openai_compatible_llm at leaklab's fake") for n in s["target_notes"])
    assert any(n.startswith("MCP: the app starts clock") for n in s["target_notes"])
    assert s["orphans"] == {"children": 0, "threads": 0, "listening_ports": 0}
    # runs are saved in the current folder, not in the package
    assert (work / "leaklab-runs").is_dir() and Path(s["path"]).parent == work / "leaklab-runs"
    assert why.returncode == 0, why.stderr
    w = json.loads(why.stdout)
    assert {"groups", "elapsed_s"} <= set(w)
    chain = next(g for g in w["groups"] if g["type"] == "ServiceContext")
    assert {"type", "count", "root_kind", "chain", "deep_bytes", "retained_bytes"} <= set(chain)
    assert chain["count"] == 3 and chain["root_kind"] == "pending_task"
    assert chain["chain"][0]["kind"] == "task" and "_warm_up_agent" in chain["chain"][0]["label"]
    assert chain["chain"][-1]["label"] == "coroutine frame local 'self'", chain["chain"]
    # created in the app's own file
    assert "open_llm_vtuber/service_context.py:" in chain["chain"][0]["where"], chain["chain"][0]
    assert checklist.returncode == 0, checklist.stderr
    c = {i["id"]: i for i in json.loads(checklist.stdout)["items"]}
    assert list(c) == ["C9"]
    assert c["C9"]["verdict"] == "ruled_out" and "ran for 4 of 4" in c["C9"]["evidence"]["answer"]
    # and the user's files are what they were
    assert tree_digest(app_copy) == before
    assert server_children() == []


def test_default_upstream_config_runs_offline_and_says_what_it_changed(app_copy):
    # GIVEN the app with conf.yaml copied from upstream's conf.default.yaml, nothing else changed
    shutil.copyfile(app_copy / "config_templates" / "conf.default.yaml", app_copy / "conf.yaml")

    async def go():
        session = LeakSession("olv", app_dir=app_copy, runs_dir=False, progress=False, timeline_s=0.5)
        await session.start()
        try:
            return await session.run("chat", 3)
        finally:
            await session.stop()

    # WHEN a chat runs on it
    try:
        result = run_async(go(), allow_loop_errors=True)
    except AttachError as exc:  # allowed: a one-line error naming the key to change
        message = str(exc)
        assert "\n" not in message and "conf.yaml: character_config." in message, message
        return
    # THEN it ran offline, and the notes say what was changed to get there
    assert result.errors == []
    notes = "\n".join(result.target_notes)
    assert "LLM: openai_compatible_llm at leaklab's fake" in notes and "(conf.yaml: ollama_llm" in notes
    assert "TTS: openai_tts at the fake server" in notes and "(conf.yaml: edge_tts)" in notes
    assert "ASR: sherpa_onnx_asr could not be built (needs the module 'sherpa_onnx'" in notes
    assert "character_config.asr_config.asr_model" in notes
    if shutil.which("uvx") is None:
        assert "MCP is effectively off" in notes
    assert result.summary()["latency_ms"]["first"] is not None  # replies came back


@pytest.mark.timeout(900)
@pytest.mark.extended  # also in the lowest environment (lowest_env); 20 s here
def test_report_and_notebook_05_on_your_backend(app_copy, tmp_path):
    # GIVEN the report build aimed at the user's app (its MCP off: the report,
    # not MCP, is what this proves), small
    conf = app_copy / "conf.yaml"
    conf.write_text(conf.read_text().replace("use_mcpp: true", "use_mcpp: false"))
    out = tmp_path / "report"
    # (its checklist verdicts: test_run_why_and_checklist_on_your_backend_from_the_command_line;
    # a verdict table in the report: tests/report/test_build.py)
    build = build_report(out, target="olv", app_dir=app_copy, notebooks=["05_your_backend"],
                         params={"05_your_backend": {"cycles": 3}}, concurrency=1, timeout=600)
    # THEN both notebooks ran on it with only their parameters changed
    assert not build.failed, [(r.name, r.error) for r in build.failed]
    nb05 = next(r for r in build.runs if r.name == "05_your_backend")
    assert nb05.params["target"] == "olv" and nb05.params["app_dir"] == str(app_copy.resolve())
    page = build.path.read_text()
    # the report names the app, what the notebook found on it, and how leaklab ran it
    assert f"target olv ({app_copy.resolve()})" in page
    assert "ServiceContext" in page[page.index("id='05_your_backend'"):]
    assert "How leaklab ran this backend" in page and "leaklab&#x27;s fake OpenAI-compatible server" in page
    assert "04_prove_the_fix" not in page or "planted fault variants" in page
    assert external_assets(page) == []
    if find_chromium() is not None:
        png = screenshot(build.path, tmp_path / "report.png", width=1280, height=1600)
        from PIL import Image

        with Image.open(png) as im:
            colors = im.convert("RGB").getcolors(maxcolors=1 << 24)
        assert len(colors) > 50, "the rendered report is blank"
    assert server_children() == []


@pytest.mark.extended
@pytest.mark.timeout(900)
def test_the_reports_first_screen_on_your_backend(app_copy, tmp_path):
    import html

    from leaklab.report.build import table_data
    from leaklab.report.charts import CHART_MIME, chart_problems
    from leaklab.report.story import cost_text

    # GIVEN the upstream-shaped app, its planted C8 (a task that holds a
    # closed ServiceContext), WHEN the report runs the checklist on it
    build = build_report(tmp_path / "report", target="olv", app_dir=app_copy, notebooks=["03_checklist"],
                         params={"03_checklist": {"items": "C8,C9,C3"}}, concurrency=1, timeout=600)
    assert not build.failed, [(r.name, r.error) for r in build.failed]
    page = build.path.read_text()
    first = page[page.index("id='first-screen'"):page.index("id='verdicts'")]
    (checklist,) = [d for _, d in table_data(build.runs)["checklist"]]
    items = {i["id"]: i for i in checklist["items"]}
    # THEN the screen names the app and leads with its leak, in its own names
    assert f"on <b>olv ({app_copy.resolve()})</b>" in first
    assert items["C8"]["verdict"] in ("confirmed", "transient"), items["C8"]["evidence"]
    assert first.index("href='#item-C8'") < first.index("href='#item-C9'")
    assert html.escape(cost_text(items["C8"]["cost"])) in first and "ServiceContext" in first
    # every chart the checklist drew passes the chart checks
    charts = [o["data"][CHART_MIME] for run in build.runs for c in run.nb.cells if c.cell_type == "code"
              for o in c.get("outputs", []) if CHART_MIME in o.get("data", {})]
    assert charts and [p for m in charts for p in chart_problems(m)] == []
    assert server_children() == []


@pytest.mark.extended
def test_c5_is_measured_on_the_store_the_page_fills(app_copy, tmp_path):
    # GIVEN the upstream-shaped app, whose page asks for a new history on
    # every open and every switch (the page-faithful steps do the same)
    before = tree_digest(app_copy)
    work = tmp_path / "work"
    work.mkdir()
    # WHEN C5 runs on it
    (checklist,) = leaklab(["checklist", "--target", "olv", "--app-dir", str(app_copy), "--items", "C5", "--json"],
                           cwd=work, timeout=600)
    assert checklist.returncode == 0, checklist.stderr
    c5 = json.loads(checklist.stdout)["items"][0]
    # THEN it is measured on the real store, not left inconclusive: the store
    # grew by what the sessions created, and the answer gives the numbers
    assert c5["verdict"] in ("ruled_out", "confirmed"), c5
    answer = c5["evidence"]["answer"]
    grown = re.search(r"store (\d+) -> (\d+) entries", answer)
    assert grown and int(grown.group(2)) > int(grown.group(1)), answer
    assert tree_digest(app_copy) == before
