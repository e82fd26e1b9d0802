"""A real browser as a client: the backend's own web page in headless Chromium.

One browser per run (:class:`BrowserClient`), one browser context per tab
(:class:`BrowserTab`), through Playwright's async API with
``executable_path`` to a browser already on the machine: Playwright never
downloads one here. A tab opens the page the backend serves at ``/`` with
``localStorage`` ``wsUrl``/``baseUrl`` set to the in-process server before the
page loads; the page then does what upstream's page does (PROTOCOL.md, "What
the web page sends"). What the page sends and receives is read off its
WebSocket (``page.on("websocket")``), so a page that cannot be changed
(upstream's own) is followed the same way.

The steps of :mod:`leaklab.driver.scenarios` use a tab when the cycle has a
browser (``CycleState.browser``): ``connect`` opens the page and waits for the
greeting and the replies to the page's requests, ``switch`` picks the
character in the page's list, ``text`` types into the page's input and presses
Enter, ``close`` and ``abort`` close the tab (its context).

The browser's processes are not the backend's: :meth:`BrowserClient.pids`
names them, for the child-process census to leave out.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import psutil

from .client import (
    GREETING_FRAMES,
    PAGE_OPEN_REQUESTS,
    PAGE_SWITCH_REQUESTS,
    StepTimeout,
    TurnTiming,
    frame_type,
    read_page_frames,
    read_turn,
    read_until,
)

#: Chromium's switches for a quiet headless run that reaches nothing but the
#: server under test (``--headless`` is Playwright's ``headless=True``).
LAUNCH_ARGS: tuple[str, ...] = (
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)

#: Browser commands looked for on ``PATH``, in order.
BROWSER_COMMANDS: tuple[str, ...] = (
    "chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "msedge", "microsoft-edge",
)

#: Where Windows keeps Edge (always installed there) and Chrome.
WINDOWS_BROWSERS: tuple[str, ...] = (
    r"C:\Program Files (x86)\Microsoft\Edge\Application\msedge.exe",
    r"C:\Program Files\Microsoft\Edge\Application\msedge.exe",
    r"C:\Program Files\Google\Chrome\Application\chrome.exe",
)

#: The elements of the page a tab uses (leaklab/backend/frontend/index.html;
#: the test app's page has the same).
DEFAULT_SELECTORS: Mapping[str, str] = {"text": "#text", "configs": "#configs", "switch": "#switch"}


class BrowserMissing(RuntimeError):
    """No browser, or no Playwright, to run one with; says what to install."""


class PageMissing(RuntimeError):
    """The backend's own page is not there to open: its folder is missing, or
    has no ``index.html``."""


class PageDidNotConnect(StepTimeout):
    """The page loaded but never opened its WebSocket within the step timeout."""


def check_page(page_dir: str | os.PathLike[str] | None, hint: str = "") -> None:
    """The folder a backend serves its page from, checked before a browser
    opens it (``None``: not known, nothing to check).

    Raises:
        PageMissing: naming the folder (and ``hint``: how the project ships it).
    """
    if page_dir is None:
        return
    folder = Path(page_dir)
    tail = f" ({hint})" if hint else ""
    if not folder.is_dir():
        raise PageMissing(f"the backend's page folder {folder} does not exist: --client browser opens the page "
                          f"the backend serves from it{tail}")
    if not (folder / "index.html").is_file():
        raise PageMissing(f"the backend's page folder {folder} has no index.html: --client browser opens the page "
                          f"the backend serves from it{tail}")


class UnsupportedStep(RuntimeError):
    """A step a page does not take (a bare connect, a frame of the driver's choosing)."""


def find_browser(executable: str | os.PathLike[str] | None = None) -> str:
    """The browser to run: ``executable`` (a path or a command on ``PATH``),
    else the first of :data:`BROWSER_COMMANDS` on ``PATH``, else (Windows)
    Edge or Chrome where they are installed.

    Raises:
        BrowserMissing: none found; the message says what to install.
    """
    if executable is not None:
        found = shutil.which(str(executable)) or (str(executable) if Path(executable).is_file() else None)
        if found is None:
            raise BrowserMissing(f"no browser at {str(executable)!r}: give the path of Chromium, Chrome or Edge")
        return found
    for command in BROWSER_COMMANDS:
        found = shutil.which(command)
        if found:
            return found
    if sys.platform == "win32":
        for path in WINDOWS_BROWSERS:
            if Path(path).is_file():
                return path
    raise BrowserMissing(
        "no Chromium-family browser found (looked for " + ", ".join(BROWSER_COMMANDS) + " on PATH): "
        "install one (Debian/Ubuntu: apt-get install chromium; on Windows Edge is already there) "
        "or give its path"
    )


def _playwright() -> Any:
    try:
        from playwright.async_api import async_playwright
    except ImportError:
        raise BrowserMissing(
            "the browser client needs Playwright: pip install 'leaklab[browser]' "
            "(it runs a browser already installed; never run 'playwright install')"
        ) from None
    return async_playwright


def check_browser(executable: str | os.PathLike[str] | None = None) -> str:
    """What the browser client needs, checked before anything starts: the
    browser (its path, returned) and Playwright.

    Raises:
        BrowserMissing: naming what to install.
    """
    found = find_browser(executable)
    _playwright()
    return found


def _descendants(pid: int) -> set[int]:
    try:
        proc = psutil.Process(pid)
        return {pid, *(c.pid for c in proc.children(recursive=True))}
    except psutil.Error:
        return set()


class BrowserClient:
    """One headless browser for a run; :meth:`new_tab` gives a tab per session.

    Args:
        executable: the browser (see :func:`find_browser`).
        page_path: the page's path on the server (the backend's own page: ``/``).
        selectors: the page's elements (:data:`DEFAULT_SELECTORS` keys).
        timeout_s: default bound on every wait.
        headless: ``False``: a window the user sees (``leaklab record``).
        on_page: called with each tab's page before it loads (a recorder
            follows its WebSocket from the first frame).
    """

    def __init__(self, executable: str | os.PathLike[str] | None = None, *, page_path: str = "/",
                 selectors: Mapping[str, str] | None = None, timeout_s: float = 30.0, headless: bool = True,
                 on_page: Callable[[Any], None] | None = None) -> None:
        self.executable = find_browser(executable)
        self.page_path = page_path
        self.selectors = {**DEFAULT_SELECTORS, **(selectors or {})}
        self.timeout_s = timeout_s
        self.headless = headless
        self.on_page = on_page
        self._async_playwright = _playwright()
        self._manager: Any = None
        self._playwright: Any = None
        self.browser: Any = None
        self._roots: set[int] = set()
        #: every process :meth:`pids` ever named (one that outlived the
        #: browser, re-parented, is still the browser's)
        self.seen_pids: set[int] = set()
        #: tabs opened so far, each in a browser context of its own
        self.tabs_opened = 0

    async def start(self) -> BrowserClient:
        """Launch the browser (a new, empty profile of its own)."""
        if self.browser is not None:
            return self
        before = {c.pid for c in psutil.Process().children()}
        self._manager = self._async_playwright()
        self._playwright = await self._manager.__aenter__()
        try:
            self.browser = await self._playwright.chromium.launch(
                executable_path=self.executable, headless=self.headless, args=list(LAUNCH_ARGS),
                timeout=self.timeout_s * 1000,
            )
        except Exception:
            await self._manager.__aexit__(None, None, None)
            self._manager = self._playwright = None
            raise
        # Playwright's driver is a child of this process, the browser its child.
        self._roots = {c.pid for c in psutil.Process().children()} - before
        self.pids()
        return self

    def pids(self) -> set[int]:
        """The browser's processes now (Playwright's driver, the browser, its
        renderers...): none of them is the backend's. Each call adds them to
        :attr:`seen_pids`."""
        out: set[int] = set()
        for root in self._roots:
            out |= _descendants(root)
        self.seen_pids |= out
        return out

    def new_tab(self, ws_url: str, *, base_url: str, page_url: str | None = None,
                sent: list[str] | None = None) -> BrowserTab:
        """A tab (not open yet) whose page talks to ``ws_url``."""
        if self.browser is None:
            raise RuntimeError("the browser is not started: await BrowserClient.start() first")
        return BrowserTab(self, ws_url, base_url=base_url, page_url=page_url or base_url.rstrip("/") + self.page_path,
                          sent=sent)

    async def close(self) -> None:
        """Close the browser and Playwright's driver (idempotent)."""
        browser, self.browser = self.browser, None
        manager, self._manager = self._manager, None
        self.pids()
        try:
            if browser is not None:
                await browser.close()
        finally:
            if manager is not None:
                await manager.__aexit__(None, None, None)
            self._playwright = None

    async def __aenter__(self) -> BrowserClient:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


class BrowserTab:
    """One tab: a browser context with one page, followed through its WebSocket.

    Quacks like :class:`~leaklab.driver.client.SessionClient` for the steps:
    ``connect``, ``switch_config``, ``text_turn``, ``close``, ``abort``,
    ``client_uid``, ``greeting_s``, ``sent``.
    """

    def __init__(self, owner: BrowserClient, ws_url: str, *, base_url: str, page_url: str,
                 sent: list[str] | None = None) -> None:
        self.owner = owner
        self.ws_url = ws_url
        self.base_url = base_url
        self.page_url = page_url
        self.timeout_s = owner.timeout_s
        self.context: Any = None
        self.page: Any = None
        self.client_uid: str | None = None
        self.greeting: list[dict[str, Any]] = []
        self.greeting_s: float | None = None
        self.replies: dict[str, dict[str, Any]] = {}
        self.unanswered: list[str] = []
        self.request_errors: list[str] = []
        self.sent: list[str] = sent if sent is not None else []
        self.received: list[dict[str, Any]] = []
        #: the page's WebSocket to the backend opened
        self.socket_opened = False
        #: the page's console errors and uncaught exceptions, in order
        self.console_errors: list[str] = []
        self._frames: asyncio.Queue[dict[str, Any]] = asyncio.Queue()

    # -- the page's socket, as the browser sees it ----------------------------
    def _on_websocket(self, ws: Any) -> None:
        if ws.url != self.ws_url:
            return
        self.socket_opened = True
        ws.on("framesent", self._on_sent)
        ws.on("framereceived", self._on_received)

    def _on_sent(self, payload: str | bytes) -> None:
        self.sent.append(frame_type(payload))

    def _on_received(self, payload: str | bytes) -> None:
        try:
            frame = json.loads(payload)
        except ValueError:
            return
        if isinstance(frame, dict):
            self.received.append(frame)
            self._frames.put_nowait(frame)

    async def recv(self, timeout_s: float | None = None) -> dict[str, Any]:
        """The next frame the page received."""
        timeout = self.timeout_s if timeout_s is None else timeout_s
        try:
            return await asyncio.wait_for(self._frames.get(), timeout)
        except asyncio.TimeoutError:
            raise StepTimeout(f"the page received no frame within {timeout} s") from None

    async def recv_until(self, kind: str, *, text: str | None = None, timeout_s: float | None = None,
                         or_error: bool = False) -> list[dict[str, Any]]:
        """Frames the page received up to the first of type ``kind``."""
        return await read_until(self, kind, text=text, timeout=self.timeout_s if timeout_s is None else timeout_s,
                                or_error=or_error, who="the page got ")

    # -- steps ------------------------------------------------------------------
    async def connect(self, *, read_greeting: bool = True, page: bool = True) -> list[dict[str, Any]]:
        """Open the page; wait until its socket is open, the greeting came and
        the page's requests on open were answered.

        Raises:
            UnsupportedStep: ``page=False`` (a page always does what it does on open).
        """
        if not page or not read_greeting:
            raise UnsupportedStep("a browser tab opens the page, which sends its requests on open: "
                                  "connect:bare needs the synthetic client")
        started = time.monotonic()
        self.context = await self.owner.browser.new_context()
        self.owner.tabs_opened += 1
        settings = json.dumps({"wsUrl": json.dumps(self.ws_url), "baseUrl": json.dumps(self.base_url)})
        await self.context.add_init_script(
            f"(() => {{ const s = {settings}; for (const k in s) window.localStorage.setItem(k, s[k]); }})()"
        )
        self.page = await self.context.new_page()
        self.page.set_default_timeout(self.timeout_s * 1000)
        self.page.on("websocket", self._on_websocket)
        if self.owner.on_page is not None:
            self.owner.on_page(self.page)
        self.page.on("console", self._on_console)
        self.page.on("pageerror", lambda exc: self.console_errors.append(f"uncaught: {exc}"))
        response = await self.page.goto(self.page_url, wait_until="domcontentloaded")
        if response is not None and response.status >= 400:
            raise PageMissing(f"the backend answered HTTP {response.status} for its page {self.page_url}: "
                              "--client browser opens the page the backend serves there")
        try:
            await read_page_frames(self, GREETING_FRAMES, [reply for _, reply in PAGE_OPEN_REQUESTS], started)
        except StepTimeout:
            if self.socket_opened:
                raise
            errors = "; ".join(self.console_errors[-5:]) or "none"
            raise PageDidNotConnect(
                f"the page {self.page_url} loaded but did not connect to {self.ws_url} within {self.timeout_s:g} s "
                f"(raise it with --step-timeout SECONDS); the page's console errors: {errors}") from None
        return self.greeting

    def _on_console(self, message: Any) -> None:
        if message.type == "error":
            self.console_errors.append(message.text)

    async def switch_config(self, name: str, *, page: bool = True) -> list[dict[str, Any]]:
        """Pick ``name`` in the page's character list and press switch; wait
        for ``config-switched`` and the replies to what the page then asks."""
        if not page:
            raise UnsupportedStep("a browser tab switches as the page does: switch-bare needs the synthetic client")
        sel = self.owner.selectors
        await self.page.select_option(sel["configs"], name)
        await self.page.click(sel["switch"])
        frames = await self.recv_until("config-switched", or_error=True)
        if frames[-1].get("type") == "error":
            raise RuntimeError(f"switch-config {name!r} failed: {frames[-1].get('message')}")
        await read_page_frames(self, 0, [reply for _, reply in PAGE_SWITCH_REQUESTS], time.monotonic())
        return frames

    async def text_turn(self, text: str, *, complete_playback: bool = True, timeout_s: float | None = None,
                        stop_at: str | None = None) -> TurnTiming:
        """Type ``text`` into the page's input and press Enter; follow the turn
        as :meth:`SessionClient.text_turn` does. The page acknowledges playback
        itself; without ``complete_playback`` it is told to hold it
        (``window.leaklabHoldPlayback``) and the step returns at the first
        ``backend-synth-complete``."""
        await self.page.evaluate(f"window.leaklabHoldPlayback = {'false' if complete_playback else 'true'}")
        started = time.perf_counter()
        await self.page.fill(self.owner.selectors["text"], text)
        await self.page.press(self.owner.selectors["text"], "Enter")
        return await read_turn(self, started, self.timeout_s if timeout_s is None else timeout_s,
                               complete_playback=complete_playback, stop_at=stop_at, acknowledge=False)

    async def send(self, frame: Any) -> None:
        raise UnsupportedStep("a browser tab sends only what its page sends: this step needs the synthetic client")

    async def close(self) -> None:
        """Close the tab: the browser closes the page's socket (no message first)."""
        context, self.context = self.context, None
        if context is not None:
            await context.close()

    async def abort(self) -> None:
        """A browser has no way to drop the TCP connection: the tab is closed."""
        await self.close()
