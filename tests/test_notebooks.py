"""The seven notebooks: committed stripped and thin, each executed with small
parameters (through the report build, the one code path), and the report
they make: offline, verdict table first, pictures drawn."""

from __future__ import annotations

import re
import tempfile
import threading
import time
from pathlib import Path

import pytest

from leaklab.report.browser import dump_dom, find_chromium, screenshot
from leaklab.report.build import build_report, external_assets
from leaklab.report.charts import CHART_MIME, chart_problems
from leaklab.report.notebooks import (
    NOTEBOOKS,
    NOTEBOOKS_DIR,
    VERDICT_TABLE_TAG,
    definitions,
    parameter_names,
    parameters_cell_index,
    read_notebook,
    unstripped_cells,
)
from tests.conftest import server_children

# Small enough that all seven run in about a minute on two cores:
# the fewest cycles that still give verdicts (3 judged), and 05 attaches
# without chatting (its chat runs on your backend: test_olv_end_to_end.py).
SMALL = {
    "00_quickstart": {"cycles": 3},
    "01_reproduce_the_symptom": {"cycles": 3},
    "02_who_keeps_it_alive": {"cycles": 3},
    "03_checklist": {"items": "C8,C9"},
    # the example's claims: faulty, the proposed fix with and without close()
    # reached, the full fix without it (the other two rows add nothing)
    "04_prove_the_fix": {"cycles": 3, "variants": {
        "faulty (C8)": ["C8"], "proposed fix": ["C8-proposed"], "proposed fix + C9": ["C8-proposed", "C9"],
        "full fix + C9": ["C9"]}},
    "05_your_backend": {"cycles": 3, "scenario": "open-close"},
    "06_hunt": {"sequences": ["connect,switch"], "budget_s": 120},
}


def all_notebooks():
    return [(name, read_notebook(NOTEBOOKS_DIR / f"{name}.ipynb")) for name in NOTEBOOKS]


# -- the committed files ------------------------------------------------------


def test_the_seven_notebooks_exist_and_nothing_else():
    assert sorted(p.stem for p in NOTEBOOKS_DIR.glob("*.ipynb")) == list(NOTEBOOKS)


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_committed_without_outputs_or_execution_counts(name):
    nb = read_notebook(NOTEBOOKS_DIR / f"{name}.ipynb")
    assert unstripped_cells(nb) == [], f"{name}: python -m leaklab.report strip, then commit"


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_first_code_cell_is_tagged_parameters(name):
    nb = read_notebook(NOTEBOOKS_DIR / f"{name}.ipynb")
    first_code = next(i for i, c in enumerate(nb.cells) if c.cell_type == "code")
    assert parameters_cell_index(nb) == first_code
    # every notebook can be pointed at another target; the rest can be run small
    assert "target" in parameter_names(nb)
    assert {"cycles", "items"} & set(parameter_names(nb))


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebooks_define_no_functions_or_classes(name):
    nb = read_notebook(NOTEBOOKS_DIR / f"{name}.ipynb")
    found = [str(d) for d in definitions(nb)]
    assert found == [], f"{name}: move these into the leaklab package (with a test): {found}"


def test_the_checklist_notebook_tags_its_verdict_table():
    nb = read_notebook(NOTEBOOKS_DIR / "03_checklist.ipynb")
    tagged = [c for c in nb.cells if VERDICT_TABLE_TAG in c.metadata.get("tags", [])]
    assert len(tagged) == 1 and tagged[0].cell_type == "code"


def test_no_notebook_prints_a_raw_object_or_links_out():
    # Reprs go through leaklab's escaping tables and cards; and the report
    # must not link to the network.
    for name, nb in all_notebooks():
        for cell in nb.cells:
            assert "print(" not in cell.source and "repr(" not in cell.source, (name, cell.source)
            assert "http://" not in cell.source and "https://" not in cell.source, (name, cell.source)


# -- executed -------------------------------------------------------------------


def _jupyter_runtime_files() -> set[str]:
    from jupyter_core.paths import jupyter_runtime_dir

    folder = Path(jupyter_runtime_dir())
    return {p.name for p in folder.glob("kernel-*.json")} if folder.exists() else set()


