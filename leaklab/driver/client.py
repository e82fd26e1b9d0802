"""A WebSocket client that speaks the Open-LLM-VTuber protocol, as a browser tab does.

Every await on the network has a timeout; a timeout raises
:class:`StepTimeout` naming what was awaited.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import time
from collections.abc import Mapping
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed


class StepTimeout(TimeoutError):
    """A protocol step did not complete in time."""


class ProtocolViolation(AssertionError):
    """The server answered something the protocol does not allow here."""


#: What upstream's web page sends as soon as its socket is open (without
#: waiting for the greeting), each with the reply it gets (PROTOCOL.md,
#: "What the web page sends").
PAGE_OPEN_REQUESTS: tuple[tuple[str, str], ...] = (
    ("fetch-backgrounds", "background-files"),
    ("fetch-configs", "config-files"),
    ("fetch-history-list", "history-list"),
    ("create-new-history", "new-history-created"),
)

#: What the page sends after every ``config-switched``, with the replies.
PAGE_SWITCH_REQUESTS: tuple[tuple[str, str], ...] = (
    ("fetch-history-list", "history-list"),
    ("create-new-history", "new-history-created"),
)

#: Frames in the greeting of ``/client-ws``.
GREETING_FRAMES = 5

#: After the greeting, how long a tab waits for the next reply to the page's
#: requests before it goes on without it (the page never waits for them: a
#: backend that does not answer one is driven all the same; a late reply is
#: read, and skipped, by the next step).
PAGE_REPLY_QUIET_S = 1.0


@dataclasses.dataclass
class TurnTiming:
    """Reply latency of one text turn, in seconds from sending ``text-input``."""

    first_audio_s: float | None
    chain_end_s: float | None
    frames: list[str]


class SessionClient:
    """One tab: connect, read the greeting, send frames, read frames.

    Args:
        url: ``ws://127.0.0.1:PORT/client-ws``.
        timeout_s: default bound on every await.
        sent: the list the ``type`` of every frame sent is appended to
            (default: a new one, :attr:`sent`); a cycle passes its own to
            record what its steps sent.
    """

    def __init__(self, url: str, *, timeout_s: float = 10.0, sent: list[str] | None = None) -> None:
        self.url = url
        self.timeout_s = timeout_s
        self.ws: ClientConnection | None = None
        self.client_uid: str | None = None
        self.greeting: list[dict[str, Any]] = []
        #: the last reply of each type to the page's requests (``config-files``, ...)
        self.replies: dict[str, dict[str, Any]] = {}
        #: seconds from opening the socket to the greeting's last frame
        self.greeting_s: float | None = None
        #: replies to the page's requests that did not come (:data:`PAGE_REPLY_QUIET_S`)
        self.unanswered: list[str] = []
        #: ``error`` frames that answered the page's requests
        self.request_errors: list[str] = []
        self.sent: list[str] = sent if sent is not None else []

    async def connect(self, *, read_greeting: bool = True, page: bool = False) -> list[dict[str, Any]]:
        """Open the socket; read the five greeting frames of ``/client-ws``.

        With ``page=True``, do what upstream's web page does on open: send
        :data:`PAGE_OPEN_REQUESTS` as soon as the socket is open (not waiting
        for the greeting) and read their replies beside the greeting (see
        :func:`read_page_frames`).

        Raises:
            StepTimeout: the socket or the greeting did not come in time.
        """
        started = time.monotonic()
        try:
            self.ws = await asyncio.wait_for(
                connect(self.url, open_timeout=self.timeout_s, close_timeout=2, max_size=None),
                self.timeout_s,
            )
        except asyncio.TimeoutError:
            raise StepTimeout(f"connect to {self.url} timed out after {self.timeout_s} s") from None
        if page:
            for request, _ in PAGE_OPEN_REQUESTS:
                await self.send({"type": request})
            await read_page_frames(self, GREETING_FRAMES, [reply for _, reply in PAGE_OPEN_REQUESTS], started)
        elif read_greeting:
            await read_page_frames(self, GREETING_FRAMES, [], started)
        return self.greeting

    async def page_requests(self, requests: tuple[tuple[str, str], ...] = PAGE_SWITCH_REQUESTS) -> dict[str, dict[str, Any]]:
        """Send ``requests`` (``(type, reply type)`` pairs) and read every reply.

        Returns:
            The replies that came, by type (see :func:`read_page_frames`).
        """
        for request, _ in requests:
            await self.send({"type": request})
        await read_page_frames(self, 0, [reply for _, reply in requests], time.monotonic())
        return {reply: self.replies[reply] for _, reply in requests if reply in self.replies}

    async def switch_config(self, name: str, *, page: bool = True) -> list[dict[str, Any]]:
        """``switch-config`` to ``name``, read to ``config-switched``; with
        ``page``, then do what the page does after it (:data:`PAGE_SWITCH_REQUESTS`).

        Raises:
            RuntimeError: the server refused the switch.
        """
        await self.send({"type": "switch-config", "file": name})
        frames = await self.recv_until("config-switched", or_error=True)
        if frames[-1].get("type") == "error":
            raise RuntimeError(f"switch-config {name!r} failed: {frames[-1].get('message')}")
        if page:
            await self.page_requests(PAGE_SWITCH_REQUESTS)
        return frames

    async def send(self, frame: dict[str, Any] | str) -> None:
        assert self.ws is not None, "not connected"
        data = frame if isinstance(frame, str) else json.dumps(frame)
        try:
            await asyncio.wait_for(self.ws.send(data), self.timeout_s)
        except asyncio.TimeoutError:
            raise StepTimeout(f"send timed out after {self.timeout_s} s") from None
        self.sent.append(frame_type(frame))

    async def recv(self, timeout_s: float | None = None) -> dict[str, Any]:
        """The next frame, parsed."""
        assert self.ws is not None, "not connected"
        timeout = self.timeout_s if timeout_s is None else timeout_s
        try:
            raw = await asyncio.wait_for(self.ws.recv(), timeout)
        except asyncio.TimeoutError:
            raise StepTimeout(f"no frame within {timeout} s") from None
        return json.loads(raw)

    async def recv_until(
        self, kind: str, *, text: str | None = None, timeout_s: float | None = None, or_error: bool = False
    ) -> list[dict[str, Any]]:
        """Frames up to and including the first of type ``kind`` (and ``text``),
        or the first ``error`` frame with ``or_error``."""
        return await read_until(self, kind, text=text, timeout=self.timeout_s if timeout_s is None else timeout_s,
                                or_error=or_error)

    async def text_turn(self, text: str, *, complete_playback: bool = True, timeout_s: float | None = None,
                        stop_at: str | None = None) -> TurnTiming:
        """Send ``text-input`` and follow the turn.

        With ``complete_playback`` the client acknowledges playback and reads
        to ``conversation-chain-end``; without it, it stops right after the
        first ``backend-synth-complete`` (an abrupt tab close follows).
        ``stop_at="audio"`` stops at the first ``audio`` frame instead (a tab
        closed while the reply is being spoken).
        """
        started = time.perf_counter()
        await self.send({"type": "text-input", "text": text})
        return await read_turn(self, started, self.timeout_s if timeout_s is None else timeout_s,
                               complete_playback=complete_playback, stop_at=stop_at, acknowledge=True)

    async def close(self) -> None:
        """Close politely (close frame, bounded wait)."""
        if self.ws is not None:
            ws, self.ws = self.ws, None
            with contextlib.suppress(ConnectionClosed, OSError, asyncio.TimeoutError):
                await asyncio.wait_for(ws.close(), 3)

    async def abort(self) -> None:
        """Drop the TCP connection with no close frame, as a killed tab does."""
        if self.ws is not None:
            ws, self.ws = self.ws, None
            ws.transport.abort()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(ws.wait_closed(), 3)

    async def __aenter__(self) -> SessionClient:
        await self.connect()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


async def read_page_frames(tab: Any, greeting: int, replies: list[str], started: float, *,
                           quiet_s: float = PAGE_REPLY_QUIET_S) -> None:
    """Read ``greeting`` greeting frames and a frame of each type in
    ``replies``, in whatever order they come; for :class:`SessionClient` and
    the browser's tab alike (``tab.recv``, ``tab.timeout_s``; sets
    ``tab.greeting``, ``greeting_s``, ``client_uid``, ``replies``,
    ``unanswered``, ``request_errors``).

    The greeting must come within ``tab.timeout_s``. The replies are read as
    long as they keep coming: once the greeting is in, the step goes on, as the
    page does, when no frame came for ``quiet_s``. An ``error`` frame
    meanwhile answers one request (``tab.request_errors``: which one cannot be
    told); the replies that did not come are in ``tab.unanswered``.

    Raises:
        StepTimeout: the greeting did not come in time.
    """
    deadline = time.monotonic() + tab.timeout_s
    pending = list(replies)
    errors = 0
    frames: list[dict[str, Any]] = []
    while len(frames) < greeting or len(pending) > errors:
        left = deadline - time.monotonic()
        if left <= 0:
            if len(frames) >= greeting:
                break
            raise StepTimeout(f"no greeting within {tab.timeout_s} s (got {[f.get('type') for f in frames]})")
        try:
            frame = await tab.recv(left if len(frames) < greeting else min(left, quiet_s))
        except StepTimeout:
            if len(frames) >= greeting:
                break  # the backend has not answered: go on without it
            continue
        kind = frame.get("type")
        if kind in pending:
            pending.remove(kind)
            tab.replies[kind] = frame
        elif kind == "error" and len(pending) > errors:
            tab.request_errors.append(str(frame.get("message")))
            errors += 1
        elif len(frames) < greeting:
            frames.append(frame)
            if kind == "set-model-and-conf":
                tab.client_uid = frame.get("client_uid")
            if len(frames) == greeting:
                tab.greeting = frames
                tab.greeting_s = time.monotonic() - started
    tab.unanswered.extend(pending)


def frame_type(frame: Any) -> str:
    """The ``type`` of a frame (a dict, or its JSON text); ``"?"`` without one."""
    if isinstance(frame, (str, bytes)):
        try:
            frame = json.loads(frame)
        except ValueError:
            return "?"
    kind = frame.get("type") if isinstance(frame, Mapping) else None
    return kind if isinstance(kind, str) else "?"


async def open_half_open(host: str, port: int, path: str, *, timeout_s: float = 10.0) -> asyncio.StreamWriter:
    """Finish a WebSocket handshake, then go silent: never read, never answer a
    ping, never close. The server sees a live connection until it probes it.

    Returns:
        The writer; ``writer.transport.abort()`` ends it.
    """
    import base64
    import os

    reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout_s)
    key = base64.b64encode(os.urandom(16)).decode()
    writer.write(
        (
            f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
        ).encode()
    )
    try:
        status = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout_s)
    except (asyncio.TimeoutError, asyncio.IncompleteReadError) as exc:
        writer.transport.abort()
        raise StepTimeout(f"half-open handshake to {path} failed: {exc!r}") from None
    if b" 101 " not in status.split(b"\r\n", 1)[0]:
        writer.transport.abort()
        raise ProtocolViolation(f"handshake refused: {status[:80]!r}")
    # Stop reading: the kernel buffer fills, pings go unanswered.
    writer.transport.pause_reading()
    return writer


async def read_turn(tab: Any, started: float, timeout: float, *, complete_playback: bool, stop_at: str | None,
                    acknowledge: bool) -> TurnTiming:
    """Read one text turn's frames up to ``conversation-chain-end`` (or the
    first ``audio`` with ``stop_at="audio"``, or ``backend-synth-complete``
    without ``complete_playback``); for :class:`SessionClient` and the
    browser's tab alike. ``acknowledge``: send ``frontend-playback-complete``
    after the first ``backend-synth-complete`` (the page does it itself).

    Raises:
        StepTimeout: the turn did not end within ``timeout``.
        ProtocolViolation: the server answered with an ``error``.
    """
    deadline = time.monotonic() + timeout
    first_audio = None
    kinds: list[str] = []
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            raise StepTimeout(f"turn did not finish within {timeout} s (got {kinds})")
        frame = await tab.recv(left)
        kind = frame.get("type", "")
        kinds.append(kind)
        if kind == "error":
            raise ProtocolViolation(f"server error during turn: {frame.get('message')}")
        if kind == "audio" and first_audio is None:
            first_audio = time.perf_counter() - started
            if stop_at == "audio":
                return TurnTiming(first_audio, None, kinds)
        if kind == "backend-synth-complete":
            if not complete_playback:
                return TurnTiming(first_audio, None, kinds)
            # upstream sends it twice; acknowledge once
            if acknowledge and kinds.count("backend-synth-complete") == 1:
                await tab.send({"type": "frontend-playback-complete"})
        if kind == "control" and frame.get("text") == "conversation-chain-end":
            return TurnTiming(first_audio, time.perf_counter() - started, kinds)


async def read_until(tab: Any, kind: str, *, text: str | None, timeout: float, or_error: bool,
                     who: str = "") -> list[dict[str, Any]]:
    """Frames ``tab`` receives up to and including the first of type
    ``kind`` (and ``text``), or the first ``error`` with ``or_error``; for
    :class:`SessionClient` and the browser's tab alike.

    Raises:
        StepTimeout: no such frame within ``timeout`` (``who`` says whose).
    """
    deadline = time.monotonic() + timeout
    frames: list[dict[str, Any]] = []
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            raise StepTimeout(f"{who}no {kind!r} frame within {timeout} s (got {[f.get('type') for f in frames]})")
        frame = await tab.recv(left)
        frames.append(frame)
        if frame.get("type") == kind and (text is None or frame.get("text") == text):
            return frames
        if or_error and frame.get("type") == "error":
            return frames
