"""Prompt rendering: Jinja2 with StrictUndefined, so a missing variable is an error.

The variables each step receives are listed in ``STEP_VARIABLES``; config check
renders every template with sample values so that a typo in a template fails
`vpsweb config check`, not a paid job.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from jinja2 import StrictUndefined, TemplateError
from jinja2.sandbox import SandboxedEnvironment

from vpsweb.config.schema import ModelsConfig, PipelineConfig, PromptFile, PromptPair
from vpsweb.models import StepName, StrategyDials

_COMMON = (
    "original_poem",
    "source_lang",
    "target_lang",
    "poem_title",
    "poet_name",
    "adaptation_level",
    "repetition_policy",
    "additions_policy",
    "prosody_target",
    "few_shots",
)

STEP_VARIABLES: dict[StepName, tuple[str, ...]] = {
    StepName.INITIAL_TRANSLATION: (
        *_COMMON,
        "background_briefing_report",
        "strategy_hint",
        "variant_name",
    ),
    StepName.EVALUATION: (*_COMMON, "candidates", "criteria"),
    StepName.EDITOR_REVIEW: (*_COMMON, "translated_title", "translation", "translation_notes"),
    StepName.TRANSLATOR_REVISION: (
        *_COMMON,
        "translated_title",
        "translation",
        "translation_notes",
        "editor_suggestions",
    ),
}


class PromptRenderError(Exception):
    """A template referenced a variable the step does not provide, or failed to render."""


@dataclass(frozen=True)
class RenderedPrompt:
    system: str
    user: str

    def messages(self) -> list[dict[str, str]]:
        return [{"role": "system", "content": self.system}, {"role": "user", "content": self.user}]


@lru_cache(maxsize=1)
def _env() -> SandboxedEnvironment:
    return SandboxedEnvironment(
        undefined=StrictUndefined, autoescape=False, keep_trailing_newline=False
    )


@lru_cache(maxsize=256)
def _compile(source: str) -> Any:
    return _env().from_string(source)


def render(pair: PromptPair, variables: dict[str, Any]) -> RenderedPrompt:
    try:
        system = _compile(pair.system).render(**variables)
        user = _compile(pair.user).render(**variables)
    except TemplateError as exc:
        raise PromptRenderError(f"prompt template failed: {exc}") from exc
    return RenderedPrompt(system=system.strip(), user=user.strip())


def dial_variables(dials: StrategyDials) -> dict[str, Any]:
    return {
        "adaptation_level": dials.adaptation_level,
        "repetition_policy": dials.repetition_policy,
        "additions_policy": dials.additions_policy,
        "prosody_target": dials.prosody_target,
        "few_shots": dials.few_shots or "",
    }


def sample_variables(step: StepName) -> dict[str, Any]:
    """Plausible values for every variable of a step, used by config check."""
    values: dict[str, Any] = {
        "original_poem": "[L1] line one\n[L2] line two",
        "source_lang": "English",
        "target_lang": "Chinese",
        "poem_title": "Title",
        "poet_name": "Poet",
        **dial_variables(StrategyDials(few_shots="example")),
        "background_briefing_report": "briefing",
        "strategy_hint": "hint",
        "variant_name": "literal",
        "candidates": [{"id": 1, "title": "t", "translation": "x", "notes": "n"}],
        "criteria": [{"name": "fidelity", "description": "d"}],
        "translated_title": "t",
        "translation": "x",
        "translation_notes": "n",
        "editor_suggestions": "s",
    }
    return {k: values[k] for k in STEP_VARIABLES[step]}


def check_prompts(
    root: Path,
    prompts: dict[StepName, PromptFile],
    pipeline: PipelineConfig,
    models: ModelsConfig,
) -> list[str]:
    """Every (mode, step) must resolve to templates that render with the step's variables."""
    problems: list[str] = []
    for mode, settings in pipeline.modes.items():
        for step, step_settings in settings.steps.items():
            prompt = prompts.get(step)
            if prompt is None:
                problems.append(f"{root}/prompts/{step.value}.yaml: missing (mode {mode.value})")
                continue
            entry = models.models[step_settings.model]
            try:
                render(prompt.for_model(reasoning=entry.reasoning), sample_variables(step))
            except PromptRenderError as exc:
                kind = "reasoning" if entry.reasoning and prompt.reasoning else "default"
                problems.append(
                    f"{root}/prompts/{step.value}.yaml: {kind} templates (mode {mode.value}): "
                    f"{exc}; variables available: {', '.join(STEP_VARIABLES[step])}"
                )
    # A variant may run the translator on another model, of another kind.
    prompt = prompts.get(StepName.INITIAL_TRANSLATION)
    for i, variant in enumerate(pipeline.variants):
        if prompt is None or variant.model is None:
            continue
        entry = models.models[variant.model]
        try:
            render(
                prompt.for_model(reasoning=entry.reasoning),
                sample_variables(StepName.INITIAL_TRANSLATION),
            )
        except PromptRenderError as exc:
            problems.append(
                f"{root}/prompts/initial_translation.yaml (variants.{i} on {variant.model}): {exc}"
            )
    return sorted(set(problems))
