"""A run's summary on the reference backend: with no faults nothing is
flagged in any scenario and nothing is left; each kind of signal a fault
leaves (a type, a task, a resource, a folder, a container, a lifecycle
call, the LLM's latency) is measured where the rules read it. What each
fault does is measured plainly in tests/backend/test_faults.py; how each
signal is judged, in tests/test_analysis.py and tests/checklist/test_rules.py."""

from __future__ import annotations

import dataclasses
import json
import tempfile
import time

import pytest

from leaklab import metrics
from leaklab.cli import format_lifecycle
from leaklab.driver.scenarios import CycleState
from leaklab.metrics import Kind, Verdict
from leaklab.probes import CallCounter, InstanceTracker, lifecycle_objects
from leaklab.session import LeakSession, run_async
from tests.conftest import kill_children, server_children
from tests.conftest import run_async as run_on_loop


def summary_of(scenario, cycles, faults=None, tmp_path=None, timeline_s=None, **options):
    async def go():
        result = await run_async(
            "reference", scenario, cycles, faults=faults, options=options,
            runs_dir=tmp_path, progress=False, timeline_s=timeline_s,
        )
        return result

    result = run_on_loop(go(), allow_loop_errors=True)
    summary = result.summary()
    json.dumps(summary, allow_nan=False)  # JSON-ready
    return result, summary


def judged(summary, metric):
    """The verdict of a flagged metric name, wherever the summary files it."""
    kind, name = metrics.kind_of(metric), metrics.subject_of(metric)
    if kind is Kind.TYPE:
        return summary["types"][name]["verdict"]
    if kind is Kind.TASK:
        return summary["tasks"]["by_coroutine"][name]["verdict"]
    if kind is Kind.CONTAINER:
        return next(c["verdict"] for c in summary["containers"] if c["path"] == name)
    if metric == "tasks":
        return summary["tasks"]["verdict"]
    return summary["resources"][metric]["verdict"]


def container(summary, suffix):
    return next((c for c in summary["containers"] if c["path"].endswith(suffix)), None)


# Contexts closed per run of 3 cycles: one a session, except in the reconnect
# storm (several clients a cycle; the half-open ones end when the ping gives
# up, whenever that is) and through the proxy (its clients share one context).
SESSIONS_ENDED = {"reconnect-storm": None, "proxy-chat": 0}
# The reconnect storm last: its half-open clients are still going when its cycles end.
SCENARIOS = ["open-close", "chat", "switch", "switch-then-close", "abrupt-chat", "proxy-chat", "reconnect-storm"]


@pytest.fixture(scope="module")
def no_fault_runs(tmp_path_factory):
    """The fixed reference backend, started once, through 3 cycles of each
    scenario in turn; a private temp folder (other processes may use /tmp
    meanwhile). The runs, what was left at the end, the runs folder."""
    root = tmp_path_factory.mktemp("no-faults")
    private, runs = root / "tmp", root / "runs"
    private.mkdir()
    saved_tempdir = tempfile.tempdir
    tempfile.tempdir = str(private)

    async def go():
        session = await LeakSession("reference", runs_dir=runs, progress=False).start()
        results = {}
        try:
            for scenario in SCENARIOS:
                # then half a second of timeline (growth that lasts longer is
                # flagged as a leak, shorter as transient: either fails below),
                # except where the half-open clients must be seen to go
                options = dataclasses.replace(session.options, timeline_s=None if scenario == "reconnect-storm" else 0.5)
                results[scenario] = await session.run(scenario, 3, options=options)
        finally:
            orphans = await session.stop()
        return results, orphans

    try:
        results, orphans = run_on_loop(go(), allow_loop_errors=True)
    finally:
        tempfile.tempdir = saved_tempdir
    return results, {**orphans, "temp_files": sorted(p.name for p in private.iterdir())}, runs


