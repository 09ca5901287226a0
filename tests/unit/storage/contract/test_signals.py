"""Job signals and the keeper's read: what a worker's steps in flight learn without
asking the store per call (storage.signals, issue 25).

A subscription hears every job end and every success of a candidate under a
straggler quorum; a lease renewal reads the job's status and quorum deadline with
the lease (the safety net under lost signals)."""

from __future__ import annotations

from tests.helpers.storage_backends import Backend
from vpsweb.domain.progress import EventKind
from vpsweb.storage import Event, JobStatus
from vpsweb.storage.base import CandidateEnd
from vpsweb.storage.signals import Signal, SignalFeed, SignalKind

TTL = 600
CANCELLED = Event(EventKind.JOB_FINISHED, 0, {"status": "cancelled"})


def _heard(feed: SignalFeed, wanted: int) -> list[Signal]:
    """At least ``wanted`` signals, reading a few times (a Redis subscription confirms
    itself with its first read); fewer only when they never came."""
    got: list[Signal] = []
    for _ in range(5):
        got += feed.next(1.0)
        if len(got) >= wanted:
            break
    return got


def _candidate(store: Backend, job_id: str, index: int, *, ok: bool = True) -> None:
    steps = store.storage.steps
    end = CandidateEnd(
        index,
        ok=ok,
        n=3,
        end_percent=25,
        stage="Initial Translation",
        details={"duration_s": 2.0},
        quorum=1,
        grace=1.0,
    )
    steps.finish(
        job_id, f"candidate-{index}", "{}", owner="A", ttl=TTL, end=None, once="", item=end
    )


def test_a_subscriber_hears_job_ends_and_quorum_successes(store: Backend) -> None:
    signals = store.storage.signals
    assert signals is not None
    plan = store.job()
    feed = signals.subscribe()
    try:
        assert feed.next(0.05) == []  # subscribed (Redis: on the first read), nothing yet
        _candidate(store, plan.job_id, 1, ok=False)  # a failure sets no deadline: silent
        _candidate(store, plan.job_id, 0)
        assert store.storage.jobs.end(plan.job_id, JobStatus.CANCELLED, TTL, events=[CANCELLED])
        # Ending it again changes nothing, and says nothing.
        assert not store.storage.jobs.end(plan.job_id, JobStatus.FAILED, TTL, events=[CANCELLED])
        got = _heard(feed, 2)
        assert got == [
            Signal(SignalKind.CANDIDATE, plan.job_id),
            Signal(SignalKind.ENDED, plan.job_id),
        ]
        assert feed.next(0.05) == []
    finally:
        feed.close()


def test_a_lease_renewal_reads_the_jobs_status_and_quorum_deadline(store: Backend) -> None:
    leases, plan = store.storage.leases, store.job()
    assert leases.acquire(plan.job_id, "candidate-2", "A", 5)
    kept = leases.keep(plan.job_id, "candidate-2", "A", 5)
    assert (kept.held, kept.status, kept.late_in) == (True, "queued", None)
    _candidate(store, plan.job_id, 0)  # the quorum (1): late in 1.0 x 2 s
    kept = leases.keep(plan.job_id, "candidate-2", "A", 5)
    # about 2 s (the deadline is stamped with one clock, read with another)
    assert kept.held and kept.late_in is not None and 1.5 < kept.late_in <= 2.05
    assert not leases.keep(plan.job_id, "candidate-2", "B", 5).held  # A holds it
    store.storage.jobs.end(plan.job_id, JobStatus.CANCELLED, TTL, events=[CANCELLED])
    assert leases.keep(plan.job_id, "candidate-2", "A", 5).status == "cancelled"
    assert leases.holder(plan.job_id, "candidate-2") == "A"  # renewed, as renew does
    gone = leases.keep("0123456789ab", "evaluation", "A", 5)
    assert (gone.held, gone.status, gone.late_in) == (True, None, None)


def test_a_signal_says_only_what_it_knows() -> None:
    assert Signal.decode("ended:c0ffee000001") == Signal(SignalKind.ENDED, "c0ffee000001")
    assert Signal.decode(Signal(SignalKind.CANDIDATE, "j:1").encode()) == Signal(
        SignalKind.CANDIDATE, "j:1"
    )
    assert Signal.decode("renamed:c0ffee000001") is None  # a newer version's signal
    assert Signal.decode("ended:") is None
