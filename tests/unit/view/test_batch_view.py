"""One model of a batch for every display: counts, a bar that never moves back, the
running poems and each failure, once."""

from __future__ import annotations

from tests.helpers.batch_cli import event, progress, record
from vpsweb.view.batch_view import BatchView, duration


def test_the_bar_never_moves_back_whatever_order_reads_and_events_come_in() -> None:
    rec = record(10)
    view = BatchView.of(rec)
    assert (view.total, view.counts.queued, view.percent) == (10, 10, 0.0)
    for i in range(4):
        view.apply_event(event(rec, i, "job_started"))
        view.apply_event(event(rec, i, "job_succeeded"))
    assert view.finished == 4 and view.percent == 40.0  # the events, ahead of the read
    view.apply_progress(progress(rec, succeeded=2, running=3))  # a read made before them
    assert view.finished == 4 and view.percent == 40.0
    view.apply_progress(progress(rec, succeeded=6, running=2))
    assert view.finished == 6 and view.percent == 60.0


def test_running_rows_keep_their_order_stage_and_leave_when_they_end() -> None:
    rec = record(6)
    view = BatchView.of(rec)
    view.apply_event(event(rec, 1, "job_started"), now=100.0)
    view.apply_event(event(rec, 0, "job_started"), now=101.0)
    view.apply_progress(progress(rec, running=3))  # poem-2 found running by the read
    assert [r.name for r in view.running] == ["poem-1", "poem-0", "poem-2"]
    assert view.unread(2) == [rec.entries[1].job_id, rec.entries[0].job_id]
    view.set_stages({rec.entries[1].job_id: "Editor Review"})
    view.apply_progress(progress(rec, running=3))
    assert view.running[0].stage == "Editor Review" and view.running[0].since == 100.0
    view.apply_event(event(rec, 1, "job_succeeded"))
    view.apply_progress(progress(rec, running=3))  # read before its end was told
    assert [r.name for r in view.running] == ["poem-0", "poem-2"]


def test_each_failure_is_kept_once_with_its_cause_and_place() -> None:
    rec = record(3)
    view = BatchView.of(rec)
    row = view.apply_event(event(rec, 1, "job_failed", "Editor Review: HTTP 401\n  bad key"))
    assert row is not None and row.status == "failed"
    assert row.line() == "✗ poem-1 (poems/poem-1.txt) failed: Editor Review: HTTP 401 bad key"
    cancelled = view.apply_event(event(rec, 2, "job_cancelled"))
    assert cancelled is not None and cancelled.line().startswith("⊘ poem-2 (poems/poem-2.txt)")
    assert [f.name for f in view.failures] == ["poem-1"]
    assert view.apply_event(event(rec, 0, "job_started")) is None


def test_a_cause_shared_by_many_failures_is_said_in_full_once() -> None:
    rec = record(4)
    view = BatchView.of(rec)
    budget = "Initial Translation: batch budget reached: batch 0123456789ab spent 1 of its budget 1"
    lines = [view.apply_event(event(rec, i, "job_failed", budget)) for i in (2, 0, 3)]
    said = [row.line() for row in lines if row is not None]
    assert said[0].endswith(budget) and budget not in said[1] + said[2]
    assert said[1] == "✗ poem-0 (poems/poem-0.txt) failed: same cause as poem-2"


def test_the_one_line_says_counts_spend_elapsed_and_eta() -> None:
    rec = record(4)
    view = BatchView.of(rec)
    view.apply_progress(progress(rec, succeeded=1, failed=1, running=1, cost=0.0123), now=50.0)
    assert view.line(now=52.0) == (
        "2/4 (50.0%) finished: 1 succeeded, 1 failed, 0 cancelled, 1 running, 1 queued; "
        "cost 0.0123 CNY; elapsed 0:12, ETA 0:03"
    )
    assert "expired" not in view.counts_text()
    assert [duration(s) for s in (None, 7, 750, 3723)] == ["-", "0:07", "12:30", "1:02:03"]
