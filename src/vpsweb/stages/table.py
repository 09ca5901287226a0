"""The stage table: every stage of the workflow, declared once, as data.

A row says what a stage is in the domain: its name, its inputs and output, its
prompt variables, its share of the progress bar and where its output lands in
``TranslationOutput``. It imports no stage code, so config, plans and results can
read it without pulling in the LLM client. What each other concern does with a
stage is keyed by its name next to the code that uses it, and an architecture
test checks that every stage has an entry in each:

* what it runs: ``stages/runs.py`` (run function, the record of a lost item);
* Celery routing: ``workers/routing.py`` (task name, default queue);
* its line in the progress stream: ``orchestrator/summaries.py``;
* its section of the Markdown output: ``files/sections.py``;
* checking a person's answer in manual mode: ``domain/manual_answers.py``;
* the tag the simulator recognises its prompt by: ``simulator/answers.py``.

Adding a stage means: a module with its run function, a row here (and its field
in ``TranslationOutput``), an entry in each table above, its prompt YAML, and its
model per mode in pipeline.yaml.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from pydantic import BaseModel

from vpsweb.domain.models import (
    CandidateResult,
    EditorReview,
    EvaluationResult,
    Revision,
    RevisionCheck,
)


class Planned(Protocol):
    """What ``Stage.keys`` reads of a plan (a ``JobPlan``): the table imports no plan,
    since the plan reads the table."""

    @property
    def parallel_count(self) -> int: ...


@dataclass(frozen=True)
class Stage:
    """One row of the table.

    name: the step's name everywhere (config keys, prompt file, Redis step key).
    display_name: what progress displays show.
    weight: its share of the job's progress bar (``progress_weights`` overrides).
    variables: template variables beyond the common ones (``prompts.COMMON_VARIABLES``).
    needs: stages whose outputs its run function reads (through ``Prior``).
    output / result_field: the output model, and the TranslationOutput field it lands in.
    fan_out: run once per candidate (the chord header); ``item`` prefixes the keys
      (candidate-0, ...).
    """

    name: str
    display_name: str
    weight: float
    variables: tuple[str, ...]
    needs: tuple[str, ...]
    output: type[BaseModel]
    result_field: str
    fan_out: bool = False
    item: str = ""

    @property
    def prompt(self) -> str:
        return self.name

    def key(self, index: int | None = None) -> str:
        """The step's key: task id suffix, Redis step key, manual answer key."""
        if self.fan_out:
            if index is None:
                raise ValueError(f"stage {self.name} runs per item: give an index")
            return f"{self.item}-{index}"
        return self.name

    def keys(self, plan: Planned) -> list[str]:
        if self.fan_out:
            return [self.key(i) for i in range(plan.parallel_count)]
        return [self.key()]


STAGES: tuple[Stage, ...] = (
    Stage(
        name="initial_translation",
        display_name="Initial Translation",
        weight=25,
        variables=("background_briefing_report", "strategy_hint", "variant_name"),
        needs=(),
        output=CandidateResult,
        result_field="candidates",
        fan_out=True,
        item="candidate",
    ),
    Stage(
        name="evaluation",
        display_name="Translation Evaluation",
        weight=20,
        variables=("candidates", "criteria"),
        needs=("initial_translation",),
        output=EvaluationResult,
        result_field="evaluation",
    ),
    Stage(
        name="editor_review",
        display_name="Editor Review",
        weight=20,
        variables=("translated_title", "translation", "translation_notes", "runner_ups"),
        needs=("initial_translation", "evaluation"),
        output=EditorReview,
        result_field="editor_review",
    ),
    Stage(
        name="translator_revision",
        display_name="Translator Revision",
        weight=20,
        variables=("translated_title", "translation", "translation_notes", "editor_suggestions"),
        needs=("initial_translation", "evaluation", "editor_review"),
        output=Revision,
        result_field="revision",
    ),
    Stage(
        name="revision_check",
        display_name="Revision Check",
        weight=15,
        variables=("versions",),
        needs=("initial_translation", "evaluation", "translator_revision"),
        output=RevisionCheck,
        result_field="revision_check",
    ),
)

STAGE_NAMES: tuple[str, ...] = tuple(s.name for s in STAGES)
_BY_NAME = {s.name: s for s in STAGES}

# The canvas's last step, after every stage: assembles and stores the result.
FINALIZE_DISPLAY = "Finalize"


def stage(name: str) -> Stage:
    try:
        return _BY_NAME[name]
    except KeyError:
        raise KeyError(f"unknown stage {name!r}; stages: {', '.join(STAGE_NAMES)}") from None


def previous(s: Stage) -> Stage | None:
    i = STAGE_NAMES.index(s.name)
    return STAGES[i - 1] if i else None


def default_weights() -> dict[str, float]:
    return {s.name: s.weight for s in STAGES}


def stage_bounds(weights: dict[str, float], name: str) -> tuple[float, float]:
    """Percent of the whole job at the start and at the end of a stage."""
    total = sum(weights[s.name] for s in STAGES)
    done = 0.0
    for s in STAGES:
        start = done
        done += weights[s.name]
        if s.name == name:
            return round(100 * start / total, 2), round(100 * done / total, 2)
    raise KeyError(f"unknown stage {name!r}")