@pytest.mark.lowest_env
@pytest.mark.parametrize("scenario", SCENARIOS)
def test_no_faults_nothing_flagged_nothing_left_and_run_saved(scenario, no_fault_runs):
    # GIVEN the fixed reference backend WHEN 3 cycles of the scenario run
    # (enough to judge: a leak of one object a cycle is flagged in 3)
    results, left, runs = no_fault_runs
    result = results[scenario]
    s = result.summary()
    json.dumps(s, allow_nan=False)  # JSON-ready
    # THEN no metric is a leak or transient
    if scenario == "reconnect-storm":
        # Half-open clients are held until the ping times out (1 s + 1 s):
        # transient by design, never a leak.
        assert not [m for m in s["flagged"] if judged(s, m) == Verdict.LEAK], s["flagged"]
        c = container(s, "handler.client_connections")
        assert c["verdict"] == Verdict.TRANSIENT and s["types"]["ServiceContext"]["lifetime_s"] <= 3.5
    else:
        assert s["flagged"] == [], (scenario, s["flagged"])
    assert s["errors"] == []
    # nothing the cycles created is alive after the timeline, but the proxy's own open session
    if scenario == "proxy-chat":
        assert s["survivors"]["open"] == {"ServiceContext": 1}, s["survivors"]
    elif scenario != "reconnect-storm":
        assert s["survivors"] == {"alive": {}, "open": {}}, s["survivors"]
    # close() ran for every context still open when its session ended
    close = s["lifecycle"]["ServiceContext.close"]
    ended = SESSIONS_ENDED.get(scenario, 3)
    assert close["calls"] == close["expected"] and close["objects"]["ran_for"] == close["objects"]["of"], close
    if ended is not None:
        assert (close["calls"], close["objects"]["of"]) == (ended, ended), close
    if ended:
        assert format_lifecycle("ServiceContext.close", close).startswith(
            f"lifecycle ServiceContext.close: ran for {ended} of {ended} contexts still open when their session ended")
    # nothing is left once the backend stopped: no child, thread, port or temp
    # file (children and threads that pile up per cycle are flagged above)
    assert left == {"children": 0, "threads": 0, "listening_ports": 0, "temp_files": []}
    # and the run is saved
    saved = runs / result.run_id
    assert {p.name for p in saved.iterdir()} == {"census.csv", "timeline.csv", "meta.json"}
    meta = json.loads((saved / "meta.json").read_text())
    assert meta["scenario"] == scenario and meta["cycles"] == 3 and "python" in meta["versions"]
    if scenario in ("chat", "switch"):
        # replies came back, the LLM's share of each timed apart
        assert s["latency_ms"]["first"] is not None and s["latency_ms"]["llm"]["first"] > 0, s["latency_ms"]


def test_c9_lifecycle_close_counted_per_context():
    # GIVEN the reference backend with C9 (close() is never reached) WHEN 3 open-close cycles run
    async def go():
        session = await LeakSession("reference", faults="C9", runs_dir=False, progress=False,
                                    settle_s=0.1, timeline_s=0.5).start()
        try:
            result = await session.run("open-close", cycles=3)
        finally:
            await session.stop()
        return result.summary()

    s = run_on_loop(go(), allow_loop_errors=True)
    close = s["lifecycle"]["ServiceContext.close"]
    # THEN close() ran for none of the 3 contexts still open when their session ended
    # (with no fault it runs for each: test_no_faults_nothing_flagged_nothing_left_and_run_saved)
    assert close["expected"] == 3 and close["calls"] == 0, close
    assert close["objects"] == {"created": 3, "closed": 0, "ran_for": 0, "of": 3,
                                "short_lived": 0, "short_lived_calls": 0}, close
    assert format_lifecycle("ServiceContext.close", close).startswith(
        "lifecycle ServiceContext.close: ran for 0 of 3 contexts still open when their session ended")
    # while the handler's dict of contexts is emptied all the same: only close() is skipped
    contexts = container(s, "handler.client_contexts")
    assert contexts["end"] == 0 and contexts["verdict"] == Verdict.NONE, contexts


