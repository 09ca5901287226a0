"""The tests' config: a copy of config/ with fault-injection models, edited per test.

Every test that needs a changed config writes it to a directory of its own and passes
that directory (or the AppConfig read from it) to the code under test, so no cache of
read configs ever needs resetting.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[2]
FAKE_KEY = "sk-vpsweb-test-FAKE-KEY-0123456789"

# Extra models for fault injection; the simulator obeys directives in model names.
TEST_MODELS = """
  sim-chat:
    provider: simulator
    name: sim-chat
    price: {input_per_1k: 0.001, output_per_1k: 0.002, currency: USD}
  sim-reasoner:
    provider: simulator
    name: sim-reasoner
    reasoning: true
    price: {input_per_1k: 0.001, output_per_1k: 0.002, currency: USD}
  sim-fail500:
    provider: simulator
    name: sim-fail500
    price: {input_per_1k: 0.001, output_per_1k: 0.002, currency: USD}
  sim-fail401:
    provider: simulator
    name: sim-fail401
    price: {input_per_1k: 0.001, output_per_1k: 0.002, currency: USD}
  sim-fail404:
    provider: simulator
    name: sim-fail404
    price: {input_per_1k: 0.001, output_per_1k: 0.002, currency: USD}
  sim-429:
    provider: simulator
    name: sim-429x999
    price: {input_per_1k: 0.001, output_per_1k: 0.002, currency: USD}
  sim-malformed:
    provider: simulator
    name: sim-malformed
    price: {input_per_1k: 0.001, output_per_1k: 0.002, currency: USD}
  sim-malformedx1:
    provider: simulator
    name: sim-malformedx1
    price: {input_per_1k: 0.001, output_per_1k: 0.002, currency: USD}
  sim-truncate:
    provider: simulator
    name: sim-truncate
    price: {input_per_1k: 0.001, output_per_1k: 0.002, currency: USD}
  sim-truncatex1:
    provider: simulator
    name: sim-truncatex1
    price: {input_per_1k: 0.001, output_per_1k: 0.002, currency: USD}
  sim-slow:
    provider: simulator
    name: sim-slow1500
    price: {input_per_1k: 0.001, output_per_1k: 0.002, currency: USD}
  sim-glossmiss:
    provider: simulator
    name: sim-glossmiss
    price: {input_per_1k: 0.001, output_per_1k: 0.002, currency: USD}
  sim-glossraw:
    provider: simulator
    name: sim-glossraw
    price: {input_per_1k: 0.001, output_per_1k: 0.002, currency: USD}
"""


def make_config_dir(tmp: Path, *, pipeline_edit=None) -> Path:
    """A copy of config/ with the test models added; ``pipeline_edit(dict)`` may change it."""
    target = tmp / "config"
    shutil.copytree(REPO / "config", target)
    models = (target / "models.yaml").read_text() + TEST_MODELS
    (target / "models.yaml").write_text(models)
    if pipeline_edit is not None:
        data = yaml.safe_load((target / "pipeline.yaml").read_text())
        pipeline_edit(data)
        (target / "pipeline.yaml").write_text(yaml.safe_dump(data, allow_unicode=True))
    return target


def use_models(data: dict, *, mode: str = "hybrid", **steps: str) -> None:
    for step, model in steps.items():
        data["modes"][mode]["steps"][step]["model"] = model


def edit_yaml(path: Path, change: Callable[[dict[str, Any]], None]) -> None:
    """Change one YAML file of a config copy (before anything reads that copy)."""
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    change(data)
    path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")


def variant_on(index: int, model: str) -> Callable[[dict[str, Any]], None]:
    """A pipeline edit: candidate ``index``'s variant (of the shipped three) on ``model``,
    e.g. "sim-glossmiss" (the simulator's directive to miss every glossary term)."""

    def edit(data: dict[str, Any]) -> None:
        data["variants"][index]["model"] = model

    return edit


def slow_fourth(data: dict) -> None:
    """Four variants, the fourth on the 1.5 s model: candidate 3 is the straggler."""
    data["variants"].append(
        {"name": "slowpoke", "hint": "Take your time.", "model": "sim-slow", "temperature": 0.5}
    )


def tight(d: dict[str, Any]) -> None:
    """Small timeouts and a short queue allowance: deadlines of a few seconds."""
    d["queue_allowance_s"] = 2
    d["parse_retries"] = 0
    d["evaluation"]["judge_retries"] = 0
    for mode in d["modes"].values():
        for step in mode["steps"].values():
            step.update(timeout_s=1, retries=0)
