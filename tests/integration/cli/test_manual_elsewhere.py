"""`vpsweb manual` notices a prompt answered from elsewhere and moves on.

Issue 21, point 17: with a prompt answered from another shell (or the web page),
the interactive session kept waiting on standard input for it. Both ways a person
runs it are driven here: piped input (kept open, as a person who has not typed yet)
and a real pseudo-terminal.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.helpers.cli import cli_env
from tests.helpers.cluster import Cluster
from tests.helpers.config import REPO
from tests.helpers.manual import ANSWERS, STEPS_AFTER_REVIEW, answer_for, wait_pending
from tests.helpers.terminal import Terminal
from vpsweb import settings

pytestmark = pytest.mark.integration

ONE = ANSWERS["evaluation"].replace("2", "1")  # a single candidate is shown
REST = [ONE, *(ANSWERS[k] for k in STEPS_AFTER_REVIEW)]


def _wait(seen: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not seen():
        assert time.monotonic() < deadline, what
        time.sleep(0.1)


def test_piped_input_moves_on_when_the_prompt_is_answered_elsewhere(tmp_path: Path) -> None:
    c = Cluster(tmp=tmp_path)
    try:
        c.add_worker()
        job = c.submit(c.client(), parallel_count=1, manual=True)
        wait_pending(c, job, {"candidate-0"})
        env = cli_env({settings.CONFIG_DIR_ENV: str(c.config_dir)})
        cmd = [sys.executable, "-m", "vpsweb.cli", "manual", job.id, "--redis-url", c.redis.url]
        proc = subprocess.Popen(
            [*cmd, "--json"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
            cwd=REPO,
        )
        assert proc.stdin is not None and proc.stderr is not None and proc.stdout is not None
        err: list[str] = []
        pump = threading.Thread(target=lambda: err.extend(iter(proc.stderr.readline, "")))  # type: ignore[union-attr]
        pump.start()
        _wait(lambda: "paste the answer to candidate-0" in "".join(err), 30, "first prompt")
        assert job.answer("candidate-0", answer_for("candidate-0")) is True  # another shell
        _wait(lambda: "paste the answer to evaluation" in "".join(err), 30, "".join(err))
        assert "candidate-0 was answered elsewhere" in "".join(err)
        proc.stdin.write("".join(f"{a}\n.\n" for a in REST))
        proc.stdin.close()
        out = proc.stdout.read()
        code = proc.wait(timeout=120)
        pump.join(timeout=10)
    finally:
        if "proc" in locals() and proc.poll() is None:
            proc.kill()  # still waiting on its input: the bug this tests for
        c.close()
    stderr = "".join(err)
    assert code == 0, stderr
    assert stderr.count("accepted") == 4  # evaluation onwards: candidate-0 came from elsewhere
    assert json.loads(out)["final"]["source"] == "revision"


def test_a_terminal_session_moves_on_and_drops_what_was_typed(tmp_path: Path) -> None:
    c = Cluster(tmp=tmp_path)
    try:
        c.add_worker()
        job = c.submit(c.client(), parallel_count=1, manual=True)
        wait_pending(c, job, {"candidate-0"})
        env = {settings.CONFIG_DIR_ENV: str(c.config_dir)}
        term = Terminal("manual", job.id, "--redis-url", c.redis.url, rows=60, env=env)
        term.wait_for(lambda t: "paste the answer to candidate-0" in t, 30)
        term.write("half an answer, then the phone rang\n")  # typed, never finished
        time.sleep(0.5)
        assert job.answer("candidate-0", answer_for("candidate-0")) is True  # the web page
        term.wait_for(lambda t: "paste the answer to evaluation" in t, 30)
        assert "candidate-0 was answered elsewhere" in term.text()
        for answer in REST:
            term.write(f"{answer}\n.\n")
            time.sleep(0.3)
        term.wait_for(lambda t: t.count("accepted") >= 4, 60)
        code = term.finish(timeout=120)
        out = job.result(timeout=30)
    finally:
        if "term" in locals() and term.proc.poll() is None:
            term.proc.kill()
        c.close()
    assert code == 0, term.text()
    assert "cannot be used" not in term.text()  # the half answer never reached a stage
    assert out.evaluation.selected_index == 0
