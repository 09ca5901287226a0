"""No job runs forever, an ended job stops spending, and a failed job says what it cost."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from tests.helpers.cluster import Cluster
from tests.helpers.config import tight
from vpsweb.errors import JobCancelled, JobFailed

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def _tight_but_queued_in_time(d: dict[str, Any]) -> None:
    """Tight step budgets, with room for a loaded machine (a suite on 4 xdist workers)
    to start the candidates: the stall under test is the evaluation's, not theirs."""
    tight(d)
    d["queue_allowance_s"] = 8
    for mode in d["modes"].values():  # a candidate's 1 s timeout can trip on a loaded machine
        mode["steps"]["initial_translation"].update(timeout_s=4)


def test_the_sweeper_fails_a_job_whose_next_stage_never_starts(tmp_path: Path) -> None:
    c = Cluster(tmp=tmp_path, latency_ms=100, edit=_tight_but_queued_in_time)
    try:
        # Nobody consumes the evaluation queue: the chord fires into a queue no worker reads.
        c.add_worker(queues=[c.config.routing()["initial_translation"]])
        client = c.client()
        job = c.submit(client, parallel_count=2)
        started = time.monotonic()
        with pytest.raises(JobFailed) as info:
            job.result(timeout=60)
        took = time.monotonic() - started
        deadline = client.storage.jobs.deadline(job.id)
        finished = job.record().finished_at
    finally:
        c.close()
    print(f"\nstalled job failed after {took:.1f}s")
    assert info.value.stage == "Translation Evaluation", info.value.cause
    assert info.value.cause.startswith("stalled: no progress in Translation Evaluation")
    assert deadline is not None and finished is not None
    assert finished.timestamp() >= deadline  # not before its deadline ...
    assert took < 45  # ... and not long after it (deadline ~ 8 s + the steps' budgets)


def test_a_follower_ends_a_job_nobody_works_on(tmp_path: Path) -> None:
    c = Cluster(tmp=tmp_path, edit=tight)  # no worker at all
    try:
        client = c.client()
        job = c.submit(client, parallel_count=1)
        events = []
        with pytest.raises(JobFailed) as info:
            for event in job.events(timeout=60):
                events.append(event)
            job.result(timeout=5)
    finally:
        c.close()
    assert info.value.stage == "Queued"
    assert "stalled" in info.value.cause
    assert events[-1].terminal and events[-1].status == "failed"


def test_cancel_abandons_calls_in_flight_and_spends_nothing_more(tmp_path: Path) -> None:
    c = Cluster(tmp=tmp_path, latency_ms=30_000)
    try:
        c.add_worker()
        client = c.client()
        job = c.submit(client, parallel_count=3)
        c.wait_for(lambda: c.sim_stats()["in_flight"] == 3, 30, "three candidate calls in flight")
        before = c.sim_stats()
        assert job.cancel()
        abandoned = c.wait_for(
            lambda: c.sim_stats()["cancelled"] - before["cancelled"] == 3, 10, "calls abandoned"
        )
        time.sleep(2)  # nothing new is sent afterwards
        after = c.sim_stats()
        with pytest.raises(JobCancelled):
            job.result(timeout=5)
    finally:
        c.close()
    print(f"\ncancel: 3 calls in flight abandoned within {abandoned:.1f}s")
    assert after["total_requests"] == before["total_requests"]
    assert after["in_flight"] == 0


def test_a_failed_job_reports_what_it_spent(tmp_path: Path) -> None:
    def edit(d: dict[str, Any]) -> None:
        d["modes"]["hybrid"]["steps"]["translator_revision"]["model"] = "sim-malformed"

    c = Cluster(tmp=tmp_path, edit=edit)
    try:
        c.add_worker()
        job = c.submit(c.client(), parallel_count=2)
        with pytest.raises(JobFailed) as info:
            job.result(timeout=60)
        calls = c.sim_stats()["total_requests"]
    finally:
        c.close()
    spent = info.value.spent
    assert info.value.stage == "Translator Revision"
    # Two candidates, the judge in two orders, the editor, and both billed (unparseable)
    # revisions.
    assert spent is not None and spent.llm_calls == calls == 2 + 2 + 1 + 2
    assert spent.total_tokens > 0 and spent.cost
