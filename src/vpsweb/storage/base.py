"""The storage seam: what the orchestrator, workers and clients need from a state store.

Small abstract interfaces, one concrete implementation per store (Redis in
``vpsweb.storage.redis``), as dramatiq does with its result backends. Payloads
cross this seam as JSON text; the callers own the models.
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict

from vpsweb.domain.permits import Settlement
from vpsweb.domain.plan import JobPlan
from vpsweb.domain.progress import EventKind, ProgressEvent, ProgressSnapshot
from vpsweb.storage.batches import Batches
from vpsweb.storage.leases import Leases
from vpsweb.storage.quotas import Quotas
from vpsweb.storage.signals import Signals


class JobStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    WAITING = "waiting"  # a manual prompt waits for a person's answer
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def terminal(self) -> bool:
        return self in TERMINAL


TERMINAL = frozenset({JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED})


class JobRecord(BaseModel):
    """What the registry knows about a job, for status displays and clients."""

    model_config = ConfigDict(extra="forbid")

    job_id: str
    status: JobStatus
    plan: JobPlan
    created_at: datetime
    started_at: datetime | None = None
    finished_at: datetime | None = None
    error: str | None = None
    error_stage: str | None = None

    @classmethod
    def from_hash(cls, job_id: str, data: dict[str, str]) -> JobRecord | None:
        """From the job hash's fields (None for a job that has no plan: unknown)."""
        if not data or "plan" not in data:
            return None

        def when(value: str | None) -> datetime | None:
            return datetime.fromisoformat(value) if value else None

        return cls(
            job_id=job_id,
            status=JobStatus(data["status"]),
            plan=JobPlan.model_validate_json(data["plan"]),
            created_at=datetime.fromisoformat(data["created_at"]),
            started_at=when(data.get("started_at")),
            finished_at=when(data.get("finished_at")),
            error=data.get("error") or None,
            error_stage=data.get("error_stage") or None,
        )


@dataclass(frozen=True)
class Event:
    """An event to append: fields as the stream stores them, and the percentage it proposes
    (the store keeps the percentage monotonic)."""

    kind: EventKind
    percent: float
    fields: dict[str, Any]


@dataclass(frozen=True)
class Submission:
    """A job waiting for a dispatcher to send its canvas. Two lanes: a dispatcher
    takes every interactive submission before the next batch ones, so a poem
    submitted behind a 500-job batch is sent at once, not after 500 canvases."""

    entry_id: str
    job_id: str
    lane: str = "interactive"  # or "batch"


class JobStore(abc.ABC):
    """Jobs, their step outputs and results, and the queue of submissions."""

    @abc.abstractmethod
    def create(self, plans: list[JobPlan]) -> None:
        """Register jobs (status queued, a queued event each) and submit them, at once."""

    @abc.abstractmethod
    def get(self, job_id: str) -> JobRecord | None: ...

    @abc.abstractmethod
    def status(self, job_id: str) -> JobStatus | None: ...

    @abc.abstractmethod
    def status_and_spent(self, job_id: str) -> tuple[JobStatus | None, float]:
        """A budgeted step's check in one read: the status and the job's spend so far
        (the cost of every step output stored, counted by ``StepLog.finish``)."""

    @abc.abstractmethod
    def plan(self, job_id: str) -> JobPlan | None:
        """The job's plan (plans never change, so implementations may cache it)."""

    @abc.abstractmethod
    def mark_running(self, job_id: str, ttl: int) -> None:
        """queued -> running, once; later calls keep the first start time."""

    @abc.abstractmethod
    def end(
        self,
        job_id: str,
        status: JobStatus,
        ttl: int,
        *,
        events: list[Event],
        result: str | None = None,
        error: str | None = None,
        error_stage: str | None = None,
    ) -> bool:
        """End a job in one atomic write: the result (if any, first one stands), the
        status and the events, the last of which must be the terminal one. False if
        the job had already ended (then nothing is written)."""

    @abc.abstractmethod
    def recent_jobs(self, limit: int = 20) -> list[str]: ...

    @abc.abstractmethod
    def extend_deadline(self, job_id: str, at: float) -> None:
        """Move a running job's deadline (epoch seconds) later; never earlier."""

    @abc.abstractmethod
    def deadline(self, job_id: str) -> float | None: ...

    @abc.abstractmethod
    def overdue(self, now: float, limit: int = 100) -> list[str]:
        """Jobs not yet ended whose deadline is before ``now``."""

    @abc.abstractmethod
    def forget_deadline(self, job_id: str) -> None:
        """Stop watching a job that ended or expired; one whose deadline moved stays."""

    @abc.abstractmethod
    def save_step(self, job_id: str, key: str, payload: str, ttl: int) -> str:
        """Store a step's output once; returns the stored one (first writer wins)."""

    @abc.abstractmethod
    def load_steps(self, job_id: str, keys: list[str]) -> list[str | None]: ...

    @abc.abstractmethod
    def load_result(self, job_id: str) -> str | None: ...

    @abc.abstractmethod
    def next_submissions(self, consumer: str, *, block_ms: int, count: int) -> list[Submission]:
        """Submissions for this dispatcher: ones a dead dispatcher left, else new ones,
        interactive before batch (at most ``count`` batch ones at a time)."""

    @abc.abstractmethod
    def ack_submissions(self, entries: list[Submission]) -> None: ...

    @abc.abstractmethod
    def close(self) -> None: ...

    def load_step(self, job_id: str, key: str) -> str | None:
        return self.load_steps(job_id, [key])[0]


