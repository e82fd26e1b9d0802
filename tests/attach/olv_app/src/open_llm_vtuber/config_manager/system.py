"""``SystemConfig``: the ``system_config`` section."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class SystemConfig(BaseModel):
    """Server settings. Keys this app does not read (``tool_prompts``, ...)
    are kept, so a full upstream ``conf.yaml`` validates."""

    model_config = ConfigDict(extra="allow")

    conf_version: str = ""
    host: str = "localhost"
    port: int = 12393
    config_alts_dir: str = "characters"
    enable_proxy: bool = False
    tool_prompts: dict[str, str] = Field(default_factory=dict)
