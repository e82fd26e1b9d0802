"""Sessions recorded from the page: every WebSocket frame a real page sends,
timed, turned into a scenario file.

:class:`FrameLog` follows a page's sockets through Playwright
(``page.on("websocket")``, ``framesent``/``framereceived``/``close``);
:func:`infer_steps` reads the log back as the step-list language of
:mod:`leaklab.driver.scenarios`: the page's requests right after its socket
opens are ``connect``, ``switch-config`` with the page's requests after
``config-switched`` is ``switch``, ``text-input`` is ``text`` (or
``text-until-synth``/``text-until-audio`` when the tab left before playback
completed), a socket's close is ``close``, a long quiet is ``wait:S``, and
what no word covers is kept as a raw step (its frames, replayed as sent).
:func:`record_page` does both on a running server: the page opened in a
browser already on the machine, driven by a script through its own controls
(headless), or by the user (a window).
"""

from __future__ import annotations

import asyncio
import datetime
import json
import os
from collections import Counter, defaultdict
from collections.abc import Awaitable, Iterable, Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit

from .browser import BrowserClient
from .client import PAGE_OPEN_REQUESTS, PAGE_SWITCH_REQUESTS
from .scenario_file import RawStep, ScenarioFile, frame_type
from .scenarios import CycleState, steps_scenario

__all__ = ["DEFAULT_SCRIPT", "NOT_REPLIES", "WAIT_THRESHOLD_S", "FrameLog", "infer_steps", "record_page"]

#: What a headless recording does with the page: open it, switch character,
#: one text turn, close it.
DEFAULT_SCRIPT = "connect,switch,text,close"

#: A quiet longer than this between two steps becomes a ``wait:S`` step.
WAIT_THRESHOLD_S = 1.0

#: Frames the server sends on its own (the greeting, a turn's stream): never
#: counted as the reply to a raw step's frames.
NOT_REPLIES = frozenset({"group-update", "full-text", "set-model-and-conf", "control", "audio",
                         "backend-synth-complete", "force-new-message", "tool_call_status", "error"})

_OPEN = tuple(request for request, _ in PAGE_OPEN_REQUESTS)
_AFTER_SWITCH = tuple(request for request, _ in PAGE_SWITCH_REQUESTS)


class FrameLog:
    """Every socket event of the pages it follows, in order, timed from its
    start: ``{"t", "tab", "socket", "event": "open"|"sent"|"received"|"close", ...}``
    (``open`` has the socket's ``path``; ``sent`` the whole ``frame``;
    ``received`` only its ``type``).

    Args:
        origin: only sockets whose address starts with it are followed
            (``ws://127.0.0.1:PORT``); ``None``: every socket.
    """

    def __init__(self, origin: str | None = None) -> None:
        self.origin = origin
        self.events: list[dict[str, Any]] = []
        self._loop = asyncio.get_running_loop()
        self._t0 = self._loop.time()
        self._pages: dict[int, int] = {}
        self._open: dict[int, int] = {}  # socket -> its page's tab number, while open
        self._sockets = 0

    def _add(self, tab: int, socket: int, event: str, **more: Any) -> None:
        self.events.append({"t": round(self._loop.time() - self._t0, 4), "tab": tab, "socket": socket,
                            "event": event, **more})

    def follow(self, page: Any) -> None:
        """Follow ``page``'s sockets from now on (call it before the page loads)."""
        if id(page) in self._pages:
            return
        tab = self._pages[id(page)] = len(self._pages) + 1
        page.on("websocket", lambda ws: self._on_websocket(tab, ws))
        page.on("close", lambda _page: self._page_closed(tab))
        # A reload or a new address unloads the page, which closes its sockets
        # (their own close events may reach us after the new page's open).
        page.on("framenavigated", lambda frame: frame.parent_frame is None and self._page_closed(tab))

    def _on_websocket(self, tab: int, ws: Any) -> None:
        if self.origin is not None and not ws.url.startswith(self.origin):
            return
        self._sockets += 1
        socket = self._sockets
        self._open[socket] = tab
        self._add(tab, socket, "open", path=urlsplit(ws.url).path)
        ws.on("framesent", lambda payload: self._add(tab, socket, "sent", frame=_frame(payload)))
        ws.on("framereceived", lambda payload: self._add(tab, socket, "received", type=frame_type(_frame(payload))))
        ws.on("close", lambda _ws: self.closed(socket))

    def closed(self, socket: int) -> None:
        """Note that ``socket`` closed (once)."""
        tab = self._open.pop(socket, None)
        if tab is not None:
            self._add(tab, socket, "close")

    def _page_closed(self, tab: int) -> None:
        # A closed tab's socket may close without its own event reaching us.
        for socket, on in list(self._open.items()):
            if on == tab:
                self.closed(socket)

    def finish(self) -> list[dict[str, Any]]:
        """Close what is still open (the recording ended with the tab open); the events."""
        for socket in list(self._open):
            self.closed(socket)
        return self.events


