"""Slow-downs as hunt findings: on the checklist when the stored state the
function scales with is a signal an item reads through the roles, else not
(synthetic summaries, made-up names)."""

from __future__ import annotations

from leaklab.analysis.time import time_summary
from leaklab.hunt import Finding, checklist_rows
from leaklab.hunt.slows import covering_items, slow_signature
from leaklab.metrics import ItemVerdict, Kind, Verdict, name
from leaklab.targets.base import Roles

ROLES = Roles(session_type="Sess", history=("sqlite", "chat.db"), connections="hub.registry").as_dict()
SLOW = name(Kind.TIME, "app.store.load_all")
STEADY = name(Kind.TIME, "app.reply.render")


def census(scales_with: str) -> list[dict]:
    rows = [{"cycle": 0, "loop_blocked_ms": 0.0, scales_with: 0.0, "latency_end_ms": 500.0}]
    for c in range(1, 9):
        rows.append({"cycle": c, "loop_blocked_ms": 0.0, SLOW: 10.0 + 4.0 * c, STEADY: 20.0,
                     scales_with: 3.0 * c, "latency_end_ms": 500.0 + 13 * c % 7})
    return rows


def test_a_function_that_scales_with_the_history_store_is_on_the_checklist():
    rows = census("db_rows")
    time = time_summary(rows, {"functions": {"app.store.load_all": {"file": "/app/store.py", "line": 12}}})
    [slow] = slow_signature(time, rows, ROLES)
    assert slow["function"] == "app.store.load_all" and slow["scales_with"] == "db_rows"
    assert slow["per_cycle"] == 4.0 and (slow["file"], slow["line"]) == ("/app/store.py", 12)
    assert slow["items"] == ["C5"]


def test_a_function_that_scales_with_state_no_item_reads_is_not_on_the_checklist():
    rows = census("container:hub.cache.entries")
    [slow] = slow_signature(time_summary(rows), rows, ROLES)
    assert slow["scales_with"] == "container:hub.cache.entries" and slow["items"] == []
    # the registry of connections is C7's signal; a reply time is no stored state
    assert covering_items("container:hub.registry", ROLES) == ["C7"]
    assert covering_items("latency_end_ms", ROLES) == covering_items(None, ROLES) == []
    assert covering_items("loop_blocked_ms", ROLES) == covering_items(SLOW, ROLES) == []
    # no history role declared: db_rows is on no item
    assert covering_items("db_rows", Roles(session_type="Sess").as_dict()) == []


def test_a_slows_finding_says_its_function_and_not_on_the_checklist():
    slow = {"function": "app.store.load_all", "file": "/app/store.py", "line": 12, "first": 14.0, "last": 42.0,
            "per_cycle": 4.0, "scales_with": "container:hub.cache.entries", "items": []}
    f = Finding("connect,text,close", "connect,text,close", {SLOW: 4.0}, kind=Verdict.SLOWS, slow=slow,
                confirmed=Verdict.SLOWS)
    assert f.where() == "not on the checklist" and not f.on_checklist
    assert f.describe() == ("slows: app.store.load_all (store.py:12): 14 -> 42 ms/cycle, +4 ms each cycle; "
                            "scales with container:hub.cache.entries; not on the checklist")
    d = f.as_dict()
    assert d["kind"] == "slows" and d["slow"]["per_cycle"] == 4.0 and d["where"] == "not on the checklist"
    [row] = checklist_rows([d])
    assert row["verdict"] == ItemVerdict.CONFIRMED
    assert "not on the checklist" in row["evidence"]["answer"] and "app.store.load_all" in row["evidence"]["answer"]
    covered = Finding("connect,text", "connect,text", {SLOW: 4.0}, kind=Verdict.SLOWS,
                      slow={**slow, "scales_with": "db_rows", "items": ["C5"]}, items=["C5"])
    assert covered.where() == "C5" and "not on the checklist" not in covered.describe()
    assert checklist_rows([covered]) == []
    # a leak finding reads as before
    leak = Finding("connect,close", "connect,close", {"type:Sess": 1.0}, minimised=True)
    assert leak.describe() == "grows: type:Sess +1/cycle" and leak.kind == Verdict.LEAK


def test_one_finding_per_run_the_apps_own_function_first_the_rest_named_with_it():
    from leaklab.hunt.slows import screen_slow

    rows = census("container:hub.cache.entries")
    lib = name(Kind.TIME, "somelib.client.send")
    for r in rows[1:]:
        r[lib] = 30.0 + 9.0 * r["cycle"]  # steeper, but a library's: the app's call of it is the finding
    where = {"app.store.load_all": {"file": "/app/store.py", "line": 12, "owner": "yours"},
             "somelib.client.send": {"file": "/site/somelib/client.py", "line": 3, "owner": "library somelib 1.0"}}
    time = time_summary(rows, {"functions": where})
    assert time["slows"] == ["somelib.client.send", "app.store.load_all"]
    slow = screen_slow(time, rows, ROLES)
    assert slow["function"] == "app.store.load_all" and slow["also"] == ["somelib.client.send"]
    f = Finding("connect,text", "connect,text", {SLOW: 4.0}, kind=Verdict.SLOWS, slow=slow)
    assert "1 more functions slow with it; not on the checklist" in f.describe()
    # no function of the app slows: the steepest one
    only_lib = time_summary(rows, {"functions": {**where, "app.store.load_all": {"owner": "library x 1"}}})
    assert screen_slow(only_lib, rows, ROLES)["function"] == "somelib.client.send"
    assert screen_slow(time_summary(census("db_rows")[:3]), rows, ROLES) is None