class Presence(abc.ABC):
    """Which workers are alive and which queues they consume: heartbeats with a TTL, so
    that a client can tell, within seconds, that nobody will run its job."""

    @abc.abstractmethod
    def beat(self, worker: str, queues: list[str], ttl_s: float) -> None: ...

    @abc.abstractmethod
    def leave(self, worker: str) -> None: ...

    @abc.abstractmethod
    def live(self) -> dict[str, list[str]]:
        """Worker name -> the queues it consumes, for every worker alive now."""


class ProgressLog(abc.ABC):
    """A job's progress: a snapshot that only moves forward, and a replayable event stream."""

    @abc.abstractmethod
    def emit(self, job_id: str, event: Event, ttl: int, *, once: str = "") -> bool:
        """Append an event (once per ``once`` key, if given); False if refused (a
        duplicate, or the job's stream already ended)."""

    @abc.abstractmethod
    def candidate_finished(self, job_id: str, end: CandidateEnd, ttl: int) -> tuple[int, bool]:
        """Count a fan-out item once, with an event of its own carrying ``end.details``
        (variant, model, duration, error); returns (finished count or 0 for a
        duplicate, whether a milestone event was published). ``end.late``: stopped by
        the straggler policy. With a ``quorum``, the success that reaches it starts the
        grace period: ``grace`` x the median duration of the successes."""

    @abc.abstractmethod
    def straggler_check(self, job_id: str) -> tuple[str | None, float | None, float]:
        """A running item's check in one read: the job's status, the seconds until
        the straggler policy makes it late (<= 0: it is late; None: no quorum yet), and
        the job's spend so far (as ``JobStore.status_and_spent``)."""

    @abc.abstractmethod
    def snapshot(self, job_id: str) -> ProgressSnapshot: ...

    @abc.abstractmethod
    def events(
        self,
        job_id: str,
        *,
        timeout: float | None = None,
        start: str = "0-0",
        on_idle: Callable[[], list[ProgressEvent]] | None = None,
    ) -> Iterator[ProgressEvent]:
        """Replay from ``start``, then follow; ends after the terminal event. Raises
        TimeoutError when ``timeout`` seconds pass without it. ``on_idle`` runs
        whenever about a second passed with nothing new (or the store was briefly
        unreachable: the reader reconnects and goes on); the events it returns (the
        follower's own warnings) are yielded in between."""


class UsageLog(abc.ABC):
    """What ended jobs used: a summary per job (kept for the retention period, for
    `vpsweb stats`) and cumulative counters (for Prometheus). ``vpsweb.monitoring.usage`` owns
    the payloads."""

    @abc.abstractmethod
    def record(self, summary_json: str, counters: dict[str, float], ttl: int) -> None:
        """Keep the summary (its ``finished_at``, epoch seconds, orders and trims them)
        and add ``counters`` to the cumulative ones, in one write; drop summaries
        older than ``ttl`` seconds."""

    @abc.abstractmethod
    def summaries(self, since: float) -> list[str]:
        """Summaries of jobs that ended at or after ``since`` (epoch seconds), oldest first."""

    @abc.abstractmethod
    def counters(self) -> dict[str, float]: ...


