"""Did the fix run, as shown: the CLI's line per hunk, the report's tables
(a synthetic comparison, no backend)."""

from __future__ import annotations

from leaklab.cli.compare import format_comparison
from leaklab.compare import Change as Row
from leaklab.compare import Comparison, Side
from leaklab.compare.fixlines import FixChange
from leaklab.compare.hunks import Hunk
from leaklab.metrics import Change, ItemVerdict
from leaklab.report import tables

CLOSE = {"id": "app/ctx.py:11", "file": "app/ctx.py", "function": "Ctx.close", "text": "for t in tasks:",
         "lines": {"11": 0}, "entered": 0, "removed_ran": 0, "status": "never ran", "ran": 0,
         "why": "`close()` was called 0 times — that is C9", "items": ["C9"]}
SWITCH = {"id": "app/ctx.py:16", "file": "app/ctx.py", "function": "Ctx.switch", "text": "tasks.append(t)",
          "lines": {"16": 5}, "entered": 5, "removed_ran": 5, "status": "ran", "ran": 5, "why": "", "items": []}
REMOVED = {"id": "app/ctx.py:30", "file": "app/ctx.py", "function": "Ctx.old", "text": "x = 1", "lines": {},
           "entered": 0, "removed_ran": 2, "status": "ran", "ran": 0, "why": "", "items": []}


def comparison():
    coverage = {"C8": {"hunks": [CLOSE, SWITCH, REMOVED], "cycles": 5, "traced": True, "line": "your change: 3 hunks"}}
    rows = [Row("C8", "item", "verdict", ItemVerdict.TRANSIENT, ItemVerdict.TRANSIENT, Change.UNCHANGED,
                "unchanged, and your change in `Ctx.close` never ran: `close()` was called 0 times — that is C9",
                coverage="your change: 3 hunks", answer="unchanged, and ...")]
    change = FixChange(None, None, [Hunk("app/ctx.py", "Ctx.close", None, (11, 11), (11,), ())])
    return Comparison(Side("before", {}), Side("after", {}), rows, {}, {}, elapsed_s=2.0, notes=["n"], change=change,
                      coverage=coverage)


def test_the_cli_prints_one_line_per_hunk_under_the_units_first_row_and_the_answer_first():
    lines = format_comparison(comparison()).splitlines()
    assert lines[2].startswith("C8  verdict") and lines[2].endswith("unchanged")
    assert lines[3] == "      unchanged, and your change in `Ctx.close` never ran: `close()` was called 0 times — that is C9"
    assert lines[4:7] == [
        "      your change: app/ctx.py:11 Ctx.close: never ran — `close()` was called 0 times — that is C9",
        "      your change: app/ctx.py:16 Ctx.switch: ran 5×, every cycle; the code it replaced ran 5× before",
        "      your change: app/ctx.py:30 Ctx.old: removed; it ran 2× before"]


def test_the_tables_show_the_change_column_and_a_row_per_hunk():
    result = comparison()
    frame = tables.comparison(result).data
    assert list(frame.columns)[-1] == "your change" and frame["your change"][0] == "your change: 3 hunks"
    hunks = tables.fix_lines(result).data
    assert list(hunks["ran"]) == ["never ran: `close()` was called 0 times — that is C9",
                                  "ran 5×, every cycle; the code it replaced ran 5× before", "removed; it ran 2× before"]
    # a comparison without coverage keeps its old columns
    result.rows[0].coverage, result.coverage = "", {}
    assert "your change" not in tables.comparison(result).data.columns
    result.change = FixChange(None, None, [])
    assert list(tables.fix_lines(result).data["ran"]) == ["no code change between the sides"]
    # the JSON carries the same
    d = comparison().as_dict()
    assert d["coverage"]["C8"]["hunks"][0]["status"] == "never ran" and d["change"]["hunks"][0]["function"] == "Ctx.close"
    assert d["rows"][0]["coverage"] == "your change: 3 hunks"
