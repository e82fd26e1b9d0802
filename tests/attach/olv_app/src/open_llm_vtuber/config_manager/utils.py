"""``read_yaml`` (with ``${ENV}`` substitution), ``validate_config``, ``engine_settings``."""

from __future__ import annotations

import os
import re
from typing import Any

import yaml
from pydantic import BaseModel

from .main import Config

_ENV = re.compile(r"\$\{(\w+)\}")


def read_yaml(config_path: str) -> dict[str, Any]:
    """Read a YAML file, substituting ``${VAR}`` from the environment.

    Raises:
        FileNotFoundError: no such file.
    """
    if not os.path.exists(config_path):
        raise FileNotFoundError(f"Config file not found: {config_path}")
    with open(config_path, encoding="utf-8") as fh:
        content = fh.read()
    content = _ENV.sub(lambda m: os.environ.get(m.group(1), m.group(0)), content)
    return yaml.safe_load(content) or {}


def validate_config(config_data: dict[str, Any]) -> Config:
    """The validated :class:`Config`."""
    return Config.model_validate(config_data)


def engine_settings(section: BaseModel, engine_name: str | None) -> dict[str, Any]:
    """The settings block named ``engine_name`` in an engine section.

    Upstream types every engine's block; here they stay mappings (pydantic
    extras), so ``getattr(asr_config, asr_config.asr_model).model_dump()``
    becomes ``engine_settings(asr_config, asr_config.asr_model)``.
    """
    block = getattr(section, engine_name, None) if engine_name else None
    if isinstance(block, BaseModel):
        return block.model_dump()
    return dict(block or {})
