"""Scenarios: one cycle is a list of steps a browser tab would take.

Named scenarios cover the users' symptom; notebooks compose their own from
the same steps (``Scenario("mine", [connect(), text("hi"), close()])``).
Every step has a timeout.

The steps do what upstream's web page does (PROTOCOL.md, "What the web page
sends"): ``connect`` also asks for the backgrounds, the configs, the history
list and a new history as soon as its socket is open; ``switch`` asks for the
history list and a new history after ``config-switched``. ``connect(bare=True)``
and ``switch(bare=True)`` (``connect:bare``, ``switch-bare``) only open the
socket / switch. Each cycle records which frames each step sent
(:attr:`CycleState.sent`, :attr:`CycleState.step_log`).
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

from .client import SessionClient, TurnTiming, open_half_open, read_page_frames
from .scenario_file import RawStep, ScenarioFileError, is_scenario_path, read_scenario_file, steps_summary


class UnknownScenarioError(ValueError):
    """A scenario name that does not exist."""


@dataclasses.dataclass(frozen=True)
class StepRecord:
    """One step of a cycle: its word and the frame types it sent, in order;
    when it started and ended (``time.perf_counter()``; 0: not timed)."""

    step: str
    sent: tuple[str, ...]
    started: float = 0.0
    ended: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return {"step": self.step, "sent": list(self.sent)}


@dataclasses.dataclass
class CycleState:
    """What one cycle's steps share: the server address, open clients, results."""

    host: str
    port: int
    ws_path: str
    proxy_path: str | None
    characters: tuple[str, ...]
    cycle: int
    timeout_s: float
    #: open tabs by number (``tab:N`` selects one; ``connect`` opens the selected one)
    tabs: dict[int, SessionClient] = dataclasses.field(default_factory=dict)
    #: the tab the next step acts on
    active_tab: int = 1
    sessions_ended: int = 0
    turns: list[TurnTiming] = dataclasses.field(default_factory=list)
    #: most live child processes seen while the cycle ran (sampled by the session)
    children_peak: int = 0
    #: seconds from opening the socket to the end of the greeting, per connect
    connect_s: list[float] = dataclasses.field(default_factory=list)
    half_open: list[asyncio.StreamWriter] = dataclasses.field(default_factory=list)
    #: ``time.monotonic()`` at which each ended session's disconnect began
    #: (one per ``sessions_ended``; taken before the close or abort, since the
    #: server may tear the session down before the client's close returns)
    closed_at: list[float] = dataclasses.field(default_factory=list)
    #: the ``type`` of every frame the cycle's tabs sent, in order
    sent: list[str] = dataclasses.field(default_factory=list)
    #: per step run, what it sent (:meth:`Scenario.run_cycle` fills it)
    step_log: list[StepRecord] = dataclasses.field(default_factory=list)
    #: a started :class:`~leaklab.driver.browser.BrowserClient`: ``connect``
    #: opens the backend's own page in it instead of a synthetic client
    browser: Any = None

    def url(self, path: str) -> str:
        return f"ws://{self.host}:{self.port}{path}"

    def new_client(self, path: str) -> Any:
        """A client for ``path`` whose sent frames this cycle records: a
        :class:`SessionClient`, or a browser tab when the cycle has a browser."""
        if self.browser is not None:
            return self.browser.new_tab(self.url(path), base_url=f"http://{self.host}:{self.port}", sent=self.sent)
        return SessionClient(self.url(path), timeout_s=self.timeout_s, sent=self.sent)

    @property
    def client(self) -> SessionClient | None:
        """The selected tab's client (``None``: that tab is not open)."""
        return self.tabs.get(self.active_tab)

    @client.setter
    def client(self, value: SessionClient | None) -> None:
        if value is None:
            self.tabs.pop(self.active_tab, None)
        else:
            self.tabs[self.active_tab] = value


Step = Callable[[CycleState], Awaitable[None]]


@dataclasses.dataclass(frozen=True)
class Scenario:
    """A named list of steps run once per cycle."""

    name: str
    steps: Sequence[Step]
    description: str = ""

    async def run_cycle(self, state: CycleState) -> None:
        try:
            for step in self.steps:
                before = len(state.sent)
                started = time.perf_counter()
                try:
                    await step(state)
                finally:
                    state.step_log.append(StepRecord(step_word(step), tuple(state.sent[before:]), started,
                                                     time.perf_counter()))
        finally:
            # A failed step (or a tab left open) must not reach the next cycle.
            for number in sorted(state.tabs):
                client = state.tabs.pop(number)
                started = time.monotonic()
                await client.abort()
                state.sessions_ended += 1
                state.closed_at.append(started)
            state.active_tab = 1


