"""Where the loop's time goes, judged and explained, on synthetic records."""

from __future__ import annotations

import pytest

from leaklab.analysis import summarize
from leaklab.analysis.time import explain_slow, time_summary
from leaklab.metrics import Verdict

pytestmark = pytest.mark.lowest_env


def records(n: int = 10) -> list[dict]:
    # a reader that takes 2 ms more each cycle as the store gains 10 rows; a steady function; the loop's gauges
    out = [{"cycle": 0, "t": 0.0, "db_rows": 0}]
    for c in range(1, n + 1):
        out.append({"cycle": c, "t": float(c), "db_rows": 10 * c, "loop_lag_max_ms": 25.0, "loop_blocked_ms": 25.0,
                    "loop_stalls": 1.0, "cpu_ms": 100.0, "children_cpu_ms": 0.0,
                    "time:app.history.list_all": 10.0 + 2.0 * c, "time:app.chat.reply": 30.0 + (c % 2)})
    return out


DETAILS = {"functions": {"app.history.list_all": {"file": "/app/history.py", "line": 40, "owner": "yours"}},
           "stalls": [{"cycle": 10, "lag_ms": 26.0, "function": "app.history.list_all", "file": "/app/history.py",
                       "line": 41, "coroutine": "handle_page_load", "owner": "yours",
                       "stack": [["app.ws", "handle_page_load", "/app/ws.py", 12],
                                 ["app.history", "list_all", "/app/history.py", 41]]}],
           "idle": {"wall_s": 2.0, "cpu_s": 0.0, "ratio": 0.0}}


def test_a_function_two_ms_slower_each_cycle_slows_and_a_steady_one_does_not():
    time = time_summary(records(), DETAILS)
    assert time["slows"] == ["app.history.list_all"]
    f = time["functions"]["app.history.list_all"]
    assert f["verdict"] == "slows" and abs(f["per_cycle"] - 2.0) < 1e-6 and f["line"] == 40
    assert time["functions"]["app.chat.reply"]["verdict"] == "none"
    # the loop's own gauges are judged as timings, not as growth of a leak
    assert time["loop"]["loop_blocked_ms"]["verdict"] == "none"
    summary = summarize(records(), None, loop=DETAILS)
    assert "time:app.history.list_all" not in summary["other"] and "loop_blocked_ms" not in summary["other"]


def test_the_slowest_function_is_explained_with_its_step_callers_and_what_it_scales_with():
    why = explain_slow(records(), time_summary(records(), DETAILS))
    assert why["function"] == "app.history.list_all" and why["coroutine"] == "handle_page_load"
    assert why["callers"] == ["handle_page_load (ws.py:12)", "list_all (history.py:41)"]
    assert why["scales_with"]["metric"] == "db_rows" and why["scales_with"]["r"] == 1.0


def test_no_loop_columns_no_time_section():
    assert time_summary([{"cycle": 0, "t": 0.0}, {"cycle": 1, "t": 1.0, "tasks": 1}]) == {}


def test_too_few_cycles_or_a_rise_of_one_sample_do_not_slow():
    # GIVEN a function sampled 0, 0, 10.7 ms over three cycles (one 10 ms sample more)
    recs = [{"cycle": 0, "t": 0.0}] + [{"cycle": c, "t": float(c), "loop_blocked_ms": 0.0, "time:app.f": v}
                                       for c, v in enumerate([0.0, 0.0, 10.7], 1)]
    # THEN that is not enough to say it slows
    assert time_summary(recs)["slows"] == []


def nested(n: int = 10, calibration=lambda c: 3.0) -> list[dict]:
    # the page handler calls the reader: both inclusive times grow 2 ms a cycle,
    # the server's loop step above them too; the census times the calibration workload
    out = [{"cycle": 0, "t": 0.0, "db_rows": 0}]
    for c in range(1, n + 1):
        out.append({"cycle": c, "t": float(c), "db_rows": 10 * c, "loop_blocked_ms": 0.0, "cpu_ms": 100.0,
                    "calibration_ms": calibration(c),
                    "time:uvicorn.protocols.run_asgi": 50.0 + 2.1 * c, "time:app.ws.handle_page_load": 20.0 + 2.05 * c,
                    "time:app.history.list_all": 10.0 + 2.0 * c, "time:app.chat.reply": 30.0 + (c % 2)})
    return out