@pytest.fixture(scope="module")
def small_report(tmp_path_factory):
    """All seven notebooks executed once with small parameters, as `leaklab report` does."""
    out = tmp_path_factory.mktemp("report")
    threads_before = {t.ident for t in threading.enumerate()}
    runtime_before = _jupyter_runtime_files()
    started = time.monotonic()
    # GIVEN the committed notebooks WHEN the report build executes them small
    # (all kernels at once)
    build = build_report(out, params=SMALL, concurrency=len(NOTEBOOKS), timeout=300,
                         env={"LEAKLAB_RUNS_DIR": str(out / "runs")})
    elapsed = time.monotonic() - started
    leftovers = {
        "children": [p.cmdline() for p in server_children()],
        "threads": [t.name for t in threading.enumerate() if t.ident not in threads_before and t.is_alive()],
        "connection_files": sorted(_jupyter_runtime_files() - runtime_before),
    }
    return build, leftovers, elapsed


def outputs(run, mime):
    return [o["data"][mime] for c in run.nb.cells if c.cell_type == "code"
            for o in c.get("outputs", []) if mime in o.get("data", {})]


def run_of(build, name):
    return next(r for r in build.runs if r.name == name)


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_every_notebook_executes_with_small_parameters(small_report, name):
    build, _, _ = small_report
    run = run_of(build, name)
    # THEN it ran to the end, every code cell, no error output
    assert run.ok, f"{name}: {run.error} (kernel log: {build.path.parent / 'logs' / (name + '.log')})"
    code = [c for c in run.nb.cells if c.cell_type == "code"]
    assert all(c.execution_count is not None for c in code)
    assert not [o for c in code for o in c.outputs if o.output_type == "error"]
    # with the small parameters injected
    assert all(k in run.params for k in SMALL[name])
    # and every picture it drew is a chart that says what it shows
    assert len(outputs(run, "image/png")) == len(outputs(run, CHART_MIME)), f"{name}: a figure without its data"


def test_every_chart_shows_what_changed_and_its_caption_is_true(small_report):
    build, _, _ = small_report
    charts = [(run.name, meta) for run in build.runs for meta in outputs(run, CHART_MIME)]
    # THEN no chart of a constant, none without a caption, no caption naming
    # a part the chart does not show growing
    problems = [f"{name}: {p}" for name, meta in charts for p in chart_problems(meta)]
    assert problems == []
    # and the deciding measurements are drawn: C8's trigger beside its control
    c8 = next(m for n, m in charts if n == "03_checklist" and m["title"].startswith("C8"))
    labels = [s["label"] for p in c8["panels"] for s in p["series"]]
    assert "switch-then-close (the trigger)" in labels and "open-close (the control, no trigger)" in labels
    assert len(charts) >= 6


def test_quickstart_shows_the_leak_and_its_chain(small_report):
    run = run_of(small_report[0], "00_quickstart")
    table = "".join(outputs(run, "text/html")[0])
    assert "type:ServiceContext" in table and "leak" in table
    pictures = "".join("".join(svg) for svg in outputs(run, "image/svg+xml"))
    assert "one root keeps" in pictures and "× ServiceContext" in pictures and "_finish_heavy_init" in pictures


def test_who_keeps_it_alive_names_the_task_and_the_allocating_line(small_report):
    run = run_of(small_report[0], "02_who_keeps_it_alive")
    html = "".join("".join(h) for h in outputs(run, "text/html"))
    assert "pending_task" in html and "ServiceContext._finish_heavy_init" in html
    assert "leaklab/backend/service_context.py:" in html  # tracemalloc allocation site
    assert len(outputs(run, "image/svg+xml")) >= 1
    # objgraph and pympler beside the chain: what objgraph found, leaklab's root, both pictures
    assert "objgraph finds" in html and "leaklab: root <code>pending_task</code>" in html
    assert "pympler refbrowser" in html and html.count("<svg") >= 2
    # and objgraph's growth table
    assert ">increase<" in html


def table_rows(html_table):
    """The rows of a rendered table, each a list of its cells' text (header row first)."""
    return [[re.sub(r"<[^>]+>", "", cell).strip() for cell in re.findall(r"<t[dh][^>]*>(.*?)</t[dh]>", row, re.S)]
            for row in re.findall(r"<tr>(.*?)</tr>", html_table, re.S)]


