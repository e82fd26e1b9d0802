"""The report's first screen: what leaks, why, what fixes it — from data.

Pure functions of the data the notebooks' tables carry (``tables.DATA_MIME``
outputs: the checklist's outcomes, a run's summary, the fix's variants or a
comparison), so the report and a notebook cell show the same screen:

* one line on the symptom (what one session costs, from the symptom run);
* every checklist item in one table, the leaks first, costliest first (reply
  time added per session, then bytes retained, then processes, files,
  entries), each with what decided its verdict, what holds it and the
  scenario that triggers it, linked to its evidence;
* the fix and its before/after, when one was compared.

Nothing here names a backend: costs, chains and scenarios come from the
outcomes, which read roles.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from ..metrics import Change, ItemVerdict, Verdict
from ..retention.safe import redact
from ..retention.sizes import human_size
from .style import VERDICT_COLORS as _COLORS
from .style import template

__all__ = ["FirstScreen", "cost_text", "first_screen", "held_by", "rank_key", "ranked_rows", "slow_rows",
           "symptom_line"]

#: Functions that slow shown on the first screen, at most.
MAX_SLOW_ROWS = 3

_LEAKING = (ItemVerdict.CONFIRMED, ItemVerdict.TRANSIENT)
#: A function that slows ranks with the confirmed leaks, by the reply time it adds per session.
_ORDER = {ItemVerdict.CONFIRMED: 0, Verdict.SLOWS: 0, ItemVerdict.TRANSIENT: 1, ItemVerdict.INCONCLUSIVE: 2, ItemVerdict.RULED_OUT: 3,
          ItemVerdict.NOT_APPLICABLE: 4}


def _esc(text: Any) -> str:
    return html.escape(redact(str(text)), quote=True)



def _n(v: float) -> str:
    return f"{v:g}" if float(v).is_integer() else f"{v:.2g}"


def cost_text(cost: Mapping[str, Any]) -> str:
    """One session's cost in words (``Outcome.cost``); ``""`` when none was measured."""
    parts = []
    if cost.get("reply_ms"):
        parts.append(f"+{cost['reply_ms']:.0f} ms reply")
    if cost.get("retained_bytes"):
        parts.append(f"{human_size(cost['retained_bytes'])} retained")
    if cost.get("processes"):
        parts.append(f"+{_n(cost['processes'])} processes")
    if cost.get("fds"):
        parts.append(f"+{_n(cost['fds'])} fds")
    if cost.get("files"):
        parts.append(f"+{_n(cost['files'])} files")
    for n in (cost.get("entries") or {}).values():
        parts.append(f"+{_n(n)} entries")
        break
    if cost.get("tasks"):
        parts.append(f"+{_n(sum(cost['tasks'].values()))} pending tasks")
    if cost.get("skipped_calls"):
        name, n = next(iter(cost["skipped_calls"].items()))
        parts.append(f"{_n(n)} {name.rpartition('.')[2]}() skipped")
    if not parts:
        for name, n in (cost.get("objects") or {}).items():
            parts.append(f"+{_n(n)} {name}")
            break
    return ", ".join(parts)


def rank_key(row: Mapping[str, Any]) -> tuple[Any, ...]:
    """Leaks first (confirmed, then transient), costliest first: reply time
    added per session, then bytes retained, processes, files, entries; then
    the other verdicts; ids break ties."""
    c = row.get("cost") or {}
    return (_ORDER.get(row.get("verdict", ""), 5), -(c.get("reply_ms") or 0), -(c.get("retained_bytes") or 0),
            -(c.get("processes") or 0), -(c.get("fds") or 0), -(c.get("files") or 0),
            -sum((c.get("entries") or {}).values()), str(row.get("id", "")))


def _short(label: str) -> str:
    return re.sub(r"\s*\([^()]*(\([^()]*\))?[^()]*\)", "", label).strip()


def held_by(item: Mapping[str, Any]) -> str:
    """What holds a leak, in one line: the retention chain the evidence
    carries (root first), else the container or resource that grows."""
    ev = item.get("evidence") or {}
    chain = ev.get("held_by") or []
    if chain:
        hops = [_short(str(h.get("label", ""))) for h in chain]
        return " → ".join(h for h in hops if h)
    cost = item.get("cost") or {}
    if cost.get("entries"):
        return f"entries of {next(iter(cost['entries']))}"
    if cost.get("processes"):
        return "child processes nobody reaps"
    if cost.get("files"):
        return "files nobody removes"
    return ""


