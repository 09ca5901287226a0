"""Load and cross-check the YAML config, with errors that name file, key and choices."""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from vpsweb.config.schema import ModelsConfig, PipelineConfig, PromptFile
from vpsweb.models import StepName, WorkflowMode

CONFIG_DIR_ENV = "VPSWEB_CONFIG_DIR"
M = TypeVar("M", bound=BaseModel)


class ConfigError(Exception):
    """The config is unusable; ``problems`` holds one line per mistake."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("invalid configuration:\n  " + "\n  ".join(problems))


@dataclass(frozen=True)
class AppConfig:
    config_dir: Path
    models: ModelsConfig
    pipeline: PipelineConfig
    prompts: dict[StepName, PromptFile]


def default_config_dir() -> Path:
    """VPSWEB_CONFIG_DIR, else the repository's config/ (src layout), else ./config."""
    env = os.environ.get(CONFIG_DIR_ENV)
    if env:
        return Path(env)
    repo_config = Path(__file__).resolve().parents[3] / "config"
    if (repo_config / "pipeline.yaml").exists():
        return repo_config
    return Path.cwd() / "config"


def _format_loc(loc: tuple[Any, ...]) -> str:
    parts = [str(p.value if hasattr(p, "value") else p) for p in loc]
    return ".".join(parts) or "(top level)"


_UNREADABLE = object()  # the file's problem is already reported


def _read_yaml(path: Path, problems: list[str]) -> Any:
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        problems.append(f"{path}: file not found")
    except yaml.YAMLError as exc:
        problems.append(f"{path}: not valid YAML: {exc}")
    return _UNREADABLE


def _validate(path: Path, data: Any, model: type[M], problems: list[str]) -> M | None:
    if data is _UNREADABLE:
        return None
    if data is None:
        problems.append(f"{path}: file is empty")
        return None
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        for err in exc.errors():
            msg = err["msg"].removeprefix("Value error, ")
            problems.append(f"{path}: {_format_loc(err['loc'])}: {msg}")
        return None


def _cross_check(
    pipeline: PipelineConfig, models: ModelsConfig, path: Path, problems: list[str]
) -> None:
    allowed = ", ".join(sorted(models.models))
    for mode, settings in pipeline.modes.items():
        for step, step_settings in settings.steps.items():
            if step_settings.model not in models.models:
                problems.append(
                    f"{path}: modes.{mode.value}.steps.{step.value}.model: unknown model "
                    f"{step_settings.model!r}; allowed: {allowed}"
                )
    for i, variant in enumerate(pipeline.variants):
        if variant.model is not None and variant.model not in models.models:
            problems.append(
                f"{path}: variants.{i}.model: unknown model {variant.model!r}; allowed: {allowed}"
            )


def load_config(config_dir: str | Path | None = None) -> AppConfig:
    """Read, validate and cross-check everything; raise ConfigError listing all mistakes."""
    root = Path(config_dir) if config_dir is not None else default_config_dir()
    return _load_cached(root.resolve())


@lru_cache(maxsize=8)
def _load_cached(root: Path) -> AppConfig:
    problems: list[str] = []
    if not root.is_dir():
        raise ConfigError([f"{root}: config directory not found (set {CONFIG_DIR_ENV})"])
    models_path, pipeline_path = root / "models.yaml", root / "pipeline.yaml"
    models = _validate(models_path, _read_yaml(models_path, problems), ModelsConfig, problems)
    pipeline = _validate(
        pipeline_path, _read_yaml(pipeline_path, problems), PipelineConfig, problems
    )
    prompts: dict[StepName, PromptFile] = {}
    for step in StepName:
        path = root / "prompts" / f"{step.value}.yaml"
        prompt = _validate(path, _read_yaml(path, problems), PromptFile, problems)
        if prompt is not None:
            prompts[step] = prompt
    if models is not None and pipeline is not None:
        _cross_check(pipeline, models, pipeline_path, problems)
    if not problems and models is not None and pipeline is not None:
        # Deferred import: prompts.py depends on schema types only.
        from vpsweb.prompts import check_prompts

        problems.extend(check_prompts(root, prompts, pipeline, models))
    if problems or models is None or pipeline is None:
        raise ConfigError(problems)
    return AppConfig(config_dir=root, models=models, pipeline=pipeline, prompts=prompts)


def summarize(cfg: AppConfig) -> str:
    """The text `vpsweb config check` prints for a valid config."""
    p = cfg.pipeline
    lines = [
        f"config OK: {cfg.config_dir}",
        f"  providers: {', '.join(sorted(cfg.models.providers))}",
        f"  models: {len(cfg.models.models)}",
        f"  parallel_count: default {p.parallel_count.default}, max {p.parallel_count.max}",
        f"  variants: {', '.join(v.name for v in p.variants)}",
        f"  criteria: {', '.join(c.name for c in p.evaluation.criteria)}",
    ]
    for mode in WorkflowMode:
        steps = p.modes[mode].steps
        chain = ", ".join(f"{s.value}={steps[s].model}" for s in StepName)
        lines.append(f"  mode {mode.value} (N={p.default_parallel_count(mode)}): {chain}")
    return "\n".join(lines)
