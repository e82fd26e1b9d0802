"""``ASRConfig``: the ``asr_config`` section of a character."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class ASRConfig(BaseModel):
    """``asr_model`` names the engine; its settings are the block of that
    name (kept as a mapping, see :func:`~.utils.engine_settings`)."""

    model_config = ConfigDict(extra="allow")

    asr_model: str = "sherpa_onnx_asr"
