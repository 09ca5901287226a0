"""A step's bookkeeping in two round trips (``StepLog``): the worker's hot path.

Today's semantics, fewer trips: the status read, "running", the deadline, the start
event, the lease and the step's inputs go in one pipelined batch before the stage
runs; its output, the lease's release and the end event (or the candidate's count)
in one after. The rare paths (a redelivery that finds the output stored, or the
lease held by another delivery; a manual step) keep ``JobRun.once``'s logic.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING

from pydantic import BaseModel

from vpsweb.domain.manual_answers import ManualLLM, PendingPrompt
from vpsweb.domain.models import utcnow
from vpsweb.domain.progress import EventKind
from vpsweb.errors import AwaitingAnswer, Cancelled, JobGone, one_line
from vpsweb.llm.client import LLMClient
from vpsweb.orchestrator.summaries import summary
from vpsweb.stages.shared import Prior
from vpsweb.stages.table import STAGES, Stage, stage_bounds
from vpsweb.storage import Event
from vpsweb.storage.base import ItemEnd, StepLog

if TYPE_CHECKING:  # pragma: no cover - execution imports this module
    from vpsweb.domain.plan import JobPlan
    from vpsweb.orchestrator.job_run import JobRun

LEASE_TTL_S = 15.0  # as job_run.LEASE_TTL_S


def item_end(plan: JobPlan, s: Stage, index: int, output: BaseModel) -> ItemEnd:
    """A candidate's end as the progress log counts it: outcome, and what a display
    shows of it (variant, model, time, cause)."""
    metrics = getattr(output, "metrics", None)
    error = getattr(output, "error", None)
    details = {
        "variant": plan.candidates[index].variant,
        "model": plan.candidates[index].call.model,
        "duration_s": metrics.duration_s if metrics else None,
        "error": one_line(error.split(" (the answer began:")[0], 300) if error else None,
    }
    _, end = stage_bounds(plan.progress_weights, s.name)
    return ItemEnd(
        index=index,
        ok=bool(getattr(output, "ok", True)),
        late=getattr(output, "status", "") == "late",
        n=plan.parallel_count,
        end_percent=end,
        stage=s.display_name,
        details=details,
        quorum=plan.straggler.quorum_count(plan.parallel_count),
        grace=plan.straggler.grace,
    )


def lean_step(
    run: JobRun,
    steps: StepLog,
    s: Stage,
    index: int | None,
    budget: float,
    *,
    viable: bool,
    produce: Callable[[Prior], BaseModel],
) -> tuple[BaseModel, bool]:
    """The step's output, and whether its end was recorded already (the finishing
    batch did it; False on the rare paths, where the caller records it)."""
    key, call = s.key(index), run.plan.call(s.name, index)
    start = None
    if viable:
        start = run.event_of(s, started=True, message=f"{s.display_name} started ({call.model})")
    token = f"{run.svc.owner}:{uuid.uuid4().hex[:8]}"
    began = steps.begin(
        run.job_id,
        key,
        owner=token,
        lease_ttl_s=LEASE_TTL_S,
        deadline=run.plan.deadline_after(s.name, time.time()),
        start=start,
        once=f"start:{s.name}",
        ttl=run.ttl,
        prior_keys=run.prior_keys(s.needs),
    )
    status = began.status
    run.status_read_at = time.monotonic()
    if began.leased and (began.stored is not None or status is None or status.terminal):
        run.leases.release(run.job_id, key, token)
    if status is None:
        raise JobGone(f"job {run.job_id} is unknown or has expired")
    if status.terminal:
        raise Cancelled(f"job {run.job_id} ended ({status.value})")
    if began.stored is not None:
        return s.output.model_validate_json(began.stored), False
    if not began.leased:  # another delivery runs it: wait for its output, or take over
        return run.once(key, s.output, lambda: produce(run.prior(s.needs)), budget), False
    raw = began.prior
    return _leased(run, steps, s, index, token, budget, lambda: produce(run.prior(s.needs, raw)))


def _leased(
    run: JobRun,
    steps: StepLog,
    s: Stage,
    index: int | None,
    token: str,
    budget: float,
    work: Callable[[], BaseModel],
) -> tuple[BaseModel, bool]:
    """Run the stage under the lease (kept alive, and watched by the cancel check), then
    store its output, release the lease and record its end in one batch."""
    key = s.key(index)

    def renew() -> bool:
        return run.leases.renew(run.job_id, key, token, LEASE_TTL_S)

    claim = run.svc.keeper.keep(renew, for_s=budget, what=f"lease on {run.job_id}/{key}")
    try:
        run.lease = claim
        try:
            output = work()
        except BaseException:
            run.leases.release(run.job_id, key, token)
            raise
        finally:
            run.lease = None
        item = item_end(run.plan, s, index, output) if index is not None and s.fan_out else None
        end = None
        if item is None and s is not STAGES[-1]:  # the last stage's end comes with the result
            end = run.event_of(s, started=False, message=summary(s, output), output=output)
        payload = output.model_dump_json()
        saved = run.patiently(
            lambda: steps.finish(
                run.job_id,
                key,
                payload,
                owner=token,
                ttl=run.ttl,
                end=end,
                once=f"end:{s.name}",
                item=item,
            )
        )
    finally:
        run.svc.keeper.drop(claim)
    return s.output.model_validate_json(saved), True


def one_by_one(
    run: JobRun,
    s: Stage,
    index: int | None,
    budget: float,
    *,
    viable: bool,
    produce: Callable[[LLMClient | None], BaseModel],
) -> BaseModel:
    """The bookkeeping one command at a time: a store without a StepLog, and manual
    steps (whose answer is read, or whose prompt is parked, around the stage)."""
    job_id = run.job_id
    run.jobs.mark_running(job_id, run.ttl)
    run.jobs.extend_deadline(job_id, run.plan.deadline_after(s.name, time.time()))
    call = run.plan.call(s.name, index)
    if viable:
        run.stage_event(s, started=True, message=f"{s.display_name} started ({call.model})")
    key = s.key(index)
    # A manual step answers with the person's stored answer, or parks its prompt.
    llm = ManualLLM(run.manual.answer_of(job_id, key)) if s.name in run.plan.manual_steps else None
    try:
        return run.once(key, s.output, lambda: produce(llm), budget)
    except AwaitingAnswer as waiting:
        park(run, s, key, waiting.messages)
        raise


def park(run: JobRun, s: Stage, key: str, messages: list[dict[str, str]]) -> None:
    """Leave the prompt for a person and end the task: no thread waits for a person."""
    prompt = PendingPrompt(
        key=key, stage=s.name, display_name=s.display_name, messages=messages, since=utcnow()
    )
    if run.manual.park(run.job_id, key, prompt.model_dump_json(), run.ttl):
        start, _ = stage_bounds(run.plan.progress_weights, s.name)
        fields = {
            "stage": s.display_name,
            "status": "waiting",
            "key": key,
            "message": f"waiting for a manual answer to {key}",
        }
        event = Event(EventKind.WAITING_FOR_ANSWER, start, fields)
        run.progress.emit(run.job_id, event, run.ttl, once=f"wait:{key}")
