"""Where a step's call goes, resolved by the worker from its own config.

A job's plan names models (and sampling parameters), never URLs or key variables:
whoever submits a job chooses what to translate, not where a worker sends its API
key. The worker looks each model up in its own models.yaml; a model it does not
know is refused.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from vpsweb import settings
from vpsweb.config.schema import ModelsConfig, Price
from vpsweb.domain.models import ModelInfo, Usage
from vpsweb.errors import ModelNotConfigured

if TYPE_CHECKING:  # pragma: no cover - the plan module imports the stages, which import this
    from vpsweb.domain.plan import StepCall


@dataclass(frozen=True)
class Endpoint:
    info: ModelInfo  # what answered: recorded in the step's metrics
    base_url: str
    api_key_env: str | None  # None: the endpoint takes no key (Ollama, the simulator)
    price: Price
    offline: bool
    sampling: bool = True  # False: the model ignores temperature, so none is sent

    def cost(self, prompt_tokens: int, completion_tokens: int) -> Usage:
        amount = (
            prompt_tokens / 1000 * self.price.input_per_1k
            + completion_tokens / 1000 * self.price.output_per_1k
        )
        return Usage(
            prompt_tokens=prompt_tokens,
            completion_tokens=completion_tokens,
            cost=round(amount, 10),
            currency=self.price.currency,
        )


def resolve(models: ModelsConfig, call: StepCall, env: Mapping[str, str] | None = None) -> Endpoint:
    """The endpoint of a call. Offline (the job's choice or the worker's), every step
    goes to the worker's simulator, answering in the real model's style and priced at
    the real model's prices (an estimate)."""
    entry = models.models.get(call.model)
    if entry is None:
        raise ModelNotConfigured(
            f"model {call.model!r} (step {call.step}) is not in this worker's models.yaml; "
            f"known models: {', '.join(sorted(models.models))}"
        )
    offline = call.offline or settings.offline(env)
    provider_name = models.models[models.simulator_model].provider if offline else entry.provider
    provider = models.providers[provider_name]
    overridden = (env if env is not None else os.environ).get(provider.base_url_env or "")
    return Endpoint(
        info=ModelInfo(
            model=call.model,
            provider=provider_name,
            api_model=entry.name,
            reasoning=entry.reasoning,
            temperature=None if entry.ignores_sampling else call.temperature,
        ),
        base_url=overridden or provider.base_url,
        api_key_env=None if offline else provider.api_key_env,
        price=entry.price,
        offline=offline,
        sampling=not entry.ignores_sampling,
    )
