"""AsyncClient / AsyncJob: the same jobs as the sync client, on one event loop."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from tests.helpers.cluster import POEM, Cluster
from vpsweb.client.aio import AsyncClient
from vpsweb.domain.progress import EventKind
from vpsweb.errors import JobCancelled, JobFailed, JobNotFound, RequestInvalid
from vpsweb.storage import JobStatus

pytestmark = pytest.mark.integration


def test_submit_follow_result_and_cancel(tmp_path: Path) -> None:
    c = Cluster(tmp=tmp_path, latency_ms=300)
    try:
        c.add_worker()

        async def scenario() -> None:
            async with AsyncClient(redis_url=c.redis.url, config=c.config) as client:
                args = {"poem": POEM, "source_lang": "en", "target_lang": "zh-CN", "offline": True}
                jobs = [await client.submit(**args, parallel_count=n) for n in (1, 2, 3)]
                # Three followers at once on one loop, no threads.
                streams = await asyncio.gather(*(_collect(j) for j in jobs))
                for job, events in zip(jobs, streams, strict=True):
                    assert events[0].event is EventKind.JOB_QUEUED
                    assert events[-1].terminal and events[-1].status == "succeeded"
                    percents = [e.progress_percent for e in events]
                    assert percents == sorted(percents)
                    out = await job.result(timeout=30)
                    assert out.job_id == job.id and await job.status() is JobStatus.SUCCEEDED
                # The sync client sees the same job.
                assert c.client().get(jobs[0].id).result(timeout=5).job_id == jobs[0].id
                slow = await client.submit(**args, parallel_count=2)
                assert await slow.cancel() is True
                with pytest.raises(JobCancelled):
                    await slow.result(timeout=30)
                with pytest.raises(RequestInvalid):
                    await client.submit(**{**args, "source_lang": "fr"})
                with pytest.raises(JobNotFound):
                    await client.get("0123456789ab")
                assert {r.job_id for r in await client.recent(10)} >= {j.id for j in jobs}

        asyncio.run(scenario())
    finally:
        c.close()


async def _collect(job):
    return [e async for e in job.events(timeout=60)]


def test_the_async_follower_warns_and_fails_a_stalled_job(tmp_path: Path) -> None:
    """As the sync follower: no worker is said within seconds (naming the queues), a
    job past its deadline with nobody to end it is failed as stalled, and a worker's
    job hears no warning (tests/browser/test_web_no_worker.py: one withdrawn)."""
    from tests.helpers.config import tight

    c = Cluster(tmp=tmp_path, edit=tight)  # no worker at all
    try:

        async def scenario() -> None:
            async with AsyncClient(redis_url=c.redis.url, config=c.config) as client:
                job = await client.submit(poem=POEM, source_lang="en", target_lang="zh-CN")
                started, seen = asyncio.get_running_loop().time(), []
                with pytest.raises(JobFailed) as info:
                    async for event in job.events(timeout=60):
                        if event.event is EventKind.WARNING:
                            seen.append((asyncio.get_running_loop().time() - started, event))
                    await job.result(timeout=5)
                assert info.value.stage == "Queued" and "stalled" in info.value.cause
                assert seen and seen[0][0] < 5, seen
                assert "no worker is running against this Redis" in seen[0][1].message
                assert "vpsweb.candidates" in seen[0][1].message
                # The store says so too, for every other follower.
                assert (await job.status()) is JobStatus.FAILED

                c.add_worker()
                other = await client.submit(poem=POEM, source_lang="en", target_lang="zh-CN")
                assert await client.missing_workers() == []
                events = [e async for e in other.events(timeout=60)]
                assert not [e for e in events if e.event is EventKind.WARNING]

        asyncio.run(scenario())
    finally:
        c.close()
