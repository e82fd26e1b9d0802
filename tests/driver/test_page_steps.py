"""The steps do what upstream's web page does (PROTOCOL.md, "What the web page
sends"), each cycle records what each step sent, and both backends (the
reference, the upstream-shaped test app) answer the page's requests as
upstream does."""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path

import pytest
from fastapi import FastAPI, WebSocket

from leaklab.driver.client import PAGE_OPEN_REQUESTS, PAGE_SWITCH_REQUESTS, SessionClient
from leaklab.driver.scenarios import (
    SCENARIOS, STEP_WORDS, CycleState, Scenario, UnknownScenarioError, close, connect, get_scenario, step_word,
    steps_scenario, switch, text,
)
from leaklab.serving import serve
from leaklab.session import LeakSession
from leaklab.targets import resolve_target
from tests.attach.conftest import clean_imports, olv_app, private_tmp  # noqa: F401  (fixtures)
from tests.conftest import reference_backend, run_async

OPEN = [request for request, _ in PAGE_OPEN_REQUESTS]
AFTER_SWITCH = [request for request, _ in PAGE_SWITCH_REQUESTS]
GREETING = ({"type": "group-update", "members": [], "is_owner": False},
            {"type": "full-text", "text": "Connection established"},
            {"type": "set-model-and-conf", "model_info": {}, "conf_name": "x", "conf_uid": "x", "client_uid": "u1"},
            {"type": "group-update", "members": [], "is_owner": False},
            {"type": "control", "text": "start-mic"})


def _state(host: str, port: int, **kw) -> CycleState:
    return CycleState(host=host, port=port, ws_path="/client-ws", proxy_path=None,
                      characters=("shizuku.yaml", "natori.yaml"), cycle=0, timeout_s=30, **kw)


def test_page_requests_are_what_protocol_md_says():
    assert OPEN == ["fetch-backgrounds", "fetch-configs", "fetch-history-list", "create-new-history"]
    assert [r for _, r in PAGE_OPEN_REQUESTS] == ["background-files", "config-files", "history-list",
                                                   "new-history-created"]
    assert AFTER_SWITCH == ["fetch-history-list", "create-new-history"]


def test_step_words_bare_forms_and_names():
    # GIVEN step lists with the page-faithful and the bare steps
    scen = steps_scenario("connect:bare,switch-bare:natori.yaml,switch,text,close")
    # THEN each step knows its word, so a run records it as written
    assert [step_word(s) for s in scen.steps] == ["connect:bare", "switch-bare:natori.yaml", "switch", "text", "close"]
    assert "switch-bare" in STEP_WORDS and "connect:bare" in STEP_WORDS["connect"]
    # switch:FILE still names a file
    assert step_word(steps_scenario("connect,switch:shizuku.yaml,close").steps[1]) == "switch:shizuku.yaml"
    # a bare step needs an open tab like the others; an unknown connect form is refused
    with pytest.raises(UnknownScenarioError, match="needs an open tab"):
        steps_scenario("switch-bare,connect")
    with pytest.raises(UnknownScenarioError, match="connect:bare"):
        steps_scenario("connect:proxy,close")
    assert get_scenario("connect:bare").name == "connect:bare"


def test_every_named_scenario_uses_the_page_faithful_steps():
    for scen in SCENARIOS.values():
        words = [step_word(s) for s in scen.steps]
        assert not any("bare" in w for w in words), (scen.name, words)
    assert [step_word(s) for s in SCENARIOS["switch"].steps] == ["connect", "switch", "text", "close"]


def test_reference_cycle_records_what_each_step_sent_and_stores_a_history_per_page():
    # GIVEN the reference backend and a page-faithful cycle
    async def main():
        async with reference_backend(heavy_init_s=0.05) as (app, srv):
            state = _state(srv.host, srv.port)
            scen = Scenario("page", [connect(), text(), switch(), close()])
            await scen.run_cycle(state)
            histories = {c: app.state.history.list_histories(c) for c in ("mao_pro_001", "shizuku_001")}
            # a second tab lists them: every stored history, with its message count
            tab = SessionClient(srv.url("/client-ws"), timeout_s=30)
            await tab.connect(page=True)
            listed = tab.replies["history-list"]["histories"]
            await tab.close()
            return state, histories, listed, tab

    state, histories, listed, tab = run_async(main())
    # THEN each step's frames are recorded, in order
    log = [r.as_dict() for r in state.step_log]
    assert log == [
        {"step": "connect", "sent": OPEN},
        {"step": "text", "sent": ["text-input", "frontend-playback-complete"]},
        {"step": "switch", "sent": ["switch-config", *AFTER_SWITCH]},
        {"step": "close", "sent": []},
    ]
    assert state.sent == [f for r in log for f in r["sent"]]
    assert len(state.connect_s) == 1 and state.sessions_ended == 1
    # create-new-history stored a history at once; the turn's messages went there
    (mao,) = histories["mao_pro_001"]
    assert mao["messages"] == 2
    (shizuku,) = histories["shizuku_001"]
    assert shizuku["messages"] == 0  # made after the switch, no turn since: still listed
    # the next page's list (asked before its own new history) holds the first tab's
    assert [(h["uid"], h["messages"]) for h in listed] == [(mao["uid"], 2)]
    # the replies of the page's requests are kept by the client
    assert set(tab.replies) == {"background-files", "config-files", "history-list", "new-history-created"}
    assert tab.replies["background-files"] == {"type": "background-files", "files": []}


