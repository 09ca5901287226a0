"""The orchestrator's API: submit, inspect, wait, cancel. Clients and the CLI use only this."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from typing import Any, cast

from celery import Celery
from celery._state import _set_task_join_will_block, task_join_will_block
from celery.canvas import Signature
from celery.result import AsyncResult

from vpsweb.config import AppConfig, load_config
from vpsweb.models import TranslationOutput, TranslationRequest
from vpsweb.orchestrator import keys
from vpsweb.orchestrator.canvas import build_canvas, task_ids
from vpsweb.orchestrator.progress import (
    ProgressEvent,
    ProgressReader,
    ProgressRecorder,
    ProgressSnapshot,
    StreamBatch,
)
from vpsweb.orchestrator.store import TERMINAL, JobRecord, JobStatus, JobStore
from vpsweb.plan import build_plan


class JobNotFound(KeyError):
    def __init__(self, job_id: str) -> None:
        super().__init__(job_id)
        self.job_id = job_id

    def __str__(self) -> str:
        return f"job {self.job_id} not found (wrong id, another Redis, or expired)"


def new_job_id() -> str:
    return uuid.uuid4().hex[:12]


def _send_without_result_subscription(canvas: Signature) -> None:
    """Send the canvas without subscribing to Celery's result channels.

    The Redis result backend subscribes the sender to every task it sends so that
    AsyncResult.get() can wait; vpsweb never joins Celery results (it follows the
    job through its own Redis keys), and thousands of idle subscriptions would only
    cost the submitter memory and Redis pub/sub traffic. Celery skips them when a
    join "would block", which is the flag set here for the duration of the send.
    """
    previous = task_join_will_block()
    _set_task_join_will_block(True)
    try:
        result = canvas.apply_async()
    finally:
        _set_task_join_will_block(previous)
    # Detach the AsyncResults from the backend: their __del__ would otherwise try to
    # unsubscribe through Redis later, possibly after an embedded Redis has stopped.
    stack = [result]
    while stack:
        node = stack.pop()
        if node is None:
            continue
        if isinstance(node, AsyncResult):
            node.backend = None
        stack.append(node.parent)
        stack.extend(getattr(node, "results", None) or [])


class Orchestrator:
    """Owns the canvas and the Redis keys.

    Options (keyword-only):
      config: the AppConfig used to validate and plan jobs (default: load_config()).
      app: a Celery app to send with (default: one built for ``redis_url``).
    """

    def __init__(
        self, redis_url: str, *, config: AppConfig | None = None, app: Celery | None = None
    ) -> None:
        from vpsweb.workers.app import create_app  # deferred: avoids an import cycle

        self.redis_url = redis_url
        self.config = config or load_config()
        self.app = app or create_app(redis_url, self.config)
        self.store = JobStore.from_url(redis_url)
        self.recorder = ProgressRecorder(self.store.redis)
        self.reader = ProgressReader(self.store.redis)

    def submit(
        self, request: TranslationRequest | dict[str, Any], *, offline: bool | None = None
    ) -> str:
        """Validate (RequestInvalid before anything touches Redis), register, enqueue."""
        plan = build_plan(request, self.config, job_id=new_job_id(), offline=offline)
        canvas = build_canvas(self.app, plan)
        self.store.create(plan)
        self.recorder.emit(
            plan.job_id,
            event="job_queued",
            percent=0,
            ttl=plan.retention_s,
            status="queued",
            message=f"queued with {plan.parallel_count} candidate(s), mode "
            f"{plan.workflow_mode.value}",
        )
        try:
            _send_without_result_subscription(canvas)
        except Exception as exc:
            self._end(plan.job_id, JobStatus.FAILED, f"could not enqueue: {exc}")
            raise
        return plan.job_id

    def get(self, job_id: str) -> JobRecord:
        record = self.store.get(job_id)
        if record is None:
            raise JobNotFound(job_id)
        return record

    def output(self, job_id: str) -> TranslationOutput | None:
        return self.store.load_result(job_id)

    def wait(self, job_id: str, timeout: float | None = None) -> JobRecord:
        """Block until the job ends; TimeoutError after ``timeout`` seconds."""
        deadline = None if timeout is None else time.monotonic() + timeout
        last = "0-0"
        while True:
            status = self.store.status(job_id)
            if status is None:
                raise JobNotFound(job_id)
            if status in TERMINAL:
                return self.get(job_id)
            wait_ms = 1000
            if deadline is not None:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(f"job {job_id} still {status.value} after {timeout:g}s")
                wait_ms = max(1, min(wait_ms, int(remaining * 1000)))
            batch = cast(
                StreamBatch,
                self.store.redis.xread({keys.events(job_id): last}, block=wait_ms, count=100),
            )
            for _name, entries in batch or []:
                last = entries[-1][0]

    def cancel(self, job_id: str) -> bool:
        """Stop the job: revoke what has not run; running tasks stop before their next
        LLM call. Returns False if the job had already ended."""
        record = self.get(job_id)
        if record.status in TERMINAL:
            return False
        changed = self._end(job_id, JobStatus.CANCELLED, "cancelled by user")
        self.app.control.revoke(task_ids(record.plan))
        return changed

    def _end(self, job_id: str, status: JobStatus, reason: str) -> bool:
        record = self.get(job_id)
        ttl = record.plan.retention_s
        error = None if status is JobStatus.CANCELLED else reason
        if not self.store.transition(job_id, status, ttl, error=error):
            return False
        self.recorder.finished(job_id, status.value, ttl, error=error or "", message=reason)
        return True

    def _require(self, job_id: str) -> None:
        if self.store.status(job_id) is None:
            raise JobNotFound(job_id)

    def progress(self, job_id: str) -> ProgressSnapshot:
        self._require(job_id)
        return self.reader.snapshot(job_id)

    def events(self, job_id: str, *, timeout: float | None = None) -> Iterator[ProgressEvent]:
        self._require(job_id)
        return self.reader.events(job_id, timeout=timeout)

    def recent(self, limit: int = 20) -> list[JobRecord]:
        records = (self.store.get(j) for j in self.store.recent_jobs(limit))
        return [r for r in records if r is not None]

    def close(self) -> None:
        self.store.redis.close()
        self.app.close()
