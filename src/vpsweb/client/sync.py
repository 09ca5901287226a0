"""The Python client: ``Client.submit(...) -> Job``; ``Job.events()``; ``Job.result()``.

A client talks only to the state store: it validates a request, writes the job
and a submission entry, and follows the job's event stream. The workers'
dispatchers send the Celery canvas. Any process with the Redis URL can follow
any job, so a job submitted on one machine can be watched from another.
"""

from __future__ import annotations

import contextlib
import logging
import re
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

from vpsweb import settings
from vpsweb.client.batch import Requests, plan_batch
from vpsweb.config import AppConfig, load_config
from vpsweb.domain.admission import require_fits
from vpsweb.domain.manual_answers import PendingPrompt, check_answer, manual_keys
from vpsweb.domain.models import StrategyOverrides, Totals, TranslationRequest, WorkflowMode
from vpsweb.domain.plan import JobPlan, build_plan
from vpsweb.domain.progress import EventKind, ProgressEvent, ProgressSnapshot
from vpsweb.domain.result import TranslationOutput
from vpsweb.errors import (
    AnswerRefused,
    AnswerRejected,
    JobCancelled,
    JobFailed,
    JobNotFound,
    ParseError,
    ResultExpired,
    VpswebError,
)
from vpsweb.orchestrator.lifecycle import cancel_job, spent, stall_job
from vpsweb.stages.table import stage as stage_named
from vpsweb.stages.table import stage_bounds
from vpsweb.storage import Event, JobRecord, JobStatus, Storage, connect

_JOB_ID = re.compile(r"^[0-9a-f]{12}$")
CHECK_EVERY_S = 3.0  # how often a quiet follower checks for workers and its deadline
log = logging.getLogger("vpsweb")


def valid_job_id(job_id: str) -> bool:
    """Ids are 12 hex digits: anything else never reaches Redis."""
    return bool(_JOB_ID.match(job_id))


def new_job_id() -> str:
    return uuid.uuid4().hex[:12]


def plan_job(
    request: TranslationRequest | dict[str, Any],
    config: AppConfig,
    *,
    offline: bool | None = None,
    manual: bool | list[str] = False,
) -> JobPlan:
    """Validate and plan a request with a fresh job id, touching no store (RequestInvalid
    if bad or too large for a step's model); ``Client.submit_plan`` submits it, restarting
    its clock."""
    plan = build_plan(request, config, job_id=new_job_id(), offline=offline, manual=manual)
    return require_fits(plan, config)


def _request(
    *,
    poem: str,
    source_lang: str,
    target_lang: str,
    parallel_count: int | None,
    workflow_mode: WorkflowMode | str,
    title: str,
    author: str,
    strategy: StrategyOverrides | dict[str, Any] | None,
    background_briefing: str | None,
) -> dict[str, Any]:
    request: dict[str, Any] = {
        "poem": poem,
        "source_lang": source_lang,
        "target_lang": target_lang,
        "parallel_count": parallel_count,
        "workflow_mode": workflow_mode,
        "title": title,
        "author": author,
        "background_briefing": background_briefing,
    }
    if strategy is not None:
        request["strategy"] = (
            strategy.model_dump() if isinstance(strategy, StrategyOverrides) else strategy
        )
    return request


