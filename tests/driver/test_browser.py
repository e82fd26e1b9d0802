"""The real-browser client: the backend's own page in headless Chromium,
driven by the same steps, sends what the synthetic client sends. Skipped,
saying why, where Playwright or a browser is missing; the errors that say
what to install are tested everywhere."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import sys
from pathlib import Path

import psutil
import pytest

from leaklab.driver import browser as browser_mod
from leaklab.driver.browser import BrowserClient, BrowserMissing, UnsupportedStep, find_browser
from leaklab.driver.client import PAGE_OPEN_REQUESTS, PAGE_SWITCH_REQUESTS
from leaklab.driver.scenarios import CycleState, Scenario, close, connect, steps_scenario, switch, text
from leaklab.session import LeakSession
from leaklab.targets import resolve_target
from tests.attach.conftest import clean_imports, olv_app, private_tmp  # noqa: F401  (fixtures)
from tests.driver.browsers import needs_browser
from tests.conftest import reference_backend, run_async

OPEN = [request for request, _ in PAGE_OPEN_REQUESTS]
AFTER_SWITCH = [request for request, _ in PAGE_SWITCH_REQUESTS]


def test_no_browser_says_what_to_install(monkeypatch):
    monkeypatch.setattr(shutil, "which", lambda name: None)
    monkeypatch.setattr(sys, "platform", "linux")
    with pytest.raises(BrowserMissing, match=r"apt-get install chromium.*Edge is already there"):
        find_browser()
    with pytest.raises(BrowserMissing, match="no browser at '/no/such/chrome'"):
        find_browser("/no/such/chrome")


def test_no_playwright_says_what_to_install(monkeypatch):
    monkeypatch.setattr(browser_mod, "find_browser", lambda executable=None: "/usr/bin/chromium")
    monkeypatch.setitem(sys.modules, "playwright.async_api", None)
    with pytest.raises(BrowserMissing, match=r"pip install 'leaklab\[browser\]'"):
        BrowserClient()


def _state(srv, client: BrowserClient) -> CycleState:
    return CycleState(host=srv.host, port=srv.port, ws_path="/client-ws", proxy_path=None,
                      characters=("shizuku.yaml", "natori.yaml"), cycle=0, timeout_s=30, browser=client)


@pytest.mark.extended  # end to end, 5-10 s: run by .ci/run after the suite
@needs_browser
def test_browser_page_takes_the_steps_and_sends_what_the_page_sends():
    # GIVEN the reference backend and one headless browser
    async def main():
        async with reference_backend(heavy_init_s=0.05) as (app, srv):
            async with BrowserClient(timeout_s=30) as client:
                seen = {"browser_pids": client.pids()}
                own = {c.pid for c in psutil.Process().children(recursive=True)}
                state = _state(srv, client)
                # WHEN a cycle opens the page, chats, switches, chats, closes
                live = []

                async def note(_state):
                    live.append(len(app.state.handler.client_connections))

                await Scenario("page", [connect(), text(), note, switch(), text(), close()]).run_cycle(state)
                for _ in range(50):  # the server sees the socket go
                    if not app.state.handler.client_connections:
                        break
                    await asyncio.sleep(0.1)
                seen.update(state=state, live=live, after=len(app.state.handler.client_connections),
                            own=own, histories=app.state.history.list_histories("shizuku_001"))
                # an abrupt tab: left after backend-synth-complete, playback never acknowledged
                abrupt = _state(srv, client)
                await steps_scenario("connect,text-until-synth,close").run_cycle(abrupt)
                seen["abrupt"] = abrupt
                # a bare connect is no page's
                bare = _state(srv, client)
                with pytest.raises(UnsupportedStep, match="synthetic client"):
                    await steps_scenario("connect:bare,close").run_cycle(bare)
            seen["pids_after"] = client.pids()
            seen["seen_pids"] = client.seen_pids
        return seen

    seen = run_async(main())
    state = seen["state"]
    # THEN the page sent what upstream's page sends, step by step
    assert [r.as_dict() for r in state.step_log] == [
        {"step": "connect", "sent": OPEN},
        {"step": "text", "sent": ["text-input", "frontend-playback-complete"]},
        {"step": "note", "sent": []},
        {"step": "switch", "sent": ["switch-config", *AFTER_SWITCH]},
        {"step": "text", "sent": ["text-input", "frontend-playback-complete"]},
        {"step": "close", "sent": []},
    ]
    assert len(state.turns) == 2 and all(t.chain_end_s is not None for t in state.turns)
    assert state.sessions_ended == 1 and len(state.connect_s) == 1
    # one session on the server while the tab was open, none after it closed
    assert seen["live"] == [1] and seen["after"] == 0
    # the page's create-new-history after the switch holds the second turn
    assert [h["messages"] for h in seen["histories"]] == [2]
    assert [r.as_dict()["sent"] for r in seen["abrupt"].step_log] == [OPEN, ["text-input"], []]
    # the browser's processes are named, all under this process, and gone after
    assert seen["browser_pids"] and seen["browser_pids"] <= seen["own"]
    assert seen["pids_after"] == set()
    assert seen["browser_pids"] <= seen["seen_pids"]


@needs_browser
@pytest.mark.extended  # the reference's page in the browser is the suite's (the same page, upstream's title)
def test_browser_drives_the_test_apps_page(olv_app):  # noqa: F811
    # GIVEN the upstream-shaped test app (MCP off), served at / as upstream serves frontend/
    conf = olv_app / "conf.yaml"
    conf.write_text(conf.read_text().replace("use_mcpp: true", "use_mcpp: false"))
    target = resolve_target("olv", app_dir=olv_app)

    async def main():
        session = LeakSession(target, runs_dir=False, progress=False, measure=False)
        await session.start()
        try:
            async with BrowserClient(timeout_s=30) as client:
                state = _state(session.server, client)
                state.characters = target.characters
                # WHEN its page opens, chats, switches and closes
                await steps_scenario("connect,text,switch,close").run_cycle(state)
                folder = Path(os.getcwd()) / "chat_history" / "mao_pro_001"
                stored = [json.loads(p.read_text()) for p in folder.glob("*.json")]
        finally:
            await session.stop()
        return state, stored

    state, stored = run_async(main(), allow_loop_errors=True)
    # THEN its page sent what upstream's page sends, and the turn went to the page's new history
    assert [r.as_dict()["sent"] for r in state.step_log] == [
        OPEN, ["text-input", "frontend-playback-complete"], ["switch-config", *AFTER_SWITCH], []]
    assert sum(1 for h in stored if [m["role"] for m in h] == ["metadata", "human", "ai"]) == 1


@pytest.mark.extended  # end to end, 5-10 s: run by .ci/run after the suite
@needs_browser
@pytest.mark.timeout(180)
def test_a_session_with_the_browser_client_counts_tabs_not_the_browser():
    # GIVEN a session whose tabs are real pages of the reference's own page, C9 on (close() never runs)
    seen = {}

    async def main():
        session = LeakSession("reference", faults="C9", client="browser", settle_s=0.2, timeline_s=0.5,
                              progress=False, runs_dir=False)
        await session.start()
        try:
            seen["browser_pids"] = session.browser.pids()
            result = await session.run("open-close", 3)
        finally:
            await session.stop()
        seen["orphans"], seen["reaped"], seen["idle"] = session.orphans, session.reaped, session.idle_threads
        return result

    # WHEN three page opens and closes run
    result = run_async(main(), allow_loop_errors=True)
    assert result.errors == [], result.errors
    # THEN one context per tab, and close() ran for none (C9); the page's requests were sent
    created = [r.get("lifecycle_objects:ServiceContext.close") for r in result.records[1:]]
    assert created == [1, 1, 1], created
    assert result.summary()["lifecycle"]["ServiceContext.close"]["calls"] == 0
    first = result.sent_steps()[0][0]
    assert first["step"] == "connect" and set(OPEN) <= set(first["sent"])
    # the browser's processes were never the backend's children, nor reaped, and none is left
    assert seen["browser_pids"] and all(r.get("children", 0) == 0 for r in result.records)
    assert seen["orphans"]["children"] == 0 and not [r for r in seen["reaped"] if "chrom" in r.lower()]
    # the backend's MCP stdio pool's idle anyio worker (it ends with the loop's main task) is said, not left behind
    assert seen["orphans"]["threads"] == 0 and all("idle pool worker" in line for line in seen["idle"])
    assert not [p for p in seen["browser_pids"] if psutil.pid_exists(p)
                and psutil.Process(p).status() != psutil.STATUS_ZOMBIE]
