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
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed


class StepTimeout(TimeoutError):
    """A protocol step did not complete in time."""


class ProtocolViolation(AssertionError):
    """The server answered something the protocol does not allow here."""


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
    """

    def __init__(self, url: str, *, timeout_s: float = 10.0) -> None:
        self.url = url
        self.timeout_s = timeout_s
        self.ws: ClientConnection | None = None
        self.client_uid: str | None = None
        self.greeting: list[dict[str, Any]] = []

    async def connect(self, *, read_greeting: bool = True) -> list[dict[str, Any]]:
        """Open the socket; read the five greeting frames of ``/client-ws``."""
        try:
            self.ws = await asyncio.wait_for(
                connect(self.url, open_timeout=self.timeout_s, close_timeout=2, max_size=None),
                self.timeout_s,
            )
        except asyncio.TimeoutError:
            raise StepTimeout(f"connect to {self.url} timed out after {self.timeout_s} s") from None
        if read_greeting:
            self.greeting = [await self.recv() for _ in range(5)]
            for frame in self.greeting:
                if frame.get("type") == "set-model-and-conf":
                    self.client_uid = frame.get("client_uid")
        return self.greeting

    async def send(self, frame: dict[str, Any] | str) -> None:
        assert self.ws is not None, "not connected"
        data = frame if isinstance(frame, str) else json.dumps(frame)
        try:
            await asyncio.wait_for(self.ws.send(data), self.timeout_s)
        except asyncio.TimeoutError:
            raise StepTimeout(f"send timed out after {self.timeout_s} s") from None

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
        timeout = self.timeout_s if timeout_s is None else timeout_s
        deadline = time.monotonic() + timeout
        frames: list[dict[str, Any]] = []
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise StepTimeout(f"no {kind!r} frame within {timeout} s (got {[f.get('type') for f in frames]})")
            frame = await self.recv(left)
            frames.append(frame)
            if frame.get("type") == kind and (text is None or frame.get("text") == text):
                return frames
            if or_error and frame.get("type") == "error":
                return frames

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
        timeout = self.timeout_s if timeout_s is None else timeout_s
        deadline = time.monotonic() + timeout
        first_audio = None
        kinds: list[str] = []
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise StepTimeout(f"turn did not finish within {timeout} s (got {kinds})")
            frame = await self.recv(left)
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
                if kinds.count("backend-synth-complete") == 1:
                    await self.send({"type": "frontend-playback-complete"})
            if kind == "control" and frame.get("text") == "conversation-chain-end":
                return TurnTiming(first_audio, time.perf_counter() - started, kinds)

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
