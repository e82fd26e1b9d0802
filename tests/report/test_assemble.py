"""The report's body assembled from synthetic executed notebooks: what it
says comes from the structured outputs (the data MIME type, tags), never
from reading the notebooks' HTML."""

from __future__ import annotations

import json

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell

from leaklab.report.assemble import combined_body, notebook_body, notebook_pages, table_data
from leaklab.report.execute import NotebookRun
from leaklab.report.notebooks import FIRST_SCREEN_TAG, INJECTED_TAG, VERDICT_TABLE_TAG
from leaklab.report.style import VERDICT_COLORS
from leaklab.report.tables import DATA_MIME


def shown(data, html, output_type="display_data"):
    out = {"output_type": output_type, "metadata": {}, "data": {"text/html": html, "text/plain": "-", DATA_MIME: data}}
    if output_type == "execute_result":
        out["execution_count"] = 1
    return out


def card(id_, anchor=True):
    # the HTML says nothing of a card: only its data marks where a page starts
    return shown({"kind": "card", "title": f"{id_} · cause {id_}", "anchor": f"item-{id_}" if anchor else ""},
                 f"<div>card {id_}</div>")


def outcome(id_, verdict, **cost):
    return {"id": id_, "title": f"cause {id_}", "verdict": verdict, "cost": cost, "scenario": "open-close",
            "evidence": {"answer": f"answer of {id_}"}, "headline": ""}


ITEMS = [outcome("C1", "ruled_out"), outcome("C8", "confirmed", retained_bytes=4096.0), outcome("C9", "transient")]
#: the verdict table as rendered: no verdict word in it, so only the data can count them
TABLE = "<table class='t'><thead><tr><th>id</th></tr></thead><tbody><tr><td>row</td></tr></tbody></table>"


def new_notebook(cells):
    # as read from a file: nodes all the way down
    return nbformat.from_dict(nbformat.v4.new_notebook(cells=cells))


def stream(text, name="stdout"):
    return {"output_type": "stream", "name": name, "text": text}


def checklist_nb():
    return new_notebook(cells=[
        new_markdown_cell("# The checklist\n\nintro prose"),
        new_code_cell("items = 'all'", metadata={"tags": ["parameters"]}),
        new_code_cell("items = 'C1,C8,C9'", metadata={"tags": [INJECTED_TAG]}),
        new_code_cell("import x"),
        new_markdown_cell("## One by one"),
        new_code_cell("for ...", outputs=[card("C1"), stream("run C1\n"), card("C8"), stream("progress", "stderr"),
                                          stream("run C8\n"), card("C9", anchor=False), stream("run C9\n")]),
        new_markdown_cell("## Verdicts"),
        new_code_cell("tables.checklist(outcomes)", metadata={"tags": [VERDICT_TABLE_TAG]},
                      outputs=[shown({"kind": "checklist", "items": ITEMS, "extra": []}, TABLE, "execute_result")]),
        new_markdown_cell("## In one screen", metadata={"tags": [FIRST_SCREEN_TAG]}),
        new_code_cell("tables.first_screen(outcomes)", metadata={"tags": [FIRST_SCREEN_TAG]},
                      outputs=[shown({"kind": "other"}, "<p>THE NOTEBOOK'S OWN SCREEN</p>")]),
    ])


def symptom_nb():
    summary = {"scenario": "switch", "judged_cycles": 5, "types": {"Sess": {"verdict": "leak", "per_cycle": 1.0}}}
    return new_notebook(cells=[
        new_markdown_cell("# The symptom"),
        new_code_cell("tables.verdicts(result.summary())", outputs=[shown({"kind": "run", "summary": summary}, "<p>run</p>")]),
    ])


@pytest.fixture
def runs_dir(tmp_path):
    # a hunt finding no item covers, and a run's note with its own port
    (tmp_path / "hunt-1").mkdir()
    (tmp_path / "hunt-1" / "hunt.json").write_text(json.dumps({"target": "t", "findings": [
        {"sequence": "connect,tab:2,close", "metrics": {"type:Sess": 1.0}, "confirmed": "leak", "items": [],
         "on_checklist": False, "where": "not on the checklist"}]}))
    (tmp_path / "run-1").mkdir()
    (tmp_path / "run-1" / "meta.json").write_text(json.dumps({"target_notes": ["fake at http://127.0.0.1:4321/v1"]}))
    return tmp_path


def runs():
    return [NotebookRun("01_symptom", symptom_nb(), {"cycles": 5}, 3.0),
            NotebookRun("03_checklist", checklist_nb(), {"items": "C1,C8,C9"}, 7.0),
            NotebookRun("09_broken", new_notebook(cells=[new_markdown_cell("# Broken")]), {}, 1.0, "ValueError: no")]


def test_the_tables_data_is_read_by_kind():
    data = table_data(runs())
    assert [n for n, _ in data["checklist"]] == ["03_checklist"]
    assert data["run"][0][1]["summary"]["scenario"] == "switch"
    assert [d["anchor"] for _, d in data["card"]] == ["item-C1", "item-C8", ""]