def tree(*path: str) -> dict:
    node: dict = {"name": path[-1], "children": []}
    for key in reversed(path[:-1]):
        node = {"name": key, "children": [node]}
    return {"name": "<all>", "children": [node]}


NESTED = {"functions": {"app.history.list_all": {"file": "/app/history.py", "line": 40, "owner": "yours"},
                        "app.ws.handle_page_load": {"file": "/app/ws.py", "line": 10, "owner": "yours"},
                        "uvicorn.protocols.run_asgi": {"file": "/site/uvicorn/p.py", "line": 5,
                                                       "owner": "library uvicorn 0.30"}},
          "first": tree("asyncio.events.Handle._run", "uvicorn.protocols.run_asgi", "app.ws.handle_page_load",
                        "app.history.list_all"),
          "last": tree("asyncio.events.Handle._run", "uvicorn.protocols.run_asgi", "app.ws.handle_page_load",
                       "app.history.list_all", "json.load")}


def test_the_innermost_function_that_slows_leads_and_its_callers_are_listed_as_callers():
    # GIVEN a reader whose time grows, and its callers whose (inclusive) time grows with it
    time = time_summary(nested(), NESTED)
    # THEN the reader is the cause; the callers slow because of it, not on their own
    assert time["slows"] == ["app.history.list_all"]
    assert time["callers"] == {"app.ws.handle_page_load": "app.history.list_all",
                               "uvicorn.protocols.run_asgi": "app.history.list_all"}
    assert time["functions"]["app.ws.handle_page_load"]["verdict"] == "slows"
    why = explain_slow(nested(), time)
    assert why["function"] == "app.history.list_all" and why["line"] == 40
    assert why["slowing_callers"] == ["uvicorn.protocols.run_asgi", "app.ws.handle_page_load"]


def test_a_caller_that_grows_more_than_its_callee_is_a_cause_of_its_own():
    # GIVEN the handler grows 6 ms a cycle, 2 of them its reader's
    recs = nested()
    for r in recs[1:]:
        r["time:app.ws.handle_page_load"] = 20.0 + 6.0 * r["cycle"]
    time = time_summary(recs, NESTED)
    # THEN both are causes (the server's step is the handler's caller), steepest first
    assert time["slows"] == ["app.ws.handle_page_load", "app.history.list_all"]
    assert time["callers"] == {"uvicorn.protocols.run_asgi": "app.ws.handle_page_load"}


def test_a_recursion_that_slows_is_one_cause_not_one_per_frame():
    # GIVEN a transform that recurses through a helper (each runs below the
    # other), both growing with the data they walk, under the app's caller
    recs = [{"cycle": 0, "t": 0.0}]
    for c in range(1, 11):
        recs.append({"cycle": c, "t": float(c), "loop_blocked_ms": 0.0, "calibration_ms": 3.0,
                     "time:app.agent.chat": 25.0 + 2.0 * c, "time:lib.transform.recurse": 20.0 + 2.0 * c,
                     "time:lib.transform.typeddict": 20.0 + 2.0 * c})
    details = {"functions": {"app.agent.chat": {"owner": "yours"},
                             "lib.transform.recurse": {"owner": "library lib 1.0"},
                             "lib.transform.typeddict": {"owner": "library lib 1.0"}},
               "first": tree("app.agent.chat", "lib.transform.recurse", "lib.transform.typeddict",
                             "lib.transform.recurse"),
               "last": tree("app.agent.chat", "lib.transform.recurse", "lib.transform.typeddict",
                            "lib.transform.recurse", "lib.transform.typeddict")}
    time = time_summary(recs, details)
    # THEN one of the two frames is the cause and the other its caller (the
    # app's function stays a cause of its own: a library's callee does not
    # explain the app's code)
    assert sorted(time["slows"]) == ["app.agent.chat", "lib.transform.recurse"]
    assert time["callers"] == {"lib.transform.typeddict": "lib.transform.recurse"}


