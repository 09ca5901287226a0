"""The `vpsweb` command as a user runs it: embedded mode, Ctrl-C, job commands."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time

import pytest

from tests.helpers.cli import (
    FOG,
    TRANSLATE_FOG,
    cli_env,
    our_processes,
    run_cli,
    wait_gone,
)
from tests.helpers.config import REPO
from tests.helpers.jobs import submit
from tests.helpers.stage_calls import calls_per_job
from vpsweb.client import Client
from vpsweb.config import load_config

pytestmark = pytest.mark.integration


def test_translate_embedded_offline_saves_files_and_cleans_up(tmp_path):
    before = our_processes()
    res = run_cli(
        *TRANSLATE_FOG,
        "--title",
        "Fog",
        "--author",
        "Carl Sandburg",
        "--parallel-count",
        "3",
        "--offline",
        "--output-dir",
        str(tmp_path),
    )
    assert res.returncode == 0, res.stderr
    assert "Final translation" in res.stdout and "Chosen candidate" in res.stdout
    assert f"Totals: {calls_per_job(3)} LLM calls" in res.stdout
    # Not a terminal: plain lines, one per event, every candidate's end among them.
    assert "\x1b[" not in res.stderr
    for index, variant in enumerate(("literal", "lyric", "musical")):
        assert f"candidate {index} ({variant}, deepseek-chat) succeeded in" in res.stderr
    assert "3 of 3 candidates finished (3 ok, 0 failed)" in res.stderr
    assert "job succeeded after" in res.stderr
    names = sorted(p.name for p in tmp_path.iterdir())
    assert len(names) == 2 and names[0].startswith("carl-sandburg_fog_en_zh-CN_hybrid_")
    data = json.loads((tmp_path / names[0]).read_text())
    assert data["parallel_count"] == 3 and len(data["candidates"]) == 3
    assert "## Final translation" in (tmp_path / names[1]).read_text()
    assert wait_gone(before) == set()


def test_translate_json_output_with_strategy_dials(tmp_path):
    background = tmp_path / "background.txt"
    background.write_text("Written in Chicago, 1916.")
    res = run_cli(
        *TRANSLATE_FOG,
        "--parallel-count",
        "2",
        "--mode",
        "non_reasoning",
        "--offline",
        "--json",
        "--adaptation-level",
        "domesticating",
        "--prosody-target",
        "rhymed couplets",
        "--background",
        str(background),
        "--straggler",
        "quorum:0.5:0.3",
    )
    assert res.returncode == 0, res.stderr
    out = json.loads(res.stdout)
    assert out["workflow_mode"] == "non_reasoning" and len(out["candidates"]) == 2
    assert out["evaluation"]["selected_index"] in (0, 1)
    assert out["strategy"]["adaptation_level"] == "domesticating"
    assert out["strategy"]["prosody_target"] == "rhymed couplets"
    assert out["strategy"]["repetition_policy"] == "strict"  # the configured default
    assert out["request"]["background_briefing"] == "Written in Chicago, 1916."
    assert out["request"]["straggler"] == {"policy": "quorum", "quorum": 0.5, "grace": 0.3}
    # --json keeps stdout for the result; the progress still streams to stderr.
    assert "Initial Translation started" in res.stderr and "job succeeded" in res.stderr


def _ignore_sigint() -> None:  # runs in the child, as `cmd &` in a script does
    signal.signal(signal.SIGINT, signal.SIG_IGN)


@pytest.mark.parametrize("inherited", ["default", "ignored"])
def test_ctrl_c_cancels_and_leaves_nothing_behind(inherited):
    """Also when started with SIGINT ignored, as a non-interactive shell starts a
    background command: the interrupt used to be lost and the job ran to the end."""
    before = our_processes()
    env = cli_env({"VPSWEB_SIM_LATENCY_MS": "3000"}, unset=("VPSWEB_REDIS_URL",))
    proc = subprocess.Popen(
        [sys.executable, "-m", "vpsweb.cli", *TRANSLATE_FOG, "--offline"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=REPO,
        preexec_fn=_ignore_sigint if inherited == "ignored" else None,
    )
    assert proc.stderr is not None
    deadline = time.monotonic() + 60
    for line in proc.stderr:
        if "Initial Translation" in line or time.monotonic() > deadline:
            break
    assert our_processes() - before, "embedded processes should be running now"
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130
    assert "cancelled" in err
    assert wait_gone(before) == set()


def test_invalid_request_fails_fast_without_starting_anything():
    before = our_processes()
    res = run_cli(
        "translate",
        FOG,
        "--source-lang",
        "fr",
        "--target-lang",
        "en",
        "--parallel-count",
        "20",
        "--offline",
    )
    assert res.returncode == 2
    assert "source_lang" in res.stderr and "parallel_count" in res.stderr
    assert "fr" in res.stderr and "between 1 and 8" in res.stderr
    assert our_processes() - before == set()


@pytest.mark.parametrize(
    ("value", "said"),
    [
        ("sometimes", "expected wait_all or quorum[:FRACTION[:GRACE]]"),
        ("wait_all:2", "expected wait_all or quorum[:FRACTION[:GRACE]]"),
        ("quorum:1.5", "straggler.quorum"),
        ("quorum:0.5:-1", "straggler.grace"),
        ("quorum:half", "straggler.quorum"),
    ],
)
def test_bad_straggler_policy_fails_fast_without_starting_anything(value, said):
    before = our_processes()
    res = run_cli(*TRANSLATE_FOG, "--offline", "--straggler", value)
    assert res.returncode == 2, res.stderr
    assert said in res.stderr and "Traceback" not in res.stderr
    assert our_processes() - before == set()


def test_job_commands_against_a_cluster(redis_server, workers):
    env = {"VPSWEB_REDIS_URL": redis_server.url}
    with Client(redis_url=redis_server.url, config=load_config()) as c:
        job = submit(c, parallel_count=2)
        job.result(timeout=60)
    status = run_cli("status", job.id, env=env)
    assert status.returncode == 0 and "succeeded" in status.stdout and "100.0%" in status.stdout
    result = run_cli("result", job.id, "--json", env=env)
    assert json.loads(result.stdout)["job_id"] == job.id
    watch = run_cli("watch", job.id, env=env)
    assert watch.returncode == 0 and "job succeeded" in watch.stdout
    jobs = run_cli("jobs", env=env)
    assert job.id in jobs.stdout
    cancel = run_cli("cancel", job.id, env=env)
    assert "already ended (succeeded)" in cancel.stdout
    missing = run_cli("status", "nope", env=env)
    assert missing.returncode == 1 and "not found" in missing.stderr


def test_config_check(tmp_path):
    ok = run_cli("config", "check")
    assert ok.returncode == 0 and "config OK" in ok.stdout and "mode reasoning" in ok.stdout
    from tests.helpers.config import make_config_dir

    broken = make_config_dir(tmp_path)
    text = (
        (broken / "pipeline.yaml")
        .read_text()
        .replace("evaluation:          {model: deepseek-reasoner", "evaluation: {model: gpt-17", 1)
    )
    (broken / "pipeline.yaml").write_text(text)
    bad = run_cli("config", "check", "--config-dir", str(broken))
    assert bad.returncode == 1
    assert "pipeline.yaml" in bad.stderr and "unknown model 'gpt-17'" in bad.stderr
    assert "allowed:" in bad.stderr and "deepseek-chat" in bad.stderr


def test_embedded_run_without_api_key_fails_before_starting_anything():
    before = our_processes()
    res = run_cli(
        *TRANSLATE_FOG,
        unset=("DEEPSEEK_API_KEY", "VPSWEB_REDIS_URL", "VPSWEB_OFFLINE"),
    )
    assert res.returncode == 2
    assert "set DEEPSEEK_API_KEY" in res.stderr and "--offline" in res.stderr
    assert our_processes() - before == set()