def test_pages_start_at_headings_and_at_anchored_cards_from_their_data():
    pages = notebook_pages(checklist_nb())
    assert [t for t, _ in pages] == ["The checklist", "One by one", "C1 · cause C1", "C8 · cause C8", "Verdicts",
                                     "In one screen"]
    # the unanchored card stays on C8's page, with the outputs after it
    c8 = pages[3][1].cells[0].outputs
    assert [o.get("text") for o in c8 if o["output_type"] == "stream"] == ["progress", "run C8\n", "run C9\n"]


def test_the_body_is_assembled_from_the_structured_outputs(runs_dir):
    # WHEN the report's body is assembled from the runs and what they saved
    body = combined_body(runs(), {"04_fix": "not for this target"}, target="my <app>", runs_dir=runs_dir)
    # THEN the first screen ranks the data's items (and the hunt's row), the leaks first
    first = body[:body.index("id='verdicts'")]
    assert "<b>3 of 4 causes leak</b> on <b>my &lt;app&gt;</b>" in first
    assert first.index("href='#item-C8'") < first.index("href='#item-C9'") < first.index("href='#item-C1'")
    assert "href='#06_hunt'" in first and "+1 live Sess" in first
    assert "09_broken failed (ValueError: no)" in first
    # the target's notes, once, their port said as PORT
    assert "<li>fake at http://127.0.0.1:PORT/v1</li>" in body
    # the summary line counts the data's verdicts (the table's HTML has none) and the hunt's row
    verdicts = body[body.index("id='verdicts'"):body.index("id='01_symptom'")]
    summary = verdicts[verdicts.index("<p class='summary'>"):]
    summary = summary[:summary.index("</p>")]
    assert summary == ("<p class='summary'>"
                       f"<span style='background:{VERDICT_COLORS['confirmed']}'>2 confirmed</span>"
                       f"<span style='background:{VERDICT_COLORS['transient']}'>1 transient</span>"
                       f"<span style='background:{VERDICT_COLORS['ruled_out']}'>1 ruled out</span>")
    # the hunt's row goes at the end of the table's body, where the notebook rendered it
    assert "<tr><td>row</td></tr><tr class='extra-row'><th>H1</th>" in verdicts
    assert verdicts.index("extra-row") < verdicts.index("</tbody>") < verdicts.index("</table>")
    assert "Found by the hunt" in verdicts and "connect,tab:2,close" in verdicts


def test_each_notebook_is_cut_into_pages_without_what_the_report_shows_elsewhere(runs_dir):
    body = combined_body(runs(), {"04_fix": "not for this target"}, target="t", runs_dir=runs_dir)
    section = body[body.index("<section id='03_checklist'>"):body.index("<section id='09_broken'>")]
    titles = [t.split("'")[0] for t in section.split("data-title='")[1:]]
    # the first page (prose), a page per heading and per anchored card; the
    # notebook's own first screen is left out (the report opens with it)
    assert titles == ["The checklist", "The checklist: One by one", "The checklist: C1 · cause C1",
                      "The checklist: C8 · cause C8", "The checklist: Verdicts"]
    assert "THE NOTEBOOK'S OWN SCREEN" not in body and "In one screen" not in body
    # prose and stdout are kept, stderr and the code are not; the parameters line says what was injected
    assert "intro prose" in section and "run C8" in section and "progress" not in section
    assert "import x" not in section and "parameters: items=&#x27;C1,C8,C9&#x27;" in section
    assert "<h2 class='nb-title'>Broken</h2>" in body and "<b>09_broken failed</b>: ValueError: no" in body
    assert "<section id='04_fix'><h2 class='nb-title'>04_fix</h2><p>not run: not for this target</p></section>" in body


def test_a_page_with_nothing_to_show_is_left_out(runs_dir):
    nb = new_notebook(cells=[
        new_markdown_cell("# T\n\nprose"),
        new_markdown_cell("## Setup"), new_code_cell("import x"),  # its heading only: shown
        new_markdown_cell("## Shown elsewhere", metadata={"tags": [FIRST_SCREEN_TAG]}),  # all of it left out
        new_code_cell("noisy()", outputs=[stream("NOISE", "stderr")]),  # stderr only: nothing left
        new_markdown_cell("## Result"), new_code_cell("1", outputs=[stream("1\n")]),
    ])
    body = combined_body([NotebookRun("nb", nb, {}, 1.0)], {}, target="t", runs_dir=runs_dir / "none")
    titles = [t.split("'")[0] for t in body.split("data-title='")[1:]]
    assert titles[titles.index("T"):] == ["T", "T: Setup", "T: Result"]
    assert "NOISE" not in body and "Shown elsewhere" not in body
    assert "The checklist notebook did not produce its verdict table." in body


def test_a_notebooks_own_page_shows_its_code():
    run = runs()[1]
    page = notebook_body(run)
    # every code cell's source (the injected parameters too), every output but stderr
    code_cells = sum(c.cell_type == "code" for c in run.nb.cells)
    assert page.count("class=\"input_area\"") == code_cells == 6
    assert "THE NOTEBOOK'S OWN SCREEN" in page and "progress" not in page
    assert page.startswith("<p class='params'>parameters: items=&#x27;C1,C8,C9&#x27;</p>")
