"""TTS and ASR engines. One instance of each lives in the default context and
is shared, by reference, with every session (as upstream does)."""

from __future__ import annotations

import uuid
from pathlib import Path

from openai import AsyncOpenAI


class TTSError(RuntimeError):
    """Synthesis failed."""


class OpenAITTS:
    """Speech through an OpenAI-compatible ``/v1/audio/speech``, one WAV file per sentence.

    Args:
        client: the SDK client (shared).
        cache_dir: where audio files are written.
        model: TTS model name.
        voice: voice name.
    """

    def __init__(self, client: AsyncOpenAI, cache_dir: Path, *, model: str = "fake-tts", voice: str = "alloy") -> None:
        self.client = client
        self.cache_dir = Path(cache_dir)
        self.model = model
        self.voice = voice

    def new_path(self) -> Path:
        """A fresh cache path for one sentence's audio."""
        return self.cache_dir / f"temp-{uuid.uuid4().hex}.wav"

    async def synthesize(self, text: str, path: Path) -> Path:
        """Write the WAV of ``text`` to ``path``.

        The file is created before the request finishes, as a streaming write
        would, so a failure or a cancellation can leave it behind.

        Raises:
            TTSError: when the server refuses.
        """
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("wb") as fh:
            try:
                response = await self.client.audio.speech.create(
                    model=self.model, voice=self.voice, input=text, response_format="wav"
                )
            except Exception as exc:  # the SDK raises several types; callers need one
                raise TTSError(f"TTS failed: {type(exc).__name__}: {exc}") from None
            fh.write(response.content)
        return path

    @staticmethod
    def remove_file(path: Path | None) -> None:
        """Remove an audio file if it is there."""
        if path is not None:
            Path(path).unlink(missing_ok=True)


class FakeASR:
    """A streaming ASR engine with per-client decoder state.

    The state for a client is created when its session starts and must be
    dropped by :meth:`cleanup_client` when it ends. Fault C6 is the handler not
    doing so: the engine is shared, so its ``client_streams`` grows by one
    buffer per session that ever connected.

    Args:
        state_kb: size of one client's stream buffer.
    """

    def __init__(self, state_kb: int = 64) -> None:
        self.state_kb = state_kb
        self.client_streams: dict[str, bytearray] = {}

    def open_stream(self, client_uid: str) -> None:
        """Allocate the decoder state of a client."""
        self.client_streams[client_uid] = bytearray(self.state_kb * 1024)

    async def transcribe(self, client_uid: str, samples: list[float]) -> str:
        """A deterministic transcript of an utterance."""
        stream = self.client_streams.get(client_uid)
        if stream is not None:
            stream[:8] = len(samples).to_bytes(8, "little")
        return f"I said {len(samples)} samples" if samples else ""

    def cleanup_client(self, client_uid: str) -> None:
        """Drop the client's decoder state."""
        self.client_streams.pop(client_uid, None)
