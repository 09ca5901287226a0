"""The batches' seam: batch records, addresses (content and idempotency keys), and the
one-read views a batch's follower and a budgeted batch's worker need.

A submission that may reuse jobs is an optimistic transaction: the store looks its
addresses up, ``decide`` (the client's, pure) says what to write given what they point
at, and the store writes it, unless one of the addresses changed in between, in which
case it looks again (Redis: a compare-and-set of the addresses between writing the new
jobs and submitting them, see storage.redis.batches; memory: one lock). So two
submissions with one idempotency key make one job, and a batch's jobs are submitted
only with its record (jobs a dead writer left unsubmitted are failed at their
deadline).
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from vpsweb.domain.batch import BatchRecord, BatchTally, MemberState
from vpsweb.domain.plan import JobPlan
from vpsweb.storage.spend import BATCH_CALLS, BATCH_SPENT, BATCH_TOKENS, COST_PREFIX

# A member job's fields a batch's tally reads (a Redis HMGET's order; memory alike).
MEMBER_FIELDS = ("status", "started_at", "finished_at", "deadline_at", "error", "error_stage")
MAX_ATTEMPTS = 20  # a submission's looks, when other submissions keep changing its addresses


@dataclass(frozen=True)
class Found:
    """The job an address points at, and its status now (a ``JobStatus`` value; None:
    the job is gone). Statuses are plain text here, as in ``ProgressLog.straggler_check``:
    ``storage.base`` builds on this module."""

    job_id: str
    status: str | None


@dataclass(frozen=True)
class BatchWrite:
    """What one submission writes, in one transaction: ``plans`` (the new jobs, as
    ``JobStore.create`` writes them), the batch ``record`` (None for jobs without one: an
    idempotent single submission), ``addresses`` (address -> job id), and ``keep``:
    reused jobs whose retention starts again (their hash, result, snapshot and events),
    so that they last as long as the batch that names them. ``jobs``: the submission's
    job ids, in its order (new and reused)."""

    jobs: list[str]
    ttl: int
    plans: list[JobPlan] = field(default_factory=list)
    record: BatchRecord | None = None
    addresses: dict[str, str] = field(default_factory=dict)
    keep: list[str] = field(default_factory=list)


Decide = Callable[[dict[str, Found]], BatchWrite]


@dataclass(frozen=True)
class SpendCheck:
    """A budgeted batch job's check before an LLM call, in one read: the job's status and
    spend, the batch's spend and budget, and (``late=True``) the seconds until the
    straggler policy makes the item late (as ``ProgressLog.straggler_check``)."""

    status: str | None
    job_spent: float
    batch_spent: float
    budget: float | None
    late_in: float | None = None


class Batches(abc.ABC):
    """Batch records, the addresses jobs are found by, and batch reads."""

    @abc.abstractmethod
    def submit(self, addresses: Sequence[str], decide: Decide) -> BatchWrite:
        """Look ``addresses`` up (at most two round trips whatever their number), write
        what ``decide`` makes of what they point at, atomically, and return it; looked
        up again (``decide`` called again) when another submission wrote one of them in
        between. Whatever ``decide`` raises leaves nothing written."""

    @abc.abstractmethod
    def get(self, batch_id: str) -> BatchRecord | None: ...

    @abc.abstractmethod
    def recent(self, limit: int = 20) -> list[BatchRecord]:
        """The newest batches first (those still within their retention)."""

    @abc.abstractmethod
    def tally(self, record: BatchRecord) -> BatchTally:
        """The batch's counters and every member job's state, in one round trip."""

    @abc.abstractmethod
    def plans(self, job_ids: Sequence[str]) -> list[JobPlan | None]:
        """The jobs' plans (None: gone), in one round trip."""

    @abc.abstractmethod
    def count_step(self, batch_id: str, job_id: str, key: str, payload: str, ttl: int) -> None:
        """Add a stored step's cost, calls and tokens to the batch's counters, once per job
        step (``StepLog.finish`` does it). A delivery that finds the step stored calls it
        again: where the count is a write of its own (Redis: the batch's slot, not the
        job's), the delivery that stored the step may have died before it."""

    @abc.abstractmethod
    def spend_check(self, job_id: str, batch_id: str, *, late: bool = False) -> SpendCheck:
        """A budgeted batch job's check, in one round trip (see SpendCheck)."""


def _epoch(value: str | None) -> float | None:
    return datetime.fromisoformat(value).timestamp() if value else None


def member_state(reply: Sequence[str | None]) -> MemberState:
    status, started, finished, deadline, error, stage = reply
    return MemberState(
        status=status or None,
        started_at=_epoch(started),
        finished_at=_epoch(finished),
        deadline=float(deadline) if deadline else None,
        error=error or None,
        error_stage=stage or None,
    )


def tally_of(counters: dict[str, str], members: list[Any]) -> BatchTally:
    """A batch's tally from its counters and each member's MEMBER_FIELDS (Redis: its
    counters hash and the members' HMGET replies; memory: the same values)."""
    return BatchTally(
        version=int(counters.get("version") or 0),
        spent=float(counters.get(BATCH_SPENT) or 0.0),
        costs={
            k.removeprefix(COST_PREFIX): float(v)
            for k, v in counters.items()
            if k.startswith(COST_PREFIX)
        },
        calls=int(counters.get(BATCH_CALLS) or 0),
        tokens=int(counters.get(BATCH_TOKENS) or 0),
        budget=float(counters["budget"]) if counters.get("budget") else None,
        members=[member_state(m) for m in members],
    )
