"""Scenario files on synthetic frame logs: the steps inferred from what a page
sent, the file written and read back (JSON and YAML), the errors of a file
that is not a scenario (with its line), and a raw step replayed on the
reference backend."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from leaklab.driver.client import PAGE_OPEN_REQUESTS, PAGE_SWITCH_REQUESTS
from leaklab.driver.recording import infer_steps
from leaklab.driver.scenario_file import RawStep, ScenarioFile, read_scenario_file, write_scenario_file
from leaklab.driver.scenarios import CycleState, Scenario, UnknownScenarioError, get_scenario, step_word
from tests.conftest import reference_backend, run_async

OPEN = [request for request, _ in PAGE_OPEN_REQUESTS]
AFTER_SWITCH = [request for request, _ in PAGE_SWITCH_REQUESTS]
GREETING = ["group-update", "full-text", "set-model-and-conf", "group-update", "control"]


class Log:
    """A synthetic frame log, as :class:`~leaklab.driver.recording.FrameLog` writes it."""

    def __init__(self) -> None:
        self.events: list[dict] = []
        self.t = 0.0

    def at(self, dt: float) -> Log:
        self.t += dt
        return self

    def add(self, socket: int, event: str, **more) -> Log:
        self.t += 0.001
        self.events.append({"t": round(self.t, 4), "tab": socket, "socket": socket, "event": event, **more})
        return self

    def open(self, socket: int = 1, path: str = "/client-ws", requests=OPEN) -> Log:
        self.add(socket, "open", path=path)
        for r in requests:
            self.sent(socket, r)
        return self.received(socket, *GREETING, "background-files", "config-files", "history-list",
                             "new-history-created")

    def sent(self, socket: int, kind: str, **frame) -> Log:
        return self.add(socket, "sent", frame={"type": kind, **frame})

    def received(self, socket: int, *kinds: str) -> Log:
        for k in kinds:
            self.add(socket, "received", type=k)
        return self

    def switch(self, socket: int = 1) -> Log:
        self.sent(socket, "switch-config", file="natori.yaml").received(socket, "set-model-and-conf", "config-switched")
        for r in AFTER_SWITCH:
            self.sent(socket, r)
        return self.received(socket, "history-list", "new-history-created")

    def turn(self, socket: int = 1, *, played: bool = True, upto: str = "chain-end") -> Log:
        self.sent(socket, "text-input", text="hi").received(socket, "control", "full-text")
        if upto == "nothing":
            return self
        self.received(socket, "audio")
        if upto == "audio":
            return self
        self.received(socket, "backend-synth-complete")
        if played:
            self.sent(socket, "frontend-playback-complete")
            self.received(socket, "backend-synth-complete", "force-new-message", "control")
        return self

    def close(self, socket: int = 1) -> Log:
        return self.add(socket, "close")


def test_the_page_s_lifecycle_reads_back_as_the_kit_s_steps():
    # GIVEN what the page did: open, switch, chat, close
    log = Log().open().switch().turn().close()
    # WHEN the steps are inferred THEN they are the words of the step-list language, nothing left over
    steps, uncovered = infer_steps(log.events)
    assert steps == ["connect", "switch", "text", "close"]
    assert uncovered == {}


def test_a_tab_left_mid_turn_is_the_step_that_leaves_there():
    after_synth = Log().open().turn(played=False).close()
    at_audio = Log().open().turn(upto="audio").close()
    assert infer_steps(after_synth.events)[0] == ["connect", "text-until-synth", "close"]
    assert infer_steps(at_audio.events)[0] == ["connect", "text-until-audio", "close"]


def test_frames_no_word_covers_are_kept_raw_with_their_replies_and_counted():
    # GIVEN a fork's page: on open it also asks for its pins; later heartbeats; a turn sent before any reply
    log = Log().open(requests=[*OPEN]).sent(1, "fetch-pins").received(1, "pin-list")
    log.sent(1, "heartbeat").received(1, "heartbeat-ack").turn().sent(1, "heartbeat").received(1, "heartbeat-ack")
    log.turn(upto="nothing").close()
    steps, uncovered = infer_steps(log.events)
    # THEN the frames one after the other with no step between are one raw step; its replies are kept
    assert [s.word if isinstance(s, RawStep) else s for s in steps] == [
        "connect", "send:fetch-pins+heartbeat", "text", "send:heartbeat+text-input", "close"]
    assert steps[1].frames == ({"type": "fetch-pins"}, {"type": "heartbeat"})
    assert steps[1].replies == ("pin-list", "heartbeat-ack")
    # a turn whose replies never came before the tab closed: kept raw, its own frame replayed as sent;
    # the turn's stream is no frame's reply
    assert steps[3].frames == ({"type": "heartbeat"}, {"type": "text-input", "text": "hi"})
    assert steps[3].replies == ("heartbeat-ack",)
    assert uncovered == {"fetch-pins": 1, "heartbeat": 2, "text-input": 1}


def test_a_page_that_does_not_send_all_the_open_requests_is_a_bare_connect_plus_what_it_sent():
    log = Log().open(requests=["fetch-configs", "fetch-history-list"]).close()
    steps, uncovered = infer_steps(log.events)
    assert [step_word_of(s) for s in steps] == ["connect:bare", "fetch-configs", "send:fetch-history-list", "close"]
    assert uncovered == {"fetch-history-list": 1}


def step_word_of(step) -> str:
    return step.word if isinstance(step, RawStep) else step


def test_quiet_becomes_wait_and_two_tabs_become_tab_steps():
    # GIVEN a first tab that idles 2.5 s, a second tab opened beside it, both closed; a proxy tab after
    log = Log().open(1).at(2.5).open(2).turn(2).close(2).close(1)
    log.add(3, "open", path="/proxy-ws").close(3)
    steps, _ = infer_steps(log.events, proxy_path="/proxy-ws", wait_threshold_s=1.0)
    assert steps == ["connect", "wait:2.5", "tab:2", "connect", "text", "close", "tab:1", "close",
                     "proxy-connect", "close"]
    # a short pause is not a step
    assert infer_steps(Log().open().at(0.5).close().events)[0] == ["connect", "close"]
    # a tab still open when the recording ended is closed at the end of the cycle
    assert infer_steps(Log().open().switch().events)[0] == ["connect", "switch", "close"]


@pytest.mark.parametrize("name", ["page.json", "page.yaml", "page.yml"])
def test_a_file_round_trips_and_runs_as_the_scenario_named_by_its_path(tmp_path, name):
    # GIVEN a recorded scenario with a raw step, written as JSON or YAML
    log = Log().open().sent(1, "heartbeat").received(1, "heartbeat-ack").turn().close()
    steps, uncovered = infer_steps(log.events)
    recorded = ScenarioFile(steps, target="reference", frames=log.events, uncovered=uncovered,
                            recorded={"mode": "scripted"})
    path = write_scenario_file(tmp_path / name, recorded)
    if name.endswith(".json"):
        assert json.loads(path.read_text())["format"] == "leaklab-scenario"
    else:
        assert path.read_text().startswith("format: leaklab-scenario")
    # WHEN it is read back, and taken as a scenario (a path string, or a Path)
    back = read_scenario_file(path)
    scenario = get_scenario(str(path))
    # THEN the same content, and a scenario whose name replays it
    assert back.as_dict() == recorded.as_dict()
    assert back.words() == ["connect", "send:heartbeat", "text", "close"]
    assert scenario.name == str(path.resolve()) == get_scenario(path).name
    assert [step_word(s) for s in scenario.steps] == back.words()
    assert "recorded on reference" in scenario.description


def test_a_file_without_a_suffix_that_exists_is_read_too(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    Path("mine").write_text("format: leaklab-scenario\nsteps: [connect, close]\n")
    assert [step_word(s) for s in get_scenario("mine").steps] == ["connect", "close"]
    # a name of the kit's still means the kit's scenario
    Path("chat").write_text("not a scenario")
    assert get_scenario("chat").name == "chat"


@pytest.mark.parametrize("name, text, message", [
    ("s.json", '{\n "format": "leaklab-scenario",\n "steps": [\n  "connect",\n  ]\n}\n',
     "s.json line 5: not JSON"),
    ("s.yaml", "format: leaklab-scenario\nsteps: [connect\n", "s.yaml line 3: not YAML"),
    ("s.json", '{\n "format": "leaklab-scenario",\n "steps": "connect,close"\n}\n',
     "s.json line 3: expected a list of steps under 'steps'"),
    ("s.yaml", "format: leaklab-scenario\nversion: 1\n", "s.yaml line 1: expected a list of steps under 'steps'"),
    ("s.yaml", "steps: [connect, close]\n", "s.yaml line 1: expected 'format: leaklab-scenario'"),
    ("s.yaml", "format: something-else\nsteps: [connect]\n",
     "s.yaml line 1: expected 'format: leaklab-scenario' (a file `leaklab record` writes); found 'something-else'"),
    ("s.yaml", "format: leaklab-scenario\nversion: 7\nsteps: [connect]\n", "s.yaml line 2: written by a newer leaklab"),
    ("s.yaml", "- connect\n- close\n", "s.yaml line 1: expected a mapping"),
    ("s.yaml", "format: leaklab-scenario\nsteps:\n  - connect\n  - fly\n  - close\n",
     "s.yaml line 4: unknown step 'fly'"),
    ("s.json", '{"format": "leaklab-scenario",\n "steps": [\n  "connect",\n  42\n ]}',
     "s.json line 4: expected a step word"),
    ("s.yaml", "format: leaklab-scenario\nsteps:\n  - connect\n  - send: []\n",
     "s.yaml line 4: expected a list of frames"),
    ("s.yaml", "format: leaklab-scenario\nsteps:\n  - connect\n  - send: [{type: ping}]\n    replies: ping-ack\n",
     "s.yaml line 4: expected a list of frame types under 'replies'"),
    ("s.yaml", "format: leaklab-scenario\nsteps:\n  - send: [{type: ping}]\n  - close\n",
     "s.yaml line 3: step 'send:ping' needs an open tab"),
    ("s.yaml", "format: leaklab-scenario\nsteps:\n  - connect\n  - connect\n",
     "s.yaml line 4: step 'connect': tab 1 is already open"),
])
def test_a_file_that_is_not_a_scenario_says_where_and_what_was_expected(tmp_path, name, text, message):
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(UnknownScenarioError) as err:
        get_scenario(str(path))
    assert message in str(err.value)
    assert str(path) in str(err.value) and "\n" not in str(err.value)


def test_what_is_not_a_scenario_says_so():
    with pytest.raises(UnknownScenarioError, match="a scenario is a name, a step list or a scenario file, not 3"):
        get_scenario(3)


def test_a_missing_file_says_how_to_make_one(tmp_path):
    with pytest.raises(UnknownScenarioError, match=r"no scenario file at .*nope.yaml \(`leaklab record -o nope.yaml`"):
        get_scenario(str(tmp_path / "nope.yaml"))
    with pytest.raises(ValueError, match="ends .json, .yaml or .yml"):
        write_scenario_file(tmp_path / "x.txt", ScenarioFile(["connect", "close"]))


def test_a_raw_step_sends_its_frames_and_reads_their_replies_on_the_reference(tmp_path):
    # GIVEN a file whose page sent a heartbeat the kit has no word for
    path = tmp_path / "beat.yaml"
    path.write_text("format: leaklab-scenario\nsteps:\n  - connect:bare\n"
                    "  - send: [{type: heartbeat}, '{\"type\": \"request-group-info\"}']\n"
                    "    replies: [heartbeat-ack, group-update]\n  - close\n")
    scenario = get_scenario(path)
    seen = {}

    async def look(state: CycleState) -> None:
        seen.update(replies=dict(state.client.replies), unanswered=list(state.client.unanswered))

    async def main():
        async with reference_backend(heavy_init_s=0.05) as (app, srv):
            state = CycleState(host=srv.host, port=srv.port, ws_path="/client-ws", proxy_path=None,
                               characters=("shizuku.yaml",), cycle=1, timeout_s=10)
            await Scenario("x", [*scenario.steps[:2], look, *scenario.steps[2:]]).run_cycle(state)
            return state

    # WHEN it runs with the synthetic client
    state = run_async(main())
    # THEN the frames went as recorded (a text frame too), and their replies were read
    assert [r.as_dict() for r in state.step_log] == [
        {"step": "connect:bare", "sent": []},
        {"step": "send:heartbeat+request-group-info", "sent": ["heartbeat", "request-group-info"]},
        {"step": "look", "sent": []},
        {"step": "close", "sent": []},
    ]
    assert set(seen["replies"]) == {"heartbeat-ack", "group-update"} and seen["unanswered"] == []


def test_the_hunt_maps_a_recorded_file_by_its_steps(tmp_path):
    from leaklab.hunt.candidates import essential_steps

    path = write_scenario_file(tmp_path / "page.yaml", ScenarioFile(
        ["connect", "switch", RawStep(({"type": "heartbeat"},)), "text-until-synth", "close"]))
    assert essential_steps(str(path)) == {"switch", "send", "text-until-synth"}
    assert essential_steps(str(tmp_path / "gone.yaml")) == {str(tmp_path / "gone.yaml")}
