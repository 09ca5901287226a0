"""The checks during an LLM call read no store (issue 25): the worker's watch hears a
job's end and a straggler quorum from the store's signals, and the keeper's lease
round reads them too when a signal was lost. The call in flight is a real request
on the LLM client's loop thread (``LoopThread.run``), here one that never answers."""

from __future__ import annotations

import asyncio
import dataclasses
import threading
from collections.abc import Callable
from typing import Any

import pytest

from vpsweb.config import load_config
from vpsweb.domain.plan import JobPlan, build_plan
from vpsweb.domain.progress import EventKind
from vpsweb.errors import Cancelled, Late, StoreUnavailable
from vpsweb.llm.loop import LoopThread
from vpsweb.orchestrator import execution
from vpsweb.orchestrator.keeper import Keeper
from vpsweb.stages import runs
from vpsweb.stages.table import stage
from vpsweb.storage import Event, JobStatus, Storage
from vpsweb.storage.base import CandidateEnd
from vpsweb.storage.memory import memory_storage
from vpsweb.storage.signals import Signal, SignalFeed, Signals

FIRST = stage("initial_translation")
CANCELLED = Event(EventKind.JOB_FINISHED, 0, {"status": "cancelled"})


@pytest.fixture(scope="module")
def loop() -> Any:
    runner = LoopThread("test-llm-loop")
    yield runner
    runner.stop()


def _job(storage: Storage, job_id: str, keeper: Keeper | None = None, **request: Any):
    data = {"poem": "a\nb", "source_lang": "en", "target_lang": "zh-CN", **request}
    plan: JobPlan = build_plan(data, load_config(), job_id=job_id, offline=True)
    storage.jobs.create([plan])
    svc = execution.Services(
        storage=storage,
        config=load_config(),
        llm=None,  # type: ignore[arg-type]
        keeper=keeper or Keeper(),
    )
    return plan, svc


def _counting(reads: list[str], name: str, read: Callable[..., Any]) -> Callable[..., Any]:
    def counted(*args: Any) -> Any:
        reads.append(name)
        return read(*args)

    return counted


def _store_reads(monkeypatch: pytest.MonkeyPatch, storage: Storage) -> list[str]:
    """Every status or spend read a check could make, by name."""
    reads: list[str] = []
    for part, name in [
        (storage.jobs, "status"),
        (storage.jobs, "status_and_spent"),
        (storage.progress, "straggler_check"),
        (storage.batches, "spend_check"),
    ]:
        monkeypatch.setattr(part, name, _counting(reads, name, getattr(part, name)))
    return reads


def _in_flight(
    loop: LoopThread, checks: list[int], after_checks: Callable[[], None], reads: list[str]
):
    """A stage whose one call never answers; ``after_checks`` runs on the 3rd check.
    ``reads`` is cleared as the call starts (the step's first batch read its status)."""

    def run(ctx, prior, index):
        reads.clear()

        def check() -> float | None:
            checks.append(1)
            if len(checks) == 3:
                after_checks()
            assert ctx.check is not None
            return ctx.check()

        loop.run(asyncio.Event().wait(), timeout_s=60, check=check)
        raise AssertionError("the call never answers")

    return run


def test_a_call_in_flight_reads_no_store_and_stops_when_its_job_ends(
    monkeypatch: pytest.MonkeyPatch, loop: LoopThread
) -> None:
    storage = memory_storage()
    plan, svc = _job(storage, "c4ec00000001", parallel_count=2)
    reads = _store_reads(monkeypatch, storage)
    checks: list[int] = []

    def cancel() -> None:  # from elsewhere, as a client's cancel is
        end = storage.jobs.end
        threading.Thread(
            target=end, args=(plan.job_id, JobStatus.CANCELLED, 60), kwargs={"events": [CANCELLED]}
        ).start()

    monkeypatch.setitem(runs.RUN, FIRST.name, _in_flight(loop, checks, cancel, reads))
    with pytest.raises(Cancelled, match="ended"):
        execution.run_step(svc, FIRST, plan.job_id, 0)
    assert len(checks) >= 3  # it kept looking while the call was in flight ...
    assert reads == []  # ... and never asked the store


class _Deaf(Signals):
    """Signals whose subscription is always lost (a store that drops pub/sub)."""

    def announce(self, signal: Signal) -> None:
        pass

    def subscribe(self) -> SignalFeed:
        class Lost(SignalFeed):
            def next(self, timeout_s: float) -> list[Signal]:
                raise StoreUnavailable("subscription lost")

            def close(self) -> None:
                pass

        return Lost()


def test_the_keepers_round_stops_a_call_whose_end_signal_was_lost(
    monkeypatch: pytest.MonkeyPatch, loop: LoopThread
) -> None:
    monkeypatch.setattr("vpsweb.orchestrator.watch.RESUBSCRIBE_S", 0.01)
    storage = dataclasses.replace(memory_storage(), signals=_Deaf())
    plan, svc = _job(storage, "c4ec00000002", keeper=Keeper(every_s=0.05), parallel_count=2)
    checks: list[int] = []
    reads: list[str] = []

    def cancel() -> None:
        storage.jobs.end(plan.job_id, JobStatus.CANCELLED, 60, events=[CANCELLED])

    monkeypatch.setitem(runs.RUN, FIRST.name, _in_flight(loop, checks, cancel, reads))
    with pytest.raises(Cancelled, match="cancelled"):  # the status the keeper read
        execution.run_step(svc, FIRST, plan.job_id, 0)


def test_a_candidate_in_flight_is_cut_at_its_quorums_deadline(
    monkeypatch: pytest.MonkeyPatch, loop: LoopThread
) -> None:
    storage = memory_storage()
    plan, svc = _job(
        storage, "c4ec00000003", parallel_count=2, straggler={"policy": "quorum", "quorum": 0.5}
    )
    quorum = plan.straggler.quorum_count(2)
    assert quorum == 1
    reads = _store_reads(monkeypatch, storage)
    checks: list[int] = []

    def other_succeeds() -> None:  # the other candidate reaches the quorum
        end = CandidateEnd(
            1,
            ok=True,
            n=2,
            end_percent=25,
            stage=FIRST.display_name,
            details={"duration_s": 0.01},
            quorum=quorum,
            grace=1.0,
        )
        storage.steps.finish(
            plan.job_id, "candidate-1", "{}", owner="x", ttl=60, end=None, once="", item=end
        )

    monkeypatch.setitem(runs.RUN, FIRST.name, _in_flight(loop, checks, other_succeeds, reads))
    with pytest.raises(Late):
        execution.run_step(svc, FIRST, plan.job_id, 0)
    # The signal made the watch read the quorum once; the call's checks read nothing.
    assert reads == ["straggler_check"]
