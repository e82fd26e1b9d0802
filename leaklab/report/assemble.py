"""The report's body, assembled from what the executed notebooks carry.

Everything here reads structured data, never the notebooks' HTML: the
outputs of type :data:`~leaklab.report.tables.DATA_MIME` (a checklist's
outcomes, a run's summary, the fix's variants, a comparison; an item card's
title and anchor), the cells' tags (``verdict-table``, ``compare-table``,
``first-screen``, the injected parameters) and markdown headings. The
notebooks' HTML is only embedded, as nbconvert renders it
(:func:`~leaklab.report.page.render_cells`).

The combined report reads, in order: the first screen (:mod:`.story`), the
before/after table of a report built ``--against``, how the backend was run,
the C1–C9 verdicts (with a row per hunt finding no item covers), then each
notebook cut into walkthrough pages.
"""

from __future__ import annotations

import copy
import html
from collections.abc import Iterable, Mapping
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import nbformat

from ..metrics import ItemVerdict
from .execute import NotebookRun
from .notebooks import COMPARE_TABLE_TAG, VERDICT_TABLE_TAG, title
from .page import for_html, notebook_html, render_cells
from .style import VERDICT_COLORS
from .tables import DATA_MIME

__all__ = [
    "combined_body",
    "hunt_findings",
    "notebook_body",
    "notebook_pages",
    "shows_something",
    "table_data",
    "tagged_output",
    "target_notes",
]


# -- the data the notebooks carry -----------------------------------------------


def _data(output: Mapping[str, Any]) -> Mapping[str, Any] | None:
    data = (output.get("data") or {}).get(DATA_MIME)
    return data if isinstance(data, Mapping) and data.get("kind") else None


def _html(output: Mapping[str, Any]) -> str:
    text = (output.get("data") or {}).get("text/html", "")
    return "".join(text) if isinstance(text, list) else text


def table_data(runs: Iterable[NotebookRun]) -> dict[str, list[tuple[str, dict[str, Any]]]]:
    """What the notebooks' tables carry (``tables.DATA_MIME`` outputs), by
    kind (``checklist``, ``run``, ``fix``, ``comparison``; ``card`` for item
    cards): ``(notebook, data)`` pairs in reading order."""
    found: dict[str, list[tuple[str, dict[str, Any]]]] = {}
    for run in runs:
        for cell in run.nb.cells:
            for output in cell.get("outputs", []) if cell.cell_type == "code" else []:
                data = _data(output)
                if data is not None:
                    found.setdefault(str(data["kind"]), []).append((run.name, dict(data)))
    return found


def tagged_output(runs: Iterable[NotebookRun], tag: str) -> tuple[str, Mapping[str, Any]] | None:
    """``(notebook, output)``: the last output with HTML of the first code
    cell tagged ``tag``."""
    for run in runs:
        for cell in run.nb.cells:
            if cell.cell_type != "code" or tag not in cell.get("metadata", {}).get("tags", []):
                continue
            for output in reversed(cell.get("outputs", [])):
                if "text/html" in (output.get("data") or {}):
                    return run.name, output
    return None


def _page_card(output: Mapping[str, Any]) -> Mapping[str, Any] | None:
    # a card with an anchor (a checklist item's) starts a page of its own
    data = _data(output)
    return data if data is not None and data["kind"] == "card" and data.get("anchor") else None


def _heading(cell: Mapping[str, Any]) -> str | None:
    """The text of a markdown cell's ``#``/``##``/``###`` heading, if it opens with one."""
    if cell.get("cell_type") != "markdown":
        return None
    source = cell.get("source", "")
    level = len(source) - len(source.lstrip("#"))
    if not 1 <= level <= 3 or source[level:level + 1] != " ":
        return None
    return source.splitlines()[0].lstrip("# ").strip()


