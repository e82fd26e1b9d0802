"""Configuration models and loading, as upstream's ``config_manager`` package."""

from .agent import AgentConfig, AgentSettings, BasicMemoryAgentConfig
from .asr import ASRConfig
from .character import CharacterConfig
from .main import Config
from .system import SystemConfig
from .tts import TTSConfig
from .utils import engine_settings, read_yaml, validate_config
from .vad import VADConfig

__all__ = [
    "ASRConfig", "AgentConfig", "AgentSettings", "BasicMemoryAgentConfig", "CharacterConfig", "Config",
    "SystemConfig", "TTSConfig", "VADConfig", "engine_settings", "read_yaml", "validate_config",
]
