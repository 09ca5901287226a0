"""The pipeline's Celery tasks: one per stage of the table, plus finalize.

Each is a thin adapter: it runs one step through vpsweb.orchestrator.execution
and returns a small JSON reference. An ended job raises Ignore so the chain stops
without a FAILURE entry; a stage failure marks the job failed (stage, cause and
the usage it was billed) and re-raises so that Celery and Flower show it too.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from celery import Task, shared_task
from celery.exceptions import Ignore

from vpsweb.errors import (
    BudgetReached,
    Cancelled,
    JobGone,
    QuotaParked,
    StageFailed,
    VpswebError,
    one_line,
)
from vpsweb.orchestrator import execution
from vpsweb.orchestrator.lifecycle import fail_job
from vpsweb.stages.table import FINALIZE_DISPLAY, STAGES, Stage
from vpsweb.workers.broker import delivery_of
from vpsweb.workers.routing import FINALIZE_TASK, TASK_NAMES


class StepFailed(VpswebError):
    """What Celery records for a failed step: one plain message, JSON-serialisable."""


# A step parked this often (at least a second each, usually more) waits in its
# thread from then on, bounded by its slot: parking is not a way around the deadline.
MAX_PARKS = 1000

Step = Callable[[execution.Services, execution.Delivery | None], Any]


def _run(task: Task, job_id: str, display: str, step: Step) -> Any:
    svc = execution.services(task.app.conf.vpsweb_store_url)
    try:
        return step(svc, delivery_of(task))
    except BudgetReached as exc:
        # Its max_cost ends the job: failed, keeping its outputs and what it paid.
        fail_job(svc.storage, job_id, display, str(exc))
        raise StepFailed(f"{display} stopped: {exc}") from None
    except QuotaParked as exc:
        # The thread goes back to the pool; the step's message comes back later.
        raise task.retry(countdown=exc.after_s, max_retries=None) from None
    except (Cancelled, JobGone):
        raise Ignore() from None
    except StageFailed as exc:
        # The job's own record may quote the unusable answer briefly; Celery's result
        # and Flower get the cause only.
        quoted = f" (the answer began: {exc.excerpt!r})" if exc.excerpt else ""
        cause = exc.cause + quoted
        fail_job(
            svc.storage, job_id, exc.display_name, cause, step_key=exc.step, metrics=exc.metrics
        )
        raise StepFailed(str(exc)) from None
    except Exception as exc:
        cause = one_line(f"{type(exc).__name__}: {exc}")
        fail_job(svc.storage, job_id, display, cause)
        raise StepFailed(f"{display} failed: {cause}") from exc


def _define(s: Stage) -> Task:
    def step(self: Task, job_id: str, index: int | None = None) -> Any:
        may_park = (self.request.retries or 0) < MAX_PARKS
        return _run(
            self,
            job_id,
            s.display_name,
            lambda svc, d: execution.run_step(svc, s, job_id, index, delivery=d, may_park=may_park),
        )

    step.__name__ = step.__qualname__ = s.name
    step.__doc__ = f"{s.display_name} of one job{' (one item)' if s.fan_out else ''}."
    # Retries are parks only (QuotaParked): a failure is never retried by Celery.
    return shared_task(name=TASK_NAMES[s.name], bind=True, max_retries=None)(step)


STAGE_TASKS: dict[str, Task] = {s.name: _define(s) for s in STAGES}


@shared_task(name=FINALIZE_TASK, bind=True)
def finalize(self: Task, job_id: str) -> Any:
    return _run(
        self,
        job_id,
        FINALIZE_DISPLAY,
        lambda svc, d: execution.finalize(svc, job_id, delivery=d),
    )
