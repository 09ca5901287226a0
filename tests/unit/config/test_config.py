"""The shipped config loads, and every kind of mistake gives an error that names the
file, the key path and the allowed choices. Each broken config is a tmp copy of config/."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from tests.helpers.config import edit_yaml
from vpsweb.config import AppConfig, ConfigError, load_config
from vpsweb.config.loader import default_config_dir, summarize
from vpsweb.config.prompt_check import variables_of
from vpsweb.domain.models import WorkflowMode
from vpsweb.settings import CONFIG_DIR_ENV
from vpsweb.stages.table import STAGE_NAMES

REPO = Path(__file__).resolve().parents[3]


@pytest.fixture()
def config_copy(tmp_path: Path) -> Path:
    target = tmp_path / "config"
    shutil.copytree(REPO / "config", target)
    return target


def problems_of(root: Path) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load_config(root)
    exc = info.value
    assert exc.problems
    assert str(exc).startswith("invalid configuration:")
    for line in exc.problems:
        assert line in str(exc)
    return exc.problems


def only_problem(root: Path) -> str:
    problems = problems_of(root)
    assert len(problems) == 1, problems
    return problems[0]


# --- the shipped config ------------------------------------------------------------


def test_shipped_config_loads() -> None:
    cfg = load_config()
    assert isinstance(cfg, AppConfig)
    assert cfg.config_dir == (REPO / "config").resolve()
    assert set(cfg.pipeline.modes) == set(WorkflowMode)
    assert set(cfg.prompts) == set(STAGE_NAMES)
    assert [v.name for v in cfg.pipeline.variants] == ["literal", "lyric", "musical"]
    assert [c.name for c in cfg.pipeline.evaluation.criteria] == [
        "fidelity",
        "imagery",
        "musicality",
        "fluency",
    ]
    assert cfg.models.simulator_model in cfg.models.models
    # hybrid: non-reasoning translator, reasoning editor (the domain's definition).
    hybrid = cfg.pipeline.modes[WorkflowMode.HYBRID].steps
    models = cfg.models.models
    assert not models[hybrid["initial_translation"].model].reasoning
    assert models[hybrid["editor_review"].model].reasoning
    for step, settings in cfg.pipeline.modes[WorkflowMode.REASONING].steps.items():
        assert models[settings.model].reasoning, step
    for step, settings in cfg.pipeline.modes[WorkflowMode.NON_REASONING].steps.items():
        assert not models[settings.model].reasoning, step


def test_load_config_is_cached_per_directory(config_copy: Path) -> None:
    assert load_config() is load_config()
    assert load_config(config_copy) is load_config(str(config_copy))
    assert load_config(config_copy) is not load_config()


def test_summarize_mentions_every_mode_with_its_models() -> None:
    cfg = load_config()
    text = summarize(cfg)
    assert text.startswith(f"config OK: {cfg.config_dir}")
    for mode in WorkflowMode:
        assert f"mode {mode.value} (N={cfg.pipeline.default_parallel_count(mode)})" in text
    assert "mode reasoning (N=2)" in text
    assert "mode hybrid (N=3)" in text
    assert (
        "mode hybrid (N=3): initial_translation=deepseek-chat, evaluation=deepseek-reasoner, "
        "editor_review=deepseek-reasoner, translator_revision=deepseek-chat"
    ) in text
    assert "parallel_count: default 3, max 8" in text
    assert "variants: literal, lyric, musical" in text
    assert "criteria: fidelity, imagery, musicality, fluency" in text
    for provider in cfg.models.providers:
        assert provider in text


# --- one kind of mistake per test ------------------------------------------------------


def test_unknown_model_in_a_mode_step(config_copy: Path) -> None:
    path = config_copy / "pipeline.yaml"
    edit_yaml(path, lambda d: d["modes"]["hybrid"]["steps"]["evaluation"].update(model="gpt-9"))
    line = only_problem(config_copy)
    assert line.startswith(f"{path.resolve()}: modes.hybrid.steps.evaluation.model: ")
    assert "unknown model 'gpt-9'" in line
    allowed = line.split("allowed: ", 1)[1]
    assert allowed.split(", ") == sorted(load_config(REPO / "config").models.models)


def test_unknown_model_in_a_variant(config_copy: Path) -> None:
    path = config_copy / "pipeline.yaml"
    edit_yaml(path, lambda d: d["variants"][2].update(model="nope"))
    line = only_problem(config_copy)
    assert line.startswith(f"{path.resolve()}: variants.2.model: unknown model 'nope'")
    assert "deepseek-chat" in line


def test_every_mistake_is_reported_at_once(config_copy: Path) -> None:
    def change(d: dict[str, Any]) -> None:
        d["modes"]["hybrid"]["steps"]["evaluation"]["model"] = "m1"
        d["modes"]["reasoning"]["steps"]["editor_review"]["model"] = "m2"
        d["variants"][0]["model"] = "m3"

    edit_yaml(config_copy / "pipeline.yaml", change)
    problems = problems_of(config_copy)
    assert len(problems) == 3
    joined = "\n".join(problems)
    assert "modes.hybrid.steps.evaluation.model: unknown model 'm1'" in joined
    assert "modes.reasoning.steps.editor_review.model: unknown model 'm2'" in joined
    assert "variants.0.model: unknown model 'm3'" in joined


def test_model_with_unknown_provider(config_copy: Path) -> None:
    path = config_copy / "models.yaml"
    edit_yaml(path, lambda d: d["models"]["qwen-plus"].update(provider="alibaba"))
    line = only_problem(config_copy)
    assert line.startswith(f"{path.resolve()}: ")
    assert "models.qwen-plus.provider: unknown provider 'alibaba'" in line
    allowed = line.split("allowed: ", 1)[1]
    assert allowed.split(", ") == sorted(load_config(REPO / "config").models.providers)


def test_unknown_simulator_model(config_copy: Path) -> None:
    edit_yaml(config_copy / "models.yaml", lambda d: d.update(simulator_model="sim-x"))
    line = only_problem(config_copy)
    assert "models.yaml" in line
    assert "simulator_model: unknown model 'sim-x'" in line


def test_bad_adaptation_level_in_strategy_defaults(config_copy: Path) -> None:
    path = config_copy / "pipeline.yaml"
    edit_yaml(path, lambda d: d["strategy_defaults"].update(adaptation_level="extreme"))
    line = only_problem(config_copy)
    assert line.startswith(f"{path.resolve()}: strategy_defaults.adaptation_level: ")
    for literal in ("'foreignizing'", "'balanced'", "'domesticating'"):
        assert literal in line


def test_missing_mode(config_copy: Path) -> None:
    path = config_copy / "pipeline.yaml"
    edit_yaml(path, lambda d: d["modes"].pop("reasoning"))
    line = only_problem(config_copy)
    assert line.startswith(f"{path.resolve()}: ")
    assert "modes: missing reasoning" in line


def test_mode_missing_a_step(config_copy: Path) -> None:
    edit_yaml(
        config_copy / "pipeline.yaml",
        lambda d: d["modes"]["non_reasoning"]["steps"].pop("editor_review"),
    )
    line = only_problem(config_copy)
    assert "pipeline.yaml: modes.non_reasoning.steps: missing editor_review" in line


def test_parallel_count_default_above_max(config_copy: Path) -> None:
    edit_yaml(config_copy / "pipeline.yaml", lambda d: d["parallel_count"].update(default=9))
    line = only_problem(config_copy)
    assert "pipeline.yaml" in line
    assert "parallel_count.default: 9 is above parallel_count.max 8" in line


def test_mode_parallel_count_above_max(config_copy: Path) -> None:
    edit_yaml(
        config_copy / "pipeline.yaml", lambda d: d["modes"]["reasoning"].update(parallel_count=12)
    )
    line = only_problem(config_copy)
    assert "modes.reasoning.parallel_count: 12 is above parallel_count.max 8" in line


def test_invalid_yaml_syntax(config_copy: Path) -> None:
    path = config_copy / "pipeline.yaml"
    path.write_text(path.read_text(encoding="utf-8") + "\nmodes: [unclosed\n", encoding="utf-8")
    problems = problems_of(config_copy)
    assert any(line.startswith(f"{path.resolve()}: not valid YAML:") for line in problems), problems


def test_invalid_yaml_is_not_also_reported_as_empty(config_copy: Path) -> None:
    path = config_copy / "pipeline.yaml"
    path.write_text(path.read_text(encoding="utf-8") + "\nmodes: [unclosed\n", encoding="utf-8")
    problems = problems_of(config_copy)
    assert not any("file is empty" in line for line in problems), problems


def test_empty_file(config_copy: Path) -> None:
    path = config_copy / "models.yaml"
    path.write_text("# nothing here\n", encoding="utf-8")
    line = only_problem(config_copy)
    assert line == f"{path.resolve()}: file is empty"


def test_missing_prompt_file(config_copy: Path) -> None:
    path = config_copy / "prompts" / "editor_review.yaml"
    path.unlink()
    line = only_problem(config_copy)
    assert line == f"{path.resolve()}: file not found"


def test_prompt_with_undefined_variable(config_copy: Path) -> None:
    path = config_copy / "prompts" / "initial_translation.yaml"
    text = path.read_text(encoding="utf-8")
    assert "{{ original_poem }}" in text
    path.write_text(text.replace("{{ original_poem }}", "{{ poem_txt }}"), encoding="utf-8")
    problems = problems_of(config_copy)
    # Default templates (hybrid and non_reasoning use deepseek-chat) and the reasoning
    # ones (reasoning mode) are all broken: one line each, per mode.
    assert len(problems) == 3, problems
    for line in problems:
        assert line.startswith(f"{config_copy.resolve()}/prompts/initial_translation.yaml: ")
        assert "'poem_txt' is undefined" in line
        available = line.split("variables available: ", 1)[1]
        assert available.split(", ") == list(variables_of("initial_translation"))
    joined = "\n".join(problems)
    assert "default templates (mode hybrid)" in joined
    assert "default templates (mode non_reasoning)" in joined
    assert "reasoning templates (mode reasoning)" in joined


def test_prompt_variable_of_another_step_is_undefined(config_copy: Path) -> None:
    """`editor_suggestions` exists only for the revision step, not for the editor."""
    path = config_copy / "prompts" / "editor_review.yaml"
    text = path.read_text(encoding="utf-8")
    path.write_text(
        text.replace("{{ translation_notes }}", "{{ editor_suggestions }}"), encoding="utf-8"
    )
    problems = problems_of(config_copy)
    assert problems
    for line in problems:
        assert "prompts/editor_review.yaml" in line
        assert "'editor_suggestions' is undefined" in line


def test_prompt_template_syntax_error(config_copy: Path) -> None:
    path = config_copy / "prompts" / "evaluation.yaml"
    text = path.read_text(encoding="utf-8")
    path.write_text(text.replace("{% endfor %}", "{% endfr %}", 1), encoding="utf-8")
    problems = problems_of(config_copy)
    assert all("prompts/evaluation.yaml" in line for line in problems)
    assert all("prompt template failed" in line for line in problems)


def test_prompt_file_missing_user_template(config_copy: Path) -> None:
    path = config_copy / "prompts" / "translator_revision.yaml"
    edit_yaml(path, lambda d: d.pop("user"))
    line = only_problem(config_copy)
    assert line.startswith(f"{path.resolve()}: user: ")
    assert "Field required" in line


def test_progress_weight_must_be_positive(config_copy: Path) -> None:
    edit_yaml(config_copy / "pipeline.yaml", lambda d: d["progress_weights"].update(evaluation=0))
    line = only_problem(config_copy)
    assert line.endswith(
        "pipeline.yaml: progress_weights.evaluation: Input should be greater than 0"
    )


def test_progress_weight_of_an_unknown_stage(config_copy: Path) -> None:
    edit_yaml(config_copy / "pipeline.yaml", lambda d: d["progress_weights"].update(polish=10))
    line = only_problem(config_copy)
    assert "pipeline.yaml: progress_weights.polish: unknown stage; allowed: " in line
    assert "initial_translation, evaluation, editor_review, translator_revision" in line


def test_routing_of_an_unknown_stage(config_copy: Path) -> None:
    edit_yaml(config_copy / "pipeline.yaml", lambda d: d["routing"].update(candidate="q"))
    line = only_problem(config_copy)
    assert "pipeline.yaml: routing.candidate: unknown stage; allowed: " in line
    assert line.endswith("translator_revision, revision_check, finalize")


def test_unknown_extra_key(config_copy: Path) -> None:
    path = config_copy / "pipeline.yaml"
    edit_yaml(path, lambda d: d.update(paralel_count=4))
    line = only_problem(config_copy)
    assert line.startswith(f"{path.resolve()}: paralel_count: unknown key; allowed: ")
    assert "parallel_count" in line.split("allowed: ")[1].split(", ")


def test_unknown_key_inside_a_step(config_copy: Path) -> None:
    edit_yaml(
        config_copy / "pipeline.yaml",
        lambda d: d["modes"]["hybrid"]["steps"]["editor_review"].update(temprature=0.1),
    )
    line = only_problem(config_copy)
    where = "modes.hybrid.steps.editor_review.temprature"
    assert f"{where}: unknown key; allowed: model, temperature" in line


def test_an_unknown_limit_key_names_the_allowed_ones(config_copy: Path) -> None:
    edit_yaml(
        config_copy / "models.yaml",
        lambda d: d["providers"]["deepseek"].update(limits={"requests_per_min": 240}),
    )
    line = only_problem(config_copy)
    assert line.endswith(
        "models.yaml: providers.deepseek.limits.requests_per_min: unknown key; allowed: "
        "requests_per_minute, tokens_per_minute, max_concurrent"
    )


def test_limits_load_per_provider_and_per_model(config_copy: Path) -> None:
    def edit(d: dict[str, Any]) -> None:
        d["providers"]["deepseek"]["limits"] = {"requests_per_minute": 240}
        d["models"]["deepseek-chat"]["limits"] = {"max_concurrent": 4, "tokens_per_minute": 9000}

    edit_yaml(config_copy / "models.yaml", edit)
    cfg = load_config(config_copy)
    assert cfg.models.providers["deepseek"].limits.requests_per_minute == 240
    limits = cfg.models.models["deepseek-chat"].limits
    assert limits.max_concurrent == 4 and limits.tokens_per_minute == 9000


def test_out_of_range_temperature(config_copy: Path) -> None:
    edit_yaml(
        config_copy / "pipeline.yaml",
        lambda d: d["modes"]["hybrid"]["steps"]["initial_translation"].update(temperature=3),
    )
    line = only_problem(config_copy)
    assert "modes.hybrid.steps.initial_translation.temperature" in line
    assert "less than or equal to 2" in line


def test_duplicate_variant_names(config_copy: Path) -> None:
    edit_yaml(config_copy / "pipeline.yaml", lambda d: d["variants"][1].update(name="literal"))
    line = only_problem(config_copy)
    assert "variants: names must be unique" in line


def test_missing_config_directory(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere"
    line = only_problem(missing)
    assert str(missing.resolve()) in line
    assert CONFIG_DIR_ENV in line


# --- VPSWEB_CONFIG_DIR ------------------------------------------------------------------


def test_config_dir_env_selects_another_directory(
    config_copy: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    edit_yaml(config_copy / "pipeline.yaml", lambda d: d["parallel_count"].update(default=5, max=6))
    assert load_config().pipeline.parallel_count.max == 8
    monkeypatch.setenv(CONFIG_DIR_ENV, str(config_copy))
    assert default_config_dir() == config_copy
    cfg = load_config()
    assert cfg.config_dir == config_copy.resolve()
    assert cfg.pipeline.parallel_count.default == 5
    assert cfg.pipeline.parallel_count.max == 6
    monkeypatch.delenv(CONFIG_DIR_ENV)
    assert load_config().pipeline.parallel_count.max == 8


def test_config_dir_env_pointing_at_a_broken_config_fails(
    config_copy: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (config_copy / "models.yaml").unlink()
    monkeypatch.setenv(CONFIG_DIR_ENV, str(config_copy))
    with pytest.raises(ConfigError, match=r"models\.yaml: file not found"):
        load_config()


# --- the packaged defaults and `vpsweb config init` ------------------------------------


def test_without_a_config_dir_the_packaged_defaults_are_used(monkeypatch) -> None:
    from vpsweb.config import packaged_config_dir

    monkeypatch.delenv(CONFIG_DIR_ENV, raising=False)
    assert default_config_dir() == packaged_config_dir()
    assert (packaged_config_dir() / "pipeline.yaml").is_file()
    assert load_config().config_dir == packaged_config_dir().resolve()


def test_config_init_writes_an_editable_copy_that_checks(tmp_path: Path, capsys) -> None:
    from vpsweb.cli import main

    target = tmp_path / "my-config"
    assert main(["config", "init", str(target)]) == 0
    assert f"{CONFIG_DIR_ENV}={target.resolve()}" in capsys.readouterr().out
    assert sorted(p.name for p in (target / "prompts").iterdir()) == sorted(
        f"{s}.yaml" for s in STAGE_NAMES
    )
    assert main(["config", "check", "--config-dir", str(target)]) == 0
    assert capsys.readouterr().out.startswith(f"config OK: {target.resolve()}")
    # A second init does not overwrite edits unless told to.
    (target / "models.yaml").write_text("edited")
    assert main(["config", "init", str(target)]) == 2
    assert "exists and is not empty (use --force to overwrite)" in capsys.readouterr().err
    assert (target / "models.yaml").read_text() == "edited"
    assert main(["config", "init", str(target), "--force"]) == 0
    assert (target / "models.yaml").read_text() != "edited"


def test_help_and_config_check_work_with_a_broken_config(tmp_path: Path) -> None:
    import subprocess
    import sys

    env = {"PATH": "/usr/bin:/bin", CONFIG_DIR_ENV: str(tmp_path / "missing")}
    helped = subprocess.run(
        [sys.executable, "-m", "vpsweb.cli", "--help"], env=env, capture_output=True, text=True
    )
    assert helped.returncode == 0 and "translate" in helped.stdout
    checked = subprocess.run(
        [sys.executable, "-m", "vpsweb.cli", "config", "check"],
        env=env,
        capture_output=True,
        text=True,
    )
    assert checked.returncode == 1
    assert "missing: config directory not found" in checked.stderr
