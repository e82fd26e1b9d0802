"""The first screen from synthetic outcomes: ranked by cost, each row's
numbers, chain and trigger from the data, the fix, and escaping."""

from __future__ import annotations

import pytest

from leaklab.report import story

pytestmark = pytest.mark.lowest_env  # pure: the first screen and the trees on Python 3.10, numpy<2


def item(id_, verdict, cost=None, answer="", chain=None, scenario="open-close"):
    evidence = {"answer": answer}
    if chain:
        evidence["held_by"] = chain
    return {"id": id_, "title": f"cause {id_}", "verdict": verdict, "cost": cost or {}, "evidence": evidence,
            "scenario": scenario, "headline": ""}


ITEMS = [
    item("C1", "ruled_out", answer="no task grew"),
    item("C3", "confirmed", {"processes": 2.0}, "10 children after close", scenario="chat"),
    item("C5", "confirmed", {"reply_ms": 28.0}, "store 256 -> 1048 rows: 491 -> 1833 ms", scenario="chat"),
    item("C8", "transient", {"retained_bytes": 2 * 1024 * 1024, "objects": {"Sess": 1.0}}, "released after 1.5 s",
         chain=[{"label": "Task Ctx._init (pending, created at x.py:1)"}, {"label": "coroutine frame local 'self'"}],
         scenario="switch-then-close"),
    item("C6", "confirmed", {"entries": {"engine.streams": 1.0}}, "one entry per client"),
    item("C9", "inconclusive", answer="cannot tell: role session_close is not declared"),
]


def test_rows_are_ranked_leaks_first_costliest_first():
    rows = story.ranked_rows(ITEMS)
    # confirmed by cost (reply time, then processes, then entries), then the transient, then the rest
    assert [r["id"] for r in rows] == ["C5", "C3", "C6", "C8", "C9", "C1"]
    by_id = {r["id"]: r for r in rows}
    assert by_id["C5"]["cost_text"] == "+28 ms reply"
    assert by_id["C8"]["cost_text"] == "2.0 MiB retained"
    assert by_id["C6"]["held_by"] == "entries of engine.streams"
    # the chain in one line, root first, without its parentheses
    assert by_id["C8"]["held_by"] == "Task Ctx._init → coroutine frame local 'self'"


def test_first_screen_says_what_leaks_why_and_what_fixes_it():
    fix = {"variants": {"faulty": {"id": "C8", "verdict": "confirmed", "evidence": {"answer": "+1 Sess"}},
                        "full fix": {"id": "C8", "verdict": "ruled_out", "evidence": {"answer": "none kept"}}}}
    symptom = {"scenario": "switch", "judged_cycles": 15,
               "types": {"Sess": {"verdict": "leak", "per_cycle": 1.0}},
               "latency_ms": {"verdict": "slows", "first": 400.0, "last": 900.0, "per_cycle": 33.0}}
    screen = story.first_screen({"items": ITEMS, "extra": []}, target="my <app>", symptom=symptom, fix=fix)
    page = screen.html
    assert "<b>4 of 6 causes leak</b> on <b>my &lt;app&gt;</b>" in page
    assert "The costliest: <a href='#item-C5'>C5</a>" in page and "+28 ms reply per session" in page
    assert "Each session of <code>switch</code> (15 measured) cost +1 live Sess, +33 ms reply time" in page
    # every item once, linked to its evidence; the decisive answer and the trigger on its row
    for i in ITEMS:
        assert page.count(f"href='#item-{i['id']}'") >= 1
    assert "<code>switch-then-close</code>" in page and "491 -&gt; 1833 ms" in page
    assert "The fix for C8" in page and "none kept" in page
    assert page.index("C5</a> cause C5") < page.index("C1</a> cause C1")


def test_a_comparison_replaces_the_fix_and_nothing_leaking_is_said():
    comparison = {"before": {"source": "HEAD"}, "after": {"source": "working tree"},
                  "rows": [{"unit": "C9", "metric": "verdict", "before": "confirmed", "after": "ruled_out",
                            "change": "fixed"},
                           {"unit": "C3", "metric": "verdict", "before": "ruled_out", "after": "ruled_out",
                            "change": "unchanged"}]}
    clean = [item("C1", "ruled_out", answer="flat"), item("C2", "not_applicable")]
    page = story.first_screen({"items": clean}, target="t", comparison=comparison).html
    assert "<b>No cause leaks</b>" in page
    assert "Your fix, measured: HEAD → working tree" in page and "1 fixed, 1 unchanged" in page
    assert ">C9<" in page and ">C3<" not in page  # the unchanged row is counted, not listed


