"""Microsoft Edge's online voices, through the ``edge-tts`` package."""

from __future__ import annotations

import logging

import edge_tts

from .tts_interface import TTSInterface

logger = logging.getLogger(__name__)


class TTSEngine(TTSInterface):
    """Edge TTS.

    Args:
        voice: a voice name (``edge-tts --list-voices``).
        pitch: e.g. ``"+0Hz"``.
        rate: e.g. ``"+0%"``.
        volume: e.g. ``"+0%"``.
    """

    def __init__(self, voice: str = "en-US-AvaMultilingualNeural", pitch: str = "+0Hz", rate: str = "+0%",
                 volume: str = "+0%") -> None:
        self.voice, self.pitch, self.rate, self.volume = voice, pitch, rate, volume
        self.file_extension = "mp3"

    def generate_audio(self, text: str, file_name_no_ext: str | None = None) -> str | None:
        file_name = self.generate_cache_file_name(file_name_no_ext, self.file_extension)
        try:
            edge_tts.Communicate(text=text, voice=self.voice, rate=self.rate, pitch=self.pitch,
                                 volume=self.volume).save_sync(file_name)
        except Exception as exc:
            logger.critical("Error: edge-tts unable to generate audio: %s", exc)
            return None
        return file_name
