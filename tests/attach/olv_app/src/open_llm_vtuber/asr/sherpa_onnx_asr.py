"""Offline ASR with sherpa-onnx (``pip install sherpa-onnx``), upstream's default."""

from __future__ import annotations

from typing import Any

import numpy as np
import sherpa_onnx

from .asr_interface import ASRInterface


class VoiceRecognition(ASRInterface):
    """A sherpa-onnx offline recognizer (SenseVoice models only, here).

    Args:
        model_type: only ``"sense_voice"`` is supported by this small app.
        sense_voice: path of ``model.int8.onnx``.
        tokens: path of ``tokens.txt``.
        num_threads: inference threads.
        use_itn: inverse text normalisation.
        provider: ``"cpu"`` or ``"cuda"``.
    """

    def __init__(self, model_type: str = "sense_voice", sense_voice: str = "", tokens: str = "",
                 num_threads: int = 4, use_itn: bool = True, provider: str = "cpu", **_: Any) -> None:
        if model_type != "sense_voice":
            raise ValueError(f"Unsupported sherpa-onnx model_type in this app: {model_type}")
        super().__init__()
        self.recognizer = sherpa_onnx.OfflineRecognizer.from_sense_voice(
            model=sense_voice, tokens=tokens, num_threads=num_threads, use_itn=use_itn, provider=provider,
        )

    def transcribe_np(self, audio: np.ndarray) -> str:
        stream = self.recognizer.create_stream()
        stream.accept_waveform(self.SAMPLE_RATE, audio)
        self.recognizer.decode_streams([stream])
        return stream.result.text
