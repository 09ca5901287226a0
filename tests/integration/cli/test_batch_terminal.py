"""The batch's live display as a user sees it: a pseudo-terminal and a terminal emulator,
on a real cluster where one poem fails (its mode's editor model answers 401)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tests.helpers.batch_cli import percentages, short_poem
from tests.helpers.cluster import Cluster
from tests.helpers.config import use_models
from tests.helpers.terminal import Terminal
from vpsweb import settings

pytestmark = pytest.mark.integration

SPINNER = set("⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏")  # rich's "dots"
BAR = "━"
POEMS = 16


@pytest.fixture()
def cluster(tmp_path: Path):
    c = Cluster(
        tmp=tmp_path,
        latency_ms=300,
        concurrency=8,
        edit=lambda d: use_models(d, mode="reasoning", editor_review="sim-fail401"),
    )
    c.add_worker()
    yield c
    c.close()


def test_one_live_display_a_bar_that_never_moves_back_and_each_failure_once(
    tmp_path: Path, cluster: Cluster
) -> None:
    manifest = tmp_path / "poems.jsonl"
    entries = [
        {"text": short_poem(i, tmp_path.name), "name": f"poem-{i:02d}"} for i in range(POEMS)
    ]
    entries[5] |= {"mode": "reasoning", "name": "doomed"}  # fails in Editor Review
    manifest.write_text("\n".join(json.dumps(e) for e in entries) + "\n", encoding="utf-8")
    env = {
        settings.REDIS_URL_ENV: cluster.redis.url,
        settings.CONFIG_DIR_ENV: str(cluster.config_dir),
    }
    term = Terminal(
        *("batch", str(manifest), "--source-lang", "en", "--target-lang", "zh-CN"),
        *("--offline", "--parallel-count", "1", "--output-dir", str(tmp_path / "out")),
        columns=80,
        env=env,
    )
    code = term.finish(timeout=120)
    lines, text = term.lines(), term.text()
    assert code == 1, text  # not every poem succeeded
    # Redrawn in place: one bar at the end, however many redraws, none wider than 80.
    assert sum(BAR in line for line in lines) == 1, "\n".join(lines)
    assert all(len(line) <= 80 for line in lines)
    shown = percentages(text)
    assert len(set(shown)) >= 3 and shown == sorted(shown) and shown[-1] == 100.0, shown
    # The running poems with their stage, a spinner while they ran.
    assert SPINNER & set(text)
    plain = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", text)
    assert re.search(
        r"poem-\d\d\s+(Initial Translation|Translation Evaluation|Editor Review)", plain
    )
    # The failure, with its cause, once (above the live area; the summary counts it).
    screen = " ".join(lines)  # a long cause wraps
    assert screen.count("✗ doomed") == 1 and screen.count("HTTP 401") == 1
    flat = re.sub(r"\s+", "", screen)  # folded at 80 columns, wherever the path ends
    assert re.search(r"✗doomed\([^)]*poems\.jsonlline6\)failed:EditorReview", flat), screen
    assert any(f"{POEMS - 1} succeeded, 1 failed (each named above)" in line for line in lines)
    assert any("not every poem succeeded" in line for line in lines)
