"""The candidate counter under contention: real Redis, many threads and processes."""

from __future__ import annotations

import multiprocessing as mp
import random
import threading

import pytest
import redis

from vpsweb.config import load_config
from vpsweb.domain.plan import build_plan
from vpsweb.domain.progress import EventKind, milestones
from vpsweb.local.processes import RedisServer
from vpsweb.storage import Event, JobStatus, connect
from vpsweb.storage.base import CandidateEnd
from vpsweb.storage.redis import RedisProgressLog, keys

pytestmark = pytest.mark.integration

N = 50
TTL = 600


def _count(url: str, job: str, indexes: list[int], failed: set[int]) -> None:
    log = RedisProgressLog(redis.Redis.from_url(url, decode_responses=True))
    for i in indexes:
        ok = i not in failed
        end = CandidateEnd(i, ok=ok, n=N, end_percent=25.0, stage="Initial Translation")
        log.candidate_finished(job, end, TTL)


def test_milestones_once_each_in_order_under_contention(redis_server):
    url, job = redis_server.url, "contention"
    r = redis.Redis.from_url(url, decode_responses=True)
    failed = {3, 17, 29}
    order = list(range(N)) + random.Random(1).sample(range(N), 20)  # 20 counted twice
    random.Random(2).shuffle(order)
    chunks = [order[i::8] for i in range(8)]
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=_count, args=(url, job, c, failed)) for c in chunks[:4]]
    threads = [threading.Thread(target=_count, args=(url, job, c, failed)) for c in chunks[4:]]
    for w in [*procs, *threads]:
        w.start()
    for t in threads:
        t.join(30)
    for p in procs:
        p.join(60)
        assert p.exitcode == 0

    stream = [fields for _id, fields in r.xrange(keys.events(job))]
    # One event per candidate, counted once however often it was delivered.
    own = [e for e in stream if e["event"] == "candidate_finished"]
    assert sorted(int(e["index"]) for e in own) == list(range(N))
    assert {int(e["index"]) for e in own if e["status"] == "failed"} == failed
    events = [e for e in stream if e["event"] != "candidate_finished"]
    assert [e["event"] for e in events] == ["milestone"] * len(milestones(N))
    done = [int(e["parallel_progress"].split("/")[0]) for e in events]
    assert done == milestones(N) == [17, 34, 50]
    percents = [float(e["progress_percent"]) for e in events]
    assert percents == sorted(percents) and percents[-1] == 25.0
    assert events[-1]["successful"] == str(N - len(failed))
    assert events[-1]["failed"] == str(len(failed))
    snap = RedisProgressLog(r).snapshot(job)
    assert snap.successful + snap.failed == N
    # Every event, a candidate's own too, carries the percentage after it: in stream
    # order it never goes back, and the candidate that reached a milestone says so.
    every = [float(e["progress_percent"]) for e in stream]
    assert every == sorted(every) and every[-1] == 25.0
    for k, milestone in zip(milestones(N), events, strict=True):
        reached = next(e for e in own if e["parallel_progress"].startswith(f"{k}/"))
        assert reached["progress_percent"] == milestone["progress_percent"]


def test_a_candidates_event_carries_the_percentage_after_it(redis_server):
    """Issue 21 point 12: the README's loop printed "0.0 ... 1/3 completed", then 8.33."""
    r = redis.Redis.from_url(redis_server.url, decode_responses=True)
    log, job = RedisProgressLog(r), "after-it"
    for i in range(3):
        end = CandidateEnd(i, ok=True, n=3, end_percent=25.0, stage="Initial Translation")
        log.candidate_finished(job, end, TTL)
    stream = [fields for _id, fields in r.xrange(keys.events(job))]
    seen = [(e["event"], e["parallel_progress"], e["progress_percent"]) for e in stream]
    assert seen == [
        ("candidate_finished", "1/3 completed", "8.33"),
        ("milestone", "1/3 completed", "8.33"),
        ("candidate_finished", "2/3 completed", "16.67"),
        ("milestone", "2/3 completed", "16.67"),
        ("candidate_finished", "3/3 completed", "25"),
        ("milestone", "3/3 completed", "25"),
    ]


@pytest.mark.parametrize(
    ("n", "expected"), [(1, [1]), (2, [1, 2]), (3, [1, 2, 3]), (5, [2, 4, 5]), (8, [3, 6, 8])]
)
def test_milestone_counts(n, expected):
    assert milestones(n) == expected


@pytest.fixture()
def own_redis():
    """A Redis of this test's own: on the session's, the workers that other tests
    started dispatch the job it creates, and their start event joins its stream."""
    server = RedisServer().start()
    yield server
    server.stop()


def test_percent_never_goes_back_and_nothing_after_terminal(own_redis):
    storage = connect(own_redis.url)
    plan = build_plan(
        {"poem": "a\nb", "source_lang": "en", "target_lang": "zh-CN"},
        load_config(),
        job_id="0123456789ab",
        offline=True,
    )
    storage.jobs.create([plan])
    job, log = plan.job_id, storage.progress
    for p in (10, 50, 30, 70, 20):
        assert log.emit(job, Event(EventKind.STAGE_STARTED, p, {}), TTL)
    finished = Event(EventKind.JOB_FINISHED, 100, {"status": "succeeded"})
    assert storage.jobs.end(job, JobStatus.SUCCEEDED, TTL, events=[finished])
    assert not storage.jobs.end(job, JobStatus.FAILED, TTL, events=[finished])
    assert not log.emit(job, Event(EventKind.STAGE_STARTED, 99, {}), TTL)
    events = list(log.events(job, timeout=5))
    assert [e.progress_percent for e in events] == [0, 10, 50, 50, 70, 70, 100]
    assert events[-1].terminal and log.snapshot(job).terminal
    assert storage.jobs.status(job) is JobStatus.SUCCEEDED