def step_word(step: Step) -> str:
    """The step-list word of a step (``connect``, ``switch:natori.yaml``); a
    step written in Python without one goes by its function's name."""
    word = getattr(step, "word", None)
    return word if isinstance(word, str) else getattr(step, "__name__", type(step).__name__)


def _worded(step: Step, word: str) -> Step:
    step.word = word  # type: ignore[attr-defined]
    return step


def connect(*, proxy: bool = False, bare: bool = False) -> Step:
    """Open a tab as the web page does: as soon as the socket is open, send
    ``fetch-backgrounds``, ``fetch-configs``, ``fetch-history-list`` and
    ``create-new-history``; read their replies beside the greeting.

    Args:
        proxy: open it on the proxy path (a bare open: the proxy's viewers
            send only their text turns).
        bare: only open the socket and read the greeting.
    """

    async def step(state: CycleState) -> None:
        if proxy:
            if state.proxy_path is None:
                raise UnknownScenarioError("this target has no proxy path")
            state.client = SessionClient(state.url(state.proxy_path), timeout_s=state.timeout_s, sent=state.sent)
            await state.client.connect(read_greeting=False)
            await state.client.recv()
            state.client.client_uid = None
        else:
            state.client = client = state.new_client(state.ws_path)
            await client.connect(page=not bare)
            if client.greeting_s is not None:
                state.connect_s.append(client.greeting_s)

    return _worded(step, "proxy-connect" if proxy else "connect:bare" if bare else "connect")


def switch(file: str | None = None, *, bare: bool = False) -> Step:
    """``switch-config`` to ``file`` (default: the target's characters, in
    turn); then, as the page does after ``config-switched``,
    ``fetch-history-list`` and ``create-new-history`` (not with ``bare``)."""

    async def step(state: CycleState) -> None:
        assert state.client is not None
        name = file or (state.characters[state.cycle % len(state.characters)] if state.characters else "conf.yaml")
        await state.client.switch_config(name, page=not bare)

    word = "switch-bare" if bare else "switch"
    return _worded(step, f"{word}:{file}" if file else word)


def text(message: str = "hello there", *, complete_playback: bool = True, stop_at: str | None = None) -> Step:
    """One text turn; its latency is recorded. ``complete_playback=False``:
    stop after ``backend-synth-complete``; ``stop_at="audio"``: after the
    first audio frame."""

    async def step(state: CycleState) -> None:
        assert state.client is not None
        timing = await state.client.text_turn(message, complete_playback=complete_playback,
                                              timeout_s=state.timeout_s * 3, stop_at=stop_at)
        state.turns.append(timing)

    word = "text-until-audio" if stop_at == "audio" else "text" if complete_playback else "text-until-synth"
    return _worded(step, word)


def fetch_configs() -> Step:
    """``fetch-configs``: the character list the page asks for on load."""

    async def step(state: CycleState) -> None:
        assert state.client is not None
        await state.client.send({"type": "fetch-configs"})
        await state.client.recv_until("config-files", or_error=True)

    return _worded(step, "fetch-configs")


def close() -> Step:
    """Close the tab politely."""

    async def step(state: CycleState) -> None:
        if state.client is not None:
            client, state.client = state.client, None
            started = time.monotonic()
            await client.close()
            if client.client_uid is not None:
                state.sessions_ended += 1
                state.closed_at.append(started)

    return _worded(step, "close")


def abort() -> Step:
    """Kill the tab: TCP reset, no close frame."""

    async def step(state: CycleState) -> None:
        if state.client is not None:
            client, state.client = state.client, None
            started = time.monotonic()
            await client.abort()
            if client.client_uid is not None:
                state.sessions_ended += 1
                state.closed_at.append(started)

    return _worded(step, "abort")


def half_open() -> Step:
    """A client that finishes the handshake, then goes silent and never closes."""

    async def step(state: CycleState) -> None:
        writer = await open_half_open(state.host, state.port, state.ws_path, timeout_s=state.timeout_s)
        state.half_open.append(writer)

    return _worded(step, "half-open")


def tab(number: int) -> Step:
    """Act on tab ``number`` from here on (``tab:2,connect`` opens a second tab
    while the first stays open: two sessions at once)."""

    async def step(state: CycleState) -> None:
        state.active_tab = number

    return _worded(step, f"tab:{number}")


