"""Each fault's signature shows in a run's summary; with no faults nothing is flagged."""

from __future__ import annotations

import json
import time

import pytest

from leaklab.cli import format_lifecycle
from leaklab.driver.scenarios import CycleState
from leaklab.probes import CallCounter, InstanceTracker
from leaklab.session import LeakSession, run_async
from tests.conftest import kill_children, run_async as run_on_loop


def summary_of(scenario, cycles, faults=None, tmp_path=None, **options):
    async def go():
        result = await run_async(
            "reference", scenario, cycles, faults=faults, options=options,
            runs_dir=tmp_path, progress=False,
        )
        return result

    result = run_on_loop(go(), allow_loop_errors=True)
    summary = result.summary()
    json.dumps(summary, allow_nan=False)  # JSON-ready
    return result, summary


def judged(summary, metric):
    """The verdict of a flagged metric name, wherever the summary files it."""
    kind, _, name = metric.partition(":")
    if kind == "type":
        return summary["types"][name]["verdict"]
    if kind == "task":
        return summary["tasks"]["by_coroutine"][name]["verdict"]
    if kind == "container":
        return next(c["verdict"] for c in summary["containers"] if c["path"] == name)
    if metric == "tasks":
        return summary["tasks"]["verdict"]
    return summary["resources"][metric]["verdict"]


def container(summary, suffix):
    return next((c for c in summary["containers"] if c["path"].endswith(suffix)), None)


@pytest.mark.lowest_env
def test_no_faults_nothing_flagged_and_run_saved(tmp_path):
    # GIVEN the fixed reference backend WHEN 5 chat cycles run
    result, s = summary_of("chat", 5, None, tmp_path)
    # THEN no metric is a leak or transient, lifecycle calls match, nothing is left
    assert s["flagged"] == [], s["flagged"]
    close = s["lifecycle"]["ServiceContext.close"]
    assert (close["calls"], close["expected"], close["objects"]["ran_for"], close["objects"]["of"]) == (5, 5, 5, 5)
    assert s["orphans"] == {"children": 0, "threads": 0, "listening_ports": 0}
    assert s["latency_ms"]["first"] is not None
    saved = list(tmp_path.iterdir())
    assert [p.name for p in saved] == [result.run_id]
    assert {p.name for p in saved[0].iterdir()} == {"census.csv", "timeline.csv", "meta.json"}
    meta = json.loads((saved[0] / "meta.json").read_text())
    assert meta["scenario"] == "chat" and meta["cycles"] == 5 and "python" in meta["versions"]


@pytest.mark.lowest_env
@pytest.mark.parametrize("scenario", ["open-close", "switch", "switch-then-close", "abrupt-chat",
                                      "reconnect-storm", "proxy-chat"])
def test_no_faults_nothing_flagged_in_any_scenario(scenario, tmp_path):
    _, s = summary_of(scenario, 4, None, tmp_path)
    if scenario == "reconnect-storm":
        # Half-open clients are held until the ping times out (1 s + 1 s):
        # transient by design, never a leak.
        assert not [m for m in s["flagged"] if judged(s, m) == "leak"], s["flagged"]
        c = container(s, "handler.client_connections")
        assert c["verdict"] == "transient" and s["types"]["ServiceContext"]["lifetime_s"] <= 3.5
    else:
        assert s["flagged"] == [], (scenario, s["flagged"])
    assert s["errors"] == []
    assert s["orphans"] == {"children": 0, "threads": 0, "listening_ports": 0}


def test_c8_switch_then_close_transient_with_lifetime(tmp_path):
    _, s = summary_of("switch-then-close", 4, "C8", tmp_path, heavy_init_s=1.5)
    v = s["types"]["ServiceContext"]
    assert v["verdict"] == "transient", v
    assert 0.5 <= v["lifetime_s"] <= 3.0


def test_c8_switch_then_close_leak_when_init_never_ends(tmp_path):
    _, s = summary_of("switch-then-close", 4, "C8", tmp_path, heavy_init_s="inf")
    v = s["types"]["ServiceContext"]
    assert v["verdict"] == "leak" and 0.7 <= v["per_cycle"] <= 1.3, v