def test_the_stalls_callers_chain_tells_a_caller_without_the_frame_trees():
    details = {"functions": NESTED["functions"],
               "stalls": [{"cycle": 10, "lag_ms": 30.0, "function": "app.history.list_all", "file": "/app/history.py",
                           "line": 41, "stack": [["uvicorn.protocols", "run_asgi", "/site/uvicorn/p.py", 9],
                                                 ["app.ws", "handle_page_load", "/app/ws.py", 12],
                                                 ["app.history", "list_all", "/app/history.py", 41]]}]}
    time = time_summary(nested(), details)
    assert time["slows"] == ["app.history.list_all"] and set(time["callers"]) == {
        "app.ws.handle_page_load", "uvicorn.protocols.run_asgi"}


def test_on_a_steadily_loaded_machine_slows_stays_slows():
    # GIVEN the calibration workload takes 3 ms give or take 20% noise every cycle
    time = time_summary(nested(calibration=lambda c: 3.0 + 0.6 * ((c * 7) % 3 - 1)), NESTED)
    assert time["slows"] == ["app.history.list_all"] and time["inconclusive"] == []
    assert time["control"]["grew"] is False


def test_on_a_machine_that_gets_slower_slows_is_inconclusive_with_the_reason():
    # GIVEN the same calibration workload takes 3 -> 8.4 ms over the run (the machine's load grew),
    # as much as the functions' times grew
    recs = nested(calibration=lambda c: 3.0 + 0.6 * (c - 1))
    for r in recs[1:]:
        r["latency_end_ms"] = 100.0 + 20.0 * r["cycle"]
    time = time_summary(recs, NESTED)
    # THEN nothing is said to slow: the run cannot tell the code's slow-down from the machine's
    assert time["slows"] == [] and time["callers"] == {}
    assert "app.history.list_all" in time["inconclusive"]
    f = time["functions"]["app.history.list_all"]
    assert f["verdict"] == Verdict.INCONCLUSIVE
    assert "the machine got slower during the run: calibration 3.6 -> 7.8 ms" in f["reason"]
    why = explain_slow(recs, time, "app.history.list_all")
    assert why["verdict"] == "inconclusive" and why["reason"] == f["reason"]
    # the reply time too, and the run's summary reads it as a verdict
    summary = summarize(recs, None, loop=NESTED)
    assert summary["latency_ms"]["verdict"] == "inconclusive" and "calibration" in summary["latency_ms"]["reason"]
    assert "calibration_ms" not in summary["other"]
    # a function that grew far more than the machine did still slows
    for r in recs[1:]:
        r["time:app.history.list_all"] = 1.0 + 20.0 * r["cycle"]
    assert time_summary(recs, NESTED)["slows"] == ["app.history.list_all"]


def test_a_stall_every_cycle_is_costed_per_item_of_the_store():
    # GIVEN a reader that holds the loop ~420 ms on each page load while the store holds ~3000 rows
    # (and an empty cache: not the store it is costed against)
    recs = [{"cycle": 0, "t": 0.0, "db_rows": 3000}]
    stalls = []
    for c in range(1, 7):
        recs.append({"cycle": c, "t": float(c), "db_rows": 3000 + c, "cache_files": 0, "loop_blocked_ms": 420.0,
                     "time:app.history.list_all": 400.0})
        stalls.append({"cycle": c, "lag_ms": 418.0 + c, "function": "app.history.list_all", "file": "/app/history.py",
                       "line": 44, "coroutine": "handle_page_load", "stack": []})
    time = time_summary(recs, {"functions": NESTED["functions"], "stalls": stalls})
    (b,) = time["blocking"]
    assert (b["function"], b["file"], b["line"], b["cycles"], b["of"]) == ("app.history.list_all", "/app/history.py",
                                                                         40, 6, 6)
    # the loop held 421.5 ms a time (the median stall), 400 of them sampled in the reader: 0.13 ms a stored row
    assert (b["ms"], b["function_ms"]) == (421.5, 400.0)
    assert b["store"] == {"metric": "db_rows", "size": 3004, "ms_each": round(400 / 3003.5, 4)}
    assert explain_slow(recs, time)["per_run"] == b