def _frame(payload: str | bytes) -> Any:
    """A frame as the page sent it: its JSON object, else its text (a binary
    frame as ``{"binary": <hex>}``, which no step can replay)."""
    if isinstance(payload, bytes):
        return {"binary": payload.hex()}
    try:
        return json.loads(payload)
    except ValueError:
        return payload


def infer_steps(events: Sequence[Mapping[str, Any]], *, proxy_path: str | None = None,
                wait_threshold_s: float = WAIT_THRESHOLD_S) -> tuple[list[str | RawStep], dict[str, int]]:
    """The step list a log of socket events (:class:`FrameLog`) was made of.

    Args:
        events: the log, in time order.
        proxy_path: a socket opened there is ``proxy-connect``.
        wait_threshold_s: a quiet longer than this before a step becomes ``wait:S``.

    Returns:
        ``(steps, uncovered)``: step words and raw steps; the types of the
        frames no step word covers, counted.
    """
    log = sorted(events, key=lambda e: float(e.get("t", 0.0)))
    on_socket: dict[Any, list[int]] = defaultdict(list)
    for i, e in enumerate(log):
        on_socket[e.get("socket")].append(i)
    consumed: set[int] = set()
    steps: list[str | RawStep] = []
    uncovered: Counter[str] = Counter()
    slots: dict[Any, int] = {}
    state = {"active": 1, "raw_socket": None}

    def later(i: int, kind: str) -> list[int]:
        """The events of ``kind`` on ``log[i]``'s socket after it, up to its close."""
        out = []
        for j in on_socket[log[i].get("socket")]:
            if j > i and log[j]["event"] == "close":
                break
            if j > i and log[j]["event"] == kind:
                out.append(j)
        return out

    def received_until_next_send(i: int, *, stop_types: Iterable[str] = ()) -> list[str]:
        stop = set(stop_types)
        out = []
        for j in on_socket[log[i].get("socket")]:
            if j <= i:
                continue
            if log[j]["event"] == "close" or (log[j]["event"] == "sent" and (not stop or
                                                                            frame_type(log[j].get("frame")) in stop)):
                break
            if log[j]["event"] == "received":
                out.append(str(log[j].get("type")))
        return out

    def emit(step: str | RawStep, i: int) -> None:
        socket = log[i].get("socket")
        gap = float(log[i].get("t", 0.0)) - float(log[i - 1].get("t", 0.0)) if i > 0 else 0.0
        if gap > wait_threshold_s:
            steps.append(f"wait:{round(gap, 1):g}")
            state["raw_socket"] = None
        slot = slots.get(socket, state["active"])
        if slot != state["active"]:
            steps.append(f"tab:{slot}")
            state["active"] = slot
            state["raw_socket"] = None
        if isinstance(step, RawStep) and state["raw_socket"] == socket and steps and isinstance(steps[-1], RawStep):
            last = steps[-1]
            replies = tuple(dict.fromkeys([*last.replies, *step.replies]))
            steps[-1] = RawStep(last.frames + step.frames, replies, last.at + step.at)
        else:
            steps.append(step)
        state["raw_socket"] = socket if isinstance(step, RawStep) else None

    def open_socket(i: int) -> None:
        socket = log[i].get("socket")
        used = set(slots.values())
        slots[socket] = next(n for n in range(1, len(used) + 2) if n not in used)

    for i, e in enumerate(log):
        if i in consumed:
            continue
        kind = e.get("event")
        socket = e.get("socket")
        if kind == "open":
            open_socket(i)
            if proxy_path is not None and e.get("path") == proxy_path:
                emit("proxy-connect", i)
                continue
            prefix = []
            for j in later(i, "sent"):
                t = frame_type(log[j].get("frame"))
                if t not in _OPEN or t in [frame_type(log[k].get("frame")) for k in prefix]:
                    break
                prefix.append(j)
            if len(prefix) == len(_OPEN):
                consumed.update(prefix)
                emit("connect", i)
            else:
                emit("connect:bare", i)
        elif kind == "close":
            if socket in slots:
                emit("close", i)
                del slots[socket]
        elif kind == "sent":
            if socket not in slots:  # a socket the log caught already open
                open_socket(i)
                emit("connect:bare", i)
            t = frame_type(e.get("frame"))
            if t == "switch-config":
                nxt = later(i, "sent")[:len(_AFTER_SWITCH)]
                if sorted(frame_type(log[j].get("frame")) for j in nxt) == sorted(_AFTER_SWITCH):
                    consumed.update(nxt)
                    emit("switch", i)
                else:
                    emit("switch-bare", i)
            elif t == "text-input":
                after = received_until_next_send(i, stop_types=("text-input",))
                played = [j for j in later(i, "sent")
                          if frame_type(log[j].get("frame")) in ("frontend-playback-complete", "text-input")]
                if played and frame_type(log[played[0]].get("frame")) == "frontend-playback-complete":
                    consumed.add(played[0])
                    emit("text", i)
                elif "backend-synth-complete" in after:
                    emit("text-until-synth", i)
                elif "audio" in after:
                    emit("text-until-audio", i)
                else:
                    emit(_raw(log, i, received_until_next_send(i)), i)
                    uncovered[t] += 1
            elif t == "fetch-configs":
                emit("fetch-configs", i)
            else:
                emit(_raw(log, i, received_until_next_send(i)), i)
                uncovered[t] += 1
    for socket in sorted(slots, key=lambda s: slots[s]):
        # still open when the log ended: the tab is closed at the end of the cycle
        if slots[socket] != state["active"]:
            steps.append(f"tab:{slots[socket]}")
            state["active"] = slots[socket]
        steps.append("close")
    return steps, dict(uncovered)


