"""A batch: jobs submitted together and followed as one (pure: no store, no Celery).

A batch is a record (its members: name, where it came from, job id, content key,
whether the job was reused) kept with its jobs' retention; its progress is computed
here from what one store read returns (``BatchTally``: each member job's status and
times, and the batch's spend counters), so that a display costs one round trip per
refresh whatever the batch's size.

Content addressing: ``content_key(plan)`` names what a job would translate and how
(the poem, the request's fields that change the translation and the plan's model,
temperature and variant per step), so that a batch submitted again reuses the jobs
that already did (or are doing) that work instead of paying for it twice.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from datetime import datetime
from typing import Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field

# The estimate is a module of its own; its names are the batch's too.
from vpsweb.domain.batch_estimate import BatchEstimate as BatchEstimate
from vpsweb.domain.batch_estimate import budget_problems as budget_problems
from vpsweb.domain.batch_estimate import estimate_of as estimate_of
from vpsweb.domain.glossary import relevant
from vpsweb.domain.plan import JobPlan
from vpsweb.domain.request import TranslationRequest
from vpsweb.domain.result import TranslationOutput

# Request fields that do not change the translation: who waits first, a retry's key and
# the job's spending cap. Every other field (a new one too: a glossary) is addressed.
NOT_ADDRESSED = frozenset({"priority", "idempotency_key", "max_cost"})
CONTENT_VERSION = 1  # bump when what is addressed changes meaning
TERMINAL = frozenset({"succeeded", "failed", "cancelled"})
ACTIVE = frozenset({"running", "waiting"})  # started, not ended (waiting: for a person)
GONE = "expired"  # a member whose job is no longer stored


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


def content_key(plan: JobPlan) -> str:
    """sha256 (hex) of what the job translates and how: the request's fields but
    priority, idempotency_key and max_cost, with the plan's resolved dials, straggler
    policy and N; the glossary's terms found in the poem; the model, temperature and
    variant of every step; offline (a simulated translation is not a real one) and the
    steps a person answers."""
    request = plan.request.model_dump(mode="json", exclude=set(NOT_ADDRESSED))
    request["strategy"] = plan.strategy.model_dump(mode="json")
    request["straggler"] = plan.straggler.model_dump(mode="json")
    request["parallel_count"] = plan.parallel_count
    # Only the glossary's terms this poem holds: a term added for another poem of the
    # collection does not make this one be paid for again.
    cut = relevant(plan.request.glossary, plan.request.glossary_texts())
    request["glossary"] = cut.model_dump(mode="json") if cut else None
    body = {
        "v": CONTENT_VERSION,
        "request": request,
        "steps": {k: [c.model, c.temperature] for k, c in sorted(plan.steps.items())},
        "candidates": [
            [c.variant, c.hint, c.call.model, c.call.temperature] for c in plan.candidates
        ],
        "offline": plan.offline,
        "manual": plan.manual_steps,
    }
    text = json.dumps(body, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def content_address(key: str) -> str:
    """The store's address of a content key (``Batches.submit`` looks addresses up)."""
    return f"content:{key}"


def idempotency_address(key: str) -> str:
    """The store's address of a request's idempotency key (hashed: the key is the
    submitter's text, the address a fixed-length name)."""
    return "idem:" + hashlib.sha256(key.encode("utf-8")).hexdigest()


class EntryLike(Protocol):
    """What ``submit_batch`` takes besides plain requests: ``vpsweb.batches.sources``'s
    BatchEntry (a name unique in the batch, where it came from, its request)."""

    @property
    def name(self) -> str: ...
    @property
    def where(self) -> str: ...
    @property
    def request(self) -> TranslationRequest: ...


# --- the record -------------------------------------------------------------------------


class BatchMember(_Model):
    """One poem of a batch: its job (new, or ``reused``: an existing job that did or is
    doing the same work, found by content key or idempotency key). ``previous``: the
    jobs it had before ``resume`` gave it a new one."""

    name: str
    where: str
    job_id: str
    content_key: str
    reused: bool = False
    previous: list[str] = Field(default_factory=list)


