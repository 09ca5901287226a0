"""The Python client: ``Client.submit(...) -> Job``; ``Job.events()``; ``Job.result()``.

A client talks only to the state store: it validates a request, writes the job
and a submission entry, and follows the job's event stream. The workers'
dispatchers send the Celery canvas. Any process with the Redis URL can follow
any job, so a job submitted on one machine can be watched from another.

What this client decides is ``vpsweb.client.core``'s (shared with ``AsyncClient``,
which offers the same methods as coroutines); here are only the store's reads and
writes.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

from vpsweb import settings
from vpsweb.client.batch_plans import Entries, Requests, estimate_entries
from vpsweb.client.batching import single
from vpsweb.client.core import (
    Follower,
    Planner,
    answer_accepted,
    check_answer,
    estimate_request,
    log_warning,
    missing_workers,
    needs_spent,
    new_job_id,
    not_lower,
    pending_prompts,
    plan_job,
    request_of,
    result_of,
    valid_job_id,
)
from vpsweb.client.sync_batch import Batch, batch_record, submit_batch
from vpsweb.config import AppConfig
from vpsweb.domain.batch import BatchEstimate, BatchRecord
from vpsweb.domain.estimate import JobEstimate
from vpsweb.domain.glossary import Glossary
from vpsweb.domain.manual_answers import PendingPrompt
from vpsweb.domain.models import (
    Priority,
    StragglerPolicy,
    StrategyOverrides,
    Totals,
    WorkflowMode,
)
from vpsweb.domain.plan import JobPlan
from vpsweb.domain.progress import ProgressEvent, ProgressSnapshot
from vpsweb.domain.result import TranslationOutput
from vpsweb.errors import JobCancelled, JobFailed, JobNotFound, VpswebError
from vpsweb.orchestrator.lifecycle import cancel_job, spent, stall_job
from vpsweb.storage import JobRecord, JobStatus, Storage, connect

# JobCancelled and JobFailed: what ``Job.result`` raises, importable from here too.
__all__ = [
    "Client",
    "Job",
    "JobCancelled",
    "JobFailed",
    "new_job_id",
    "plan_job",
    "valid_job_id",
]
log = logging.getLogger("vpsweb")


class Job:
    """A handle on a submitted job; cheap, and re-creatable anywhere from its id."""

    def __init__(self, client: Client, job_id: str) -> None:
        self._client = client
        self.id = job_id
        self._highest = 0.0

    def __repr__(self) -> str:
        return f"Job({self.id!r})"

    def record(self) -> JobRecord:
        return self._client.record(self.id)

    def status(self) -> JobStatus:
        return self.record().status

    def progress(self) -> ProgressSnapshot:
        """The latest snapshot; its percentage never lower than this handle read before
        (a read can reach a stale server: an old primary back for a moment after a
        failover, until the Sentinels demote it)."""
        self.record()
        snap = self._client.storage.progress.snapshot(self.id)
        snap, self._highest = not_lower(snap, self._highest)
        return snap

    def percent(self) -> float:
        """The job's progress now (0-100, never lower than before)."""
        return self.progress().progress_percent

    def events(
        self, timeout: float | None = None, *, start: str = "0-0"
    ) -> Iterator[ProgressEvent]:
        """Every event from ``start`` (the beginning), then live ones; ends after the
        terminal event. Raises TimeoutError if ``timeout`` seconds pass first.

        While the job waits, the follower also says (a ``warning`` event of its own,
        not stored) when no live worker consumes a queue the job needs, and withdraws
        it (status ``resolved``) when one does. A job past its deadline with nobody
        left to end it is failed as stalled by the follower itself, so following
        always ends; a briefly unreachable store is waited for.
        """
        self.record()
        follower = Follower(self.id, lambda: self._client.config.routing())
        stream = self._client.storage.progress.events(
            self.id, timeout=timeout, start=start, on_idle=lambda: self._look(follower)
        )
        return self._followed(stream, follower)

    def _followed(
        self, stream: Iterator[ProgressEvent], follower: Follower
    ) -> Iterator[ProgressEvent]:
        for event in stream:
            yield from self._look(follower, event)
            yield event

    def _look(self, follower: Follower, event: ProgressEvent | None = None) -> list[ProgressEvent]:
        """The follower's look at the cluster, when it says one is due."""
        if not follower.begin_check(time.monotonic(), event):
            return []
        storage = self._client.storage
        with contextlib.suppress(VpswebError):
            status = storage.jobs.status(self.id)
            if follower.stalled(status, storage.jobs.deadline(self.id), time.time()):
                stall_job(storage, self.id)
            live = self._client.live_workers() if follower.wants_workers(status) else None
            return follower.checked(status, live)
        return []

    def wait(self, timeout: float | None = None) -> JobRecord:
        """Block until the job ends (TimeoutError after ``timeout`` seconds); the
        follower's warnings (no worker) go to the ``vpsweb`` logger."""
        for event in self.events(timeout=timeout):
            log_warning(self.id, event, log.log)
        return self.record()

    def result(self, timeout: float | None = None) -> TranslationOutput:
        """Wait for the job and return its output; JobFailed / JobCancelled otherwise."""
        record = self.wait(timeout)
        cost = self.spent() if needs_spent(record) else None
        raw = self._client.load_result(self.id) if record.status is JobStatus.SUCCEEDED else None
        return result_of(record, raw, cost)

    def cancel(self) -> bool:
        """Stop the job: no step makes another LLM call. False if it had already ended."""
        return self._client.cancel(self.id)

    def pending(self) -> list[PendingPrompt]:
        """The prompts of a manual job now waiting for a person, in workflow order."""
        record = self.record()
        if record.status.terminal:
            return []
        return pending_prompts(record, self._client.storage.manual.pending(self.id))

    def answer(self, key: str, text: str) -> bool:
        """Give a person's answer to the pending prompt ``key``. True when it was the
        stage's last answer and the job moves on. AnswerRejected (nothing changes, the
        prompt stays pending) if the stage cannot use it; AnswerRefused if ``key`` is not
        waiting (unknown, already answered, or the job ended)."""
        record, manual = self.record(), self._client.storage.manual
        raw = None if record.status.terminal else manual.pending(self.id).get(key)
        waiting = [] if raw is not None else [p.key for p in self.pending()]
        checked = check_answer(record, key, text, raw, waiting, time.time())
        outcome = manual.answer(
            self.id,
            key,
            text,
            stage_keys=checked.stage_keys,
            deadline=checked.deadline,
            ttl=checked.ttl,
        )
        moved = answer_accepted(self.id, key, outcome)
        self._client.storage.progress.emit(self.id, checked.event, checked.ttl)
        return moved

    def spent(self) -> Totals:
        """Tokens, calls and cost billed so far: every attempt of every step, failed
        ones included (a failed or cancelled job still cost this much)."""
        record = self.record()
        if record.status is JobStatus.SUCCEEDED:
            return self.result(timeout=5).totals  # its steps live in the result now
        return spent(self._client.storage, record.plan)


