"""Configuration models and loading, as upstream's ``config_manager`` package."""

from .main import CharacterConfig, Config, SystemConfig
from .utils import read_yaml, validate_config

__all__ = ["CharacterConfig", "Config", "SystemConfig", "read_yaml", "validate_config"]
