"""The workflow's stages (domain core: no Celery, no Redis).

``table`` declares every stage as data; one module per stage holds what it does;
``shared`` what they share; ``runs`` maps each stage's name to its run function.
Importing this package loads only the table.
"""

from vpsweb.stages.table import STAGE_NAMES, STAGES, Stage, stage, stage_bounds

__all__ = ["STAGES", "STAGE_NAMES", "Stage", "stage", "stage_bounds"]
