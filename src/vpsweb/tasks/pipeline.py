"""The five pipeline tasks. Each decodes its JSON arguments, runs one step through
vpsweb.orchestrator.execution, and returns a small JSON reference.

Cancellation raises Ignore so the chain stops without a FAILURE entry; a stage
failure marks the job failed (stage and cause) and re-raises so that Celery and
Flower show it too.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from celery import Task, shared_task
from celery.exceptions import Ignore

from vpsweb.llm.errors import Cancelled
from vpsweb.models import StepName
from vpsweb.orchestrator import execution
from vpsweb.orchestrator.execution import JobGone
from vpsweb.stages import StageFailed


class StepFailed(Exception):
    """What Celery records for a failed step: one plain message, JSON-serialisable."""


def _run(task: Task, job_id: str, stage: str, step: Callable[[str], dict[str, Any]]) -> Any:
    url = task.app.conf.broker_url
    try:
        return step(url)
    except (Cancelled, JobGone):
        raise Ignore() from None
    except StageFailed as exc:
        execution.fail_job(url, job_id, exc.step.display_name, exc.cause)
        raise StepFailed(str(exc)) from None
    except Exception as exc:
        cause = f"{type(exc).__name__}: {exc}"
        execution.fail_job(url, job_id, stage, cause)
        raise StepFailed(f"{stage} failed: {cause}") from exc


@shared_task(name="vpsweb.candidate", bind=True)
def candidate(self: Task, job_id: str, index: int) -> Any:
    return _run(
        self,
        job_id,
        StepName.INITIAL_TRANSLATION.display_name,
        lambda url: execution.run_candidate(url, job_id, index),
    )


@shared_task(name="vpsweb.evaluate", bind=True)
def evaluate(self: Task, candidates: list[Any] | dict[str, Any], job_id: str) -> Any:
    # The chord passes the header's results; the stored outputs are the truth.
    return _run(
        self,
        job_id,
        StepName.EVALUATION.display_name,
        lambda url: execution.run_evaluation(url, job_id),
    )


@shared_task(name="vpsweb.editor_review", bind=True)
def editor_review(self: Task, job_id: str) -> Any:
    return _run(
        self,
        job_id,
        StepName.EDITOR_REVIEW.display_name,
        lambda url: execution.run_editor_review(url, job_id),
    )


@shared_task(name="vpsweb.translator_revision", bind=True)
def translator_revision(self: Task, job_id: str) -> Any:
    return _run(
        self,
        job_id,
        StepName.TRANSLATOR_REVISION.display_name,
        lambda url: execution.run_translator_revision(url, job_id),
    )


@shared_task(name="vpsweb.finalize", bind=True)
def finalize(self: Task, job_id: str) -> Any:
    return _run(self, job_id, "Finalize", lambda url: execution.run_finalize(url, job_id))