def notebook_pages(nb: nbformat.NotebookNode) -> list[tuple[str, nbformat.NotebookNode]]:
    """The notebook cut into pages for the walkthrough: a page starts at each
    markdown heading and at each output that is an anchored card (one per
    checklist item); ``(title, sub-notebook)`` pairs, in order."""
    pages: list[tuple[str, list[Any]]] = []
    default = title(nb, "")

    def new_page(name: str) -> None:
        pages.append((name, []))

    for cell in nb.cells:
        heading = _heading(cell)
        if heading is not None:
            new_page(heading)
        elif not pages:
            new_page(default)
        if cell.cell_type != "code" or not any(_page_card(o) for o in cell.get("outputs", [])):
            pages[-1][1].append(cell)
            continue
        part = copy.deepcopy(cell)
        part.outputs = []
        for output in cell.outputs:
            card = _page_card(output)
            if card is not None and (part.outputs or pages[-1][1]):
                if part.outputs:
                    pages[-1][1].append(part)
                new_page(str(card.get("title") or default))
                part = copy.deepcopy(cell)
                part.outputs = []
                part.source = ""
            part.outputs.append(output)
        if part.outputs:
            pages[-1][1].append(part)
    out = []
    for name, cells in pages:
        sub = copy.deepcopy(nb)
        sub.cells = cells
        out.append((name, sub))
    return out


def shows_something(nb: nbformat.NotebookNode) -> bool:
    """Whether a page (as exported, :func:`~leaklab.report.page.for_html`)
    has anything to show: prose, or an output of a cell. A page of the
    parameters and the imports has not."""
    return any(cell.source.strip() if cell.cell_type == "markdown" else cell.get("outputs")
               for cell in nb.cells if cell.cell_type in ("markdown", "code"))


# -- the sections -----------------------------------------------------------------


def _params_line(params: Mapping[str, Any]) -> str:
    if not params:
        return ""
    shown = ", ".join(f"{k}={v!r}" for k, v in params.items())
    return f"<p class='params'>parameters: {html.escape(shown)}</p>"


def _failure(run: NotebookRun) -> str:
    return f"<p class='failure'><b>{html.escape(run.name)} failed</b>: {html.escape(run.error or '')}</p>"


def notebook_body(run: NotebookRun) -> str:
    """A notebook's own page: where it failed, its parameters, its cells with their code."""
    return (_failure(run) if not run.ok else "") + _params_line(run.params) + notebook_html(run.nb, include_code=True)


def _first_screen(runs: list[NotebookRun], target: str, findings: list[dict[str, Any]]) -> str:
    """What leaks, why, what fixes it: the page's first screen (:mod:`.story`)."""
    from ..hunt import checklist_rows
    from .story import first_screen

    data = table_data(runs)
    checklist = next((d for _, d in data.get("checklist", [])), None)
    if checklist is not None and findings and not checklist.get("extra"):
        checklist = {**checklist, "extra": checklist_rows(findings)}
    if checklist is not None:  # the hunt's rows have no card: their evidence is the hunt's section
        checklist = {**checklist, "extra": [{"anchor": "06_hunt", **r} for r in checklist.get("extra") or []]}
    symptom_runs = data.get("run", [])
    symptom = next((d for n, d in symptom_runs if n.startswith("01")), symptom_runs[0][1] if symptom_runs else None)
    fix = next((d for _, d in data.get("fix", [])), None)
    comparison = next((d for _, d in data.get("comparison", [])), None)
    failures = [f"{r.name} failed ({r.error}): what it measures is missing below" for r in runs if not r.ok]
    screen = first_screen(checklist, target=target, symptom=(symptom or {}).get("summary"), fix=fix,
                          comparison=comparison, failures=failures)
    return screen.html


def _before_after(runs: list[NotebookRun]) -> str:
    """The comparison's table, when the report was built ``--against``: first."""
    found = tagged_output([r for r in runs if r.params.get("against")], COMPARE_TABLE_TAG)
    if found is None:
        return ""
    name, output = found
    return ("<section id='before-after' class='ll-page' data-title='before and after'><h2>Before and after: your fix, measured</h2>"
            f"<p>The same experiments on the code before your change and after it, side by side "
            f"(<a href='#{html.escape(name)}'>{html.escape(name)}</a> has the per-cycle charts and the chains).</p>"
            f"{_html(output)}</section>")


def _setup_section(notes: list[str]) -> str:
    if not notes:
        return ""
    items = "".join(f"<li>{html.escape(n)}</li>" for n in notes)
    return ("<section id='setup' class='ll-page' data-title='how leaklab ran it'><h2>How leaklab ran this backend</h2>"
            f"<p>What the target changed to run it here, offline (your files were not written):</p><ul>{items}</ul></section>")


