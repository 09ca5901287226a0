"""Load and cross-check the YAML config, with errors that name file, key and choices.

Without a config directory (``VPSWEB_CONFIG_DIR`` or an explicit path) the
defaults that ship inside the package are used, so a wheel installed anywhere
runs; `vpsweb config init DIR` writes an editable copy of them.
"""

from __future__ import annotations

import shutil
import types
import typing
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from vpsweb import settings
from vpsweb.config.schema import ModelsConfig, PipelineConfig, StepSettings
from vpsweb.domain.models import WorkflowMode
from vpsweb.domain.prompts import PromptFile
from vpsweb.errors import ConfigError, InputFileError

M = TypeVar("M", bound=BaseModel)


@dataclass(frozen=True)
class AppConfig:
    config_dir: Path
    models: ModelsConfig
    pipeline: PipelineConfig
    prompts: dict[str, PromptFile]  # by stage name

    def progress_weights(self) -> dict[str, float]:
        from vpsweb.stages.table import default_weights

        return {**default_weights(), **self.pipeline.progress_weights}

    def routing(self) -> dict[str, str]:
        from vpsweb.workers.routing import default_routing

        return {**default_routing(), **self.pipeline.routing}

    def queues(self) -> list[str]:
        return sorted(set(self.routing().values()))

    def simulator_provider(self) -> str:
        """The provider of the offline simulator (steps on it need the simulator running)."""
        return self.models.models[self.models.simulator_model].provider


def packaged_config_dir() -> Path:
    """The defaults inside the installed package (a real directory for pip installs)."""
    return Path(str(resources.files("vpsweb.config").joinpath("defaults")))


def default_config_dir() -> Path:
    """VPSWEB_CONFIG_DIR, else the packaged defaults."""
    env = settings.config_dir()
    return Path(env) if env else packaged_config_dir()


def init_config(target: Path, *, force: bool = False) -> Path:
    """Write an editable copy of the packaged defaults into ``target``."""
    if target.exists() and any(target.iterdir()) and not force:
        raise InputFileError(f"{target}: exists and is not empty (use --force to overwrite)")
    shutil.copytree(packaged_config_dir(), target, dirs_exist_ok=True)
    return target


def _format_loc(loc: tuple[Any, ...]) -> str:
    parts = [str(p.value if hasattr(p, "value") else p) for p in loc]
    return ".".join(parts) or "(top level)"


def _keys_at(model: type[BaseModel], loc: tuple[Any, ...]) -> list[str]:
    """The keys the model at ``loc`` accepts (empty when the path leaves the models)."""
    kind: Any = model
    for part in loc:
        if isinstance(kind, type) and issubclass(kind, BaseModel):
            field = kind.model_fields.get(str(part))
            kind = field.annotation if field else None
        else:
            args = [a for a in typing.get_args(kind) if a is not type(None)]
            kind = args[-1] if args else None  # dict[str, X] -> X, X | None -> X
        args = [a for a in typing.get_args(kind) if a is not type(None)]
        if typing.get_origin(kind) in (typing.Union, types.UnionType) and len(args) == 1:
            kind = args[0]
    if isinstance(kind, type) and issubclass(kind, BaseModel):
        return list(kind.model_fields)
    return []


_UNREADABLE = object()  # the file's problem is already reported


def _yaml_problem(exc: yaml.YAMLError) -> str:
    """One line: where (as an editor counts) and what, without PyYAML's snippet."""
    mark = getattr(exc, "problem_mark", None)
    what = getattr(exc, "problem", None) or str(exc).splitlines()[0]
    if mark is None:
        return what
    return f"line {mark.line + 1}, column {mark.column + 1}: {what}"


def _read_yaml(path: Path, problems: list[str]) -> Any:
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        problems.append(f"{path}: file not found")
    except yaml.YAMLError as exc:
        problems.append(f"{path}: not valid YAML: {_yaml_problem(exc)}")
    except (OSError, UnicodeDecodeError) as exc:
        problems.append(f"{path}: cannot read: {exc}")
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
            if err["type"] == "extra_forbidden" and (keys := _keys_at(model, err["loc"][:-1])):
                msg = f"unknown key; allowed: {', '.join(keys)}"
            problems.append(f"{path}: {_format_loc(err['loc'])}: {msg}")
        return None


