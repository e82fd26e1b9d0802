"""lifecycle_table and lifecycle_noun."""

from __future__ import annotations

import json

from leaklab.analysis import (
    judge,
    lifecycle_noun,
    lifecycle_table,
    summarize,
)


def test_lifecycle_table_sums_calls_and_expected_over_cycles():
    # GIVEN per-cycle counters; cycle 0 counts are not a cycle's and are ignored;
    # close was never called so only its expected column exists; stop has no expectation
    records = [
        {"cycle": 0, "lifecycle:Ctx.open": 9, "expected:Ctx.open": 0},
        {"cycle": 1, "lifecycle:Ctx.open": 1, "expected:Ctx.open": 1, "expected:Ctx.close": 1, "lifecycle:Ctx.stop": 1},
        {"cycle": 2, "lifecycle:Ctx.open": 2, "expected:Ctx.open": 1, "expected:Ctx.close": 1},
        {"cycle": 3, "expected:Ctx.open": 1, "expected:Ctx.close": 1},
    ]
    # WHEN tabulated
    table = lifecycle_table(records)
    # THEN sums over cycles 1..N, missing counts are 0, missing expectation None
    assert table == {
        "Ctx.close": {"calls": 0, "expected": 3},
        "Ctx.open": {"calls": 3, "expected": 3},
        "Ctx.stop": {"calls": 1, "expected": None},
    }
    assert all(type(v["calls"]) is int for v in table.values())
    # and lifecycle counters are not judged as metrics
    assert judge(records) == {}


def test_lifecycle_table_per_object_counts_short_lived_clients_apart():
    # GIVEN an OLV-like session: each cycle opens 2 short-lived MCP clients that are
    # closed during the connect, and the session's own client, never closed; the
    # context's close ran for 1 session of 2 (and cycle 0's numbers are ignored)
    def cyc(c, ctx_closed):
        per = {"cycle": c, "t": float(c)}
        for label, created, closed, short, short_calls, owned, ran in (
            ("MCPClient.aclose", 3, 2, 2, 2, 1, 0),
            ("ServiceContext.close", 1, ctx_closed, 0, 0, 1, ctx_closed),
        ):
            per.update({f"lifecycle:{label}": closed, f"expected:{label}": 1, f"lifecycle_objects:{label}": created,
                        f"lifecycle_closed:{label}": closed, f"lifecycle_short:{label}": short,
                        f"lifecycle_short_calls:{label}": short_calls, f"lifecycle_owned:{label}": owned,
                        f"lifecycle_ran_for:{label}": ran})
        return per

    records = [{**cyc(0, 1), "lifecycle_objects:MCPClient.aclose": 50}, cyc(1, 1), cyc(2, 0),
               {"cycle": 3, "t": 3.0, "lifecycle:ASR.cleanup_client": 1, "expected:ASR.cleanup_client": 1}]
    # WHEN tabulated
    table = lifecycle_table(records)
    # THEN the raw calls are there, and per object the session's client was never closed
    assert table["MCPClient.aclose"] == {
        "calls": 4, "expected": 2,
        "objects": {"created": 6, "closed": 4, "ran_for": 0, "of": 2, "short_lived": 4, "short_lived_calls": 4},
    }
    assert table["ServiceContext.close"]["objects"]["ran_for"] == 1
    assert table["ServiceContext.close"]["objects"]["of"] == 2
    # a class whose objects are not tracked: calls only, no "objects" key
    assert table["ASR.cleanup_client"] == {"calls": 1, "expected": 1}
    assert all(type(n) is int for v in table.values() for n in v.get("objects", {}).values())
    # the per-object columns are not judged as metrics either, and the summary is strict JSON
    assert judge(records) == {}
    assert json.loads(json.dumps(summarize(records, None)["lifecycle"], allow_nan=False)) == table


def test_lifecycle_noun_from_the_class_name():
    assert lifecycle_noun("MCPClient.aclose") == "clients"
    assert lifecycle_noun("ServiceContext.close") == "contexts"
    assert lifecycle_noun("BasicMemoryAgent.close") == "agents"
    assert lifecycle_noun("FakeASR.cleanup_client") == "asrs"