def _verdict_table(runs: Iterable[NotebookRun]) -> tuple[str | None, list[str]]:
    """The HTML output of the cell tagged ``verdict-table``, and the verdicts
    of its rows (from the checklist data it carries: the items', then the
    extra rows')."""
    found = tagged_output(runs, VERDICT_TABLE_TAG)
    if found is None:
        return None, []
    output = found[1]
    data = _data(output) or {}
    rows = [*(data.get("items") or []), *(data.get("extra") or [])] if data.get("kind") == "checklist" else []
    return _html(output), [str(r.get("verdict", "")) for r in rows]


def _summary_line(verdicts: list[str]) -> str:
    counts = {v: verdicts.count(v) for v in ItemVerdict}
    return "<p class='summary'>" + "".join(
        f"<span style='background:{VERDICT_COLORS[v]}'>{n} {html.escape(v.replace('_', ' '))}</span>"
        for v, n in counts.items() if n
    ) + "</p>"


def _hunt_rows(findings: list[dict[str, Any]]) -> str:
    """The hunt's findings under the checklist's verdicts: which lifecycle
    leaks, and the item it is (or that it is on no item)."""
    if not findings:
        return ""
    esc = html.escape
    rows = "".join(
        f"<tr><td><code>{esc(str(f.get('sequence')))}</code></td>"
        f"<td>{esc(', '.join(f'{m} {v:+.2g}/cycle' for m, v in (f.get('metrics') or {}).items()))}</td>"
        f"<td>{esc(str(f.get('confirmed')))}</td><td>{esc(str(f.get('where')))}</td></tr>"
        for f in findings)
    off = sum(1 for f in findings if not f.get("on_checklist"))
    return ("<h3>Found by the hunt</h3>"
            f"<p>Sequences the hunt found leaking (<a href='#06_hunt'>06_hunt</a>); {off} not on the checklist. "
            "Replay one as written: <code>leaklab run --scenario '&lt;sequence&gt;'</code>.</p>"
            "<table><tr><th>sequence</th><th>grows</th><th>confirmed</th><th>checklist</th></tr>"
            f"{rows}</table>")


class _LastEndTag(HTMLParser):
    """Where the last ``</tbody>`` and ``</table>`` end tags of a fragment start."""

    def __init__(self, text: str) -> None:
        super().__init__(convert_charrefs=True)
        # the parser counts lines by "\n" only: so do the offsets of their starts
        self.starts = [0]
        while (newline := text.find("\n", self.starts[-1])) >= 0:
            self.starts.append(newline + 1)
        self.found: dict[str, int] = {}
        self.feed(text)
        self.close()

    def handle_endtag(self, tag: str) -> None:
        line, column = self.getpos()
        self.found[tag] = self.starts[line - 1] + column


def _with_extra_rows(table: str, findings: list[dict[str, Any]]) -> tuple[str, list[str]]:
    """The checklist's verdict table with a row per hunt finding no item
    covers (``H1``…), at the end of its body, and those rows' verdicts."""
    from ..hunt import checklist_rows

    rows = checklist_rows(findings)
    if not rows:
        return table, []
    esc = html.escape
    tr = "".join(
        f"<tr class='extra-row'><th>{esc(r['id'])}</th><td>{esc(r['title'])}</td>"
        f"<td style='background-color:{VERDICT_COLORS.get(r['verdict'], '#fff')}'>{esc(r['verdict'])}</td>"
        f"<td>{esc(str((r.get('evidence') or {}).get('answer', '')))}</td></tr>" for r in rows)
    ends = _LastEndTag(table).found
    at = ends.get("tbody", ends.get("table"))
    if at is None:
        return table, []
    return table[:at] + tr + table[at:], [r["verdict"] for r in rows]


