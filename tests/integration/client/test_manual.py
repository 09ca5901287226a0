"""Manual mode end to end: real Redis, real workers, answers through the client and CLI.

A manual job waits in Redis for a person; no worker thread waits with it. These
tests kill and replace every worker and restart Redis (AOF) between answers,
reject a bad answer and take a good one, mix manual and API steps, cancel a
waiting job, and drive the CLI through standard input.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers.cli import cli_env
from tests.helpers.cluster import Cluster
from tests.helpers.config import REPO
from tests.helpers.manual import ANSWERS, STEPS_AFTER_REVIEW, ZH, ZH2, answer_for, wait_pending
from vpsweb import settings
from vpsweb.domain.progress import EventKind
from vpsweb.errors import AnswerRefused, AnswerRejected, RequestInvalid
from vpsweb.storage import JobStatus

pytestmark = pytest.mark.integration


def test_a_fully_manual_job_survives_workers_and_redis_going_away(tmp_path: Path) -> None:
    c = Cluster(tmp=tmp_path, appendonly=True)
    try:
        worker = c.add_worker()
        before = c.sim_stats()["total_requests"]
        job = c.submit(c.client(), parallel_count=2, manual=True)
        wait_pending(c, job, {"candidate-0", "candidate-1"})
        assert job.status() is JobStatus.WAITING
        first = job.pending()[0]
        assert first.display_name == "Initial Translation" and first.messages[0]["role"] == "system"
        assert "little cat feet" in first.text()
        assert job.answer("candidate-1", answer_for("candidate-1")) is False  # any order
        # Everything goes away between two answers: workers, Redis, the client.
        c.kill(worker)
        c.redis.restart(down_s=1)
        worker = c.add_worker()
        job = c.client().get(job.id)
        assert [p.key for p in job.pending()] == ["candidate-0"]
        assert job.answer("candidate-0", answer_for("candidate-0")) is True
        for key in ("evaluation", "editor_review", "translator_revision", "revision_check"):
            wait_pending(c, job, {key})
            if key == "evaluation":
                shown = job.pending()[0].text()
                assert ZH.splitlines()[0] in shown and ZH2.splitlines()[0] in shown
            job.answer(key, answer_for(key))
        out = job.result(timeout=60)
        after = c.sim_stats()["total_requests"]
        events = list(job.events(timeout=5))
    finally:
        c.close()
    assert after == before  # no step went to an API
    assert out.manual_steps == [
        "initial_translation",
        "evaluation",
        "editor_review",
        "translator_revision",
        "revision_check",
    ]
    assert out.totals.llm_calls == 0 and out.totals.cost == {}
    assert all(m.model.model == "manual" for m in out.all_metrics())
    assert out.evaluation.selected_index in (0, 1) and len(out.evaluation.judgements) == 1
    assert out.final.source == "revision" and "猫儿" in out.final.translation
    waited = {e.key for e in events if e.event is EventKind.WAITING_FOR_ANSWER}
    answered = {e.key for e in events if e.event is EventKind.ANSWER_RECEIVED}
    assert (
        waited
        == answered
        == {
            "candidate-0",
            "candidate-1",
            "evaluation",
            "editor_review",
            "translator_revision",
            "revision_check",
        }
    )
    assert events[-1].status == "succeeded"


def test_manual_evaluation_only_rejects_a_bad_answer_and_takes_a_good_one(tmp_path: Path) -> None:
    c = Cluster(tmp=tmp_path)
    try:
        c.add_worker()
        before = c.sim_stats()["total_requests"]
        job = c.submit(c.client(), parallel_count=3, manual=["evaluation"])
        wait_pending(c, job, {"evaluation"})
        with pytest.raises(AnswerRejected) as info:
            job.answer("evaluation", "I like the second one.")
        assert "selected_index" in str(info.value)
        with pytest.raises(AnswerRejected, match=r"only 1\.\.3"):
            job.answer("evaluation", "<selected_index>7</selected_index>")
        assert [p.key for p in job.pending()] == ["evaluation"]  # nothing changed
        with pytest.raises(AnswerRefused, match="not waiting"):
            job.answer("editor_review", "<editor_suggestions>x</editor_suggestions>")
        assert job.answer("evaluation", ANSWERS["evaluation"]) is True
        out = job.result(timeout=60)
        with pytest.raises(AnswerRefused, match="succeeded"):
            job.answer("evaluation", ANSWERS["evaluation"])
        calls = c.sim_stats()["total_requests"] - before
    finally:
        c.close()
    assert out.manual_steps == ["evaluation"]
    assert out.evaluation.metrics is not None and out.evaluation.metrics.model.model == "manual"
    assert out.evaluation.selected_index == out.evaluation.presented_order[1]
    # The API paid for the rest: 3 candidates, the editor, the reviser, 2 checks.
    assert calls == out.totals.llm_calls == 3 + 1 + 1 + 2


def test_cancel_while_waiting(tmp_path: Path) -> None:
    c = Cluster(tmp=tmp_path)
    try:
        c.add_worker()
        job = c.submit(c.client(), parallel_count=1, manual=["candidate"])
        wait_pending(c, job, {"candidate-0"})
        assert job.cancel() is True
        assert job.status() is JobStatus.CANCELLED and job.pending() == []
        with pytest.raises(AnswerRefused, match="cancelled"):
            job.answer("candidate-0", answer_for("candidate-0"))
        with pytest.raises(RequestInvalid, match="unknown step"):
            c.submit(c.client(), manual=["judging"])
    finally:
        c.close()


def test_the_cli_reads_answers_from_standard_input(tmp_path: Path) -> None:
    c = Cluster(tmp=tmp_path)
    try:
        c.add_worker()
        poem = tmp_path / "fog.txt"
        poem.write_text(
            "The fog comes\non little cat feet.\n\n"
            "It sits looking\nover harbor and city\nand then moves on.\n"
        )
        out = tmp_path / "out"
        # A bad answer first: refused, asked again.
        answers = [
            "no tags at all",
            answer_for("candidate-0"),
            ANSWERS["evaluation"].replace("2", "1"),
            ANSWERS["editor_review"],
            ANSWERS["translator_revision"],
            ANSWERS["revision_check"],
        ]
        stdin = "".join(f"{a}\n.\n" for a in answers)
        env = cli_env({settings.CONFIG_DIR_ENV: str(c.config_dir)})
        res = subprocess.run(
            [
                sys.executable,
                "-m",
                "vpsweb.cli",
                "translate",
                str(poem),
                "--source-lang",
                "en",
                "--target-lang",
                "zh-CN",
                "--parallel-count",
                "1",
                "--manual",
                "--offline",
                "--redis-url",
                c.redis.url,
                "--output-dir",
                str(out),
                "--json",
            ],
            input=stdin,
            capture_output=True,
            text=True,
            env=env,
            cwd=REPO,
            timeout=180,
        )
    finally:
        c.close()
    assert res.returncode == 0, res.stderr
    assert "cannot be used" in res.stderr and "initial_translation" in res.stderr
    result = json.loads(res.stdout)
    assert result["manual_steps"][0] == "initial_translation"
    assert result["candidates"][0]["translation"] == ZH
    prompts = sorted(p.name.split("_", 1)[1] for p in out.glob("*.prompt.txt"))
    assert prompts == sorted(
        f"{k}.prompt.txt"
        for k in (
            "candidate-0",
            "evaluation",
            "editor_review",
            "translator_revision",
            "revision_check",
        )
    )
    md = next(out.glob("*.md")).read_text()
    assert "Answered by hand" in md


def test_vpsweb_manual_answers_one_prompt_from_a_file(tmp_path: Path) -> None:
    c = Cluster(tmp=tmp_path)
    try:
        c.add_worker()
        job = c.submit(c.client(), parallel_count=2, manual=["evaluation"])
        wait_pending(c, job, {"evaluation"})
        env = cli_env({settings.CONFIG_DIR_ENV: str(c.config_dir)})

        def manual(*extra: str) -> subprocess.CompletedProcess[str]:
            cmd = [sys.executable, "-m", "vpsweb.cli", "manual", job.id, "--redis-url", c.redis.url]
            return subprocess.run(
                [*cmd, *extra], capture_output=True, text=True, env=env, cwd=REPO, timeout=60
            )

        bad, good = tmp_path / "bad.txt", tmp_path / "good.txt"
        bad.write_text("Both are fine.")
        good.write_text(ANSWERS["evaluation"])
        refused = manual("--key", "evaluation", "--answer-file", str(bad))
        assert refused.returncode == 2 and "selected_index" in refused.stderr
        assert len(refused.stderr.strip().splitlines()) == 1  # one line, no traceback
        unknown = manual("--key", "candidate-5", "--answer-file", str(good))
        assert unknown.returncode == 2 and "not waiting" in unknown.stderr
        taken = manual("--key", "evaluation", "--answer-file", str(good))
        assert taken.returncode == 0 and "the job moves on" in taken.stderr
        out = job.result(timeout=60)
        # Resuming a finished job just prints its result.
        shown = manual("--json")
    finally:
        c.close()
    assert out.evaluation.metrics is not None and out.evaluation.metrics.model.model == "manual"
    assert shown.returncode == 0 and json.loads(shown.stdout)["job_id"] == job.id


def test_vpsweb_manual_resumes_a_waiting_job_interactively(tmp_path: Path) -> None:
    c = Cluster(tmp=tmp_path)
    try:
        c.add_worker()
        job = c.submit(c.client(), parallel_count=1, manual=True)
        wait_pending(c, job, {"candidate-0"})
        one = ANSWERS["evaluation"].replace("2", "1")  # a single candidate is shown
        answers = [answer_for("candidate-0"), one, *(ANSWERS[k] for k in STEPS_AFTER_REVIEW)]
        stdin = "".join(f"{a}\n.\n" for a in answers[:-1]) + answers[-1] + "\n"
        env = cli_env({settings.CONFIG_DIR_ENV: str(c.config_dir)})
        res = subprocess.run(
            [
                sys.executable,
                "-m",
                "vpsweb.cli",
                "manual",
                job.id,
                "--redis-url",
                c.redis.url,
                "--json",
            ],
            input=stdin,
            capture_output=True,
            text=True,
            env=env,
            cwd=REPO,
            timeout=120,
        )
    finally:
        c.close()
    assert res.returncode == 0, res.stderr
    # The last answer ends with the end of input instead of a "." line: also accepted.
    assert res.stderr.count("accepted") == 5
    assert json.loads(res.stdout)["final"]["source"] == "revision"
