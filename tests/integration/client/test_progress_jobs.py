"""Progress of real jobs: milestones, monotonic percent, replay, terminal events."""

from __future__ import annotations

import threading
import time

import pytest

from tests.helpers.config import make_config_dir, use_models
from tests.helpers.jobs import submit
from vpsweb.client import Client
from vpsweb.config import load_config
from vpsweb.domain.progress import milestones
from vpsweb.errors import JobCancelled, JobFailed
from vpsweb.stages.table import STAGES as TABLE

pytestmark = pytest.mark.integration

STAGES = [s.display_name for s in TABLE]


@pytest.fixture()
def client(redis_server, workers, tmp_path):
    # wait_all: this story has every candidate succeed (at the test simulator's 60 ms,
    # the default quorum's grace is ~20 ms, and a straggler may be late).
    edit = lambda d: d.update(straggler="wait_all")  # noqa: E731
    with Client(
        redis_url=redis_server.url,
        config=load_config(make_config_dir(tmp_path, pipeline_edit=edit)),
    ) as c:
        yield c


@pytest.mark.parametrize("n", [1, 2, 3, 5, 8])
def test_job_progress_story(client, n):
    job = submit(client, parallel_count=n)
    events = list(job.events(timeout=60))

    kinds = [e.event for e in events]
    assert kinds.count("milestone") == len(milestones(n))
    done = [int(e.parallel_progress.split("/")[0]) for e in events if e.event == "milestone"]
    assert done == milestones(n)
    percents = [e.progress_percent for e in events]
    assert percents == sorted(percents)
    assert percents[-1] == 100.0
    assert [e.terminal for e in events].count(True) == 1 and events[-1].terminal
    assert events[-1].status == "succeeded"
    # No chatter: two events per stage, one per candidate, the milestones, queued and
    # terminal.
    assert len(events) <= 2 * len(STAGES) + n + len(milestones(n)) + 2
    ends = [e for e in events if e.event == "candidate_finished"]
    assert sorted(e.index for e in ends) == list(range(n))
    assert all(e.status == "succeeded" and e.variant and e.model for e in ends)
    assert all(e.duration_s is not None and e.duration_s >= 0 for e in ends)
    for stage in STAGES:
        started = [e for e in events if e.stage == stage and e.event == "stage_started"]
        completed = [e for e in events if e.stage == stage and e.event == "stage_completed"]
        assert len(started) == 1 and len(completed) == 1, stage
        assert started[0].model
    # Nothing is appended after the terminal event.
    time.sleep(0.3)
    assert len(list(job.events(timeout=5))) == len(events)
    snap = job.progress()
    assert snap.terminal and snap.progress_percent == 100.0


def test_late_and_mid_job_subscribers(redis_server, workers, tmp_path):
    cfg = load_config(
        make_config_dir(
            tmp_path, pipeline_edit=lambda d: use_models(d, initial_translation="sim-slow")
        )
    )
    with Client(redis_url=redis_server.url, config=cfg) as c:
        job = submit(c, parallel_count=3)
        seen_live: list = []
        attach_at: list[float] = []

        def follow() -> None:
            for e in job.events(timeout=60):
                if e.event == "milestone":
                    break
            attach_at.append(time.time())
            seen_live.extend(c.get(job.id).events(timeout=60))

        t = threading.Thread(target=follow)
        t.start()
        t.join(90)
        full = list(job.events(timeout=5))  # attaches after the end: replays and stops
    assert full[-1].terminal and full[-1].status == "succeeded"
    assert [e.id for e in seen_live] == [e.id for e in full]
    # The mid-job subscriber received later events live, after it attached.
    assert any(e.ts > attach_at[0] for e in seen_live)


def test_failed_job_stream_ends_with_failed_event(redis_server, workers, tmp_path):
    cfg = load_config(
        make_config_dir(
            tmp_path, pipeline_edit=lambda d: use_models(d, translator_revision="sim-fail401")
        )
    )
    with Client(redis_url=redis_server.url, config=cfg) as c:
        job = submit(c, parallel_count=2)
        events = list(job.events(timeout=60))
        with pytest.raises(JobFailed):
            job.result(timeout=5)
    assert events[-1].terminal and events[-1].status == "failed"
    assert "Translator Revision" in events[-1].stage and "401" in events[-1].error
    assert sum(e.terminal for e in events) == 1


def test_cancelled_job_stream_ends_with_cancelled_event(redis_server, workers, tmp_path):
    cfg = load_config(
        make_config_dir(
            tmp_path, pipeline_edit=lambda d: use_models(d, initial_translation="sim-slow")
        )
    )
    with Client(redis_url=redis_server.url, config=cfg) as c:
        job = submit(c, parallel_count=3)
        time.sleep(0.5)
        job.cancel()
        events = list(job.events(timeout=30))
        with pytest.raises(JobCancelled):
            job.result(timeout=5)
    assert events[-1].terminal and events[-1].status == "cancelled"
    assert sum(e.terminal for e in events) == 1
