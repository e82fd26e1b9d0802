"""``VADFactory``: the engine named by ``vad_model`` (``null``: none, see ServiceContext.init_vad)."""

from __future__ import annotations

from typing import Any

from .vad_interface import VADInterface


class VADFactory:
    """Builds VAD engines by name, importing each only when chosen."""

    @staticmethod
    def get_vad_engine(engine_type: str, **kwargs: Any) -> VADInterface:
        """The engine ``engine_type``.

        Raises:
            ModuleNotFoundError: the engine's package is not installed.
            ValueError: an unknown engine.
        """
        if engine_type == "silero_vad":
            from .silero import VADEngine as SileroVADEngine

            return SileroVADEngine(**kwargs)
        raise ValueError(f"Unknown VAD engine type: {engine_type}")