class Job:
    """A handle on a submitted job; cheap, and re-creatable anywhere from its id."""

    def __init__(self, client: Client, job_id: str) -> None:
        self._client = client
        self.id = job_id

    def __repr__(self) -> str:
        return f"Job({self.id!r})"

    def record(self) -> JobRecord:
        return self._client.record(self.id)

    def status(self) -> JobStatus:
        return self.record().status

    def progress(self) -> ProgressSnapshot:
        self.record()
        return self._client.storage.progress.snapshot(self.id)

    def events(self, timeout: float | None = None) -> Iterator[ProgressEvent]:
        """Every event from the beginning, then live ones; ends after the terminal event.
        Raises TimeoutError if ``timeout`` seconds pass first.

        While the job waits, the follower also says (a ``warning`` event of its own,
        not stored) when no live worker consumes a queue the job needs, and withdraws
        it (status ``resolved``) when one does. A job past its deadline with nobody
        left to end it is failed as stalled by the follower itself, so following
        always ends; a briefly unreachable store is waited for.
        """
        self.record()
        watch = _Watch(self._client, self.id)
        stream = self._client.storage.progress.events(self.id, timeout=timeout, on_idle=watch)
        return self._watched(stream, watch)

    @staticmethod
    def _watched(stream: Iterator[ProgressEvent], watch: _Watch) -> Iterator[ProgressEvent]:
        for event in stream:
            if watch.said:  # work goes on (or ended): are the warnings still true?
                yield from watch(force=event.terminal)
            yield event

    def wait(self, timeout: float | None = None) -> JobRecord:
        """Block until the job ends (TimeoutError after ``timeout`` seconds); the
        follower's warnings (no worker) go to the ``vpsweb`` logger."""
        for event in self.events(timeout=timeout):
            if event.event is EventKind.WARNING and event.status != "resolved":
                log.warning("job %s: %s", self.id, event.message)
            elif event.event is EventKind.WARNING:
                log.info("job %s: resolved: %s", self.id, event.message)
        return self.record()

    def result(self, timeout: float | None = None) -> TranslationOutput:
        """Wait for the job and return its output; JobFailed / JobCancelled otherwise."""
        record = self.wait(timeout)
        if record.status is JobStatus.FAILED:
            raise JobFailed(record, spent=self.spent())
        if record.status is JobStatus.CANCELLED:
            raise JobCancelled(record)
        raw = self._client.storage.jobs.load_result(self.id)
        if raw is None:
            raise ResultExpired(record, f"job {self.id} succeeded but its result has expired")
        return TranslationOutput.model_validate_json(raw)

    def cancel(self) -> bool:
        """Stop the job: no step makes another LLM call. False if it had already ended."""
        return self._client.cancel(self.id)

    def pending(self) -> list[PendingPrompt]:
        """The prompts of a manual job now waiting for a person, in workflow order."""
        record = self.record()
        if record.status.terminal:
            return []
        raw = self._client.storage.manual.pending(self.id)
        order = {
            k: i
            for i, k in enumerate(
                manual_keys(record.plan.manual_steps, lambda s: s.keys(record.plan))
            )
        }
        prompts = [PendingPrompt.model_validate_json(v) for v in raw.values()]
        return sorted(prompts, key=lambda p: order.get(p.key, len(order)))

    def answer(self, key: str, text: str) -> bool:
        """Give a person's answer to the pending prompt ``key``. True when it was the
        stage's last answer and the job moves on. AnswerRejected (nothing changes, the
        prompt stays pending) if the stage cannot use it; AnswerRefused if ``key`` is not
        waiting (unknown, already answered, or the job ended)."""
        record = self.record()
        if record.status.terminal:
            raise AnswerRefused(f"job {self.id} has {record.status.value}: it takes no answers")
        raw = self._client.storage.manual.pending(self.id).get(key)
        if raw is None:
            waiting = ", ".join(p.key for p in self.pending()) or "none"
            raise AnswerRefused(
                f"{key!r} is not waiting for an answer in job {self.id} (waiting: {waiting})"
            )
        prompt = PendingPrompt.model_validate_json(raw)
        s = stage_named(prompt.stage)
        try:
            check_answer(s, text, prompt.text())
        except ParseError as exc:
            raise AnswerRejected(
                f"the answer to {key} cannot be used: {exc}", missing=exc.missing
            ) from None
        plan = record.plan
        outcome = self._client.storage.manual.answer(
            self.id,
            key,
            text,
            stage_keys=s.keys(plan),
            deadline=plan.deadline_after(s.name, time.time()),
            ttl=plan.retention_s,
        )
        if outcome not in ("stored", "resumed"):
            raise AnswerRefused(f"{key!r} in job {self.id}: {outcome.replace('_', ' ')}")
        start, _ = stage_bounds(plan.progress_weights, s.name)
        fields = {
            "stage": s.display_name,
            "status": "answered",
            "key": key,
            "message": f"answer to {key} received",
        }
        self._client.storage.progress.emit(
            self.id, Event(EventKind.ANSWER_RECEIVED, start, fields), plan.retention_s
        )
        return outcome == "resumed"

    def spent(self) -> Totals:
        """Tokens, calls and cost billed so far: every attempt of every step, failed
        ones included (a failed or cancelled job still cost this much)."""
        record = self.record()
        if record.status is JobStatus.SUCCEEDED:
            return self.result(timeout=5).totals  # its steps live in the result now
        return spent(self._client.storage, record.plan)