def test_secrets_and_markup_in_answers_are_escaped_and_redacted():
    bad = [item("C2", "confirmed", {"reply_ms": 3.0}, "api_key=sk-abcdef1234567890 <script>x</script>")]
    page = story.first_screen({"items": bad}, target="t").html
    assert "sk-abcdef1234567890" not in page and "<script>x" not in page and "&lt;script&gt;" in page


def test_a_symptom_with_missing_numbers_is_said_without_them():
    partial = {"scenario": "chat", "cycles": 3, "latency_ms": {"verdict": "slows", "first": 400.0, "last": None},
               "resources": {"children": {"verdict": "leak", "per_cycle": None}}}
    assert story.symptom_line(partial) == "Each session of <code>chat</code> (3 measured) cost a slower reply, child processes."
    assert story.symptom_line(None) == ""


def test_functions_that_slow_rank_with_the_leaks_by_ms_per_session():
    # GIVEN a symptom run where one function of the app takes 40 ms more each session
    symptom = {"scenario": "chat", "cycles": 5, "judged_cycles": 5,
               "time": {"slows": ["app.history.list_all"],
                        "functions": {"app.history.list_all": {"first": 10.0, "last": 170.0, "per_cycle": 40.0,
                                                               "file": "/app/history.py", "line": 40}}}}
    screen = story.first_screen({"items": ITEMS}, target="mine", symptom=symptom)
    ids = [r["id"] for r in screen.rows]
    # THEN it is ranked first (40 ms a session beats C5's 28 ms), with its file and line, linked to the symptom
    assert ids[:2] == ["S1", "C5"], ids
    s1 = screen.rows[0]
    assert s1["title"] == "app.history.list_all (history.py:40) slows" and s1["cost_text"] == "+40 ms reply"
    assert "1 function of the app slows</b>" in screen.html and "4 of 6 causes leak" in screen.html


def test_the_first_screen_says_whether_the_fix_ran():
    # GIVEN a comparison whose change did not help, and whose hunk never ran
    comparison = {"before": {"source": "HEAD"}, "after": {"source": "working tree"},
                  "notes": ["2 units", "your change: 2 hunks in app/ctx.py; their lines traced in every unit (import hook)"],
                  "rows": [{"unit": "C9", "metric": "verdict", "before": "confirmed", "after": "confirmed",
                            "change": "still leaks", "answer": "your change never ran: ctx.py:40 (Ctx.close) ran 0×"},
                           {"unit": "C3", "metric": "verdict", "before": "ruled_out", "after": "ruled_out",
                            "change": "unchanged", "answer": "<b>not imported</b>"}]}
    page = story.first_screen({"items": []}, target="t", comparison=comparison).html
    # THEN the first screen says so, beside the change, and names the hunks
    assert "C9: your change never ran: ctx.py:40 (Ctx.close) ran 0×" in page
    assert "your change: 2 hunks in app/ctx.py" in page
    # AND an unchanged unit's answer too (escaped), though its row is not listed
    assert "C3: &lt;b&gt;not imported&lt;/b&gt;" in page


def test_slow_rows_say_the_step_whose_loop_time_a_function_took():
    time = {"functions": {"app.store.load_all": {"first": 10.0, "last": 40.0, "per_cycle": 6.0, "verdict": "slows",
                                                 "file": "/app/store.py", "line": 12}},
            "slows": ["app.store.load_all"],
            "split": {"connect": {"functions": {"app.store.load_all": 22.4}}, "reply": {"functions": {"app.x": 1.0}}}}
    [row] = story.slow_rows({"time": time, "scenario": "chat"})
    assert row["title"] == "app.store.load_all (store.py:12) slows" and row["cost"] == {"reply_ms": 6.0}
    assert row["evidence"]["answer"] == ("the event loop spent 10 -> 40 ms per session in it, +6.0 ms each session; "
                                         "it ran on the loop during each connect (22 ms per connect)")
    del time["split"]
    assert story.slow_rows({"time": time})[0]["evidence"]["answer"].endswith("+6.0 ms each session")