def test_reference_bare_steps_send_nothing_more():
    async def main():
        async with reference_backend(heavy_init_s=0.05) as (app, srv):
            state = _state(srv.host, srv.port)
            await steps_scenario("connect:bare,switch-bare:shizuku.yaml,close").run_cycle(state)
            return state, app.state.history.list_histories("mao_pro_001")

    state, listed = run_async(main())
    assert [r.as_dict() for r in state.step_log] == [
        {"step": "connect:bare", "sent": []},
        {"step": "switch-bare:shizuku.yaml", "sent": ["switch-config"]},
        {"step": "close", "sent": []},
    ]
    assert listed == []


def test_reference_history_requests():
    # GIVEN a page with one turn stored
    async def main():
        async with reference_backend() as (app, srv):
            async with SessionClient(srv.url("/client-ws"), timeout_s=30) as tab:
                for request, _ in PAGE_OPEN_REQUESTS:
                    await tab.send({"type": request})
                replies = {}
                for _ in PAGE_OPEN_REQUESTS:
                    frame = await tab.recv()
                    replies[frame["type"]] = frame
                uid = replies["new-history-created"]["history_uid"]
                await tab.text_turn("hello")
                await tab.send({"type": "fetch-and-set-history", "history_uid": uid})
                data = await tab.recv()
                await tab.send({"type": "delete-history", "history_uid": uid})
                deleted = await tab.recv()
                await tab.send({"type": "fetch-history-list"})
                after = await tab.recv()
                return replies, uid, data, deleted, after

    replies, uid, data, deleted, after = run_async(main())
    # THEN the replies come in the order asked, the new history is the session's
    assert list(replies) == ["background-files", "config-files", "history-list", "new-history-created"]
    assert data["type"] == "history-data" and [m["role"] for m in data["messages"]] == ["human", "ai"]
    assert data["messages"][0]["content"] == "hello"
    assert deleted == {"type": "history-deleted", "success": True, "history_uid": uid}
    assert after == {"type": "history-list", "histories": []}


# -- the upstream-shaped test app ---------------------------------------------------


def _files(folder: Path) -> dict[str, list[dict]]:
    return {p.stem: json.loads(p.read_text()) for p in sorted(folder.glob("*.json"))}


def test_olv_app_answers_the_page_as_upstream(olv_app):  # noqa: F811
    # GIVEN the test app with its six seeded histories, MCP off
    conf = olv_app / "conf.yaml"
    conf.write_text(conf.read_text().replace("use_mcpp: true", "use_mcpp: false"))
    target = resolve_target("olv", app_dir=olv_app)
    seen = {}

    async def main():
        session = LeakSession(target, runs_dir=False, progress=False, measure=False)
        await session.start()
        try:
            srv = session.server
            folder = Path(os.getcwd()) / "chat_history" / "mao_pro_001"
            seen["seeded"] = len(_files(folder))
            # a bare tab's turn is stored nowhere (no create-new-history)
            bare = SessionClient(srv.url("/client-ws"), timeout_s=30)
            await bare.connect()
            await bare.text_turn("not stored")
            await bare.close()
            seen["after_bare"] = _files(folder)
            # a page: its new history file holds only a metadata entry
            page = SessionClient(srv.url("/client-ws"), timeout_s=30)
            await page.connect(page=True)
            uid = page.replies["new-history-created"]["history_uid"]
            seen["new_file"] = _files(folder)[uid]
            seen["first_list"] = page.replies["history-list"]["histories"]
            seen["backgrounds"] = page.replies["background-files"]
            await page.text_turn("stored")
            seen["after_turn"] = _files(folder)[uid]
            # a second page makes an empty one; the third's list deletes it
            second = SessionClient(srv.url("/client-ws"), timeout_s=30)
            await second.connect(page=True)
            empty_uid = second.replies["new-history-created"]["history_uid"]
            await second.close()
            seen["empty_there"] = empty_uid in _files(folder)
            third = SessionClient(srv.url("/client-ws"), timeout_s=30)
            await third.connect(page=True)
            seen["third_list"] = third.replies["history-list"]["histories"]
            seen["empty_after_list"] = empty_uid in _files(folder)
            await third.send({"type": "fetch-and-set-history", "history_uid": uid})
            seen["history_data"] = await third.recv_until("history-data")
            await third.send({"type": "delete-history", "history_uid": uid})
            seen["deleted"] = await third.recv_until("history-deleted")
            seen["gone"] = uid not in _files(folder)
            await third.close()
            await page.close()
        finally:
            await session.stop()

    run_async(main(), allow_loop_errors=True)
    assert seen["seeded"] == 6
    assert len(seen["after_bare"]) == 6  # nothing stored, no file made
    assert [m["role"] for m in seen["new_file"]] == ["metadata"]
    # the list: every non-empty file with its latest message, newest first
    assert len(seen["first_list"]) == 6 and all(h["latest_message"]["role"] in ("human", "ai")
                                                 for h in seen["first_list"])
    stamps = [h["timestamp"] for h in seen["first_list"]]
    assert stamps == sorted(stamps, reverse=True)
    assert seen["backgrounds"] == {"type": "background-files", "files": []}
    assert [m["role"] for m in seen["after_turn"]] == ["metadata", "human", "ai"]
    assert seen["after_turn"][1]["content"] == "stored"
    assert seen["empty_there"] and not seen["empty_after_list"]
    assert len(seen["third_list"]) == 7
    assert [m["role"] for m in seen["history_data"][-1]["messages"]] == ["human", "ai"]
    assert seen["deleted"][-1]["success"] is True and seen["gone"]


