"""`vpsweb translate --dry-run`: the request validated and its estimate printed, per
step and for the job; nothing submitted, no cluster started."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.helpers.poems import FOG
from vpsweb import cli, settings
from vpsweb.cli import translate
from vpsweb.client.sync import Client


@pytest.fixture
def poem(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    def started(*args: object, **kwargs: object) -> None:
        raise AssertionError("a dry run starts and submits nothing")

    monkeypatch.setattr(translate, "cluster", started)
    monkeypatch.setattr(Client, "submit_plan", started)
    monkeypatch.delenv(settings.REDIS_URL_ENV, raising=False)
    path = tmp_path / "fog.txt"
    path.write_text(FOG, encoding="utf-8")
    return path


def _run(poem: Path, *extra: str) -> int:
    argv = ["translate", str(poem), "--source-lang", "en", "--target-lang", "zh-CN"]
    return cli.main([*argv, "--dry-run", *extra])


def test_dry_run_prints_the_estimate_per_step_and_for_the_job(
    poem: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _run(poem, "--parallel-count", "2") == 0
    out = capsys.readouterr().out
    for name in ("Initial Translation", "Translation Evaluation", "Revision Check", "Job"):
        assert name in out
    assert "worst cost" in out and "CNY" in out
    job = next(line for line in out.splitlines() if line.startswith("Job "))
    assert job.split()[1] == "8"  # 2 candidates, 2 judge orders, editor, revision, 2 checks


def test_dry_run_json_is_the_estimate(poem: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert _run(poem, "--json", "--offline", "--max-cost", "5") == 0
    data = json.loads(capsys.readouterr().out)
    assert data["parallel_count"] == 3 and data["offline"] and data["max_cost"] == 5
    assert data["steps"][0]["step"] == "initial_translation"
    assert data["expected"]["calls"] == 9 and data["worst"]["calls"] > 9
    assert data["expected"]["tokens"] > 0 and data["currencies"] == ["CNY"]


def test_dry_run_under_a_max_cost_below_the_estimate_says_so(
    poem: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _run(poem, "--max-cost", "0.0001") == 2  # as the submission's refusal
    captured = capsys.readouterr()
    assert "Job" in captured.out  # the estimate is still shown
    assert "a submission would be refused" in captured.err
    assert "max_cost: 0.0001 CNY is below this job's estimated cost" in captured.err


def test_dry_run_validates_the_request(poem: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert _run(poem, "--parallel-count", "99") == 2
    assert "parallel_count" in capsys.readouterr().err
