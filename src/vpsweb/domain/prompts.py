"""Prompt rendering: Jinja2 with StrictUndefined, so a missing variable is an error.

Every step receives ``COMMON_VARIABLES`` plus its own (``Stage.variables`` in the
stage table); `vpsweb config check` renders every template with sample values,
so a typo in a template fails the check, not a paid job.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from jinja2 import StrictUndefined, TemplateError
from jinja2.sandbox import SandboxedEnvironment
from pydantic import BaseModel, ConfigDict, Field

from vpsweb.domain.models import StrategyDials
from vpsweb.errors import PromptRenderError

COMMON_VARIABLES = (
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


class PromptPair(BaseModel):
    """A system and a user template (prompts/*.yaml)."""

    model_config = ConfigDict(extra="forbid")

    system: str = Field(min_length=1)
    user: str = Field(min_length=1)


class PromptFile(PromptPair):
    """One step's templates; ``reasoning`` replaces them when the step's model reasons."""

    reasoning: PromptPair | None = None

    def for_model(self, *, reasoning: bool) -> PromptPair:
        if reasoning and self.reasoning is not None:
            return self.reasoning
        return PromptPair(system=self.system, user=self.user)


# Anything shaped like an XML tag: <tag>, </tag>, <tag attr="x"/>.
_TAGLIKE = re.compile(r"<(/?)\s*([A-Za-z_][\w.:-]*)([^<>]*)>")


def neutralise(text: str) -> str:
    """User text (and model text quoted in a later prompt) is data: tag-like sequences
    lose their angle brackets (``<b>`` becomes ``‹b›``), so that a poem can neither
    close a delimiter of the prompt nor pass for a field of the answer."""
    return _TAGLIKE.sub(lambda m: f"\u2039{m.group(1)}{m.group(2)}{m.group(3)}\u203a", text)


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
        "prosody_target": neutralise(dials.prosody_target),
        "few_shots": neutralise(dials.few_shots or ""),
    }