def _verdicts_section(runs: list[NotebookRun], findings: list[dict[str, Any]]) -> str:
    table, verdicts = _verdict_table(runs)
    if table is not None and findings:
        table, more = _with_extra_rows(table, findings)
        verdicts = verdicts + more
    parts = ["<section id='verdicts' class='ll-page' data-title='the verdicts'><h2>Verdicts: the checklist C1–C9, measured</h2>"]
    parts.extend(_failure(r) for r in runs if not r.ok)
    if table is None:
        parts.append("<p class='failure'>The checklist notebook did not produce its verdict table.</p>")
    else:
        parts.append(_summary_line(verdicts) + table)
        parts.append("<p>Each verdict's evidence is in the <a href='#03_checklist'>checklist</a> section; "
                     "how to read a verdict: <code>confirmed</code> the cause is present and measured, "
                     "<code>transient</code> it retains and then releases, <code>ruled_out</code> the experiment "
                     "could have shown it and did not.</p>")
    parts.append(_hunt_rows(findings))
    parts.append("</section>")
    return "".join(parts)


def _notebook_section(run: NotebookRun) -> str:
    name = title(run.nb, run.name)
    parts = [f"<section id='{html.escape(run.name)}'><h2 class='nb-title'>{html.escape(name)}</h2>",
             _params_line(run.params) + f"<p class='params'>page with code: <a href='{html.escape(run.name)}.html'>"
             f"{html.escape(run.name)}.html</a> · {run.elapsed_s:.0f} s</p>"]
    if not run.ok:
        parts.append(_failure(run))
    first = True
    for heading, sub in notebook_pages(run.nb):
        shown = for_html(sub, keep_injected=False, drop_title=True)
        if not first and not shows_something(shown):
            continue  # a page with nothing to show (the parameters, the imports)
        where = name + ("" if heading == name else f": {heading}")
        parts.append(f"<div class='ll-page' data-title='{html.escape(where)}'>{render_cells(shown, include_code=False)}</div>")
        first = False
    parts.append("</section>")
    return "".join(parts)


def combined_body(runs: list[NotebookRun], skipped: Mapping[str, str], *, target: str, runs_dir: Path) -> str:
    """The combined report's body: the first screen, the before/after table
    (a report built ``--against``), how the backend ran, the verdicts, then
    each notebook's section and the ones skipped.

    Args:
        runs: the executed notebooks, in reading order.
        skipped: notebook name -> why it was not run.
        target: what the report was built on (plain text).
        runs_dir: where the notebooks saved their runs and hunts.
    """
    findings = hunt_findings(runs_dir)
    parts = [_first_screen(runs, target, findings), _before_after(runs), _setup_section(target_notes(runs_dir)),
             _verdicts_section(runs, findings)]
    parts.extend(_notebook_section(run) for run in runs)
    parts.extend(f"<section id='{html.escape(name)}'><h2 class='nb-title'>{html.escape(name)}</h2>"
                 f"<p>not run: {html.escape(why)}</p></section>" for name, why in skipped.items())
    return "".join(parts)


# -- what the runs saved ------------------------------------------------------------


def hunt_findings(runs_dir: Path) -> list[dict[str, Any]]:
    """The findings of the hunts saved in ``runs_dir`` (``hunt-*/hunt.json``), in order."""
    from ..hunt import load_findings

    out: list[dict[str, Any]] = []
    if runs_dir.is_dir():
        for path in sorted(runs_dir.glob("hunt-*/hunt.json")):
            try:
                out.extend(load_findings(path))
            except (OSError, ValueError):
                continue
    return out


_FAKE_SERVER = "http://127.0.0.1:"


def _any_port(note: str) -> str:
    """``http://127.0.0.1:38441/v1`` -> ``http://127.0.0.1:PORT/v1``."""
    out, at = [], 0
    while (start := note.find(_FAKE_SERVER, at)) >= 0:
        port = end = start + len(_FAKE_SERVER)
        while end < len(note) and note[end] in "0123456789":
            end += 1
        out.append(note[at:port] + ("PORT" if end > port else ""))
        at = end
    return "".join(out) + note[at:]


def target_notes(runs_dir: Path) -> list[str]:
    """What the target changed or decided to run the backend (engines pointed
    at the fake, MCP servers skipped...), from the saved runs' metadata, each
    note once, in the order first seen."""
    import json

    seen: dict[str, None] = {}
    if runs_dir.is_dir():
        for meta in sorted(runs_dir.glob("*/meta.json")):
            try:
                notes = json.loads(meta.read_text(encoding="utf-8")).get("target_notes") or []
            except (OSError, ValueError):
                continue
            for note in notes:
                # each run's fake server listens on a port of its own: one note for all
                seen.setdefault(_any_port(str(note)), None)
    return list(seen)