class _Watch:
    """What a follower checks while its job is quiet: every few seconds, whether a live
    worker consumes each queue the job needs (a warning when that changes for the
    worse), and whether the job is past its deadline (then it ends it as stalled)."""

    def __init__(self, client: Client, job_id: str) -> None:
        self.client, self.job_id = client, job_id
        self.last = 0.0
        self.said: set[str] = set()

    def __call__(self, force: bool = False) -> list[ProgressEvent]:
        if not force and time.monotonic() - self.last < CHECK_EVERY_S:
            return []
        self.last = time.monotonic()
        with contextlib.suppress(VpswebError):
            if self.client.storage.jobs.status(self.job_id) is JobStatus.WAITING:
                return []  # a person is at work: no queue needs a worker now
            stall_job(self.client.storage, self.job_id)
            problems = set(self.client.missing_workers())
            new, gone, self.said = problems - self.said, self.said - problems, problems
            return [
                *(ProgressEvent(event=EventKind.WARNING, message=m) for m in sorted(new)),
                *(
                    ProgressEvent(event=EventKind.WARNING, message=m, status="resolved")
                    for m in sorted(gone)
                ),
            ]
        return []


class Client:
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

    @property
    def config(self) -> AppConfig:
        if self._config is None:
            self._config = load_config()
        return self._config

    def plan(
        self,
        request: TranslationRequest | dict[str, Any],
        *,
        offline: bool | None = None,
        manual: bool | list[str] = False,
    ) -> JobPlan:
        """Validate and plan a request without submitting it (RequestInvalid if bad)."""
        return plan_job(request, self.config, offline=offline, manual=manual)

    def submit_plan(self, plan: JobPlan) -> Job:
        """Submit a plan made by ``plan`` / ``plan_job``. The job's clock starts now,
        not when it was planned (an embedded run starts its cluster in between)."""
        plan = plan.model_copy(update={"created_at": datetime.now(UTC)})
        self.storage.jobs.create([plan])
        return Job(self, plan.job_id)

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
        offline: bool | None = None,
        manual: bool | list[str] = False,
    ) -> Job:
        """Validate and enqueue; raises RequestInvalid before anything is enqueued.
        ``manual``: True, or the steps (e.g. ``["evaluation"]``) a person answers
        through ``Job.pending()`` / ``Job.answer()`` instead of an API."""
        request = _request(
            poem=poem,
            source_lang=source_lang,
            target_lang=target_lang,
            parallel_count=parallel_count,
            workflow_mode=workflow_mode,
            title=title,
            author=author,
            strategy=strategy,
            background_briefing=background_briefing,
        )
        return self.submit_plan(self.plan(request, offline=offline, manual=manual))

    def submit_many(self, requests: Requests, *, offline: bool | None = None) -> list[Job]:
        """A batch, all or nothing: every request is validated and planned first
        (RequestInvalid names each bad one; nothing is enqueued), then all jobs are
        written in one pipelined MULTI: one round trip for 500 poems, not 500."""
        plans = plan_batch(requests, self.config, offline=offline)
        self.storage.jobs.create(plans)
        return [Job(self, p.job_id) for p in plans]

    def record(self, job_id: str) -> JobRecord:
        """JobNotFound for an id that is malformed or unknown to this store."""
        record = self.storage.jobs.get(job_id) if _JOB_ID.match(job_id) else None
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
        workers = self.live_workers()
        if not workers:
            return [
                "no worker is running against this Redis: the job waits in its queue. "
                f"Start one with `vpsweb worker` ({settings.REDIS_URL_ENV} set)"
            ]
        consumed = {q for queues in workers.values() for q in queues}
        stages: dict[str, list[str]] = {}
        for stage, queue in self.config.routing().items():
            stages.setdefault(queue, []).append(stage)
        return [
            f"no live worker consumes queue {queue} ({', '.join(names)}): start one with "
            f"`vpsweb worker --queues {queue}` (or `vpsweb worker` for every queue)"
            for queue, names in sorted(stages.items())
            if queue not in consumed
        ]

    def recent(self, limit: int = 20) -> list[JobRecord]:
        records = (self.storage.jobs.get(j) for j in self.storage.jobs.recent_jobs(limit))
        return [r for r in records if r is not None]

    def close(self) -> None:
        self.storage.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
