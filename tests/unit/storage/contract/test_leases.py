"""Leases, locks and redelivery: one holder at a time, a lapse frees the step, and a
stored output is never recomputed (DESIGN 3a: delivery at least once, billing at most)."""

from __future__ import annotations

from tests.helpers.storage_backends import Backend, stream_events
from vpsweb.domain.progress import EventKind
from vpsweb.storage import Event, JobStatus

TTL = 600


def test_a_lease_has_one_holder(store: Backend) -> None:
    leases = store.storage.leases
    assert leases.acquire("j", "evaluation", "A", 5)
    assert not leases.acquire("j", "evaluation", "B", 5)
    assert not leases.renew("j", "evaluation", "B", 5)  # B may not steal it
    assert leases.renew("j", "evaluation", "A", 5)
    leases.release("j", "evaluation", "B")  # not B's to release
    assert leases.holder("j", "evaluation") == "A"
    assert leases.holder("j", "editor_review") is None  # one lease per step
    leases.release("j", "evaluation", "A")
    assert leases.holder("j", "evaluation") is None


def test_a_lapsed_lease_is_free_and_its_old_holder_must_stop(store: Backend) -> None:
    leases = store.storage.leases
    assert leases.acquire("j", "evaluation", "A", 0.2)
    store.advance(0.3)
    assert leases.holder("j", "evaluation") is None  # A died: it lapsed
    assert leases.renew("j", "evaluation", "A", 0.2)  # A alive after all: re-taken
    store.advance(0.3)
    assert leases.acquire("j", "evaluation", "B", 5)  # taken over
    assert not leases.renew("j", "evaluation", "A", 5)  # A finds out and stops
    leases.release("j", "evaluation", "A")
    assert leases.holder("j", "evaluation") == "B"


def test_renewing_keeps_a_lease_past_its_first_ttl(store: Backend) -> None:
    leases = store.storage.leases
    assert leases.acquire("j", "k", "A", 0.3)
    store.advance(0.2)
    assert leases.renew("j", "k", "A", 0.3)
    store.advance(0.2)
    assert leases.holder("j", "k") == "A"


def test_one_lock_holder_until_it_lapses(store: Backend) -> None:
    leases = store.storage.leases
    assert leases.try_lock("sweeper", "A", 0.2)
    assert not leases.try_lock("sweeper", "B", 0.2)
    assert leases.try_lock("sweeper", "A", 0.2)  # kept by its holder
    store.advance(0.3)
    assert leases.try_lock("sweeper", "B", 0.2)
    assert not leases.try_lock("sweeper", "A", 0.2)


def test_the_first_stored_output_stands(store: Backend) -> None:
    plan = store.job()
    jobs = store.storage.jobs
    assert jobs.save_step(plan.job_id, "evaluation", '{"v": 1}', TTL) == '{"v": 1}'
    assert jobs.save_step(plan.job_id, "evaluation", '{"v": 2}', TTL) == '{"v": 1}'
    assert jobs.load_step(plan.job_id, "evaluation") == '{"v": 1}'
    assert jobs.load_steps(plan.job_id, ["evaluation", "editor_review"]) == ['{"v": 1}', None]
    assert jobs.load_steps(plan.job_id, []) == []


def _begin(store: Backend, job_id: str, owner: str, ttl_s: float = 5.0, start=None):
    steps = store.storage.steps
    assert steps is not None
    return steps.begin(
        job_id,
        "editor_review",
        owner=owner,
        lease_ttl_s=ttl_s,
        deadline=0.0,
        start=start,
        once="start:editor_review",
        ttl=TTL,
        prior_keys=["evaluation"],
    )


def _finish(store: Backend, job_id: str, owner: str, payload: str) -> str:
    steps = store.storage.steps
    assert steps is not None
    return steps.finish(
        job_id, "editor_review", payload, owner=owner, ttl=TTL, end=None, once="", item=None
    )


def test_a_duplicate_delivery_waits_while_the_lease_lives(store: Backend) -> None:
    plan = store.job()
    store.storage.jobs.save_step(plan.job_id, "evaluation", "E", TTL)
    started = Event(EventKind.STAGE_STARTED, 50, {"stage": "Editor Review"})
    first = _begin(store, plan.job_id, "A", start=started)
    assert (first.status, first.stored, first.leased, first.prior) == (
        JobStatus.QUEUED,
        None,
        True,
        ["E"],
    )
    assert store.storage.jobs.status(plan.job_id) is JobStatus.RUNNING
    second = _begin(store, plan.job_id, "B", start=started)
    assert (second.status, second.stored, second.leased) == (JobStatus.RUNNING, None, False)
    # The first delivery finishes: its output stands, its lease is gone.
    assert _finish(store, plan.job_id, "A", "from A") == "from A"
    assert store.storage.leases.holder(plan.job_id, "editor_review") is None
    third = _begin(store, plan.job_id, "B")
    assert third.stored == "from A"  # not recomputed
    assert _finish(store, plan.job_id, "B", "from B") == "from A"  # never overwritten
    starts = [e for e in stream_events(store, plan.job_id) if e.event is EventKind.STAGE_STARTED]
    assert len(starts) == 1  # the start event once, however often delivered


def test_a_duplicate_delivery_takes_over_only_after_the_lease_lapses(store: Backend) -> None:
    plan = store.job()
    assert _begin(store, plan.job_id, "A", ttl_s=0.2).leased
    assert not _begin(store, plan.job_id, "B", ttl_s=0.2).leased
    store.advance(0.3)  # A died without renewing
    taken = _begin(store, plan.job_id, "B", ttl_s=5)
    assert taken.leased and taken.stored is None
    assert store.storage.leases.holder(plan.job_id, "editor_review") == "B"
    # A's late finish stores nothing over B's claim only if B stored first; the first
    # stored output stands either way, and A cannot release B's lease.
    assert _finish(store, plan.job_id, "B", "from B") == "from B"
    assert _finish(store, plan.job_id, "A", "from A") == "from B"


def test_a_finish_releases_only_its_own_lease(store: Backend) -> None:
    plan = store.job()
    assert _begin(store, plan.job_id, "A", ttl_s=0.2).leased
    store.advance(0.3)
    assert _begin(store, plan.job_id, "B").leased
    _finish(store, plan.job_id, "A", "from A")  # the old holder, finishing late
    assert store.storage.leases.holder(plan.job_id, "editor_review") == "B"
