"""Config check for prompts: every (mode, stage) renders with the stage's variables."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from vpsweb.config.schema import ModelsConfig, PipelineConfig
from vpsweb.domain.models import StrategyDials
from vpsweb.domain.prompts import COMMON_VARIABLES, PromptFile, dial_variables, render
from vpsweb.errors import PromptRenderError
from vpsweb.stages.table import stage

_SAMPLES: dict[str, Any] = {
    "original_poem": "[L1] line one\n[L2] line two",
    "source_lang": "English",
    "target_lang": "Simplified Chinese",
    "poem_title": "Title",
    "poet_name": "Poet",
    **dial_variables(StrategyDials(few_shots="example")),
    "background_briefing_report": "briefing",
    "strategy_hint": "hint",
    "variant_name": "literal",
    "candidates": [{"id": 1, "title": "t", "translation": "x"}],
    "runner_ups": [{"id": 2, "translation": "y"}],
    "versions": [{"id": 1, "translation": "x"}, {"id": 2, "translation": "y"}],
    "criteria": [{"name": "fidelity", "description": "d"}],
    "translated_title": "t",
    "translation": "x",
    "translation_notes": "n",
    "editor_suggestions": "s",
}


def variables_of(step: str) -> tuple[str, ...]:
    return (*COMMON_VARIABLES, *stage(step).variables)


def sample_variables(step: str) -> dict[str, Any]:
    """Plausible values for every variable of a step ("sample" for one with no sample)."""
    return {k: _SAMPLES.get(k, "sample") for k in variables_of(step)}


def _try(
    root: Path, prompt: PromptFile, step: str, reasoning: bool, where: str, problems: list[str]
) -> None:
    try:
        render(prompt.for_model(reasoning=reasoning), sample_variables(step))
    except PromptRenderError as exc:
        kind = "reasoning" if reasoning and prompt.reasoning else "default"
        problems.append(
            f"{root}/prompts/{step}.yaml: {kind} templates ({where}): {exc}; "
            f"variables available: {', '.join(variables_of(step))}"
        )


def check_prompts(
    root: Path,
    prompts: dict[str, PromptFile],
    pipeline: PipelineConfig,
    models: ModelsConfig,
) -> list[str]:
    problems: list[str] = []
    for mode, settings in pipeline.modes.items():
        for step, step_settings in settings.steps.items():
            prompt = prompts.get(step)
            if prompt is None:
                problems.append(f"{root}/prompts/{step}.yaml: missing (mode {mode.value})")
                continue
            reasoning = models.models[step_settings.model].reasoning
            _try(root, prompt, step, reasoning, f"mode {mode.value}", problems)
    # A variant may run the translator on another model, of another kind.
    first = "initial_translation"
    if (prompt := prompts.get(first)) is not None:
        for i, variant in enumerate(pipeline.variants):
            if variant.model is not None:
                reasoning = models.models[variant.model].reasoning
                where = f"variants.{i} on {variant.model}"
                _try(root, prompt, first, reasoning, where, problems)
    return sorted(set(problems))