class BatchRecord(_Model):
    """A batch as stored: durable with its jobs' retention. ``version`` grows with each
    resume (members given new jobs); ``run_started_at`` is when the latest run began
    (its creation, or its latest resume): the ETA measures from there."""

    batch_id: str
    name: str = ""
    created_at: datetime
    run_started_at: datetime
    budget: float | None = None
    currency: str = ""  # the batch's models' one currency ("" if several or none)
    version: int = 1
    entries: list[BatchMember]

    @property
    def job_ids(self) -> list[str]:
        return [m.job_id for m in self.entries]


# --- what one store read returns, and the progress made of it ---------------------------


class MemberState(_Model):
    """A member job as the store has it now (status None: the job is gone)."""

    status: str | None
    started_at: float | None = None  # epoch seconds
    finished_at: float | None = None
    deadline: float | None = None
    error: str | None = None
    error_stage: str | None = None


class BatchTally(_Model):
    """One read of a batch: its counters (spent: what its own jobs' stored steps cost,
    in total and per currency; calls and tokens of those steps) and every member's
    state, in the record's order."""

    version: int
    spent: float = 0.0
    costs: dict[str, float] = Field(default_factory=dict)
    calls: int = 0
    tokens: int = 0
    budget: float | None = None
    members: list[MemberState]


class BatchCounts(_Model):
    """Members by status; ``expired``: members whose job is no longer stored."""

    queued: int = 0
    running: int = 0  # waiting for a person counts as running
    succeeded: int = 0
    failed: int = 0
    cancelled: int = 0
    expired: int = 0
    total: int = 0

    @property
    def finished(self) -> int:
        return self.succeeded + self.failed + self.cancelled + self.expired


class BatchProgress(_Model):
    """A batch now. ``percent`` is finished / total x 100: members only ever finish, so
    within a run it never moves back. ``cost`` is what this batch's own jobs cost so
    far (reused jobs cost it nothing), in ``currency``; ``costs`` per currency. ETA:
    see ``eta_s``."""

    batch_id: str
    counts: BatchCounts
    calls: int
    tokens: int
    cost: float
    currency: str
    costs: dict[str, float] = Field(default_factory=dict)
    budget: float | None = None
    reused: int = 0
    elapsed_s: float
    eta_s: float | None
    percent: float
    running: list[str]  # job ids running now

    @property
    def done(self) -> bool:
        return self.counts.finished >= self.counts.total


def count(states: Sequence[MemberState]) -> BatchCounts:
    counts = BatchCounts(total=len(states))
    for s in states:
        status = s.status or GONE
        status = "running" if status in ACTIVE else status
        setattr(counts, status, getattr(counts, status) + 1)
    return counts


def eta_s(states: Sequence[MemberState], run_start: float, now: float) -> float | None:
    """Seconds until every member has finished: the members left ÷ this run's finish
    rate (members finished since the run began ÷ the time since then).

    Chosen over "mean job duration × left ÷ parallelism" because the rate already
    holds what the other needs estimated: how many jobs the cluster runs at once, the
    queue's wait, the provider's quota and batch priority (interactive jobs go first).
    Jobs that had finished before the run (reused) count in neither. None until one
    member finished in this run; 0 when none is left."""
    finished = [s for s in states if s.status in TERMINAL or s.status is None]
    left = len(states) - len(finished)
    if left == 0:
        return 0.0
    in_run = sum(1 for s in finished if s.finished_at is not None and s.finished_at >= run_start)
    elapsed = now - run_start
    if in_run == 0 or elapsed <= 0:
        return None
    return round(left * elapsed / in_run, 1)


def _until(states: Sequence[MemberState], counts: BatchCounts, now: float) -> float:
    """The end of the batch's clock: now, or its last member's finish once all ended
    (a finished batch's elapsed time does not keep growing)."""
    if counts.finished < counts.total:
        return now
    return max((s.finished_at for s in states if s.finished_at is not None), default=now)