def test_c9_close_never_called(tmp_path):
    _, s = summary_of("open-close", 4, "C9", tmp_path)
    close = s["lifecycle"]["ServiceContext.close"]
    assert (close["calls"], close["expected"], close["objects"]["ran_for"], close["objects"]["of"]) == (0, 4, 0, 4)


def test_lifecycle_close_counted_per_context():
    # GIVEN the reference backend with C9, then fixed WHEN 3 open-close cycles run
    async def go(faults):
        session = await LeakSession("reference", faults=faults, runs_dir=False, progress=False,
                                    settle_s=0.1, timeline_s=0.5).start()
        try:
            result = await session.run("open-close", cycles=3)
        finally:
            await session.stop()
        return result.summary()["lifecycle"]["ServiceContext.close"]

    for faults, ran in (("C9", 0), (None, 3)):
        close = run_on_loop(go(faults), allow_loop_errors=True)
        # THEN close() ran for 0 (C9), then 3, of the 3 contexts still open when their session ended
        assert close["expected"] == 3 and close["calls"] == ran, (faults, close)
        assert close["objects"] == {"created": 3, "closed": ran, "ran_for": ran, "of": 3,
                                    "short_lived": 0, "short_lived_calls": 0}, (faults, close)
        assert format_lifecycle("ServiceContext.close", close).startswith(
            f"lifecycle ServiceContext.close: ran for {ran} of 3 contexts still open when their session ended")


class Client:
    def aclose(self) -> None:
        pass


def test_lifecycle_objects_tells_short_lived_clients_from_the_sessions_own():
    # GIVEN one cycle of two sessions: each lists tools with 2 clients closed before its
    # disconnect, and keeps its own client, closed after the disconnect (first) or never
    # (second); a third session is still open at the census
    session = LeakSession("reference", runs_dir=False, progress=False)
    tracker = InstanceTracker({"Client": Client}).install()
    counter = CallCounter({"Client.aclose": (Client, "aclose")}, per_instance=True,
                          created_at=tracker.created_at).install()
    kept = []
    try:
        session._tracker, session._calls = tracker, counter
        session._lifecycle_types = {"Client.aclose": "Client"}
        session._objects_since = (time.monotonic(), tracker.created_counts())
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
        rec = session._lifecycle_objects(state)
    finally:
        counter.uninstall()
        tracker.uninstall()
    # THEN the 4 short-lived clients are told apart: aclose ran for 1 of the 2 sessions' own clients
    assert {k.split(":")[0]: v for k, v in rec.items()} == {
        "lifecycle_objects": 7, "lifecycle_closed": 5, "lifecycle_short": 4, "lifecycle_short_calls": 4,
        "lifecycle_owned": 2, "lifecycle_ran_for": 1,
    }


def test_c3_chat_children_grow(tmp_path):
    try:
        _, s = summary_of("chat", 4, "C3", tmp_path)
    finally:
        kill_children()
    v = s["resources"]["children"]
    assert v["verdict"] == "leak" and v["per_cycle"] >= 1, v


def test_c4_abrupt_chat_cache_files_grow(tmp_path):
    _, s = summary_of("abrupt-chat", 4, "C4", tmp_path)
    assert s["resources"]["cache_files"]["verdict"] == "leak"


def test_c6_growing_container_with_path(tmp_path):
    _, s = summary_of("open-close", 5, "C6", tmp_path)
    c = container(s, "asr_engine.client_streams")
    assert c is not None and c["verdict"] == "leak" and c["per_cycle"] >= 0.9, s["containers"]


def test_c7_reconnect_storm_client_connections_grow(tmp_path):
    _, s = summary_of("reconnect-storm", 4, "C7", tmp_path)
    c = container(s, "handler.client_connections")
    assert c is not None and c["verdict"] == "leak", s["containers"]


def test_c7_off_half_open_clients_are_transient_or_none(tmp_path):
    _, s = summary_of("reconnect-storm", 4, None, tmp_path)
    assert not any(m.endswith("client_connections") for m in s["flagged"] if "leak" in m), s["flagged"]
    c = container(s, "handler.client_connections")
    assert c is None or c["verdict"] != "leak"


