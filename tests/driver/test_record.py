"""A session recorded from the reference's own page in headless Chromium
replays with the synthetic client: the same frames per cycle as the page
sent, the same verdicts as the browser running the same steps. Skipped,
saying why, where Playwright or a browser is missing."""

from __future__ import annotations

import asyncio

import pytest

from leaklab.driver.recording import record_page
from leaklab.driver.scenario_file import read_scenario_file, write_scenario_file
from leaklab.metrics import Verdict
from leaklab.session import LeakSession
from tests.driver.browsers import needs_browser
from tests.conftest import reference_backend, run_async

#: The reference, quick: its switch's heavy init is short.
OPTIONS = {"heavy_init_s": 0.05}


def _record(script: str):
    async def main():
        async with reference_backend(**OPTIONS) as (app, srv):
            return await record_page(srv.host, srv.port, characters=("shizuku.yaml", "natori.yaml"),
                                     target="reference", script=script, timeout_s=30)

    return run_async(main())


def _run(scenario, *, client: str = "synthetic"):
    async def main():
        session = LeakSession("reference", faults="C9", options=OPTIONS, client=client, settle_s=0.2,
                              timeline_s=0.5, progress=False, runs_dir=False)
        await session.start()
        try:
            return await session.run(scenario, 3)
        finally:
            await session.stop()

    return run_async(main(), allow_loop_errors=True)


def _verdicts(result) -> dict:
    s = result.summary()
    return {**{f"type {name}": v["verdict"] for name, v in s["types"].items()},
            "tasks": s["tasks"]["verdict"],
            **{f"lifecycle {name}": v["calls"] for name, v in s["lifecycle"].items()}}


@needs_browser
@pytest.mark.extended  # ~40 s: the default suite's proof is test_record_cli_writes_a_file_that_replays
@pytest.mark.timeout(240)
def test_a_recorded_page_replays_as_it_was_sent_and_judges_as_the_browser(tmp_path):
    # GIVEN the reference's page recorded in headless Chromium: open, switch, chat, close
    recorded = _record("connect,switch,text,close")
    path = write_scenario_file(tmp_path / "page.yaml", recorded)
    page_sent = [e["frame"]["type"] for e in recorded.frames if e["event"] == "sent"]
    assert recorded.words() == ["connect", "switch", "text", "close"] and recorded.uncovered == {}
    assert read_scenario_file(path).words() == recorded.words()
    # WHEN the file replays with the synthetic client, and the browser runs the same steps (C9: close() never runs)
    replay = _run(str(path))
    browser = _run(",".join(recorded.words()), client="browser")
    # THEN every replayed cycle sent the frames the page sent, in its order
    assert replay.errors == [] and browser.errors == [], (replay.errors, browser.errors)
    assert replay.scenario == str(path.resolve())
    per_cycle = [[kind for _, sent in cycle for kind in sent] for cycle in replay.sent]
    assert per_cycle == [page_sent] * 3
    assert [step for step, _ in replay.sent[0]] == recorded.words()
    # and the replay judges as the browser does, leaks included (C9: what close() would end stays)
    verdicts = _verdicts(replay)
    assert verdicts == _verdicts(browser)
    assert [k for k, v in verdicts.items() if v == Verdict.LEAK], verdicts


@needs_browser
@pytest.mark.extended  # ~5 s: the user's path (a window, here headless), beside the scripted one
@pytest.mark.timeout(120)
def test_a_page_used_by_hand_is_recorded_until_its_tab_closes():
    # GIVEN the recording of a page the user drives (no script): they chat, reload the page, close the tab
    async def use(page):
        await page.fill("#text", "hi from a person")
        await page.press("#text", "Enter")
        await page.wait_for_function("document.body.dataset.turns === '1'")
        await asyncio.sleep(1.3)  # they read the answer
        await page.reload()
        await page.wait_for_function("document.body.dataset.greeted === 'true'")
        await page.close()

    async def main():
        async with reference_backend(**OPTIONS) as (app, srv):
            tasks = []
            recorded = await record_page(srv.host, srv.port, target="reference", script=None, headless=True,
                                         on_open=lambda page: tasks.append(asyncio.ensure_future(use(page))),
                                         timeout_s=30)
            await asyncio.gather(*tasks)
            return recorded

    # WHEN the tab closes THEN the recording ends, and reads back as what the user did
    recorded = run_async(main())
    assert recorded.recorded["mode"] == "interactive"
    words = recorded.words()
    assert words[:2] == ["connect", "text"] and words[3:] == ["close", "connect", "close"], words
    assert words[2].startswith("wait:") and float(words[2].partition(":")[2]) >= 1.3, words
    assert [e["frame"]["text"] for e in recorded.frames if e["event"] == "sent"
            and e["frame"]["type"] == "text-input"] == ["hi from a person"]