def wait(seconds: float) -> Step:
    async def step(state: CycleState) -> None:
        await asyncio.sleep(seconds)

    return _worded(step, f"wait:{seconds:g}")


def send(raw: RawStep) -> Step:
    """Frames the page sent that no step word covers (a recorded file's raw
    step): send them as recorded, then read the replies of the types seen
    after them when recorded, as the page does (one that does not come is not
    waited for past a quiet second; a late one is skipped by the next step)."""

    async def step(state: CycleState) -> None:
        client = state.client
        assert client is not None
        for frame in raw.frames:
            await client.send(frame)
        if raw.replies:
            await read_page_frames(client, 0, list(raw.replies), time.monotonic())

    return _worded(step, raw.word)


def burst(*steps_per_client: Sequence[Step]) -> Step:
    """Several tabs in a row within one cycle (a reconnect storm)."""

    async def step(state: CycleState) -> None:
        for steps in steps_per_client:
            for s in steps:
                await s(state)

    words = ";".join(",".join(step_word(s) for s in steps) for steps in steps_per_client)
    return _worded(step, f"burst({words})")


SCENARIOS: dict[str, Scenario] = {
    s.name: s
    for s in (
        Scenario("open-close", [connect(), close()], "open a tab, close it"),
        Scenario("chat", [connect(), text(), close()], "open, one text turn, close"),
        Scenario("switch", [connect(), switch(), text(), close()], "open, switch character, one turn, close"),
        Scenario(
            "switch-then-close",
            [connect(), switch(), close()],
            "open, switch character, close at once (inside the heavy-init window)",
        ),
        Scenario(
            "abrupt-chat",
            [connect(), text(complete_playback=False), close()],
            "open, text turn, close after backend-synth-complete, before frontend-playback-complete",
        ),
        Scenario(
            "reconnect-storm",
            [burst([connect(), close()], [connect(), abort()], [connect(), abort()], [half_open()])],
            "a burst of connects and abrupt closes, one half-open client that goes silent",
        ),
        Scenario(
            "proxy-chat",
            [connect(proxy=True), text(complete_playback=False), close()],
            "through /proxy-ws: a text turn whose client leaves before playback completes",
        ),
    )
}


#: The steps a scenario can be written with, on the command line:
#: ``connect,switch,text-until-synth,close``.
STEP_WORDS: dict[str, str] = {
    "connect": "open a tab as the page does: its greeting, and on open fetch-backgrounds, fetch-configs, "
               "fetch-history-list, create-new-history (connect:bare: the socket and its greeting only)",
    "proxy-connect": "open a tab on the proxy path",
    "fetch-configs": "ask for the character list",
    "switch": "switch-config to the next character (switch:FILE for one file), then as the page does "
              "after config-switched: fetch-history-list, create-new-history",
    "switch-bare": "switch-config only, nothing after config-switched (switch-bare:FILE for one file)",
    "text": "a text turn, played back to conversation-chain-end",
    "text-until-audio": "a text turn, left at its first audio frame",
    "text-until-synth": "a text turn, left after backend-synth-complete, before playback completes",
    "close": "close the tab (close frame)",
    "abort": "kill the tab (TCP reset, no close frame)",
    "half-open": "another client that completes the handshake, then goes silent",
    "tab": "tab:N: the next steps act on tab N (tab:2,connect opens a second tab beside the first)",
    "wait": "wait:SECONDS",
}


def _step(word: str) -> Step:
    name, _, arg = word.partition(":")
    if name == "connect":
        if arg not in ("", "bare"):
            raise UnknownScenarioError(f"step {word!r}: write connect or connect:bare")
        return connect(bare=arg == "bare")
    if name == "proxy-connect":
        return connect(proxy=True)
    if name == "fetch-configs":
        return fetch_configs()
    if name in ("switch", "switch-bare"):
        return switch(arg or None, bare=name == "switch-bare")
    if name == "text":
        return text()
    if name == "text-until-audio":
        return text(complete_playback=False, stop_at="audio")
    if name == "text-until-synth":
        return text(complete_playback=False)
    if name == "close":
        return close()
    if name == "abort":
        return abort()
    if name == "half-open":
        return half_open()
    if name == "tab":
        try:
            number = int(arg)
        except ValueError:
            number = 0
        if number < 1:
            raise UnknownScenarioError(f"step {word!r}: write tab:N with N a tab number from 1")
        return tab(number)
    if name == "wait":
        try:
            return wait(float(arg))
        except ValueError:
            raise UnknownScenarioError(f"wait needs seconds: 'wait:0.5', not {word!r}") from None
    raise UnknownScenarioError(f"unknown step {name!r} in a step list; valid: {', '.join(STEP_WORDS)}")