# -- the pages ---------------------------------------------------------------------

PAGES = [Path(__file__).resolve().parents[2] / "leaklab" / "backend" / "frontend" / "index.html",
         Path(__file__).resolve().parents[1] / "attach" / "olv_app" / "frontend" / "index.html"]


@pytest.mark.parametrize("page", PAGES, ids=["reference", "olv_app"])
def test_pages_send_what_upstream_page_sends_and_load_nothing(page):
    html = page.read_text()
    # the same localStorage keys and defaults, JSON-encoded
    assert 'wsUrl: "ws://127.0.0.1:12393/client-ws"' in html and 'baseUrl: "http://127.0.0.1:12393"' in html
    assert "JSON.parse(raw)" in html and "JSON.stringify(DEFAULTS[key])" in html
    # on open, in order; after config-switched; a turn acknowledged
    opened = html.index('addEventListener("open"')
    order = [html.index(f'send({{ type: "{r}" }})', opened) for r in OPEN]
    assert order == sorted(order)
    switched = html.index('case "config-switched"')
    assert [html.index(f'send({{ type: "{r}" }})', switched) for r in AFTER_SWITCH] == \
        sorted(html.index(f'send({{ type: "{r}" }})', switched) for r in AFTER_SWITCH)
    assert 'send({ type: "frontend-playback-complete" })' in html and 'type: "text-input"' in html
    # nothing from the network: no external script, style, image or font
    assert "src=" not in html and "href=" not in html and "http://" not in html.replace("http://127.0.0.1:12393", "")


def test_reference_serves_its_page_at_root():
    import urllib.request

    async def main():
        import asyncio

        async with reference_backend() as (app, srv):
            def get(path):
                with urllib.request.urlopen(srv.url(path, scheme="http"), timeout=10) as resp:
                    return resp.status, resp.headers.get("content-type"), resp.read().decode()

            page = await asyncio.to_thread(get, "/")
            health = await asyncio.to_thread(get, "/health")
            # a WebSocket to a path no route has is refused, the server goes on
            tab = SessionClient(srv.url("/no-such-ws"), timeout_s=10)
            try:
                await tab.connect()
                refused = False
            except Exception:
                refused = True
            return page, health, refused

    (status, kind, body), health, refused = run_async(main())
    assert status == 200 and kind.startswith("text/html") and "create-new-history" in body
    assert health[0] == 200 and '"status":"ok"' in health[2].replace(" ", "")
    assert refused


def test_a_backend_that_ignores_or_refuses_the_pages_requests_is_driven_all_the_same():
    # GIVEN a backend that greets, ignores fetch-backgrounds, answers fetch-configs
    # with an error and the rest as upstream
    app = FastAPI()

    @app.websocket("/client-ws")
    async def ws(websocket: WebSocket) -> None:
        await websocket.accept()
        for frame in GREETING:
            await websocket.send_text(json.dumps(frame))
        answers = {"fetch-configs": {"type": "error", "message": "unknown message type"},
                   "fetch-history-list": {"type": "history-list", "histories": []},
                   "create-new-history": {"type": "new-history-created", "history_uid": "h1"}}
        with contextlib.suppress(Exception):
            while True:
                kind = json.loads(await websocket.receive_text()).get("type")
                if kind in answers:
                    await websocket.send_text(json.dumps(answers[kind]))

    async def main():
        async with serve(app) as srv:
            tab = SessionClient(srv.url("/client-ws"), timeout_s=30)
            await tab.connect(page=True)
            await tab.close()
            return tab

    # WHEN a page-faithful tab opens
    tab = run_async(main())
    # THEN it has its greeting, the replies that came, and notes what did not
    assert len(tab.greeting) == 5 and tab.client_uid
    assert set(tab.replies) == {"history-list", "new-history-created"}
    assert tab.request_errors == ["unknown message type"]
    assert tab.unanswered == ["background-files", "config-files"]
    assert tab.sent == OPEN