class Client:
    def aclose(self) -> None:
        pass


def test_lifecycle_objects_tells_short_lived_clients_from_the_sessions_own():
    # GIVEN one cycle of two sessions: each lists tools with 2 clients closed before its
    # disconnect, and keeps its own client, closed after the disconnect (first) or never
    # (second); a third session is still open at the census
    tracker = InstanceTracker({"Client": Client}).install()
    counter = CallCounter({"Client.aclose": (Client, "aclose")}, per_instance=True,
                          created_at=tracker.created_at).install()
    kept = []
    try:
        since, created_before = time.monotonic(), tracker.created_counts()
        state = CycleState("127.0.0.1", 0, "/client-ws", None, (), 1, 1.0)
        for own_closed in (True, False):
            for _ in range(2):
                Client().aclose()
            kept.append(Client())
            state.closed_at.append(time.monotonic())
            state.sessions_ended += 1
            if own_closed:
                kept[-1].aclose()
        kept.append(Client())
        # WHEN the census counts the cycle per object
        rec = lifecycle_objects(counter, tracker, {"Client.aclose": "Client"}, since=since,
                                created_before=created_before, disconnects=state.closed_at,
                                now=time.monotonic(), created_now=tracker.created_counts())
    finally:
        counter.uninstall()
        tracker.uninstall()
    # THEN the 4 short-lived clients are told apart: aclose ran for 1 of the 2 sessions' own clients
    assert {metrics.kind_of(k).value: v for k, v in rec.items()} == {
        "lifecycle_objects": 7, "lifecycle_closed": 5, "lifecycle_short": 4, "lifecycle_short_calls": 4,
        "lifecycle_owned": 2, "lifecycle_ran_for": 1,
    }


def test_c2_c3_c4_c6_children_cache_files_and_containers_grow(tmp_path):
    # GIVEN memory shared by every session's agent (C2), MCP servers left
    # running (C3), audio files left by cancelled turns (C4) and per-client
    # state kept by a shared engine (C6)
    # WHEN 3 abrupt chats run
    try:
        _, s = summary_of("abrupt-chat", 3, "C2,C3,C4,C6", tmp_path, timeline_s=0.5)
        # what the backend left running was ended when the session stopped, and said so: the
        # tasks that hold its MCP servers (cancelled, so the servers exit), or the servers
        left_after_stop = server_children()
    finally:
        kill_children()
    assert left_after_stop == [], left_after_stop
    tasks = [r for r in s["reaped"] if r.startswith("task ")]
    assert all(r.endswith(": cancelled") for r in tasks), tasks
    assert len(tasks) >= 3 or len(s["reaped"]) >= 4, s["reaped"]
    assert all(r.endswith(": terminated") for r in s["reaped"] if r not in tasks), s["reaped"]
    # THEN each shows in the summary where the rules read it: a resource, a
    # folder's files, a container named by its path from the app's roots
    v = s["resources"]["children"]
    assert v["verdict"] == Verdict.LEAK and v["per_cycle"] >= 1, v
    assert s["resources"]["cache_files"]["verdict"] == Verdict.LEAK, s["resources"]["cache_files"]
    for path, at_least in (("default_context.asr_engine.client_streams", 0.9),
                           ("default_context.agent_engine.memory", 1.8)):  # user + assistant a turn, at least
        c = container(s, path)
        assert c is not None and c["path"] == path, s["containers"]
        assert c["verdict"] == Verdict.LEAK and c["per_cycle"] >= at_least, c
    # the memory of the sessions that ended is measured apart: flat (C2 puts it on the shared agent)
    own = container(s, "ServiceContext[*].agent_engine.memory")
    assert own is not None and own["verdict"] == Verdict.NONE and own["end"] == 0, own
    # counted at the end too, before they were ended; unless stop() cancelled the tasks that held them
    assert s["orphans"]["children"] >= 4 or len(tasks) >= 3, (s["orphans"], s["reaped"])
