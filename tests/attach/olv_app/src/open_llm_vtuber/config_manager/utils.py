"""``read_yaml`` (with ``${ENV}`` substitution) and ``validate_config``."""

from __future__ import annotations

import os
import re
from typing import Any

import yaml

from .main import Config

_ENV = re.compile(r"\$\{(\w+)\}")


def read_yaml(config_path: str) -> dict[str, Any]:
    """Read a YAML file, substituting ``${VAR}`` from the environment."""
    if not os.path.exists(config_path):
        raise FileNotFoundError(f"Config file not found: {config_path}")
    with open(config_path, encoding="utf-8") as fh:
        content = fh.read()
    content = _ENV.sub(lambda m: os.environ.get(m.group(1), m.group(0)), content)
    return yaml.safe_load(content) or {}


def validate_config(config_data: dict[str, Any]) -> Config:
    """The validated :class:`Config`."""
    return Config.model_validate(config_data)
