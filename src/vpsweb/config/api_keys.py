"""Which API key variables the configured workflow modes need, and whether they are set.

A missing key surfaces only when a step calls its provider, minutes into a paid
job; `vpsweb config check --keys` says so up front, per provider, with the modes
and steps that use it. It names variables and never shows a value: its output may
well be pasted into an issue.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from vpsweb.config.loader import AppConfig
from vpsweb.domain.models import WorkflowMode


@dataclass
class ProviderKey:
    provider: str
    variable: str | None  # None: the endpoint needs no key
    state: str = "not needed"  # "set", "missing", "empty" or "not needed"
    uses: dict[str, list[str]] = field(default_factory=dict)  # mode -> steps

    @property
    def missing(self) -> bool:
        return self.state in ("missing", "empty")


def _state(variable: str | None, env: Mapping[str, str]) -> str:
    if variable is None:
        return "not needed"
    if variable not in env:
        return "missing"
    return "set" if env[variable].strip() else "empty"


def provider_keys(cfg: AppConfig, env: Mapping[str, str]) -> list[ProviderKey]:
    """Every provider a mode's step (or a variant's own model) uses, in config order."""
    from vpsweb.stages.table import STAGE_NAMES

    found: dict[str, ProviderKey] = {}

    def use(model: str, mode: str, step: str) -> None:
        provider = cfg.models.models[model].provider
        variable = cfg.models.providers[provider].api_key_env
        entry = found.setdefault(provider, ProviderKey(provider, variable, _state(variable, env)))
        steps = entry.uses.setdefault(mode, [])
        if step not in steps:
            steps.append(step)

    for mode in WorkflowMode:
        steps = cfg.pipeline.modes[mode].steps
        for step in STAGE_NAMES:
            if step in steps:
                use(steps[step].model, mode.value, step)
        for variant in cfg.pipeline.variants:
            if variant.model is not None:
                use(variant.model, mode.value, f"initial_translation ({variant.name})")
    return list(found.values())


def describe(key: ProviderKey) -> str:
    """One line: provider, variable, its state, and where the provider is used."""
    from vpsweb.stages.table import STAGE_NAMES

    def steps_of(steps: list[str]) -> str:
        return "every step" if steps == list(STAGE_NAMES) else ", ".join(steps)

    where = "; ".join(f"{mode}: {steps_of(steps)}" for mode, steps in key.uses.items())
    if key.variable is None:
        return f"    {key.provider}: no key needed (used by {where})"
    return f"    {key.provider}: {key.variable} {key.state} (used by {where})"