def _check_keys(
    path: Path, where: str, found: Any, allowed: list[str], problems: list[str]
) -> None:
    for key in found:
        if key not in allowed:
            problems.append(f"{path}: {where}.{key}: unknown stage; allowed: {', '.join(allowed)}")


def _check_fallbacks(
    path: Path, where: str, step: StepSettings, models: ModelsConfig, problems: list[str]
) -> None:
    """A step's fallbacks: known models, none of them the step's own, none twice."""
    allowed = ", ".join(sorted(m for m in models.models if m != step.model))
    seen: set[str] = set()
    for i, key in enumerate(step.fallback):
        at = f"{path}: {where}.fallback.{i}"
        if key == step.model:
            problems.append(
                f"{at}: {key!r} is the step's own model; a fallback must be another "
                f"model; allowed: {allowed}"
            )
        elif key not in models.models:
            problems.append(f"{at}: unknown model {key!r}; allowed: {allowed}")
        elif key in seen:
            problems.append(f"{at}: {key!r} is listed twice")
        seen.add(key)


def _cross_check(
    pipeline: PipelineConfig, models: ModelsConfig, path: Path, problems: list[str]
) -> None:
    """Every mode names a known model for every stage of the table, and nothing else."""
    from vpsweb.stages.table import STAGE_NAMES

    names = list(STAGE_NAMES)
    allowed = ", ".join(sorted(models.models))
    for mode, settings_ in pipeline.modes.items():
        where = f"modes.{mode.value}.steps"
        missing = [s for s in names if s not in settings_.steps]
        if missing:
            problems.append(f"{path}: {where}: missing {', '.join(missing)}")
        _check_keys(path, where, settings_.steps, names, problems)
        for step, step_settings in settings_.steps.items():
            if step_settings.model not in models.models:
                problems.append(
                    f"{path}: {where}.{step}.model: unknown model "
                    f"{step_settings.model!r}; allowed: {allowed}"
                )
            _check_fallbacks(path, f"{where}.{step}", step_settings, models, problems)
    _check_keys(path, "progress_weights", pipeline.progress_weights, names, problems)
    _check_keys(path, "routing", pipeline.routing, [*names, "finalize"], problems)
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
    from vpsweb.stages.table import STAGES

    problems: list[str] = []
    if not root.is_dir():
        raise ConfigError(
            [
                f"{root}: config directory not found; fix {settings.CONFIG_DIR_ENV} or "
                "--config-dir, or unset it to use the packaged defaults"
            ]
        )
    models_path, pipeline_path = root / "models.yaml", root / "pipeline.yaml"
    models = _validate(models_path, _read_yaml(models_path, problems), ModelsConfig, problems)
    pipeline = _validate(
        pipeline_path, _read_yaml(pipeline_path, problems), PipelineConfig, problems
    )
    prompts: dict[str, PromptFile] = {}
    for s in STAGES:
        path = root / "prompts" / f"{s.prompt}.yaml"
        prompt = _validate(path, _read_yaml(path, problems), PromptFile, problems)
        if prompt is not None:
            prompts[s.name] = prompt
    if models is not None and pipeline is not None:
        _cross_check(pipeline, models, pipeline_path, problems)
    if not problems and models is not None and pipeline is not None:
        from vpsweb.config.prompt_check import check_prompts

        problems.extend(check_prompts(root, prompts, pipeline, models))
    if problems or models is None or pipeline is None:
        raise ConfigError(problems)
    return AppConfig(config_dir=root, models=models, pipeline=pipeline, prompts=prompts)


def summarize(cfg: AppConfig) -> str:
    """The text `vpsweb config check` prints for a valid config."""
    from vpsweb.stages.table import STAGE_NAMES

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
        chain = ", ".join(f"{s}={steps[s].model}" for s in STAGE_NAMES)
        lines.append(f"  mode {mode.value} (N={p.default_parallel_count(mode)}): {chain}")
    return "\n".join(lines)
