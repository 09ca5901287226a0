"""`vpsweb config check --keys`: per provider of the modes, is its key variable set?

Issue 21, point 18. Run through the real command, with the variables set and unset;
a key's value must never appear in what it prints.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from vpsweb.config import init_config
from vpsweb.settings import CONFIG_DIR_ENV

SECRET = "sk-do-not-print-me-1234567890"


@pytest.fixture()
def config_dir(tmp_path: Path) -> Path:
    """The defaults, with the hybrid judge on Qwen and one variant on a local Ollama."""
    target = init_config(tmp_path / "config")
    pipeline = target / "pipeline.yaml"
    text = pipeline.read_text()
    judge = "      evaluation:          {model: deepseek-reasoner, temperature: 0.2"
    assert judge in text
    text = text.replace(judge, "      evaluation:          {model: qwen-max, temperature: 0.2", 1)
    text = text.replace("  - name: lyric\n", "  - name: lyric\n    model: ollama-qwen2.5\n", 1)
    pipeline.write_text(text)
    return target


def check_keys(config_dir: Path, **keys: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY")}
    env.update({CONFIG_DIR_ENV: str(config_dir), **keys})
    return subprocess.run(
        [sys.executable, "-m", "vpsweb.cli", "config", "check", "--keys"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def line_of(out: str, provider: str) -> str:
    return next(line for line in out.splitlines() if line.strip().startswith(f"{provider}:"))


def test_a_missing_key_is_named_with_the_modes_and_steps_that_need_it(config_dir: Path) -> None:
    res = check_keys(config_dir, DEEPSEEK_API_KEY=SECRET)
    assert res.returncode == 1
    assert SECRET not in res.stdout + res.stderr
    assert line_of(res.stdout, "deepseek").startswith("    deepseek: DEEPSEEK_API_KEY set")
    tongyi = line_of(res.stdout, "tongyi")
    assert "DASHSCOPE_API_KEY missing" in tongyi and "hybrid: evaluation" in tongyi
    assert "reasoning:" not in tongyi  # only the hybrid judge uses it
    ollama = line_of(res.stdout, "ollama")
    assert "no key needed" in ollama and "initial_translation (lyric)" in ollama
    assert "openai" not in res.stdout.split("API keys", 1)[1]  # unused providers: not listed
    assert (
        res.stderr.strip() == "vpsweb: API key not set: DASHSCOPE_API_KEY (used by the modes above)"
    )


def test_every_key_set_passes(config_dir: Path) -> None:
    res = check_keys(config_dir, DEEPSEEK_API_KEY=SECRET, DASHSCOPE_API_KEY=SECRET)
    assert res.returncode == 0, res.stderr
    assert SECRET not in res.stdout + res.stderr
    assert "DASHSCOPE_API_KEY set" in line_of(res.stdout, "tongyi")


def test_an_empty_variable_is_not_a_key(config_dir: Path) -> None:
    res = check_keys(config_dir, DEEPSEEK_API_KEY="  ", DASHSCOPE_API_KEY=SECRET)
    assert res.returncode == 1
    assert "DEEPSEEK_API_KEY empty" in line_of(res.stdout, "deepseek")
    assert "every step" in line_of(res.stdout, "deepseek")  # reasoning and non_reasoning


def test_without_keys_flag_nothing_about_keys_is_said(config_dir: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY")}
    res = subprocess.run(
        [sys.executable, "-m", "vpsweb.cli", "config", "check"],
        env={**env, CONFIG_DIR_ENV: str(config_dir)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert res.returncode == 0 and "API keys" not in res.stdout
