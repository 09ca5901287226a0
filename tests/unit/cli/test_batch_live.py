"""What `vpsweb batch` shows while a batch runs: live on a terminal, plain lines in a
pipe, JSON lines for machines; followed from a scripted batch (no store)."""

from __future__ import annotations

import io
import json

from rich.console import Console

from tests.helpers.batch_cli import ScriptedBatch, event, percentages, progress, record
from vpsweb.cli import batch_live
from vpsweb.cli.batch_live import JsonDisplay, LiveDisplay, PlainDisplay, follow_batch
from vpsweb.view.batch_view import BatchView

CAUSE = "Editor Review: HTTP 401 from simulator/sim-fail401: bad key"


def script() -> ScriptedBatch:
    """Six poems: two start, one succeeds, one fails, then the rest succeed."""
    rec = record(6)
    return ScriptedBatch(
        rec,
        [
            (
                progress(rec, running=2),
                [event(rec, 0, "job_started"), event(rec, 1, "job_started")],
            ),
            (progress(rec, succeeded=1, running=2), [event(rec, 0, "job_succeeded")]),
            (progress(rec, succeeded=1, failed=1, running=2), [event(rec, 1, "job_failed", CAUSE)]),
            (
                progress(rec, succeeded=6),
                [
                    e
                    for i in range(2, 6)
                    for e in (event(rec, i, "job_started"), event(rec, i, "job_succeeded"))
                ],
            ),
        ],
    )


def test_plain_lines_one_per_poem_that_ended_and_no_redraws(monkeypatch) -> None:
    monkeypatch.setattr(batch_live, "PLAIN_EVERY_S", 0.1)
    batch, out = script(), io.StringIO()
    view = BatchView.of(batch.rec)
    follow_batch(batch, PlainDisplay(view, out), lambda job_id: "")
    lines = out.getvalue().splitlines()
    ends = [line for line in lines if not line.startswith("progress: ")]
    assert ends[:2] == [
        "[1/6] ✓ poem-0 succeeded",
        f"[2/6] ✗ poem-1 (poems/poem-1.txt) failed: {CAUSE}",
    ]
    assert len(ends) == 6 and ends[-1] == "[6/6] ✓ poem-5 succeeded"
    assert "\x1b[" not in out.getvalue()
    assert view.percent == 100.0 and [f.name for f in view.failures] == ["poem-1"]


def test_json_lines_each_event_and_progress(monkeypatch) -> None:
    monkeypatch.setattr(batch_live, "PLAIN_EVERY_S", 0.1)
    batch, out = script(), io.StringIO()
    follow_batch(batch, JsonDisplay(BatchView.of(batch.rec), out), lambda job_id: "")
    objs = [json.loads(line) for line in out.getvalue().splitlines()]
    kinds = [o["event"] for o in objs]
    assert kinds.count("job_started") == 6 and kinds.count("job_succeeded") == 5
    failed = next(o for o in objs if o["event"] == "job_failed")
    assert failed["name"] == "poem-1" and failed["cause"] == CAUSE
    assert "progress" in kinds
    said = next(o for o in objs if o["event"] == "progress")
    assert set(said) >= {"batch_id", "counts", "percent", "cost", "eta_s", "elapsed_s"}


def test_the_live_display_prints_a_failure_once_and_its_bar_never_moves_back() -> None:
    batch, out = script(), io.StringIO()
    console = Console(file=out, force_terminal=True, width=70, height=30)
    stages: list[str] = []

    def stage_of(job_id: str) -> str:
        stages.append(job_id)
        return "Initial Translation"

    follow_batch(batch, LiveDisplay(BatchView.of(batch.rec), console), stage_of)
    text = out.getvalue()
    shown = percentages(text)
    assert shown and shown == sorted(shown) and shown[-1] == 100.0
    assert text.count("✗ poem-1 (poems/poem-1.txt) failed") == 1
    assert "batch 0123456789ab" in text and "6 succeeded" in text
    assert len(set(stages)) <= batch_live.SHOWN * 2  # a few jobs' stages, not every job's
