"""Configuration: YAML files validated by pydantic (see config/ in the repository)."""

from vpsweb.config.loader import AppConfig, ConfigError, default_config_dir, load_config
from vpsweb.config.schema import (
    ModelEntry,
    ModelsConfig,
    PipelineConfig,
    PromptFile,
    Provider,
    StepSettings,
    Variant,
)

__all__ = [
    "AppConfig",
    "ConfigError",
    "ModelEntry",
    "ModelsConfig",
    "PipelineConfig",
    "PromptFile",
    "Provider",
    "StepSettings",
    "Variant",
    "default_config_dir",
    "load_config",
]
