"""The workflow's stages (domain core: no Celery, no Redis) and the stage table."""

from vpsweb.stages.base import Prior, StageContext
from vpsweb.stages.table import (
    STAGE_NAMES,
    STAGES,
    Stage,
    TranslationOutput,
    stage,
    stage_bounds,
)

__all__ = [
    "STAGES",
    "STAGE_NAMES",
    "Prior",
    "Stage",
    "StageContext",
    "TranslationOutput",
    "stage",
    "stage_bounds",
]
