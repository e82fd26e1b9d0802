"""Tables and cards: escaped, redacted, verdicts first."""

from __future__ import annotations

from leaklab.checklist import ITEMS, Outcome
from leaklab.report import tables

SUMMARY = {
    "types": {"ServiceContext": {"start": 1, "end": 6, "per_cycle": 1.0, "verdict": "leak", "lifetime_s": None},
              "MCPClient": {"start": 0, "end": 0, "per_cycle": 0.0, "verdict": "none", "lifetime_s": None}},
    "tasks": {"start": 2, "end": 3, "per_cycle": 0.2, "verdict": "transient", "lifetime_s": 1.7,
              "by_coroutine": {"ServiceContext._finish_heavy_init": {"start": 0, "end": 5, "per_cycle": 1.0,
                                                                       "verdict": "leak", "lifetime_s": None}}},
    "resources": {"rss_mb": {"start": 90, "end": 91, "per_cycle": 0.1, "verdict": "none", "lifetime_s": None}},
    "containers": [{"path": "default_context.asr_engine.client_streams", "start": 0, "end": 5, "per_cycle": 1.0,
                    "verdict": "leak"}],
    "latency_ms": {"first": 400.0, "last": 600.0, "per_cycle": 40.0, "verdict": "slows",
                   "llm": {"first": 50.0, "last": 250.0, "per_cycle": 40.0, "verdict": "slows"}},
    "lifecycle": {"ServiceContext.close": {"calls": 0, "expected": 5}},
}


def test_verdicts_lists_flagged_metrics_leaks_first():
    frame = tables.verdict_frame(SUMMARY)
    assert list(frame.index[:3]) == ["type:ServiceContext", "task:ServiceContext._finish_heavy_init",
                                     "container:default_context.asr_engine.client_streams"]
    assert "type:MCPClient" not in frame.index and "rss_mb" not in frame.index
    assert frame.loc["tasks", "lifetime_s"] == 1.7
    assert frame.loc["llm_ms", "verdict"] == "slows"
    assert frame.loc["lifecycle:ServiceContext.close", "verdict"] == "0 calls of 5"


def test_verdicts_include_none_keeps_quiet_metrics():
    frame = tables.verdict_frame(SUMMARY, include_none=True)
    assert {"type:MCPClient", "rss_mb"} <= set(frame.index)


def test_verdicts_for_display_colour_the_verdicts_and_leave_blanks():
    html = tables.verdicts(SUMMARY).to_html()
    assert tables.VERDICT_COLORS["leak"] in html and tables.VERDICT_COLORS["transient"] in html
    assert "nan" not in html.lower() and "None" not in html
    assert "type:ServiceContext" in html


def test_checklist_table_escapes_and_redacts_answers():
    # GIVEN an answer quoting a repr with markup and a key
    outcomes = [Outcome("C8", "Untracked <init> task", "confirmed",
                        {"answer": "held by <script>alert(1)</script> api_key='sk-live-123456'"})]
    html = tables.checklist(outcomes).to_html()
    # THEN no markup gets through and the key is gone
    assert "<script>" not in html and "&lt;script&gt;" in html
    assert "sk-live-123456" not in html
    assert "&lt;init&gt;" in html
    assert tables.VERDICT_COLORS["confirmed"] in html


def test_item_and_outcome_cards_are_escaped_html():
    item_html = tables.item_card(ITEMS[7])._repr_html_()
    assert "C8" in item_html and "hypothesis" in item_html
    outcome = Outcome("C8", "t", "transient", {
        "answer": "released after <1.7 s>",
        "held_by": [{"kind": "task", "label": "Task <coro>", "where": "service_context.py:135"}],
        "retained_bytes": 2_000_000,
    }, elapsed_s=3.2)
    card = tables.outcome_card(outcome)
    html = card._repr_html_()
    assert "&lt;1.7 s&gt;" in html and "Task &lt;coro&gt; (service_context.py:135)" in html
    assert "<coro>" not in html
    assert "C8: transient" in repr(card)


def test_type_growth_and_allocations_tables():
    from leaklab.retention import AllocationGrowth, SummaryDiff

    diff = SummaryDiff.from_rows([["bytearray", 3, 3 * 2 * 1024 * 1024], ["dict", 10, 2048]])
    frame = tables.type_growth(diff)
    assert frame.loc["bytearray", "KiB"] == 6144.0 and frame.loc["dict", "objects gained"] == 10
    growth = [AllocationGrowth("leaklab/backend/service_context.py:212", ("a.py:1", "b.py:2", "leaklab/backend/service_context.py:212"),
                               2 * 1024 * 1024, 1, 2 * 1024 * 1024)]
    frame = tables.allocations(growth)
    assert frame.loc["leaklab/backend/service_context.py:212", "KiB gained"] == 2048.0
    assert frame.loc["leaklab/backend/service_context.py:212", "called from"] == "b.py:2 ← a.py:1"


def test_what_stop_found_left_running_is_a_table_not_a_raw_dict():
    from leaklab.report import tables

    html = tables.left_running({"children": 2, "threads": 0, "listening_ports": 0}).to_html()
    assert "child processes still running" in html and "{'children'" not in html
    assert html.count(">leak<") == 1 and html.count(">none<") == 2
