"""AsyncClient / AsyncJob: the same jobs as the sync client, on one event loop."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from tests.helpers.cluster import POEM, Cluster
from vpsweb.async_client import AsyncClient
from vpsweb.errors import JobCancelled, JobNotFound, RequestInvalid
from vpsweb.progress import EventKind
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
