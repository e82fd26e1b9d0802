"""``ASRInterface``: what every speech-to-text engine provides."""

from __future__ import annotations

import abc
import asyncio

import numpy as np


class ASRInterface(metaclass=abc.ABCMeta):
    """A speech-to-text engine over 16 kHz mono float audio.

    One engine is shared by every session (``load_cache`` passes the default
    context's by reference), so per-client state lives in
    :attr:`client_buffers`, keyed by ``client_uid``.
    """

    SAMPLE_RATE = 16000
    NUM_CHANNELS = 1
    SAMPLE_WIDTH = 2

    def __init__(self) -> None:
        #: client_uid -> the audio chunks of the utterance being recognised
        self.client_buffers: dict[str, list[np.ndarray]] = {}

    def start_client_buffer(self, client_uid: str) -> None:
        """A new session: an empty buffer for its utterances."""
        self.client_buffers[client_uid] = []

    def remove_client_buffer(self, client_uid: str) -> None:
        """The session ended: forget its buffer."""
        self.client_buffers.pop(client_uid, None)

    async def async_transcribe_np(self, audio: np.ndarray) -> str:
        """Transcribe without blocking the event loop (a thread, by default)."""
        if audio.dtype != np.float32:
            audio = audio.astype(np.float32)
        return await asyncio.to_thread(self.transcribe_np, audio)

    @abc.abstractmethod
    def transcribe_np(self, audio: np.ndarray) -> str:
        """The text spoken in ``audio``."""
        raise NotImplementedError