def progress_of(record: BatchRecord, tally: BatchTally, now: float) -> BatchProgress:
    """The batch's progress from one read of it (``now``: epoch seconds)."""
    counts = count(tally.members)
    start = record.run_started_at.timestamp()
    total = counts.total
    return BatchProgress(
        batch_id=record.batch_id,
        counts=counts,
        calls=tally.calls,
        tokens=tally.tokens,
        cost=round(tally.spent, 10),
        currency=record.currency or "/".join(sorted(tally.costs)),
        costs=tally.costs,
        budget=tally.budget if tally.budget is not None else record.budget,
        reused=sum(1 for m in record.entries if m.reused),
        elapsed_s=round(
            max(0.0, _until(tally.members, counts, now) - record.created_at.timestamp()), 1
        ),
        eta_s=eta_s(tally.members, start, now),
        percent=round(counts.finished / total * 100, 2) if total else 100.0,
        running=[
            m.job_id
            for m, s in zip(record.entries, tally.members, strict=True)
            if s.status in ACTIVE
        ],
    )


# --- events and results -----------------------------------------------------------------

BatchEventKind = Literal["job_started", "job_succeeded", "job_failed", "job_cancelled"]
ENDS: dict[str, BatchEventKind] = {
    "succeeded": "job_succeeded",
    "failed": "job_failed",
    "cancelled": "job_cancelled",
    GONE: "job_failed",
}


class BatchEvent(_Model):
    """A member's job started or ended; each once per member and job. ``cause``: why a
    job failed ("Stage: cause"; an expired job: that it is no longer stored)."""

    kind: BatchEventKind
    name: str
    where: str
    job_id: str
    reused: bool = False
    cause: str | None = None

    @property
    def terminal(self) -> bool:
        return self.kind != "job_started"


class BatchResult(_Model):
    """A member's outcome: its output, or why there is none."""

    member: BatchMember
    status: str  # succeeded, failed, cancelled or expired
    output: TranslationOutput | None = None
    error: str | None = None


def failure_cause(state: MemberState) -> str | None:
    if state.status is None:
        return "the job is no longer stored (expired)"
    if state.status != "failed":
        return None
    stage = state.error_stage or "unknown stage"
    return f"{stage}: {state.error or 'no cause recorded'}"


def _event(kind: BatchEventKind, member: BatchMember, cause: str | None = None) -> BatchEvent:
    return BatchEvent(
        kind=kind,
        name=member.name,
        where=member.where,
        job_id=member.job_id,
        reused=member.reused,
        cause=cause,
    )


class BatchWatch:
    """Which events a follower has given, fed one tally after another: each member's
    job_started once, then its end once (a job seen ended at once gets both). A member
    given a new job (``resume``) starts over."""

    def __init__(self) -> None:
        self._said: dict[int, tuple[str, bool]] = {}  # member index -> (job id, ended)

    def update(self, record: BatchRecord, tally: BatchTally) -> list[BatchEvent]:
        events: list[BatchEvent] = []
        for i, (member, state) in enumerate(zip(record.entries, tally.members, strict=True)):
            said = self._said.get(i)
            if said is not None and said[0] != member.job_id:
                said = None  # resumed: a new job
            status = state.status or GONE
            if status == "queued" or (said is not None and said[1]):
                continue
            if said is None:
                events.append(_event("job_started", member))
            ended = status in ENDS
            if ended:
                events.append(_event(ENDS[status], member, failure_cause(state)))
            self._said[i] = (member.job_id, ended)
        return events

    def done(self, record: BatchRecord) -> bool:
        """Every member's end was given."""
        return all(
            (said := self._said.get(i)) is not None and said == (m.job_id, True)
            for i, m in enumerate(record.entries)
        )


def overdue_jobs(record: BatchRecord, tally: BatchTally, now: float) -> list[str]:
    """Members past their deadline and not ended (waiting for a person has none): a
    follower fails them as stalled when no worker is left to."""
    return [
        m.job_id
        for m, s in zip(record.entries, tally.members, strict=True)
        if s.status in ("queued", "running") and s.deadline is not None and s.deadline <= now
    ]