def test_checklist_notebook_verdicts_for_the_chosen_items(small_report):
    run = run_of(small_report[0], "03_checklist")
    cell = next(c for c in run.nb.cells if VERDICT_TABLE_TAG in c.metadata.get("tags", []))
    table = "".join(cell.outputs[0]["data"]["text/html"])
    rows = {r[0]: r for r in table_rows(table)[1:]}
    assert list(rows) == ["C8", "C9"]
    # faults="all", the init of 2 s: C8 retains, then releases, and says how long and by what
    _, _, c8_verdict, c8_answer = rows["C8"]
    assert c8_verdict == "transient", rows["C8"]
    assert "released after" in c8_answer and "ServiceContext._finish_heavy_init" in c8_answer
    # close() never runs (C9) is counted, not guessed
    assert rows["C9"][2] == "confirmed" and "close() ran for 0 of" in rows["C9"][3], rows["C9"]


def test_prove_the_fix_holds_only_while_close_runs(small_report):
    # GIVEN the C8 experiment, an init that never ends, on four of the six backends
    run = run_of(small_report[0], "04_prove_the_fix")
    table = "".join(outputs(run, "text/html")[0])
    rows = {r[0]: r for r in table_rows(table)[1:]}
    # THEN the proposed fix removes the leak, except where C9 keeps close() from
    # running; the full fix does not depend on close()
    assert {name: r[1] for name, r in rows.items()} == {
        "faulty (C8)": "confirmed", "proposed fix": "ruled_out", "proposed fix + C9": "confirmed",
        "full fix + C9": "ruled_out"}, rows
    # and the faulty backend's answer names the task, where it was made, what it keeps, and the control
    faulty = rows["faulty (C8)"][2]
    assert faulty.startswith("+1.0 ServiceContext per switch-then-close, never released"), faulty
    assert "held by Task ServiceContext._finish_heavy_init" in faulty and "leaklab/backend/service_context.py:" in faulty
    kib = int(re.search(r"(\d+) KiB retained by 3", faulty).group(1))
    assert kib >= 3 * 2 * 1024  # the warmed agent state, 2 MB per context
    assert "the control run without a switch keeps none" in faulty


def test_your_backend_attaches_by_import_path(small_report):
    run = run_of(small_report[0], "05_your_backend")
    assert run.params["cycles"] == 3
    watched = "".join(outputs(run, "text/plain")[0])
    assert "ServiceContext" in watched and "BasicMemoryAgent" in watched


def test_hunt_finds_the_switch_leak_and_maps_it(small_report):
    run = run_of(small_report[0], "06_hunt")
    html = "".join("".join(h) for h in outputs(run, "text/html"))
    rows = {r[0]: r for r in table_rows(html) if r and r[0].startswith(("connect", "proxy", "half-open"))}
    # the switch is C8's, confirmed on a fresh backend (the hunt's search itself: tests/hunt/)
    assert list(rows) == ["connect,switch"], rows
    assert rows["connect,switch"][2] == "leak" and rows["connect,switch"][3] == "C8", rows
    pictures = "".join("".join(svg) for svg in outputs(run, "image/svg+xml"))
    assert "_finish_heavy_init" in pictures
    # and the report lists it under the checklist's verdicts
    page = small_report[0].path.read_text()
    verdicts = page[page.index("Verdicts: the checklist"):page.index("id='00_quickstart'")]
    assert "Found by the hunt" in verdicts and "<code>connect,switch</code>" in verdicts


def test_executing_left_no_kernel_process_thread_or_connection_file(small_report):
    build, leftovers, elapsed = small_report
    assert leftovers == {"children": [], "threads": [], "connection_files": []}
    print(f"{len(NOTEBOOKS)} notebooks executed in {elapsed:.0f} s; processes ended after their kernel: "
          f"{ {r.name: r.leftover_processes for r in build.runs} }")


# -- the report -------------------------------------------------------------------


