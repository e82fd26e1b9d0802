"""The report build on two tiny notebooks: executed in real kernels, one
offline page opening with its first screen, paged by the walkthrough,
failures reported, nothing left running."""

from __future__ import annotations

import re
import threading

import nbformat
import psutil
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from leaklab.report.browser import dump_dom, find_chromium
from leaklab.report.build import build_report, external_assets, notebook_pages, offline_page

GOOD = [
    new_markdown_cell("# A good notebook\n\nProse <b>kept</b>."),
    new_code_cell("cycles = 20\nfaults = 'C8'\nagainst = None", metadata={"tags": ["parameters"]}),
    new_code_cell("%matplotlib inline\nimport os, subprocess, sys\nfrom leaklab.checklist import Outcome\n"
                  "from leaklab.report import plots, tables\nfrom leaklab.retention import render_chain"),
    # a child process the notebook forgets, in its own session (as the MCP
    # SDK starts its servers), so the kernel's shutdown does not reach it
    new_code_cell("forgotten = subprocess.Popen(['sleep', '120'], start_new_session=True)\nprint('child', forgotten.pid)\n"
                  "print('runs dir', os.environ['LEAKLAB_RUNS_DIR'])\nprint('noise', file=sys.stderr)\n"
                  "import tempfile\nprint('tmp', tempfile.mkdtemp())"),
    new_code_cell("plots.counts_per_cycle([{'cycle': c, 'type:ServiceContext': c} for c in range(cycles)])"),
    new_code_cell("render_chain([{'kind': 'task', 'label': 'Task <coro> api_key=sk-abcdef123456', 'where': 'x.py:1'}])"),
    new_code_cell("tables.checklist([Outcome('C8', 'Untracked init', 'confirmed', {'answer': f'{cycles} cycles'})])",
                  metadata={"tags": ["verdict-table"]}),
    # an object the notebook displayed: IPython's output cache keeps it; and
    # one a cell's variable keeps; the chains say so, and blame no backend
    new_code_cell("class Survivor:\n    pass\nSurvivor()"),
    new_code_cell("kept = Survivor()"),
    new_code_cell("import gc\nfrom leaklab.retention import find_chains\n"
                  "held = [o for o in gc.get_objects() if type(o).__name__ == 'Survivor']\n"
                  "for chain in find_chains(held):\n    print('ROOT', chain.root_kind, '|', chain)\nheld.clear()"),
    # the kit's own displays of a run hold no session: the census after them
    # finds none of the run's contexts alive
    new_code_cell("from leaklab.session import LeakSession\n"
                  "session = await LeakSession('reference', faults='none', runs_dir=False, progress=False,\n"
                  "                            settle_s=0.05, timeline_s=0.3).start()\n"
                  "result = await session.run('open-close', 3)\n"
                  "display(tables.verdicts(result.summary()))\ndisplay(plots.overview(result))\n"
                  "display(tables.memory(result.summary()))\nsession.explain()"),
    new_code_cell("import gc\ngc.collect()\nlive = session.instances('ServiceContext')\n"
                  "print('LIVE CONTEXTS', len(live))\nlive.clear()\nawait session.stop()"),
    # a comparison's table (a report built --against opens with it)
    new_code_cell("import pandas as pd\npd.DataFrame([{'unit': 'C9', 'change': f'fixed against {against}'}])",
                  metadata={"tags": ["compare-table"]}),
    # a hunt saved in the runs folder, with one finding no item covers
    new_code_cell("import json, pathlib\nh = pathlib.Path(os.environ['LEAKLAB_RUNS_DIR']) / 'hunt-1'\n"
                  "h.mkdir(parents=True)\n(h / 'hunt.json').write_text(json.dumps({'target': 't', 'findings': ["
                  "{'sequence': 'connect,tab:2,connect,close', 'metrics': {'type:Sess': 1.0}, 'confirmed': 'leak',"
                  " 'items': [], 'on_checklist': False, 'where': 'not on the checklist'}]}))"),
]
BAD = [
    new_markdown_cell("# A failing notebook"),
    new_code_cell("cycles = 1", metadata={"tags": ["parameters"]}),
    new_code_cell("raise RuntimeError('step two broke')"),
    new_code_cell("print('never reached')"),
]


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    folder = tmp_path_factory.mktemp("notebooks")
    for name, cells in (("good", GOOD), ("bad", BAD)):
        nb = new_notebook(cells=cells, metadata={"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}})
        nbformat.write(nb, folder / f"{name}.ipynb")
    out = tmp_path_factory.mktemp("report")
    threads_before = {t.ident for t in threading.enumerate()}
    # WHEN both are built into a report, two kernels at a time
    build = build_report(out, notebooks=["good", "bad"], notebooks_dir=folder, cycles=4, concurrency=2,
                         timeout=120, env={"LEAKLAB_RUNS_DIR": str(out / "runs")}, params={"good": {"against": "HEAD"}})
    threads_after = [t.name for t in threading.enumerate() if t.ident not in threads_before and t.is_alive()]
    return build, threads_after


def text_of(run, cell_index):
    return "".join(o.get("text", "") for o in run.nb.cells[cell_index].outputs if o.output_type == "stream")


def test_parameters_are_injected_and_the_kernel_gets_the_environment(built):
    build, _ = built
    good = next(r for r in build.runs if r.name == "good")
    assert good.ok, good.error
    assert good.params == {"cycles": 4, "against": "HEAD"}
    out = text_of(good, 4)  # the injected cell shifted the rest by one
    assert "runs dir" in out and str(build.path.parent / "runs") in out


def test_a_process_the_notebook_left_is_ended_with_its_kernel(built):
    build, threads_after = built
    good = next(r for r in build.runs if r.name == "good")
    pid = int(re.search(r"child (\d+)", text_of(good, 4)).group(1))
    assert good.leftover_processes == 1
    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    assert threads_after == []


def test_the_kernels_temporary_files_are_removed_with_it(built):
    import os

    build, _ = built
    good = next(r for r in build.runs if r.name == "good")
    folder = re.search(r"tmp (\S+)", text_of(good, 4)).group(1)
    assert os.path.basename(os.path.dirname(folder)).startswith("leaklab-kernel-good-")
    assert not os.path.exists(os.path.dirname(folder))


def test_a_failing_notebook_is_reported_not_raised(built):
    build, _ = built
    bad = next(r for r in build.runs if r.name == "bad")
    assert bad.error == "RuntimeError: step two broke"
    assert [r.name for r in build.failed] == ["bad"]
    page = build.pages["bad"].read_text()
    assert "bad failed" in page and "step two broke" in page
    assert bad.nb.cells[-1].outputs == []  # execution stopped at the failing cell
    assert "bad failed" in build.path.read_text()


def test_what_the_notebook_itself_holds_is_labelled_held_by_the_notebook(built):
    build, _ = built
    good = next(r for r in build.runs if r.name == "good")
    cell = next(i for i, c in enumerate(good.nb.cells) if "find_chains(held)" in c.source)
    lines = sorted(line for line in text_of(good, cell).splitlines() if line.startswith("ROOT"))
    assert len(lines) == 2, lines
    assert all(line.startswith("ROOT notebook | held by this notebook: ") for line in lines), lines
    assert any("Out[" in line or "the output cache _" in line for line in lines), lines
    assert any("variable 'kept'" in line for line in lines), lines


def test_the_kits_own_displays_keep_no_session_alive(built):
    build, _ = built
    good = next(r for r in build.runs if r.name == "good")
    cell = next(i for i, c in enumerate(good.nb.cells) if "LIVE CONTEXTS" in c.source)
    # the default context only: the three sessions' contexts are gone after
    # the notebook displayed their verdicts, plots and chains
    assert "LIVE CONTEXTS 1" in text_of(good, cell), text_of(good, cell)


def test_report_is_one_offline_page_opening_with_the_verdict_table(built):
    build, _ = built
    page = build.path.read_text()
    # THEN no asset from the network; one script, inline: the walkthrough
    assert external_assets(page) == []
    assert page.lower().count("<script") == 1 and "<script>" in page
    # the first screen opens the page: what leaks (the checklist's C8 and the
    # hunt's H1), then a comparison's table, then the verdicts
    first = page[page.index("id='first-screen'"):page.index("id='before-after'")]
    assert "<b>2 of 2 causes leak</b>" in first and "4 cycles" in first
    assert "href='#item-C8'" in first and "connect,tab:2,connect,close" in first and "href='#06_hunt'" in first
    assert page.index("Before and after: your fix") < page.index("fixed against HEAD") < page.index("id='verdicts'")
    # the verdict table comes before the first notebook's section, with a row
    # for the hunt's finding no item covers, inside the same table
    verdicts = page[page.index("id='verdicts'"):]
    assert verdicts.index("Untracked init") < verdicts.index("id='good'")
    table = verdicts[verdicts.index("Untracked init"):]
    table = table[:table.index("</table>")]
    assert "<th>H1</th><td>not on the checklist: connect,tab:2,connect,close</td>" in table
    assert "1 confirmed" not in page and "2 confirmed" in page  # the summary line counts it
    assert "4 cycles" in page  # computed with the injected parameter
    # the pictures are inline: a PNG data URI (the plot) and an SVG (the chain)
    assert "data:image/png;base64," in page and "<svg" in page
    # the chain label is escaped and its key redacted; stderr noise dropped
    assert "Task &lt;coro&gt;" in page and "sk-abcdef123456" not in page
    assert "noise" not in page
    # prose stays, code is left to the per-notebook page
    assert "Prose <b>kept</b>" in page
    assert "forgotten" not in page and "forgotten" in build.pages["good"].read_text()


def test_the_notebooks_are_cut_into_pages_at_headings_and_item_cards():
    from leaklab.report.tables import Card

    nb = new_notebook(cells=[new_markdown_cell("# Title\n\nintro"), new_code_cell("x = 1"),
                             new_markdown_cell("## First part"), new_code_cell("y = 2")])
    # a card's output as the kernel shows it: its HTML, and its data (where a page starts)
    card = lambda i: {"output_type": "display_data", "metadata": {},  # noqa: E731
                      "data": Card(f"C{i} · cause", anchor=f"item-C{i}")._repr_mimebundle_()}
    loop = new_code_cell("for ...", outputs=[card(1), {"output_type": "stream", "name": "stdout", "text": "a"},
                                             card(2), {"output_type": "stream", "name": "stdout", "text": "b"}])
    nb.cells.append(loop)
    pages = notebook_pages(nb)
    assert [t for t, _ in pages] == ["Title", "First part", "C1 · cause", "C2 · cause"]
    assert [len(p.cells) for _, p in pages] == [2, 2, 1, 1]
    assert [o.get("text") for o in pages[3][1].cells[0].outputs][1:] == ["b"]


@pytest.mark.skipif(find_chromium() is None, reason="Chromium is not installed (apt-get install chromium)")
def test_the_walkthrough_pages_the_report_with_the_keyboard(built, tmp_path):
    build, _ = built
    page = build.path.read_text()
    pages = len(re.findall(r"""class=['"][^'"]*\bll-page\b""", page))
    # GIVEN the report opened at its 2nd page WHEN → is pressed twice and ← once
    keys = "".join(f"document.dispatchEvent(new KeyboardEvent('keydown', {{key: '{k}'}}));"
                   for k in ("ArrowRight", "ArrowRight", "ArrowLeft"))
    probe = tmp_path / "probe.html"
    probe.write_text(page.replace("</body>", f"<script>{keys}</script></body>"))
    dom = dump_dom(probe, fragment="page-2")
    # THEN it is in walkthrough mode at page 3 of all of them, one page shown
    assert re.search(r'<body class="ll-walk"', dom)
    assert f">3 / {pages} \u2014 " in dom
    assert len(re.findall(r'class="[^"]*\bll-current\b', dom)) == 1
    # and Esc leaves it
    probe.write_text(page.replace("</body>", "<script>document.dispatchEvent(new KeyboardEvent('keydown', "
                                              "{key: 'Escape'}));</script></body>"))
    assert 'class="ll-walk"' not in dump_dom(probe, fragment="page-2")


def test_external_assets_are_found():
    bad = offline_page("t", '<script src="https://cdn.example/require.js"></script>'
                            "<link href='//fonts.example/x.css'><img src=http://x/y.png>"
                            "<style>@import url(https://x/y.css); div { background: url('http://x/z.png') }</style>")
    # script, link, img, and in the style: the @import and both url()s
    assert len(external_assets(bad)) == 6
    ok = offline_page("t", '<a href="#verdicts">v</a><img src="data:image/png;base64,AAAA">'
                           '<svg xmlns="http://www.w3.org/2000/svg"></svg>')
    assert external_assets(ok) == []


SLOW_BUILD = """
import sys
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_notebook

from leaklab.report.build import build_report

folder = Path(sys.argv[1])
cells = [
    new_code_cell("cycles = 1", metadata={"tags": ["parameters"]}),
    new_code_cell("import subprocess, tempfile, time\\nchild = subprocess.Popen(['sleep', '120'], start_new_session=True)\\n"
                  "scratch = tempfile.mkdtemp()"),
    new_code_cell("time.sleep(120)"),
]
nb = new_notebook(cells=cells, metadata={"kernelspec": {"name": "python3", "display_name": "P", "language": "python"}})
nbformat.write(nb, folder / "slow.ipynb")
try:
    build_report(folder / "out", notebooks=["slow"], notebooks_dir=folder)
except KeyboardInterrupt:
    print("interrupted", flush=True)
    sys.exit(130)
"""


def test_ctrl_c_during_a_build_shuts_every_kernel_down(tmp_path):
    import os
    import signal
    import subprocess
    import sys
    import time

    # GIVEN a build whose notebook sleeps, having started a process of its own
    script = tmp_path / "build.py"
    script.write_text(SLOW_BUILD)
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    env = {**os.environ, "TMPDIR": str(scratch)}
    proc = subprocess.Popen([sys.executable, str(script), str(tmp_path)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    try:
        descendants: dict[int, float] = {}
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            kids = psutil.Process(proc.pid).children(recursive=True)
            if any("sleep" in " ".join(k.cmdline()) for k in kids if k.is_running()):
                descendants = {k.pid: k.create_time() for k in kids}
                break
            time.sleep(0.2)
        assert descendants, "the notebook never started its child"
        # WHEN Ctrl-C reaches the build
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    # THEN it stops at once, says so, and nothing it started is left
    assert proc.returncode == 130, err.decode()[-2000:]
    assert out.decode().strip() == "interrupted"
    assert "Traceback" not in err.decode() and "Exception ignored" not in err.decode()
    alive = [pid for pid, created in descendants.items()
             if psutil.pid_exists(pid) and psutil.Process(pid).create_time() == created
             and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE]
    assert alive == []
    assert list(scratch.iterdir()) == []  # the kernel's temporary folder went with it


def test_each_runs_own_fake_server_port_makes_one_setup_note(tmp_path):
    import json

    from leaklab.report.build import target_notes

    for i, port in enumerate((38441, 44237)):
        (tmp_path / f"run{i}").mkdir()
        (tmp_path / f"run{i}" / "meta.json").write_text(json.dumps({"target_notes": [
            f"LLM: openai_compatible_llm at leaklab's fake server http://127.0.0.1:{port}/v1", "MCP: clock"]}))
    assert target_notes(tmp_path) == ["LLM: openai_compatible_llm at leaklab's fake server http://127.0.0.1:PORT/v1",
                                      "MCP: clock"]
