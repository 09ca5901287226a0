"""200 simultaneous SSE clients on one job, one web process (bounded load test).

Every client must receive the same whole event sequence, ending with the job's
end. Memory and event latency are printed for the notes and docs, not asserted.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import time
from pathlib import Path

import aiohttp
import pytest

from tests.helpers.cluster import Cluster
from tests.helpers.web import Web

pytestmark = [pytest.mark.integration, pytest.mark.slow]
CLIENTS = 200


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


async def _follow(session: aiohttp.ClientSession, url: str) -> list[tuple[dict, float]]:
    got: list[tuple[dict, float]] = [({"connected": True}, time.time())]
    async with session.get(url, timeout=aiohttp.ClientTimeout(total=240)) as response:
        async for raw in response.content:
            line = raw.decode().rstrip("\n")
            if line.startswith("data: "):
                got.append((json.loads(line[6:]), time.time()))
    return got


async def _crowd(url: str) -> list[list[tuple[dict, float]]]:
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector) as session:
        return await asyncio.gather(*(_follow(session, url) for _ in range(CLIENTS)))


def test_two_hundred_pages_follow_one_job(tmp_path: Path) -> None:
    c = Cluster(tmp=tmp_path, latency_ms=400)
    web = None
    try:
        c.add_worker()
        web = Web(c, tmp_path)
        idle = _rss_mb(web.proc.pid)
        job = c.submit(c.client(), parallel_count=3)
        results = asyncio.run(_crowd(f"{web.url}/jobs/{job.id}/events"))
        peak = _rss_mb(web.proc.pid)
        out = job.result(timeout=60)
    finally:
        if web is not None:
            web.close()
        c.close()
    connected = max(r.pop(0)[1] for r in results)  # every page is listening after this
    sequences = {tuple(e["id"] for e, _ in r) for r in results}
    assert len(sequences) == 1, "every page saw the same events"
    assert all(r[-1][0]["event"] == "job_finished" for r in results)
    assert out.job_id == job.id
    # Latency of live events (emitted once every page listened): received minus emitted.
    live = [got - float(e["ts"]) for r in results for e, got in r if float(e["ts"]) > connected]
    p50, p95 = statistics.median(live), sorted(live)[int(0.95 * (len(live) - 1))]
    print(
        f"\n{CLIENTS} SSE clients: web RSS {idle:.1f} MB idle, {peak:.1f} MB with them; "
        f"event latency p50 {p50 * 1000:.1f} ms, p95 {p95 * 1000:.1f} ms "
        f"({len(results[0])} events each)"
    )