def steps_scenario(text_form: str) -> Scenario:
    """A scenario written as a step list: ``"connect,switch,text-until-synth,close"``
    (see :data:`STEP_WORDS`). Its name is the list itself, so the run's saved
    metadata replays it as written.

    Raises:
        UnknownScenarioError: an unknown step, or a step that needs an open
            tab before any ``connect``.
    """
    words = [w.strip() for w in text_form.split(",") if w.strip()]
    if not words:
        raise UnknownScenarioError("an empty step list")
    steps = [_step(w) for w in words]
    problem = tab_problem(words)
    if problem is not None:
        raise UnknownScenarioError(f"{problem[1]} ({text_form!r})")
    return Scenario(",".join(words), steps, "step list: " + ", ".join(words))


#: Steps that act on an open tab (``send:...``: a recorded file's raw frames).
_NEEDS_TAB = ("switch", "switch-bare", "fetch-configs", "text", "text-until-audio", "text-until-synth", "send")


def tab_problem(words: Sequence[str]) -> tuple[int, str] | None:
    """The first step that opens a tab already open, or acts on a tab not
    open: ``(its index, what is wrong)``; ``None`` if there is none."""
    open_tabs: set[str] = set()
    active = "1"
    for i, w in enumerate(words):
        base, _, arg = w.partition(":")
        if base == "tab":
            active = str(int(arg))
        elif base in ("connect", "proxy-connect"):
            if active in open_tabs:
                return i, f"step {w!r}: tab {active} is already open; close it first or open another with tab:N"
            open_tabs.add(active)
        elif base in ("close", "abort"):
            open_tabs.discard(active)
        elif base in _NEEDS_TAB and active not in open_tabs:
            return i, f"step {w!r} needs an open tab: put 'connect' before it"
    return None


def scenario_from_file(path: str | os.PathLike[str]) -> Scenario:
    """The scenario a scenario file holds (``leaklab record`` writes them; see
    :mod:`leaklab.driver.scenario_file`). Its name is the file's absolute
    path, so the run's saved metadata replays it.

    Raises:
        UnknownScenarioError: no such file, or not a scenario: names the file,
            the line and what was expected there.
    """
    try:
        recorded = read_scenario_file(path)
    except ScenarioFileError as exc:
        raise UnknownScenarioError(str(exc)) from None
    where = recorded.path or Path(path)
    steps: list[Step] = []
    for i, entry in enumerate(recorded.steps):
        if isinstance(entry, RawStep):
            steps.append(send(entry))
            continue
        try:
            steps.append(_step(entry))
        except UnknownScenarioError as exc:
            raise UnknownScenarioError(f"{where} line {recorded.line_of(i)}: {exc}") from None
    problem = tab_problem(recorded.words())
    if problem is not None:
        raise UnknownScenarioError(f"{where} line {recorded.line_of(problem[0])}: {problem[1]}")
    on = f" on {recorded.target}" if recorded.target else ""
    return Scenario(str(Path(where).resolve()), steps, f"recorded{on}: {steps_summary(recorded.steps)}")


def get_scenario(name: str | os.PathLike[str] | Scenario) -> Scenario:
    """A scenario by name, a step list (``connect,switch,close``), or a
    scenario file (a path: ``Path``, a name ending ``.json``/``.yaml``/``.yml``,
    or a file that exists; see :func:`scenario_from_file`).

    Raises:
        UnknownScenarioError: listing valid names and steps; for a file, its
            line and what was expected.
    """
    if isinstance(name, Scenario):
        return name
    if is_scenario_path(name):
        return scenario_from_file(name)
    if not isinstance(name, str):
        raise UnknownScenarioError(f"a scenario is a name, a step list or a scenario file, not {name!r}")
    try:
        return SCENARIOS[name]
    except KeyError:
        pass
    if "," in name or name.partition(":")[0] in STEP_WORDS:
        return steps_scenario(name)
    if Path(name).is_file():
        return scenario_from_file(name)
    raise UnknownScenarioError(f"unknown scenario {name!r}; valid: {', '.join(SCENARIOS)}, "
                               f"or a step list of {', '.join(STEP_WORDS)} (connect,switch,text-until-synth,close), "
                               f"or a scenario file (.json, .yaml: `leaklab record` writes one)")


def describe() -> dict[str, Any]:
    """Scenario names and descriptions."""
    return {name: s.description for name, s in SCENARIOS.items()}