def test_report_is_one_offline_file_with_the_first_screen_first(small_report):
    build, _, _ = small_report
    page = build.path.read_text()
    assert external_assets(page) == [] and page.lower().count("<script") == 1
    assert page.index("id='first-screen'") < page.index("Verdicts: the checklist") < page.index("id='00_quickstart'")
    assert page.index(">C8<") < page.index("id='00_quickstart'")
    assert page.count("data:image/png;base64,") >= 6 and "<svg" in page
    for name in build.pages:
        assert external_assets(build.pages[name].read_text()) == []
    assert sorted(p.name for p in build.path.parent.glob("*.html")) == sorted(
        ["report.html"] + [f"{n}.html" for n in NOTEBOOKS])


def _pixels(png: Path, color: str, *, below: int = 0, above: int | None = None) -> int:
    """How many pixels of exactly ``color`` (``#rrggbb``) between two rows."""
    from PIL import Image

    rgb = tuple(int(color[i:i + 2], 16) for i in (1, 3, 5))
    with Image.open(png) as im:
        im = im.convert("RGB")
        band = im.crop((0, below, im.width, above or im.height))
        return sum(n for n, c in band.getcolors(maxcolors=1 << 24) if c == rgb)


@pytest.mark.skipif(find_chromium() is None, reason="Chromium is not installed (apt-get install chromium); "
                                                       "the report's rendering is not checked")
def test_report_rendered_in_chromium_shows_the_table_and_the_pictures(small_report, tmp_path):
    from leaklab.report.tables import VERDICT_COLORS

    build, _, _ = small_report
    profiles_before = set(Path(tempfile.gettempdir()).glob("leaklab-chromium-*"))
    # WHEN a browser renders the report, offline, as a person would see it
    top = screenshot(build.path, tmp_path / "top.png", width=1400, height=900)
    tall = screenshot(build.path, tmp_path / "tall.png", width=1280, height=6000)
    # THEN the first screen is drawn at the top, its verdicts coloured
    coloured = _pixels(top, VERDICT_COLORS["confirmed"]) + _pixels(top, VERDICT_COLORS["transient"])
    assert coloured > 500, "no coloured verdict cell in the first 900 px"
    # and fits a laptop screen: the section ends above 900 px
    probe = tmp_path / "probe.html"
    probe.write_text(build.path.read_text().replace("</body>", (
        "<script>document.body.setAttribute('data-bottom', "
        "Math.round(document.getElementById('first-screen').getBoundingClientRect().bottom));</script></body>")))
    bottom = int(re.search(r'data-bottom="(\d+)"', dump_dom(probe, width=1400, height=900)).group(1))
    assert bottom <= 900, f"the first screen ends at {bottom} px"
    # the charts (matplotlib's first line colour) and a retention picture (its survivor box) further down
    assert _pixels(tall, "#1f77b4") > 100, "no chart"
    assert _pixels(tall, "#fde2e2") > 2000, "no retention picture"
    assert set(Path(tempfile.gettempdir()).glob("leaklab-chromium-*")) == profiles_before
    assert server_children() == []


def test_the_first_screen_is_the_runs_own_data(small_report):
    import html

    from leaklab.report.build import table_data
    from leaklab.report.story import cost_text, held_by

    build = small_report[0]
    page = build.path.read_text()
    first = page[page.index("id='first-screen'"):page.index("id='verdicts'")]
    table = first[first.index("class='ll-rank'"):]
    data = table_data(build.runs)
    (items,) = [d["items"] for _, d in data["checklist"]]
    # THEN each checklist outcome's row shows its own verdict, cost, answer and chain
    for item in items:
        row = table[table.index(f"<a href='#item-{item['id']}'>"):]
        row = row[:row.index("</tr>")]
        assert f">{item['verdict'].replace('_', ' ')}<" in row, row
        assert html.escape(cost_text(item["cost"]) or "—") in row, (item["cost"], row)
        assert html.escape(item["evidence"]["answer"], quote=True) in row
        assert html.escape(held_by(item), quote=True) in row
    c8 = next(i for i in items if i["id"] == "C8")
    # C8's cost is the bytes its survivors retained, over the sessions run
    assert c8["cost"]["retained_bytes"] > 1024 * 1024, c8["cost"]
    # and the fix's variants, as measured in 04
    (fix,) = [d for _, d in data["fix"]]
    for name, variant in fix["variants"].items():
        assert html.escape(name) in first and html.escape(variant["verdict"]) in first
