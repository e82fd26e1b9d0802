"""``fake_asr``: a speech-to-text engine that needs no package (test app only).

Every upstream ASR engine needs a package or a model this test app does not
have (sherpa-onnx, faster-whisper, FunASR, Azure, Groq, ...). This one
"hears" a fixed sentence, so ``mic-audio-end`` runs a turn anywhere.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .asr_interface import ASRInterface


class VoiceRecognition(ASRInterface):
    """Transcribes any non-empty audio as ``transcript``.

    Args:
        transcript: the text every utterance becomes.
    """

    def __init__(self, transcript: str = "Hello, can you hear me?", **_: Any) -> None:
        super().__init__()
        self.transcript = transcript

    def transcribe_np(self, audio: np.ndarray) -> str:
        return self.transcript if audio.size else ""
