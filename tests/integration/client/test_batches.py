"""Batches on a real cluster (redis-server, a celery worker, the simulator over HTTP):
a batch of twenty followed to the end with its progress in one round trip; the same
batch again reuses the finished jobs and the simulator gets no call; an idempotent
retry makes one job, racing or not; cancel stops the unfinished jobs (no further LLM
call) and resume pays only for them; a budget stops the batch, finished poems kept.
The rules on the memory store: tests/unit/client/test_batches.py."""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.helpers.cluster import Cluster
from tests.helpers.config import edit_yaml, make_config_dir, use_models
from tests.helpers.poems import FOG_OPENING
from tests.helpers.round_trips import round_trips
from vpsweb.client.aio import AsyncClient
from vpsweb.client.sync import Client
from vpsweb.config import AppConfig, load_config

pytestmark = pytest.mark.integration
CONCURRENCY = 4


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    c = Cluster(tmp=tmp_path_factory.mktemp("batches"), latency_ms=20, concurrency=CONCURRENCY)
    try:
        c.add_worker()
        yield c
    finally:
        c.close()


def _requests(n: int, title: str, **kw: Any) -> list[dict[str, Any]]:
    base = {"poem": FOG_OPENING, "source_lang": "en", "target_lang": "zh-CN", "parallel_count": 1}
    return [base | {"title": f"{title} {i}", "author": "Carl Sandburg"} | kw for i in range(n)]


def _calls(cluster: Cluster) -> int:
    """The simulator's request count once it is quiet (no call in flight)."""
    last = cluster.sim_stats()["total_requests"]
    while True:
        time.sleep(0.5)
        now = cluster.sim_stats()["total_requests"]
        if now == last:
            return int(now)
        last = now


def _config(tmp: Path, *, price_factor: float = 1.0, **models: str) -> AppConfig:
    """A client's config: the cluster's models, some steps on other models, prices scaled
    (the estimate, the budget's up-front check, is the client's; what a step costs is
    the workers' own config's)."""
    directory = make_config_dir(tmp, pipeline_edit=lambda d: use_models(d, **models))

    def scale(data: dict[str, Any]) -> None:
        for entry in data["models"].values():
            price = entry["price"]
            price["input_per_1k"] *= price_factor
            price["output_per_1k"] *= price_factor

    edit_yaml(directory / "models.yaml", scale)
    return load_config(directory)


