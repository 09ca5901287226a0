"""The simulator's options: flags, VPSWEB_SIM_* variables and their defaults."""

from __future__ import annotations

import argparse
import os
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from vpsweb import settings
from vpsweb.simulator.quality import Knobs


class SimulatorOptions(BaseModel):
    """Every knob of the simulator; flags and VPSWEB_SIM_* variables fill it."""

    model_config = ConfigDict(extra="forbid")

    host: str = "127.0.0.1"
    port: int = Field(default=8765, ge=0, le=65535)
    latency_ms: float = Field(default=0.0, ge=0)
    jitter_ms: float = Field(default=0.0, ge=0)
    # Real LLM latencies are long-tailed: lognormal with median --latency-ms and shape
    # --latency-sigma models the straggler that holds up a fan-out stage.
    latency_dist: Literal["uniform", "lognormal"] = "uniform"
    latency_sigma: float = Field(default=0.0, ge=0, le=5)
    # Common random numbers: latencies keyed by the request's place in its job, so two
    # runs of the same poems differ only by what the configurations change.
    latency_paired: bool = False
    rate_429: float = Field(default=0.0, ge=0, le=1)
    rate_500: float = Field(default=0.0, ge=0, le=1)
    rate_hang: float = Field(default=0.0, ge=0, le=1)
    rate_malformed: float = Field(default=0.0, ge=0, le=1)
    rate_trickle: float = Field(default=0.0, ge=0, le=1)
    rate_html200: float = Field(default=0.0, ge=0, le=1)
    retry_after_ms: float = Field(default=1000.0, ge=0)
    # Provider-style limits (simulator/limits.py), as opposed to the random rate_429:
    # requests and tokens per minute, concurrent requests; 0 is off.
    rpm: int = Field(default=0, ge=0)
    tpm: int = Field(default=0, ge=0)
    max_concurrent: int = Field(default=0, ge=0)
    burst: int = Field(default=8, ge=1)
    hang_s: float = Field(default=3600.0, ge=0)
    trickle_s: float = Field(default=5.0, ge=0)
    seed: int = 0
    # Ground truth for selection (see simulator/quality.py).
    defect_rate: float = Field(default=0.0, ge=0, le=1)
    judge_noise: float = Field(default=0.2, ge=0)
    judge_first_bias: float = Field(default=0.0, ge=0, le=1)
    judge_length_bias: float = Field(default=0.0, ge=0)
    judge_self_preference: float = Field(default=0.0, ge=0)

    def knobs(self) -> Knobs:
        """What the answers need of these options: quality and judging only."""
        return Knobs(
            defect_rate=self.defect_rate,
            noise=self.judge_noise,
            first_bias=self.judge_first_bias,
            length_bias=self.judge_length_bias,
            self_preference=self.judge_self_preference,
        )

    @model_validator(mode="after")
    def _rates_fit(self) -> SimulatorOptions:
        # One draw decides the fault, so the fractions share the unit interval.
        total = sum(getattr(self, name) for name in RATE_FIELDS)
        if total > 1 + 1e-9:
            raise ValueError(f"the --rate-* fractions add up to {total:g}, more than 1")
        return self


FIELDS = list(SimulatorOptions.model_fields)
RATE_FIELDS = tuple(name for name in FIELDS if name.startswith("rate_"))


_HELPS = {
    "host": "bind address (default 127.0.0.1)",
    "port": "port (default 8765; 0: any free one, printed at start)",
    "latency_ms": "mean latency per answer in ms (default 0)",
    "jitter_ms": "uniform ± jitter in ms (default 0; uniform distribution only)",
    "latency_dist": "latency distribution: uniform (--latency-ms ± --jitter-ms) or "
    "lognormal (median --latency-ms, shape --latency-sigma) (default uniform)",
    "latency_sigma": "σ of the lognormal latency (default 0; 0.8 is a heavy tail)",
    "latency_paired": "1: draw each latency from (seed, poem, step, model, temperature, "
    "how many such requests came since the last /stats/reset), so that benchmarks "
    "compare configurations on the same draws (default 0: one random stream)",
    "rate_429": "fraction answered 429 with Retry-After (0-1)",
    "rate_500": "fraction answered 500 (0-1)",
    "rate_hang": "fraction that hang for --hang-s (0-1)",
    "rate_malformed": "fraction answered without the step's tags (0-1)",
    "rate_trickle": "fraction whose correct answer trickles in over --trickle-s (0-1)",
    "rate_html200": "fraction answered 200 with an HTML page instead of JSON (0-1)",
    "retry_after_ms": "Retry-After of 429 answers in ms (default 1000)",
    "rpm": "requests per minute, refused beyond with 429 and x-ratelimit-* headers, "
    "as a provider does: a bucket of --burst refilled at rpm/60 per s (default 0: off)",
    "tpm": "tokens per minute (prompt + max_tokens charged on admission, the unused "
    "part refunded with the answer) (default 0: off)",
    "max_concurrent": "requests answered at once; more get 429 (default 0: off)",
    "burst": "capacity of the --rpm bucket: requests allowed at once (default 8)",
    "hang_s": "how long a hang lasts in s (default 3600)",
    "trickle_s": "how long a trickled body takes to arrive in s (default 5)",
    "seed": "random seed for faults, jitter and answers (default 0)",
    "defect_rate": "fraction of candidates replaced by a planted defect a naive judge "
    "likes: copy, wrong script, dropped lines, padding, leaked tags (0-1, default 0)",
    "judge_noise": "s.d. of the judge's per-criterion noise around 10 x hidden quality "
    "(default 0.2)",
    "judge_first_bias": "probability that a judge call picks the first-shown candidate "
    "and inflates its scores (0-1, default 0)",
    "judge_length_bias": "per-criterion bonus x (length / mean length - 1) (default 0)",
    "judge_self_preference": "per-criterion bonus for candidates written by the judge's "
    "own model (default 0)",
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Flags default to None so that an unset flag falls back to its environment variable."""
    for name in FIELDS:
        parser.add_argument(
            f"--{name.replace('_', '-')}",
            dest=name,
            default=None,
            help=f"{_HELPS[name]}; env {settings.SIM_ENV_PREFIX}{name.upper()}",
        )


def options_from(ns: argparse.Namespace, env: dict[str, str] | None = None) -> SimulatorOptions:
    """Flags win over VPSWEB_SIM_* variables, which win over the defaults."""
    env = dict(os.environ) if env is None else env
    values: dict[str, Any] = {}
    for name in FIELDS:
        value = getattr(ns, name, None)
        if value is None:
            value = env.get(f"{settings.SIM_ENV_PREFIX}{name.upper()}")
        if value is not None and value != "":
            values[name] = value
    return SimulatorOptions.model_validate(values)