def ranked_rows(items: Iterable[Mapping[str, Any]], extra: Iterable[Mapping[str, Any]] = ()) -> list[dict[str, Any]]:
    """Every checklist item (and hunt row) as a first-screen row, ranked by :func:`rank_key`."""
    rows = []
    for d in [*items, *extra]:
        ev = d.get("evidence") or {}
        rows.append({"id": d.get("id", ""), "title": d.get("title", ""), "verdict": d.get("verdict", ""),
                     "cost": d.get("cost") or {}, "cost_text": cost_text(d.get("cost") or {}),
                     "answer": str(ev.get("answer", "")), "held_by": held_by(d),
                     "trigger": d.get("scenario") or ev.get("sequence") or "", "headline": d.get("headline", ""),
                     "anchor": d.get("anchor") or f"item-{d.get('id', '')}"})
    return sorted(rows, key=rank_key)


def slow_rows(summary: Mapping[str, Any] | None) -> list[dict[str, Any]]:
    """The symptom run's functions that slow (``summary["time"]``), as
    first-screen rows: ``S1``..., the milliseconds of the event loop each
    adds per session as their cost, linked to the symptom's notebook."""
    time = (summary or {}).get("time") or {}
    functions = time.get("functions") or {}
    out = []
    for i, key in enumerate((time.get("slows") or [])[:MAX_SLOW_ROWS], 1):
        f = functions.get(key) or {}
        where = f" ({str(f.get('file', '')).replace(chr(92), '/').rsplit('/', 1)[-1]}:{f.get('line')})" if f.get("file") else ""
        per = f.get("per_cycle") or 0.0
        steps = "".join(f"; it ran on the loop during each {kind} ({ms:.0f} ms per {kind})"
                        for kind, ms in _step_ms(time, key))
        out.append({"id": f"S{i}", "title": f"{key}{where} slows", "verdict": Verdict.SLOWS.value,
                    "cost": {"reply_ms": per},
                    "evidence": {"answer": f"the event loop spent {f.get('first') or 0:.0f} -> {f.get('last') or 0:.0f} ms "
                                           f"per session in it, {per:+.1f} ms each session{steps}"},
                    "scenario": (summary or {}).get("scenario") or "", "anchor": "01_reproduce_the_symptom"})
    return out


def _step_ms(time: Mapping[str, Any], key: str) -> list[tuple[str, float]]:
    """(step kind, ms per step) of a function sampled on the loop during the
    connects and the replies (``time["split"]``)."""
    split = time.get("split") or {}
    return [(kind, float(ms)) for kind in ("connect", "reply")
            if (ms := ((split.get(kind) or {}).get("functions") or {}).get(key))]


def symptom_line(summary: Mapping[str, Any] | None) -> str:
    """What one session cost in the symptom run, in words ("" without one)."""
    if not summary:
        return ""
    parts = []
    for name, v in (summary.get("types") or {}).items():
        if v.get("verdict") == Verdict.LEAK and (v.get("per_cycle") or 0) > 0:
            parts.append(f"+{_n(v['per_cycle'])} live {name}")
    rss = ((summary.get("other") or {}).get("uss_mb") or {})
    if rss.get("verdict") == Verdict.LEAK and (rss.get("per_cycle") or 0) > 0:
        parts.append(f"+{rss['per_cycle']:.1f} MiB of the process's own memory")
    lat = summary.get("latency_ms") or {}
    if lat.get("verdict") == Verdict.SLOWS:
        parts.append(f"+{lat.get('per_cycle') or 0:.0f} ms reply time (first {lat['first']:.0f} ms, "
                     f"last {lat['last']:.0f} ms)" if lat.get("first") is not None and lat.get("last") is not None
                     else "a slower reply")
    children = (summary.get("resources") or {}).get("children") or {}
    if children.get("verdict") == Verdict.LEAK:
        parts.append(f"+{_n(children['per_cycle'])} child processes" if children.get("per_cycle") else "child processes")
    n = summary.get("judged_cycles") or summary.get("cycles")
    scenario = summary.get("scenario") or "the scenario"
    if not parts:
        return f"Over {n} sessions of <code>{_esc(scenario)}</code>, nothing grew per session."
    return (f"Each session of <code>{_esc(scenario)}</code> ({n} measured) cost " + _esc(", ".join(parts)) + ".")


