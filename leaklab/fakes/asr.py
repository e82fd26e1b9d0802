"""A speech recogniser that needs no model: the stand-in for an ASR engine
that cannot be built offline (a local model not downloaded, a package not
installed). Text scenarios never call it; an audio scenario gets a fixed
transcript, so a turn still runs."""

from __future__ import annotations

from typing import Any

FAKE_TRANSCRIPT = "hello from leaklab's fake speech recogniser"


class FakeASR:
    """The methods an Open-LLM-VTuber ASR engine has (``ASRInterface``)."""

    SAMPLE_RATE = 16000
    NUM_CHANNELS = 1
    SAMPLE_WIDTH = 2

    def __init__(self, replaces: str = "") -> None:
        self.replaces = replaces
        self.calls = 0

    def transcribe_np(self, audio: Any) -> str:
        self.calls += 1
        return FAKE_TRANSCRIPT

    async def async_transcribe_np(self, audio: Any) -> str:
        return self.transcribe_np(audio)

    def __repr__(self) -> str:
        return f"<leaklab FakeASR standing in for {self.replaces or 'an ASR engine'}>"