@pytest.mark.parametrize("fault", ["C2", "C5"])
def test_c2_c5_latency_slope(fault, tmp_path):
    _, s = summary_of("chat", 6, fault, tmp_path, llm_latency_per_kchar_s=0.3)
    # end-to-end latency carries MCP start-up noise; the LLM share is what a bigger prompt slows
    assert s["latency_ms"]["llm"]["verdict"] == "slows", s["latency_ms"]
    if fault == "C2":
        c = container(s, "default_context.agent_engine.memory")
        assert c is not None and c["verdict"] == "leak"
    else:
        assert s["resources"]["db_rows"]["verdict"] == "normal"


def test_c1_proxy_chat_forward_tasks_counted(tmp_path):
    _, s = summary_of("proxy-chat", 4, "C1", tmp_path)
    v = s["tasks"]["by_coroutine"].get("ProxyMessageQueue._forward_message")
    assert v is not None and v["verdict"] == "leak" and v["per_cycle"] >= 0.7, s["tasks"]


def test_cli_run_json_contract(tmp_path):
    import subprocess
    import sys

    # GIVEN `leaklab run --json` WHEN it runs 3 cycles with C8 and a never-ending init
    out = subprocess.run(
        [sys.executable, "-m", "leaklab.cli", "run", "--target", "reference", "--scenario", "switch-then-close",
         "--cycles", "3", "--faults", "C8", "--option", "heavy_init_s=inf", "--runs-dir", str(tmp_path), "--json"],
        capture_output=True, text=True, timeout=300,
    )
    assert out.returncode == 0, out.stderr
    # THEN stdout is exactly one JSON object with the documented keys
    s = json.loads(out.stdout)
    assert {"types", "tasks", "resources", "lifecycle", "containers", "latency_ms", "orphans",
            "run_id", "target", "scenario", "faults", "cycles"} <= set(s)
    assert {"start", "end", "per_cycle", "verdict", "lifetime_s"} <= set(s["types"]["ServiceContext"])
    assert s["types"]["ServiceContext"]["verdict"] == "leak"
    assert "by_coroutine" in s["tasks"] and s["tasks"]["by_coroutine"]["ServiceContext._finish_heavy_init"]["end"] == 3
    assert {"children", "fds", "cache_files", "db_rows", "rss_mb"} <= set(s["resources"])
    close = s["lifecycle"]["ServiceContext.close"]
    assert (close["calls"], close["expected"], close["objects"]["ran_for"], close["objects"]["of"]) == (3, 3, 3, 3)
    assert {"first", "last", "per_cycle"} <= set(s["latency_ms"])
    assert s["orphans"] == {"children": 0, "threads": 0, "listening_ports": 0}
    assert s["target"] == "reference" and s["scenario"] == "switch-then-close" and s["faults"] == ["C8"] and s["cycles"] == 3


def test_generic_target_by_import_path_watches_service_context_by_name(tmp_path):
    # GIVEN the reference factory attached as a plain import path
    result = run_on_loop(run_async("leaklab.backend:create_app", "switch-then-close", 3, faults="C8",
                                   options={"heavy_init_s": "inf"}, runs_dir=tmp_path, progress=False,
                                   timeline_s=0.5), allow_loop_errors=True)
    s = result.summary()
    # THEN ServiceContext is found by name and its leak is seen
    assert s["types"]["ServiceContext"]["verdict"] == "leak"


def test_cli_why_json_contract():
    import subprocess
    import sys

    out = subprocess.run(
        [sys.executable, "-m", "leaklab.cli", "why", "--target", "reference", "--faults", "C8", "--option",
         "heavy_init_s=inf", "--scenario", "switch-then-close", "--cycles", "3", "--json"],
        capture_output=True, text=True, timeout=300,
    )
    assert out.returncode == 0, out.stderr
    d = json.loads(out.stdout)
    assert {"groups", "elapsed_s"} <= set(d)
    ctx = next(g for g in d["groups"] if g["type"] == "ServiceContext")
    assert {"type", "count", "root_kind", "chain", "deep_bytes", "retained_bytes"} <= set(ctx)
    assert ctx["count"] == 3 and ctx["root_kind"] == "pending_task"
    assert ctx["chain"][0]["kind"] == "task" and "_finish_heavy_init" in ctx["chain"][0]["label"]
    assert ctx["chain"][0]["where"].startswith("leaklab/backend/service_context.py:")
    assert ctx["chain"][-1]["label"] == "coroutine frame local 'self'"
