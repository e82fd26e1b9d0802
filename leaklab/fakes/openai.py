"""A local, deterministic, offline fake of the OpenAI HTTP API.

The leak experiments need an LLM and a TTS engine that answer the same way
every time, cost nothing, never touch the network and still go through the
real ``openai`` SDK code paths (HTTP, SSE parsing, retries, error mapping).
This module provides:

* :func:`create_fake_openai_app` - a Starlette ASGI app that serves
  ``/v1/chat/completions`` (streaming and not, text and tool calls),
  ``/v1/audio/speech`` (a real WAV file) and ``/v1/models``;
* :class:`FakeOpenAIServer` - runs that app on uvicorn in a background thread
  with its own event loop, so it can be used from sync code, from pytest and
  from inside a running event loop (Jupyter);
* :func:`main` - ``python -m leaklab.fakes.openai`` serves it until
  Ctrl-C.

Only the standard library, Starlette and uvicorn are imported on purpose: the
fake must not depend on the code it is used to test.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
import time
import weakref
from typing import Any

import uvicorn

from .._compat import Runner  # asyncio.Runner, backported for 3.10
# The app and its answers live beside this module; their public names are
# importable from here, where the rest of leaklab always found them.
from .openai_app import PROMPT_CHARS_HEADER, TTS_FAIL_MARKER, FakeOpenAIStats, create_fake_openai_app  # noqa: F401
from .openai_replies import FAKE_MODEL_ID

__all__ = [
    "FAKE_MODEL_ID",
    "TTS_FAIL_MARKER",
    "THREAD_NAME",
    "FakeOpenAIServer",
    "FakeOpenAIStats",
    "create_fake_openai_app",
    "llm_seconds",
    "llm_usage",
    "main",
]

THREAD_NAME = "leaklab-fake-openai"
"""Name of the thread :class:`FakeOpenAIServer` runs uvicorn in."""

#: Fake servers of this process, for :func:`llm_usage` (weak: a stopped,
#: dropped server goes).
_LIVE: weakref.WeakSet[Any] = weakref.WeakSet()


# --------------------------------------------------------------------------
# Background server
# --------------------------------------------------------------------------


class _NotifyingServer(uvicorn.Server):
    """A uvicorn server that tells another thread when it is listening."""

    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self.listening = threading.Event()

    async def startup(self, sockets: Any = None) -> None:
        await super().startup(sockets=sockets)
        # ``started`` is set once the listening socket exists; with lifespan
        # off there is nothing else to wait for.
        if self.started:
            self.listening.set()


def _stop_at_exit(ref: weakref.ReferenceType[FakeOpenAIServer]) -> None:
    """Stop a forgotten server before the interpreter waits for its thread."""
    server = ref()
    if server is not None:
        try:
            server.stop()
        except Exception:  # noqa: BLE001 - nothing useful to do at exit
            pass


def llm_usage() -> tuple[int, int]:
    """``(chat requests, prompt characters)`` so far, summed over the fake
    servers alive in this process: what the backend under test sent its LLM
    (the difference between two calls is a run's). ``(0, 0)`` when none
    exists (a backend talking to a real LLM)."""
    chats = chars = 0
    for server in list(_LIVE):
        chats += server._stats.chat_requests
        chars += server._stats.prompt_chars
    return chats, chars


def llm_seconds() -> float:
    """Seconds the fake servers alive in this process spent answering chat
    completions (server side, request to last byte): the LLM's part of a
    reply when the backend's own LLM call is not timed."""
    return sum(server._stats.chat_seconds for server in list(_LIVE))


class FakeOpenAIServer:
    """Runs the fake OpenAI app on uvicorn in a background thread.

    The thread has its own event loop, so the server works from sync code and
    from inside a running event loop (Jupyter, ``asyncio.run``). The thread is
    not a daemon so it is shut down cleanly rather than killed; call
    :meth:`stop` or use the context manager (a safety net also stops it at
    interpreter exit).

    Example:
        >>> with FakeOpenAIServer() as url:  # doctest: +SKIP
        ...     client = openai.OpenAI(api_key="sk-test", base_url=url)
    """

    def __init__(
        self,
        *,
        base_latency_s: float = 0.005,
        latency_per_kchar_s: float = 0.02,
        sentences: int = 2,
        port: int = 0,
        startup_timeout_s: float = 10.0,
    ) -> None:
        """Build the app; nothing listens until :meth:`start`.

        Args:
            base_latency_s: See :func:`create_fake_openai_app`.
            latency_per_kchar_s: See :func:`create_fake_openai_app`.
            sentences: See :func:`create_fake_openai_app`.
            port: TCP port on 127.0.0.1; 0 picks a free one.
            startup_timeout_s: How long :meth:`start` waits for the socket.
        """
        self.app = create_fake_openai_app(
            base_latency_s=base_latency_s,
            latency_per_kchar_s=latency_per_kchar_s,
            sentences=sentences,
        )
        self._stats: FakeOpenAIStats = self.app.state.fake_openai_stats
        _LIVE.add(self)
        self._port_wanted = port
        self._startup_timeout_s = startup_timeout_s
        # Serialises start/stop; never held while a request is served.
        self._lock = threading.Lock()
        self._server: _NotifyingServer | None = None
        self._thread: threading.Thread | None = None
        self._base_url: str | None = None
        self._atexit_registered = False

    # -- lifecycle ---------------------------------------------------------

    def start(self) -> str:
        """Start serving and wait until the socket accepts connections.

        Returns:
            The base URL, ``http://127.0.0.1:PORT/v1``. Calling it again while
            running returns the same URL.

        Raises:
            RuntimeError: If uvicorn fails or is not listening within the
                startup timeout.
        """
        with self._lock:
            if self._thread is not None:
                assert self._base_url is not None
                return self._base_url
            config = uvicorn.Config(
                self.app,
                host="127.0.0.1",
                port=self._port_wanted,
                # Plain asyncio (not uvloop) keeps the server loop identical
                # everywhere and easy to introspect.
                loop="asyncio",
                ws="none",
                lifespan="off",
                log_level="warning",
                access_log=False,
                # uvicorn's default log_config runs logging.dictConfig(), which
                # would rewire the host process' logging (pytest, Jupyter).
                log_config=None,
            )
            server = _NotifyingServer(config)
            failure: list[BaseException] = []
            thread = threading.Thread(
                target=self._run, args=(server, failure), name=THREAD_NAME, daemon=False
            )
            thread.start()

            deadline = time.monotonic() + self._startup_timeout_s
            while not server.listening.wait(0.01):
                if not thread.is_alive() or time.monotonic() > deadline:
                    break
            if not server.listening.is_set():
                server.should_exit = True
                thread.join(5.0)
                if failure:
                    reason = f"uvicorn failed: {failure[0]!r}"
                elif thread.is_alive():
                    reason = f"not listening after {self._startup_timeout_s:g} s"
                else:
                    reason = "the server thread exited during startup (port in use?)"
                raise RuntimeError(f"FakeOpenAIServer could not start on 127.0.0.1:{self._port_wanted}: {reason}")

            port = server.servers[0].sockets[0].getsockname()[1]
            self._server, self._thread = server, thread
            self._base_url = f"http://127.0.0.1:{port}/v1"
            if not self._atexit_registered:
                self._register_atexit()
            return self._base_url

    @staticmethod
    def _run(server: _NotifyingServer, failure: list[BaseException]) -> None:
        """Thread body: a fresh event loop that lives as long as uvicorn."""
        try:
            # asyncio.Runner (not asyncio.run) so a patched asyncio.run, e.g.
            # nest_asyncio in Jupyter, cannot hand us the caller's loop.
            with Runner() as runner:
                runner.run(server.serve())
        except BaseException as exc:  # noqa: BLE001 - uvicorn calls sys.exit() on bind errors
            failure.append(exc)

    def _register_atexit(self) -> None:
        # A non-daemon thread would keep the interpreter alive forever if the
        # caller forgot stop(). threading._register_atexit runs callbacks
        # *before* non-daemon threads are joined (plain atexit runs after).
        register = getattr(threading, "_register_atexit", None)
        if register is None:
            return
        try:
            register(_stop_at_exit, weakref.ref(self))
            self._atexit_registered = True
        except RuntimeError:  # interpreter already shutting down
            pass

    def stop(self, timeout: float = 5.0) -> None:
        """Shut uvicorn down gracefully and join its thread. Idempotent.

        Args:
            timeout: Seconds to wait for the thread. In-flight requests get
                half of it to finish before uvicorn cancels them.

        Raises:
            RuntimeError: If the thread is still alive after the timeout (the
                server is then asked to force-exit; calling stop again retries).
        """
        with self._lock:
            server, thread = self._server, self._thread
            if server is None or thread is None:
                return
            # uvicorn reads this when it shuts down; without it a stuck
            # streaming client would block shutdown forever.
            server.config.timeout_graceful_shutdown = max(0.1, timeout / 2)  # type: ignore[assignment]
            # A plain attribute polled by uvicorn's main loop every 0.1 s, so
            # setting it from this thread is safe.
            server.should_exit = True
            thread.join(timeout)
            if thread.is_alive():
                server.force_exit = True
                thread.join(1.0)
            if thread.is_alive():
                raise RuntimeError(f"FakeOpenAIServer thread did not stop within {timeout:g} s")
            self._server = self._thread = None
            self._base_url = None

    def __enter__(self) -> str:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # -- introspection -----------------------------------------------------

    @property
    def running(self) -> bool:
        """Whether the server thread is up."""
        thread = self._thread
        return thread is not None and thread.is_alive()

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT/v1``.

        Raises:
            RuntimeError: If the server is not running.
        """
        url = self._base_url
        if url is None:
            raise RuntimeError("FakeOpenAIServer is not running; call start() first")
        return url

    @property
    def port(self) -> int:
        """The TCP port the server listens on (see :attr:`base_url`)."""
        return int(self.base_url.rsplit(":", 1)[1].split("/", 1)[0])

    @property
    def requests_served(self) -> int:
        """HTTP requests received since this object was created."""
        return self._stats.requests_served

    @property
    def prompt_chars(self) -> int:
        """Total prompt characters of all chat requests seen."""
        return self._stats.prompt_chars


def _raise_keyboard_interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    """Serve the fake API until Ctrl-C.

    Args:
        argv: Command line arguments (default: ``sys.argv[1:]``).

    Returns:
        The process exit code.
    """
    parser = argparse.ArgumentParser(description="Serve a deterministic fake OpenAI API on 127.0.0.1.")
    parser.add_argument("--port", type=int, default=0, help="TCP port (default: any free port)")
    parser.add_argument("--base-latency", type=float, default=0.005, help="seconds before the first chunk")
    parser.add_argument("--latency-per-kchar", type=float, default=0.02, help="extra seconds per 1000 prompt chars")
    parser.add_argument("--sentences", type=int, default=2, help="sentences per text reply")
    args = parser.parse_args(argv)

    server = FakeOpenAIServer(
        base_latency_s=args.base_latency,
        latency_per_kchar_s=args.latency_per_kchar,
        sentences=args.sentences,
        port=args.port,
    )
    url = server.start()
    print(f"fake OpenAI API at {url}  (OPENAI_BASE_URL={url}; Ctrl-C to stop)", flush=True)
    if threading.current_thread() is threading.main_thread():
        # Treat `kill` like Ctrl-C so the server thread is always shut down
        # gracefully instead of the process dying mid-response.
        if hasattr(signal, "SIGTERM"):
            signal.signal(signal.SIGTERM, _raise_keyboard_interrupt)
    try:
        while server.running:
            time.sleep(0.5)
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