class ManualAnswers(abc.ABC):
    """Prompts parked for a person and the answers given (manual mode)."""

    @abc.abstractmethod
    def park(self, job_id: str, key: str, prompt_json: str, ttl: int) -> bool:
        """Store a step's prompt and mark the job waiting; False if the job ended."""

    @abc.abstractmethod
    def pending(self, job_id: str) -> dict[str, str]:
        """Step key -> prompt JSON, for every prompt still waiting."""

    @abc.abstractmethod
    def answer_of(self, job_id: str, key: str) -> str | None: ...

    @abc.abstractmethod
    def answer(
        self, job_id: str, key: str, text: str, *, stage_keys: list[str], deadline: float, ttl: int
    ) -> str:
        """Accept an answer to a pending prompt: 'stored', or 'resumed' when it was the
        stage's last (the job is queued again with ``deadline``); 'gone', 'ended',
        'answered' or 'not_pending' when nothing was stored; 'resumed' again for a job
        resumed but not started yet (manual_answers.py: a retry makes a crash good)."""


@dataclass(frozen=True)
class StepStart:
    """What one round trip at a step's start found: the job's status (before it was
    marked running), the step's output if a delivery stored it, whether this delivery
    took the step's lease, and the stored outputs of the steps it needs."""

    status: JobStatus | None
    stored: str | None
    leased: bool
    prior: list[str | None]


@dataclass(frozen=True)
class CandidateEnd:
    """A fan-out item's end, as ``ProgressLog.candidate_finished`` counts it: its index
    and outcome, the item count and the stage's upper bound (for the milestones), what
    a display shows of it, and the straggler policy's quorum and grace factor."""

    index: int
    ok: bool
    n: int
    end_percent: float
    stage: str
    details: dict[str, Any] = field(default_factory=dict)
    late: bool = False
    quorum: int | None = None
    grace: float = 0.0


class StepLog(abc.ABC):
    """A step's bookkeeping in one round trip at each end (a worker's hot path), for
    what JobStore, ProgressLog and Leases do one command at a time: the same writes,
    the same guarantees (each is idempotent, so a retried batch changes nothing)."""

    @abc.abstractmethod
    def begin(
        self,
        job_id: str,
        key: str,
        *,
        owner: str,
        lease_ttl_s: float,
        deadline: float,
        start: Event | None,
        once: str,
        ttl: int,
        prior_keys: list[str],
    ) -> StepStart:
        """Read the status, mark the job running, move its deadline, append the start
        event (once), take the step's lease (SET NX) and only then read its stored
        output (so an output stored before the lease was free is always seen), and
        read the prior steps' outputs."""

    @abc.abstractmethod
    def finish(
        self,
        job_id: str,
        key: str,
        payload: str,
        *,
        owner: str,
        ttl: int,
        end: Event | None,
        once: str,
        item: CandidateEnd | None,
        settle: Sequence[Settlement] = (),
        batch_id: str | None = None,
    ) -> str:
        """Store the output (SET NX: the first one stands, and is returned), add its
        cost to the job's spend when it was stored (``storage.spend``), and its cost,
        calls and tokens to its batch's counters (``batch_id``: the job's batch), release
        the lease if still ours, and record the end: the stage's end event (once) or the
        fan-out item's count. ``settle``: the process's quota settlements now due (the
        step's call just ended): they ride with this round trip."""


@dataclass(frozen=True)
class Storage:
    """A store's parts, sharing one connection pool."""

    jobs: JobStore
    progress: ProgressLog
    leases: Leases
    presence: Presence
    usage: UsageLog
    manual: ManualAnswers
    steps: StepLog  # a step's bookkeeping: the worker's only path
    batches: Batches  # batch records, content and idempotency addresses
    quotas: Quotas | None = None  # the providers' allowances (workers only)
    signals: Signals | None = None  # job ends announced to the steps in flight (workers)

    def close(self) -> None:
        self.jobs.close()
