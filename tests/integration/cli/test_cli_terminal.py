"""The live display as a user sees it: a real pseudo-terminal and a terminal emulator."""

from __future__ import annotations

import json
import re

import pytest

from tests.helpers.cli import TRANSLATE_FOG, our_processes, run_cli, wait_gone
from tests.helpers.terminal import Terminal

pytestmark = pytest.mark.integration

SPINNER = set("⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏")  # rich's "dots"
BAR = "━"


def job_id(text: str) -> str:
    found = re.search(r"job ([0-9a-f]{12}) submitted", text)
    assert found, text
    return found.group(1)


def test_live_display_in_a_50_column_terminal() -> None:
    term = Terminal(
        *TRANSLATE_FOG,
        "--offline",
        "--parallel-count",
        "4",
        columns=50,
        env={"VPSWEB_SIM_LATENCY_MS": "1200", "VPSWEB_SIM_JITTER_MS": "0"},
    )
    assert term.finish(timeout=120) == 0, term.text()
    lines = term.lines()
    # Redrawn in place: one bar, however many redraws; nothing wider than the terminal.
    assert sum(BAR in line for line in lines) == 1, "\n".join(lines)
    assert all(len(line) <= 50 for line in lines)
    bar = next(line for line in lines if BAR in line)
    assert "100.0%" in bar and bar.startswith(f"job {job_id(term.text())}")
    # One row per candidate, with its variant, model and time; every stage done.
    for index, variant in enumerate(("literal", "lyric", "musical", "literal")):
        row = next(line for line in lines if f"#{index} {variant}" in line)
        assert row.startswith("✓") and "deepseek-chat" in row and re.search(r"\d\.\ds$", row)
    for stage in ("Initial Translation", "Translation Evaluation", "Editor Review"):
        assert any(line.startswith(f"✓ {stage}") for line in lines), stage
    # While the calls were in flight: a spinner, and elapsed times that kept ticking.
    assert SPINNER & set(term.text())
    ticks = set(re.findall(r"(\d+\.\d)s", term.text()))
    assert len(ticks) >= 5, ticks
    assert "Final translation" in term.text()


def test_ctrl_c_right_after_success_keeps_the_result(tmp_path) -> None:
    before = our_processes()
    out = tmp_path / "out"
    term = Terminal(*TRANSLATE_FOG, "--offline", "--output-dir", str(out), columns=80)
    term.wait_for(lambda text: "saved " in text, timeout=120)
    term.interrupt()  # the embedded cluster is being torn down now
    code = term.finish()
    text = term.text()
    saved = sorted(out.glob("*.json"))
    assert len(saved) == 1 and len(list(out.glob("*.md"))) == 1
    assert json.loads(saved[0].read_text())["revision"]["translation"]
    assert "Final translation" in text
    if code == 130:  # the interrupt landed during the teardown (it usually does)
        assert "the result above is kept" in text
    else:
        assert code == 0
    assert wait_gone(before) == set()
    # The job outlives the embedded run: the per-user store still has it.
    job = job_id(text)
    listed = run_cli("jobs")
    assert listed.returncode == 0 and re.search(rf"{job}\s+succeeded", listed.stdout)
    result = run_cli("result", job, "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["job_id"] == job


def test_ctrl_c_mid_job_cancels_and_says_so_on_its_own_line() -> None:
    before = our_processes()
    term = Terminal(*TRANSLATE_FOG, "--offline", columns=60, env={"VPSWEB_SIM_LATENCY_MS": "4000"})
    term.wait_for(lambda text: "#0 literal" in text and "Initial" in text, timeout=120)
    term.interrupt()
    assert term.finish() == 130
    message = next(line for line in term.lines() if "interrupted" in line)
    assert message.startswith("vpsweb: interrupted: job") and "cancelled" in message
    assert wait_gone(before) == set()
    status = run_cli("status", job_id(term.text()))
    assert status.returncode == 0 and "cancelled" in status.stdout
