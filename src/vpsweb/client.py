"""The Python client: ``Client.submit(...) -> Job``; ``Job.events()``; ``Job.result()``.

Any process with the Redis URL can follow any job, so a job submitted on one
machine can be watched and collected from another.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

from vpsweb.config import AppConfig
from vpsweb.models import StrategyOverrides, TranslationOutput, TranslationRequest, WorkflowMode
from vpsweb.orchestrator.api import JobNotFound, Orchestrator
from vpsweb.orchestrator.progress import ProgressEvent, ProgressSnapshot
from vpsweb.orchestrator.store import JobRecord, JobStatus
from vpsweb.plan import RequestInvalid
from vpsweb.workers.app import REDIS_URL_ENV

__all__ = [
    "Client",
    "Job",
    "JobCancelled",
    "JobError",
    "JobFailed",
    "JobNotFound",
    "RequestInvalid",
]


class JobError(Exception):
    """A job ended without a translation."""

    def __init__(self, record: JobRecord, message: str) -> None:
        self.record = record
        super().__init__(message)


class JobFailed(JobError):
    """The job failed; ``stage`` and ``cause`` say where and why."""

    def __init__(self, record: JobRecord) -> None:
        self.stage = record.error_stage or "unknown stage"
        self.cause = record.error or "no cause recorded"
        super().__init__(record, f"job {record.job_id} failed in {self.stage}: {self.cause}")


class JobCancelled(JobError):
    def __init__(self, record: JobRecord) -> None:
        super().__init__(record, f"job {record.job_id} was cancelled; it has no result")


class Job:
    """A handle on a submitted job; cheap, and re-creatable anywhere from its id."""

    def __init__(self, orchestrator: Orchestrator, job_id: str) -> None:
        self._orch = orchestrator
        self.id = job_id

    def __repr__(self) -> str:
        return f"Job({self.id!r})"

    def record(self) -> JobRecord:
        return self._orch.get(self.id)

    def status(self) -> JobStatus:
        return self.record().status

    def progress(self) -> ProgressSnapshot:
        return self._orch.progress(self.id)

    def events(self, timeout: float | None = None) -> Iterator[ProgressEvent]:
        """Every event from the beginning, then live ones; ends after the terminal event.
        Raises TimeoutError if ``timeout`` seconds pass first."""
        return self._orch.events(self.id, timeout=timeout)

    def result(self, timeout: float | None = None) -> TranslationOutput:
        """Wait for the job and return its output; JobFailed / JobCancelled otherwise."""
        record = self._orch.wait(self.id, timeout=timeout)
        if record.status is JobStatus.FAILED:
            raise JobFailed(record)
        if record.status is JobStatus.CANCELLED:
            raise JobCancelled(record)
        output = self._orch.output(self.id)
        if output is None:
            raise JobError(record, f"job {self.id} succeeded but its result has expired")
        return output

    def cancel(self) -> bool:
        return self._orch.cancel(self.id)


class Client:
    """Submit and follow translation jobs.

    Options (keyword-only):
      redis_url: the cluster's Redis (broker, result store and job registry).
      config: the AppConfig used to validate requests (default: load_config()).
    """

    def __init__(self, *, redis_url: str, config: AppConfig | None = None) -> None:
        self._orch = Orchestrator(redis_url, config=config)

    @classmethod
    def from_env(cls, *, config: AppConfig | None = None) -> Client:
        url = os.environ.get(REDIS_URL_ENV)
        if not url:
            raise RuntimeError(
                f"{REDIS_URL_ENV} is not set; point it at the cluster's Redis, "
                "e.g. redis://:password@host:6379/0"
            )
        return cls(redis_url=url, config=config)

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
    ) -> Job:
        """Validate and enqueue; raises RequestInvalid before anything is enqueued."""
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
        return Job(self._orch, self._orch.submit(request, offline=offline))

    def submit_request(self, request: TranslationRequest, *, offline: bool | None = None) -> Job:
        return Job(self._orch, self._orch.submit(request, offline=offline))

    def get(self, job_id: str) -> Job:
        """A handle on an existing job; JobNotFound if Redis does not know it."""
        self._orch.get(job_id)
        return Job(self._orch, job_id)

    def cancel(self, job_id: str) -> bool:
        return self._orch.cancel(job_id)

    def recent(self, limit: int = 20) -> list[JobRecord]:
        return self._orch.recent(limit)

    def close(self) -> None:
        self._orch.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