def _raw(log: Sequence[Mapping[str, Any]], i: int, received: Iterable[str]) -> RawStep:
    replies = tuple(dict.fromkeys(t for t in received if t not in NOT_REPLIES))
    return RawStep((log[i].get("frame"),), replies, (float(log[i].get("t", 0.0)),))


async def record_page(
    host: str,
    port: int,
    *,
    ws_path: str = "/client-ws",
    proxy_path: str | None = None,
    characters: Sequence[str] = (),
    target: str | None = None,
    browser: str | os.PathLike[str] | None = None,
    page_path: str = "/",
    script: str | None = DEFAULT_SCRIPT,
    until: Awaitable[Any] | None = None,
    headless: bool | None = None,
    timeout_s: float = 30.0,
    wait_threshold_s: float = WAIT_THRESHOLD_S,
    on_open: Any = None,
) -> ScenarioFile:
    """Open the server's page in a browser, record what its sockets do, and
    read the recording back as a scenario.

    Args:
        host, port, ws_path, proxy_path: the running server and its socket paths.
        characters: the target's character files (a scripted ``switch`` picks one).
        target: the target's name, kept in the file.
        browser: the browser (see :func:`~leaklab.driver.browser.find_browser`).
        page_path: the page's path on the server.
        script: a step list the page takes through its own controls, in a
            headless browser; ``None``: a window the user drives until
            ``until`` is done or every tab is closed.
        until: (with ``script=None``) awaited alongside the user's tabs:
            when it finishes, the recording ends (the CLI's Enter key).
        headless: no window (default: with a script only).
        timeout_s: bound on every wait of a scripted step.
        on_open: (with ``script=None``) called with the Playwright page once
            it is open for the user.

    Raises:
        BrowserMissing: no browser or no Playwright; says what to install.
        UnknownScenarioError: a script that is not a step list.
    """
    scripted = steps_scenario(script) if script is not None else None
    log = FrameLog(f"ws://{host}:{port}")
    base_url = f"http://{host}:{port}"
    client = BrowserClient(browser, page_path=page_path, timeout_s=timeout_s, on_page=log.follow,
                           headless=scripted is not None if headless is None else headless)
    await client.start()
    try:
        if scripted is not None:
            state = CycleState(host=host, port=port, ws_path=ws_path, proxy_path=proxy_path,
                               characters=tuple(characters), cycle=1, timeout_s=timeout_s, browser=client)
            await scripted.run_cycle(state)
        else:
            await _interactive(client, log, f"ws://{host}:{port}{ws_path}", base_url, until, on_open)
    finally:
        await client.close()
    events = log.finish()
    steps, uncovered = infer_steps(events, proxy_path=proxy_path, wait_threshold_s=wait_threshold_s)
    recorded = {"page": base_url.rstrip("/") + page_path, "mode": "scripted" if scripted else "interactive",
                "at": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")}
    if scripted is not None:
        recorded["script"] = scripted.name
    return ScenarioFile(steps, target=target, frames=events, uncovered=uncovered, recorded=recorded)


async def _interactive(client: BrowserClient, log: FrameLog, ws_url: str, base_url: str,
                       until: Awaitable[Any] | None, on_open: Any) -> None:
    """The page in a window: the user clicks until every tab is closed or ``until`` is done."""
    tab = client.new_tab(ws_url, base_url=base_url)
    await tab.connect()
    context = tab.context
    done = asyncio.Event()
    pages = {id(tab.page)}

    def opened(page: Any) -> None:
        log.follow(page)
        pages.add(id(page))
        page.on("close", lambda p: closed(p))

    def closed(page: Any) -> None:
        pages.discard(id(page))
        if not pages:
            done.set()

    context.on("page", opened)
    tab.page.on("close", closed)
    client.browser.on("disconnected", lambda _browser: done.set())  # the user quit the browser
    if on_open is not None:
        on_open(tab.page)
    waits = [asyncio.ensure_future(done.wait())]
    if until is not None:
        waits.append(asyncio.ensure_future(until))
    try:
        await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for w in waits:
            w.cancel()
        await asyncio.gather(*waits, return_exceptions=True)