def _fix_html(fix: Mapping[str, Any] | None, comparison: Mapping[str, Any] | None) -> str:
    if comparison:
        rows = comparison.get("rows") or []
        counts: dict[str, int] = {}
        for r in rows:
            counts[r.get("change", "")] = counts.get(r.get("change", ""), 0) + 1
        shown = [r for r in rows if r.get("change") != Change.UNCHANGED][:5]
        before = (comparison.get("before") or {}).get("source") or "before"
        after = (comparison.get("after") or {}).get("source") or "after"
        cells = "".join(
            f"<tr><td>{_esc(r.get('unit'))}</td><td>{_esc(r.get('metric'))}</td><td>{_esc(r.get('before'))}</td>"
            f"<td>{_esc(r.get('after'))}</td><td style='background:{_COLORS.get(r.get('change'), '#fff')}'>"
            f"{_esc(r.get('change'))}</td></tr>" for r in shown)
        summary = ", ".join(f"{n} {c}" for c, n in counts.items())
        # did the change run? the answer of each shown row first, then the
        # hunks' note (compare traced the changed lines in every unit)
        ran = "".join(f"<li>{_esc(r.get('unit'))}: {_esc(r.get('answer'))}</li>"
                      for r in [r for r in rows if r.get("answer")][:5])
        hunks = next((n for n in comparison.get("notes") or () if str(n).startswith("your change:")), "")
        coverage = (f"<p>{_esc(hunks)}</p>" if hunks else "") + (f"<ul class='ll-fix-ran'>{ran}</ul>" if ran else "")
        return (f"<h3>Your fix, measured: {_esc(before)} → {_esc(after)}</h3><p>{_esc(summary)} "
                "(<a href='#before-after'>the whole table</a>)</p>" + coverage
                + (f"<table class='ll-fix'><colgroup><col style='width:8em'><col style='width:22%'><col><col>"
                   "<col style='width:8em'></colgroup><tr><th>unit</th><th>measure</th><th>before</th><th>after</th>"
                   f"<th>change</th></tr>{cells}</table>" if cells else ""))
    if fix:
        variants = fix.get("variants") or {}
        item = next(iter(variants.values()), {}).get("id", "")
        cells = "".join(
            f"<tr><td>{_esc(name)}</td><td style='background:{_COLORS.get(v.get('verdict'), '#fff')}'>"
            f"{_esc(v.get('verdict'))}</td><td class='ll-clip' title='{_esc((v.get('evidence') or {}).get('answer', ''))}'>"
            f"{_esc((v.get('evidence') or {}).get('answer', ''))}</td></tr>" for name, v in variants.items())
        return (f"<h3>The fix for {_esc(item)}, proved on the same experiment "
                "(<a href='#04_prove_the_fix'>side by side</a>)</h3>"
                "<table class='ll-fix'><colgroup><col style='width:14em'><col style='width:8em'><col></colgroup>"
                f"<tr><th>backend</th><th>verdict</th><th>answer</th></tr>{cells}</table>")
    return ("<p class='ll-more'>No fix compared yet: <code>leaklab report --against REVISION</code> "
            "measures your fix beside the code before it.</p>")


def _style() -> str:
    return f"<style>\n{template('first_screen.css')}</style>"


class FirstScreen:
    """The first screen as HTML (Jupyter shows it; the report opens with it)."""

    def __init__(self, html_text: str, rows: list[dict[str, Any]]) -> None:
        self.html, self.rows = html_text, rows

    def _repr_html_(self) -> str:
        return self.html

    def __repr__(self) -> str:
        return "\n".join(f"{r['id']} {r['verdict']}: {r['cost_text'] or '-'} | {r['answer']}" for r in self.rows)