class Client(Planner):
    """Submit and follow translation jobs.

    Options (keyword-only):
      redis_url: the cluster's state store (jobs, progress, results).
      config: the AppConfig used to validate and plan requests (default: load_config(),
        read on first use).
    """

    def __init__(self, *, redis_url: str, config: AppConfig | None = None) -> None:
        self._config = config
        self.storage: Storage = connect(redis_url)

    @classmethod
    def from_env(cls, *, config: AppConfig | None = None) -> Client:
        how = "pass Client(redis_url=...)"  # Python code has no --redis-url
        return cls(redis_url=settings.require_redis_url("the client", instead=how), config=config)

    def submit_plan(self, plan: JobPlan) -> Job:
        """Submit a plan made by ``plan`` / ``plan_job``. The job's clock starts now,
        not when it was planned (an embedded run starts its cluster in between). A
        request with an ``idempotency_key`` seen before (within the retention, its job
        still stored) returns that job and writes nothing, atomically: submissions
        racing with one key make one job."""
        plan = plan.model_copy(update={"created_at": datetime.now(UTC)})
        if plan.request.idempotency_key is None:
            self.storage.jobs.create([plan])
            return Job(self, plan.job_id)
        addresses, decide = single(plan)
        return Job(self, self.storage.batches.submit(addresses, decide).jobs[0])

    def submit(
        self,
        *,
        poem: str,
        source_lang: str,
        target_lang: str,
        parallel_count: int | None = None,
        workflow_mode: WorkflowMode | str = WorkflowMode.HYBRID,
        title: str = "",
        author: str = "",
        strategy: StrategyOverrides | dict[str, Any] | None = None,
        background_briefing: str | None = None,
        straggler: StragglerPolicy | dict[str, Any] | str | None = None,
        priority: Priority | str | None = None,
        max_cost: float | None = None,
        idempotency_key: str | None = None,
        glossary: Glossary | dict[str, Any] | None = None,
        offline: bool | None = None,
        manual: bool | list[str] = False,
    ) -> Job:
        """Validate and enqueue; raises RequestInvalid before anything is enqueued.
        The request's fields are ``TranslationRequest``'s. ``manual``: True, or the
        steps (e.g. ``["evaluation"]``) a person answers through ``Job.pending()`` /
        ``Job.answer()`` instead of an API. ``glossary``: a ``Glossary`` (from a file:
        ``vpsweb.files.glossary_file.read_glossary``) or its data, e.g. ``{"terms":
        {"长安": "Chang'an"}, "mode": "strict"}``."""
        request = request_of(locals())
        return self.submit_plan(self.plan(request, offline=offline, manual=manual))

    def estimate(
        self,
        *,
        poem: str,
        source_lang: str,
        target_lang: str,
        parallel_count: int | None = None,
        workflow_mode: WorkflowMode | str = WorkflowMode.HYBRID,
        title: str = "",
        author: str = "",
        strategy: StrategyOverrides | dict[str, Any] | None = None,
        background_briefing: str | None = None,
        straggler: StragglerPolicy | dict[str, Any] | str | None = None,
        priority: Priority | str | None = None,
        max_cost: float | None = None,
        idempotency_key: str | None = None,
        glossary: Glossary | dict[str, Any] | None = None,
        offline: bool | None = None,
        manual: bool | list[str] = False,
    ) -> JobEstimate:
        """What ``submit`` with these arguments would cost: calls, tokens and cost per
        step and for the job, expected and worst case (``vpsweb.domain.estimate``).
        Enqueues nothing and reads no store; RequestInvalid as ``submit`` raises it,
        except that a max_cost below the estimate is not refused here (compare
        ``estimate.max_cost``, or see ``budget_problems(estimate)``)."""
        request = request_of(locals())
        return estimate_request(request, self.config, offline=offline, manual=manual)

    def submit_many(self, requests: Requests, *, offline: bool | None = None) -> list[Job]:
        """A batch, all or nothing: every request is validated and planned first
        (RequestInvalid names each bad one; nothing is enqueued), then all jobs are
        written in a few pipelined round trips for 500 poems, not 500. Each request
        makes a job (``submit_batch(..., force=True).jobs``)."""
        return self.submit_batch(requests, force=True, offline=offline).jobs

    def submit_batch(
        self,
        requests: Entries,
        *,
        name: str = "",
        budget: float | None = None,
        force: bool = False,
        offline: bool | None = None,
    ) -> Batch[Job]:
        """Submit a collection as one batch: every entry (a request, its fields as a
        dict, or a ``BatchEntry``: name, where, request) validated and planned first
        (RequestInvalid names each bad one by where it came from; nothing is enqueued),
        then its new jobs written and submitted with its record (at most four round
        trips, see storage.redis.batches), at batch priority. An entry whose content key
        (the poem, the request's fields and the plan's models) points at a job that
        succeeded or is queued or running reuses it and pays nothing (``force``: new
        jobs regardless); an entry whose idempotency key was seen reuses that job.
        ``budget`` caps the batch's spend (in its models' one currency): refused up
        front when the estimated cost of the new jobs is above it, and no job makes an
        LLM call once the spend reaches it."""
        record = submit_batch(
            self, requests, name=name, budget=budget, force=force, offline=offline
        )
        return Batch(self, record, self._job)

    def batch(self, batch_id: str) -> Batch[Job]:
        """A handle on an existing batch; BatchNotFound if the store does not know it."""
        return Batch(self, batch_record(self, batch_id), self._job)

    def batches(self, limit: int = 20) -> list[BatchRecord]:
        """The newest batches' records, newest first."""
        return self.storage.batches.recent(limit)

    def estimate_batch(
        self, requests: Entries, *, budget: float | None = None, offline: bool | None = None
    ) -> BatchEstimate:
        """What ``submit_batch`` of these entries would cost at most (every entry
        counted: reuse only lowers it), summed from each one's ``estimate``; reads no
        store. ``budget_problems(estimate)`` (``vpsweb.domain.batch``) says whether a
        submission with that budget would be refused."""
        return estimate_entries(requests, self.config, offline=offline, budget=budget)

    def _job(self, job_id: str) -> Job:
        return Job(self, job_id)

    def record(self, job_id: str) -> JobRecord:
        """JobNotFound for an id that is malformed or unknown to this store."""
        record = self.storage.jobs.get(job_id) if valid_job_id(job_id) else None
        if record is None:
            raise JobNotFound(job_id)
        return record

    def get(self, job_id: str) -> Job:
        """A handle on an existing job; JobNotFound if the store does not know it."""
        self.record(job_id)
        return Job(self, job_id)

    def cancel(self, job_id: str) -> bool:
        record = self.record(job_id)
        if record.status.terminal:
            return False
        return cancel_job(self.storage, job_id, record.plan)

    def live_workers(self) -> dict[str, list[str]]:
        """Worker name -> queues, for every worker whose heartbeat is current."""
        return self.storage.presence.live()

    def missing_workers(self) -> list[str]:
        """What no live worker would do for a job now, each with how to fix it."""
        return missing_workers(self.live_workers(), self.config.routing())

    def load_result(self, job_id: str) -> str | None:
        """The stored output JSON of a job that succeeded (None: none, or expired)."""
        return self.storage.jobs.load_result(job_id)

    def recent(self, limit: int = 20) -> list[JobRecord]:
        records = (self.storage.jobs.get(j) for j in self.storage.jobs.recent_jobs(limit))
        return [r for r in records if r is not None]

    def close(self) -> None:
        self.storage.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
