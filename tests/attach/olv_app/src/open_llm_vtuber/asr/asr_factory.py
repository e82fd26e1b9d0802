"""``ASRFactory``: the engine named by ``asr_model``.

Each engine's module is imported only when chosen, so an engine whose
package is missing fails only when it is chosen, with that package's
``ModuleNotFoundError`` (as upstream).
"""

from __future__ import annotations

from typing import Any

from .asr_interface import ASRInterface


class ASRFactory:
    """Builds ASR engines by name."""

    @staticmethod
    def get_asr_system(system_name: str, **kwargs: Any) -> ASRInterface:
        """The engine ``system_name``, built from its settings block.

        Raises:
            ModuleNotFoundError: the engine's package is not installed.
            ValueError: an unknown engine.
        """
        if system_name == "sherpa_onnx_asr":
            from .sherpa_onnx_asr import VoiceRecognition as SherpaOnnxASR

            return SherpaOnnxASR(**kwargs)
        if system_name == "fake_asr":
            from .fake_asr import VoiceRecognition as FakeASR

            return FakeASR(**kwargs)
        raise ValueError(f"Unknown ASR system: {system_name}")