def first_screen(checklist: Mapping[str, Any] | None, *, target: str = "", symptom: Mapping[str, Any] | None = None,
                 fix: Mapping[str, Any] | None = None, comparison: Mapping[str, Any] | None = None,
                 failures: Sequence[str] = ()) -> FirstScreen:
    """The first screen (see the module doc).

    Args:
        checklist: the checklist table's data (``{"items": [...], "extra": [...]}``).
        target: what the report was built on (plain text).
        symptom: the symptom run's summary.
        fix: the fix variants' data (``{"variants": {name: outcome}}``).
        comparison: a comparison's data (``{"before", "after", "rows"}``).
        failures: notebooks that failed (named first: the screen is partial).
    """
    items = list((checklist or {}).get("items") or [])
    extra = list((checklist or {}).get("extra") or [])
    rows = ranked_rows(items, [*extra, *slow_rows(symptom)])
    leaks = [r for r in rows if r["verdict"] in _LEAKING]
    counts: dict[str, int] = {}
    for r in rows:
        if r["verdict"] != Verdict.SLOWS:
            counts[r["verdict"]] = counts.get(r["verdict"], 0) + 1
    verdicts = ", ".join(f"{n} {v.replace('_', ' ')}" for v, n in sorted(counts.items(), key=lambda kv: _ORDER.get(kv[0], 9)))
    parts = [_style(), "<section id='first-screen' class='ll-first ll-page' data-title='the first screen'>"]
    parts.extend(f"<p class='failure'>{_esc(f)}</p>" for f in failures)
    if not items and not extra:
        parts.append("<p class='failure'>The checklist did not run: no verdict to show.</p>")
    else:
        top = leaks[0] if leaks else None
        causes = sum(counts.values())
        slow = len(rows) - causes
        lead = (f"<b>{len(leaks)} of {causes} causes leak</b> on <b>{_esc(target)}</b> ({_esc(verdicts)})."
                if leaks else f"<b>No cause leaks</b> on <b>{_esc(target)}</b> ({_esc(verdicts)}).")
        if slow:
            lead += f" <b>{slow} function{'s' if slow > 1 else ''} of the app slow{'' if slow > 1 else 's'}</b> session after session."
        if top is not None:
            lead += (f" The costliest: <a href='#{_esc(top['anchor'])}'>{_esc(top['id'])}</a> {_esc(top['title'])}"
                     + (f", {_esc(top['cost_text'])} per session" if top["cost_text"] else "") + ".")
        parts.append(f"<p class='ll-lead'>{lead}</p>")
        if symptom:
            parts.append(f"<p>{symptom_line(symptom)}</p>")
        body = "".join(
            f"<tr><td>{i}</td><td><div class='ll-2' title='{_esc(r['title'])}'><a href='#{_esc(r['anchor'])}'>"
            f"{_esc(r['id'])}</a> {_esc(r['title'])}</div></td>"
            f"<td style='background:{_COLORS.get(r['verdict'], '#fff')}'>{_esc(r['verdict'].replace('_', ' '))}</td>"
            f"<td>{_esc(r['cost_text']) or '—'}</td>"
            f"<td><div class='ll-2' title='{_esc(r['answer'])}'>{_esc(r['answer'])}</div></td>"
            f"<td><div class='ll-2' title='{_esc(r['held_by'])}'>{_esc(r['held_by']) or '—'}</div></td>"
            f"<td class='ll-clip'><code>{_esc(r['trigger'])}</code></td></tr>"
            for i, r in enumerate(rows, 1))
        parts.append(
            "<h2>What leaks, costliest first — and what decided each verdict</h2>"
            "<table class='ll-rank'><colgroup><col style='width:2.2em'><col style='width:17%'><col style='width:7.5em'>"
            "<col style='width:12%'><col><col style='width:17%'><col style='width:9em'></colgroup>"
            "<tr><th>#</th><th>cause</th><th>verdict</th><th>per session</th><th>what decided it (measured)</th>"
            f"<th>held by</th><th>trigger</th></tr>{body}</table>"
            "<p class='ll-more'>Ranked by reply time added per session, then memory retained, processes, files, "
            "entries. Each row links to its experiment: the hypothesis, the chart that decided it, the evidence.</p>")
    parts.append(_fix_html(fix, comparison))
    parts.append("</section>")
    return FirstScreen("".join(parts), rows)
