"""Configuration: YAML files validated by pydantic (the defaults ship in ``defaults/``)."""

from vpsweb.config.loader import (
    AppConfig,
    default_config_dir,
    init_config,
    load_config,
    packaged_config_dir,
)
from vpsweb.config.schema import (
    ModelEntry,
    ModelsConfig,
    PipelineConfig,
    Provider,
    StepSettings,
    Variant,
)
from vpsweb.errors import ConfigError

__all__ = [
    "AppConfig",
    "ConfigError",
    "ModelEntry",
    "ModelsConfig",
    "PipelineConfig",
    "Provider",
    "StepSettings",
    "Variant",
    "default_config_dir",
    "init_config",
    "load_config",
    "packaged_config_dir",
]