def test_a_batch_of_twenty_completes_with_its_progress_in_one_round_trip(
    cluster: Cluster, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = cluster.client()
    with round_trips(monkeypatch) as sent:
        batch = client.submit_batch(_requests(20, "Twenty"), name="twenty", offline=True)
    # WATCH, MGET of the addresses, MULTI..EXEC: not one per poem.
    assert len(sent) <= 4
    events, percents = [], []
    for event in batch.events(timeout=240):
        events.append(event)
        with round_trips(monkeypatch) as sent:
            progress = batch.progress()
        assert len(sent) == 1, "progress() is one pipeline whatever the batch's size"
        percents.append(progress.percent)
    assert percents == sorted(percents) and percents[-1] == 100.0
    names = sorted(m.name for m in batch.record.entries)
    assert sorted(e.name for e in events if e.kind == "job_started") == names
    assert sorted(e.name for e in events if e.terminal) == names
    assert {e.kind for e in events if e.terminal} == {"job_succeeded"}
    final = batch.progress()
    counts = final.counts
    assert (counts.succeeded, counts.total, counts.finished) == (20, 20, 20)
    assert final.running == [] and final.eta_s == 0.0 and final.done
    results = list(batch.results(timeout=30))
    assert sorted(r.member.name for r in results) == names
    totals = [r.output.totals for r in results if r.output is not None]
    assert len(totals) == 20
    # The batch's counters are its jobs' totals, added up as each step was stored.
    assert final.calls == sum(t.llm_calls for t in totals)
    assert final.tokens == sum(t.total_tokens for t in totals)
    assert final.cost == pytest.approx(sum(sum(t.cost.values()) for t in totals))
    assert final.currency == "CNY" and final.costs == pytest.approx({"CNY": final.cost})
    # Reattached from its id in another client, listed among the batches.
    other = cluster.client()
    assert other.batch(batch.id).record == batch.record
    assert batch.id in [r.batch_id for r in other.batches()]
    assert [j.status().value for j in other.batch(batch.id).jobs] == ["succeeded"] * 20


def test_the_same_batch_again_reuses_the_finished_jobs_and_pays_nothing(
    cluster: Cluster, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = cluster.client()
    requests = _requests(6, "Again")
    first = client.submit_batch(requests, offline=True)
    list(first.events(timeout=120))
    before = _calls(cluster)
    with round_trips(monkeypatch) as sent:
        again = client.submit_batch(requests, offline=True)
    # WATCH, MGET, one pipeline of the jobs found, MULTI..EXEC.
    assert len(sent) <= 4
    assert again.id != first.id and again.record.job_ids == first.record.job_ids
    assert all(m.reused for m in again.record.entries)
    results = list(again.results(timeout=10))
    assert [r.status for r in results] == ["succeeded"] * 6
    assert all(r.output is not None for r in results)
    progress = again.progress()
    assert progress.reused == 6 and progress.cost == 0 and progress.percent == 100.0
    time.sleep(1.0)
    assert _calls(cluster) == before
    # force: translated again, paid again.
    forced = client.submit_batch(requests[:1], force=True, offline=True)
    assert not forced.record.entries[0].reused
    list(forced.events(timeout=60))
    assert _calls(cluster) > before


def test_an_idempotent_retry_makes_one_job_even_when_racing(cluster: Cluster) -> None:
    key = f"retry-{uuid.uuid4().hex}"
    clients = [cluster.client() for _ in range(6)]
    known = set(clients[0].storage.jobs.recent_jobs(10_000))
    start, ids = threading.Barrier(len(clients)), []

    def submit(client: Client) -> None:
        start.wait()
        ids.append(cluster.submit(client, parallel_count=1, idempotency_key=key).id)

    threads = [threading.Thread(target=submit, args=(c,)) for c in clients]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(ids) == 6 and len(set(ids)) == 1
    assert set(clients[0].storage.jobs.recent_jobs(10_000)) - known == {ids[0]}
    job = clients[0].get(ids[0])
    job.result(timeout=60)
    # Retried after it finished (a timeout that was not one): still that job.
    assert cluster.submit(clients[1], parallel_count=1, idempotency_key=key).id == job.id

    async def racing() -> set[str]:
        async with AsyncClient(redis_url=cluster.redis.url, config=cluster.config) as aio:
            args = {
                "poem": FOG_OPENING,
                "source_lang": "en",
                "target_lang": "zh-CN",
                "parallel_count": 1,
                "idempotency_key": key + "-async",
                "offline": True,
            }
            jobs = await asyncio.gather(*(aio.submit(**args) for _ in range(5)))
            return {j.id for j in jobs}

    assert len(asyncio.run(racing())) == 1


def test_cancel_stops_the_unfinished_jobs_and_resume_pays_only_for_them(
    cluster: Cluster, tmp_path: Path
) -> None:
    # Two 1.5 s steps per job: jobs are still running when the first ones finish.
    cfg = _config(tmp_path, initial_translation="sim-slow", editor_review="sim-slow")
    client = Client(redis_url=cluster.redis.url, config=cfg)
    try:
        batch = client.submit_batch(_requests(12, "Cancel"), offline=True)
        cluster.wait_for(lambda: batch.progress().counts.succeeded >= 1, 120, "a first poem")
        at_cancel = cluster.sim_stats()["total_requests"]
        cancelled = batch.cancel()
        assert cancelled >= 1
        list(batch.events(timeout=30))  # every job has ended
        after = _calls(cluster)
        # Only the calls already sent (a step's judges may be two at once) were paid for.
        assert after - at_cancel <= 2 * CONCURRENCY
        time.sleep(2.0)
        assert _calls(cluster) == after, "a cancelled batch made another LLM call"
        counts = batch.progress().counts
        assert counts.cancelled == cancelled and counts.succeeded + cancelled == 12
        jobs = zip(batch.record.entries, batch.jobs, strict=True)
        kept = {m.name: m.job_id for m, j in jobs if j.status().value == "succeeded"}
        done = client.get(next(iter(kept.values()))).result(timeout=10)
        per_job = done.totals.llm_calls

        assert batch.resume() is batch and batch.record.version == 2
        for member in batch.record.entries:
            if member.name in kept:
                assert member.job_id == kept[member.name] and member.previous == []
            else:
                assert len(member.previous) == 1 and member.job_id != member.previous[0]
        results = list(batch.results(timeout=180))
        assert [r.status for r in results] == ["succeeded"] * 12
        assert _calls(cluster) - after == cancelled * per_job
    finally:
        client.close()


def test_a_budget_stops_the_batch_and_keeps_the_finished_poems(
    cluster: Cluster, tmp_path: Path
) -> None:
    probe = cluster.submit(cluster.client(), parallel_count=1, title="Budget probe")
    one = sum(probe.result(timeout=60).totals.cost.values())
    # The client's prices are a thousandth of the workers': the estimate (the up-front
    # check) lets the batch in, and the spend (the workers' prices) stops it.
    cheap = _config(tmp_path, price_factor=0.001)
    client = Client(redis_url=cluster.redis.url, config=cheap)
    try:
        # Two thirds of the batch's cost: the stages' queues are served in turn, so some
        # poems finish while others are still in earlier stages (4 or 5 of 12 here).
        budget = 8 * one
        batch = client.submit_batch(_requests(12, "Budget"), budget=budget, offline=True)
        events = list(batch.events(timeout=180))
        quiet = _calls(cluster)
        failed = [e for e in events if e.kind == "job_failed"]
        assert failed, "the budget stopped nothing"
        assert all("batch budget reached" in (e.cause or "") for e in failed)
        assert all(batch.id in (e.cause or "") for e in failed)
        progress = batch.progress()
        assert progress.cost >= budget
        # Stopped: past the budget by the steps running when it was reached (0.05 of a
        # job's cost to 0.8 measured), not twelve jobs' worth.
        assert progress.cost <= budget + CONCURRENCY * one and progress.cost < 12 * one
        results = list(batch.results(timeout=10))
        kept = [r for r in results if r.status == "succeeded"]
        assert kept and all(r.output is not None for r in kept), "no finished poem kept"
        assert len(kept) + len(failed) == 12
        time.sleep(1.0)
        assert _calls(cluster) == quiet
        # Up front: a budget below the estimate is refused, and nothing is written.
        known = set(client.storage.jobs.recent_jobs(10_000))
        dear = Client(redis_url=cluster.redis.url, config=cluster.config)
        with pytest.raises(Exception, match="below this batch's estimated cost"):
            dear.submit_batch(_requests(3, "Too dear"), budget=one, offline=True)
        assert set(client.storage.jobs.recent_jobs(10_000)) == known
        dear.close()
    finally:
        client.close()


def test_the_async_batch_does_what_the_sync_one_does(cluster: Cluster) -> None:
    async def run() -> None:
        async with AsyncClient(redis_url=cluster.redis.url, config=cluster.config) as aio:
            batch = await aio.submit_batch(_requests(3, "Async"), name="aio", offline=True)
            kinds = [e.kind async for e in batch.events(timeout=120)]
            assert kinds.count("job_started") == 3 and kinds.count("job_succeeded") == 3
            progress = await batch.progress()
            assert progress.counts.succeeded == 3 and progress.calls > 0
            results = [r async for r in batch.results(timeout=10)]
            assert all(r.output is not None for r in results)
            again = await aio.batch(batch.id)
            assert (
                again.record == batch.record and [j.id for j in again.jobs] == batch.record.job_ids
            )
            assert (await again.resume()).record.version == 1  # nothing to resume
            assert await again.cancel() == 0
            assert batch.id in [r.batch_id for r in await aio.batches()]
            estimate = await aio.estimate_batch(_requests(3, "Async"), offline=True)
            assert estimate.count == 3
            reused = await aio.submit_batch(_requests(3, "Async"), offline=True)
            assert reused.record.job_ids == batch.record.job_ids

    asyncio.run(run())
