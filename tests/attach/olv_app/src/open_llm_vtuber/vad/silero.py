"""Silero VAD (``pip install silero-vad``, which brings torch)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
from silero_vad import load_silero_vad

from .vad_interface import VADInterface


class VADEngine(VADInterface):
    """Speech probability per 32 ms window, with hit/miss hysteresis.

    Args:
        target_sr: sample rate of the audio given to the model.
        prob_threshold: probability above which a window is speech.
        required_hits: speech windows that start an utterance.
        required_misses: silent windows that end it.
    """

    WINDOW = 512

    def __init__(self, target_sr: int = 16000, prob_threshold: float = 0.4, required_hits: int = 3,
                 required_misses: int = 24, **_: Any) -> None:
        self.model = load_silero_vad()
        self.target_sr = target_sr
        self.prob_threshold = prob_threshold
        self.required_hits = required_hits
        self.required_misses = required_misses
        self._buffer: list[float] = []
        self._hits = self._misses = 0
        self._speaking = False

    def detect_speech(self, received_data: list[float]) -> Iterator[bytes]:
        import torch

        audio = np.asarray(received_data, dtype=np.float32)
        for start in range(0, len(audio) - self.WINDOW + 1, self.WINDOW):
            window = audio[start : start + self.WINDOW]
            prob = float(self.model(torch.from_numpy(window), self.target_sr).item())
            if prob >= self.prob_threshold:
                self._hits, self._misses = self._hits + 1, 0
            else:
                self._misses, self._hits = self._misses + 1, 0
            if self._speaking:
                self._buffer.extend(window.tolist())
            if not self._speaking and self._hits >= self.required_hits:
                self._speaking, self._buffer = True, window.tolist()
            elif self._speaking and self._misses >= self.required_misses:
                self._speaking = False
                yield (np.asarray(self._buffer, dtype=np.float32) * 32767).astype(np.int16).tobytes()
                self._buffer = []