def test_a_callee_that_carries_its_callers_growth_leads_though_its_own_samples_cannot_tell():
    # GIVEN the reader is sampled in some cycles only (0 ms in the others: not seen there, no column yet),
    # while its caller's time, which holds it, grows steadily
    recs = nested()
    for r in recs[1:]:
        r.pop("time:uvicorn.protocols.run_asgi")
        r["time:app.history.list_all"] = 10.0 + 2.0 * r["cycle"] if r["cycle"] % 2 == 0 else 0.0
        if r["cycle"] < 2:
            del r["time:app.history.list_all"]
    assert time_summary(recs)["slows"] == ["app.ws.handle_page_load"]
    # THEN with the frame trees, the reader is the cause, its caller the caller
    time = time_summary(recs, NESTED)
    assert time["slows"] == ["app.history.list_all"] and time["callers"] == {"app.ws.handle_page_load":
                                                                             "app.history.list_all"}
    f = time["functions"]["app.history.list_all"]
    assert f["verdict"] == "slows" and f["note"].startswith("slows with its caller app.ws.handle_page_load")
    # a cycle watched where it was not sampled counted 0 ms, not unknown
    assert f["first"] == 0.0


def test_a_function_sampled_in_a_few_cycles_only_does_not_slow():
    # GIVEN a function seen in three of six cycles (0, 0, 12.6, 22.4, 35.2, 0 ms: the samples of a
    # frame on the stack by chance), as in a real run
    recs = [{"cycle": 0, "t": 0.0}] + [{"cycle": c, "t": float(c), "loop_blocked_ms": 0.0} for c in range(1, 7)]
    for c, v in ((3, 12.6), (4, 22.4), (5, 35.2), (6, 0.0)):
        recs[c]["time:lib.ws.receive"] = v
    # THEN it does not slow: three samples cannot tell a trend
    assert time_summary(recs)["functions"]["lib.ws.receive"]["verdict"] == "none"


def test_leaklab_run_prints_the_function_that_blocks_each_cycle_and_the_inconclusive_timings():
    from leaklab.cli.run import format_time

    recs = [{"cycle": 0, "t": 0.0, "db_rows": 3000}]
    stalls = []
    for c in range(1, 7):
        recs.append({"cycle": c, "t": float(c), "db_rows": 3000, "loop_blocked_ms": 420.0,
                     "time:app.history.list_all": 400.0})
        stalls.append({"cycle": c, "lag_ms": 420.0, "function": "app.history.list_all", "file": "/app/history.py",
                       "line": 44, "coroutine": "handle_page_load", "stack": []})
    text = "\n".join(format_time(time_summary(recs, {"functions": NESTED["functions"], "stalls": stalls})))
    assert ("blocks the loop each cycle: app.history.list_all (history.py:40): 420.00 ms a time (400.00 ms in it), "
            "in 6 of 6 cycles, run by handle_page_load; scales with db_rows: 3000 stored, 0.13 ms each") in text
    recs = nested(calibration=lambda c: 3.0 + 0.6 * (c - 1))
    text = "\n".join(format_time(time_summary(recs, NESTED)))
    assert "slows:" not in text and "inconclusive: 3 timings grew" in text
    assert "but the machine got slower during the run: calibration 3.6 -> 7.8 ms" in text


def test_why_slow_prints_the_cause_with_the_callers_that_slow_with_it():
    from types import SimpleNamespace

    from leaklab.cli.why import format_slow

    run = SimpleNamespace(target="t", scenario="chat", cycles_done=10, errors=[])
    text = format_slow(run, explain_slow(nested(), time_summary(nested(), NESTED)))
    assert "app.history.list_all (history.py:40): slows, +2.0 ms/cycle" in text
    assert ("its callers slow with it (not causes of their own): uvicorn.protocols.run_asgi, "
            "app.ws.handle_page_load") in text
    assert "scales with db_rows" in text
