"""One delivery of one step: the worker's one path, manual steps included.

    begin ──► stored ─────────────────────────────► record the end again (once)
      │
      ├─────► leased ──► produce ──► finish
      │                    ▲
      └─────► busy ──► wait ──► stored | leased (the other delivery's lease lapsed)

``begin`` is one pipelined round trip (``StepLog.begin``): the status read,
"running", the deadline, the start event, the lease and then the stored output,
and the step's inputs. ``produce`` runs the stage under the lease (renewed by the
keeper, watched by the cancel check) with its answer source's client: an LLM API,
or a person's answer (without one, the prompt is parked and the task ends).
``finish`` is the other round trip (``StepLog.finish``): the output (the first one
stands), the lease's release and the end event or the candidate's count. A stored
output is never recomputed: a redelivery finds it in ``begin``, and a delivery
that finds the lease held waits for the output, taking over only when the lease
lapsed (its holder died).
"""

from __future__ import annotations

import enum
import functools
import logging
import time
from dataclasses import dataclass

from pydantic import BaseModel

from vpsweb.domain.estimate import budget_currency
from vpsweb.errors import (
    AwaitingAnswer,
    BatchBudgetReached,
    BudgetReached,
    Cancelled,
    JobGone,
    Late,
    QuotaParked,
    StoreUnavailable,
)
from vpsweb.llm.client import LLMClient, OpenAICompatibleClient
from vpsweb.llm.loop import in_flight
from vpsweb.orchestrator.answer_sources import AnswerSource
from vpsweb.orchestrator.job import JobRun, patiently
from vpsweb.orchestrator.lease import Lease
from vpsweb.orchestrator.services import Services
from vpsweb.orchestrator.summaries import summary
from vpsweb.orchestrator.watch import Watched
from vpsweb.stages import runs
from vpsweb.stages.shared import Prior, StageContext
from vpsweb.stages.table import STAGES, Stage
from vpsweb.storage import JobStatus
from vpsweb.storage.batches import SpendCheck
from vpsweb.storage.leases import Renewal

log = logging.getLogger(__name__)

POLL_S = 0.5  # how often a waiting delivery looks for the other one's output
QUORUM_POLL_S = 0.1  # a candidate's check under a straggler quorum, until its deadline
FRESH_STATUS_S = 0.05  # a status read this recent stands for a cancel check
WATCH_S = 0.1  # a check during a call reads no store (see check): it looks this often


class Found(enum.Enum):
    STORED = "stored"  # a delivery finished the step: its output stands
    LEASED = "leased"  # this delivery holds the lease: it produces the output
    BUSY = "busy"  # another delivery holds the lease: wait for its output


@dataclass(frozen=True)
class Begun:
    """Where ``begin`` (or ``wait``) left the step: the stored output, or the step's
    inputs as read with the lease (None: read them when producing)."""

    found: Found
    stored: str | None = None
    prior: list[str | None] | None = None


def _status(value: str | None) -> JobStatus | None:
    return JobStatus(value) if value else None


def run_stage(s: Stage, ctx: StageContext, prior: Prior, index: int | None) -> BaseModel:
    """The stage's output; a fan-out item that breaks becomes its "lost" record."""
    if not s.fan_out:
        return runs.run(s, ctx, prior, index)
    assert index is not None
    try:
        return runs.run(s, ctx, prior, index)
    except (Cancelled, QuotaParked):
        raise
    except Exception as exc:
        # A bug or a broken template in one item must not lose the others.
        return runs.lost(s, ctx.plan, index, f"internal error: {type(exc).__name__}: {exc}")


class StepRun:
    """The state machine of one delivery of the step ``s`` (item ``index``) of ``job``.

    It owns the step's lease and its cancel check; the job view owns reading the
    plan and outputs; the answer source owns where completions come from; the step
    log owns what each round trip writes.
    """

    def __init__(
        self,
        svc: Services,
        job: JobRun,
        s: Stage,
        index: int | None,
        *,
        source: AnswerSource,
        budget_s: float,
        viable: bool = True,
    ) -> None:
        """``viable``: False when the fan-out before ``s`` had no success (then this
        step sends no start event)."""
        self.svc, self.job, self.stage, self.index = svc, job, s, index
        self.source, self.budget_s, self.viable = source, budget_s, viable
        self.key = s.key(index)
        storage = svc.storage
        self.lease = Lease(
            storage.leases, svc.keeper, job.job_id, self.key, svc.owner, on_renewal=self._renewed
        )
        self.status_read_at = 0.0  # monotonic time of the last status read (see check)
        self.watched: Watched | None = None  # the job, as the worker's watch knows it

    def run(self) -> BaseModel:
        """The step's output: stored by this delivery or another, never twice."""
        begun = self.begin()
        if begun.found is Found.BUSY:
            begun = self.wait()
        if begun.stored is not None:
            output = self.stage.output.model_validate_json(begun.stored)
            self.record_end(output)
            return output
        return self.finish(self.produce(begun.prior))

    # --- the states ----------------------------------------------------------------

    def begin(self) -> Begun:
        """One round trip: the job's status, its start bookkeeping, the lease, the
        stored output and the inputs."""
        job, s = self.job, self.stage
        start = None
        if self.viable:
            model = job.plan.call(s.name, self.index).model
            start = job.event_of(s, started=True, message=f"{s.display_name} started ({model})")
        began = self.svc.storage.steps.begin(
            job.job_id,
            self.key,
            owner=self.lease.token,
            lease_ttl_s=self.lease.ttl_s,
            deadline=job.plan.deadline_after(s.name, time.time()),
            start=start,
            once=f"start:{s.name}",
            ttl=job.ttl,
            prior_keys=job.prior_keys(s.needs),
        )
        self.status_read_at = time.monotonic()
        status = began.status
        if began.leased and (began.stored is not None or status is None or status.terminal):
            self.lease.release()
        if status is None:
            raise JobGone(f"job {job.job_id} is unknown or has expired")
        if status.terminal:
            raise Cancelled(f"job {job.job_id} ended ({status.value})")
        if began.stored is not None:
            return Begun(Found.STORED, stored=began.stored)
        if began.leased:
            return Begun(Found.LEASED, prior=began.prior)
        return Begun(Found.BUSY)

    def wait(self) -> Begun:
        """Until the other delivery stored its output, or its lease lapsed (it died)
        and this one took it over."""
        log.warning(
            "job %s step %s is running in another delivery; waiting for its output",
            self.job.job_id,
            self.key,
        )
        while True:
            stored = self.job.jobs.load_step(self.job.job_id, self.key)
            if stored is not None:
                return Begun(Found.STORED, stored=stored)
            if self.lease.take():
                stored = self.job.jobs.load_step(self.job.job_id, self.key)
                if stored is not None:  # finished just before its lease was free
                    self.lease.release()
                    return Begun(Found.STORED, stored=stored)
                return Begun(Found.LEASED)
            self.check()
            time.sleep(POLL_S)

    def produce(self, prior: list[str | None] | None) -> BaseModel:
        """Run the stage under the lease with the source's client; on any way out but
        an output, give the lease up (and, without a person's answer, park the prompt)."""
        s = self.stage
        self.watched = self.svc.watch.watch(self.job.job_id, stragglers=self._under_quorum)
        self.lease.keep(self.budget_s)
        try:
            inputs = self.job.prior(s.needs, prior)
            return run_stage(s, self.context(self.source.client()), inputs, self.index)
        except AwaitingAnswer as waiting:
            self.lease.release()
            self.source.awaiting(waiting.messages)
            raise
        except BaseException:
            self.lease.release()
            raise
        finally:
            self.svc.watch.unwatch(self.watched)

    def finish(self, output: BaseModel) -> BaseModel:
        """One round trip: store the output (the first one stands, and is returned),
        release the lease, record the end."""
        job, s = self.job, self.stage
        item = None
        if self.fan_out_item:
            assert self.index is not None
            item = job.candidate_end(s, self.index, output)
        end = None
        if item is None and s is not STAGES[-1]:  # the last stage's end comes with the result
            end = job.event_of(s, started=False, message=summary(s, output), output=output)
        payload = output.model_dump_json()
        llm = self.svc.llm  # the quota permits its calls returned ride along
        settle = llm.settlements_due() if isinstance(llm, OpenAICompatibleClient) else []
        try:
            saved = patiently(
                lambda: self.svc.storage.steps.finish(
                    job.job_id,
                    self.key,
                    payload,
                    owner=self.lease.token,
                    ttl=job.ttl,
                    end=end,
                    once=f"end:{s.name}",
                    item=item,
                    settle=settle,
                    batch_id=job.plan.batch_id,
                )
            )
        finally:
            self.lease.stop_renewing()
        return s.output.model_validate_json(saved)

    def record_end(self, output: BaseModel) -> None:
        """A stored step's end, recorded again: the count and the event are once each."""
        job, s = self.job, self.stage
        if self.fan_out_item:
            assert self.index is not None
            job.progress.candidate_finished(
                job.job_id, job.candidate_end(s, self.index, output), job.ttl
            )
        elif s is not STAGES[-1]:
            job.stage_event(s, started=False, message=summary(s, output), output=output)

    @property
    def fan_out_item(self) -> bool:
        return self.stage.fan_out and self.index is not None

    # --- the cancel check ----------------------------------------------------------

    def context(self, llm: LLMClient) -> StageContext:
        cfg, plan = self.svc.config, self.job.plan
        return StageContext(
            plan=plan,
            prompts=cfg.prompts,
            llm=llm,
            models=cfg.models,
            check=self.check_late if self._under_quorum else self.check,
        )

    @property
    def _under_quorum(self) -> bool:
        """A candidate of a job with a straggler quorum: it may be cut when late."""
        plan = self.job.plan
        return self.stage.fan_out and plan.straggler.quorum_count(plan.parallel_count) is not None

    def check(self) -> float | None:
        """Called before and during every LLM call: an ended job spends nothing more,
        a job whose spend reached its max_cost, or whose batch's spend reached the
        batch's budget, makes no new call (BudgetReached), and a step whose lease
        another worker took stops. A status read within FRESH_STATUS_S (the step's
        first batch, just before its first call) is not read again: a cancel after it
        is seen by the checks during the call. A budgeted job reads its status and
        spend (and its batch's) every time (the first batch read no spend), in one
        round trip. During a call the check reads no store (``_watching``)."""
        if self._watching_now:
            return self._watching(late=False)
        budgeted = self.job.plan.request.max_cost is not None or self._in_budgeted_batch
        if not budgeted and time.monotonic() - self.status_read_at < FRESH_STATUS_S:
            self.status_read_at = 0.0  # once: the next check reads
        else:
            spent = 0.0
            try:
                if self._in_budgeted_batch:
                    read = self._batch_check(late=False)
                    status, spent = _status(read.status), read.job_spent
                elif budgeted:
                    status, spent = self.job.jobs.status_and_spent(self.job.job_id)
                else:
                    status = self.job.jobs.status(self.job.job_id)
            except StoreUnavailable:
                status = JobStatus.RUNNING  # cannot tell right now: a paid call goes on
            self._stop_if_ended(status, spent)
        self._stop_if_taken_over()
        return None

    def check_late(self) -> float | None:
        """A candidate's check under a straggler quorum: ``check``'s, in the same one
        read (the spend too), plus Late once the quorum's grace has run out; before
        that, the seconds left, so that the LLM call's wait wakes up at the deadline."""
        if self._watching_now:
            return self._watching(late=True)
        try:
            if self._in_budgeted_batch:
                read = self._batch_check(late=True)
                raw, left, spent = read.status, read.late_in, read.job_spent
            else:
                raw, left, spent = self.job.progress.straggler_check(self.job.job_id)
        except StoreUnavailable:
            return None  # cannot tell right now: a paid call goes on
        self._stop_if_ended(_status(raw), spent)
        self._stop_if_taken_over()
        if left is not None and left <= 0:
            raise Late("the straggler policy's quorum and grace period had passed")
        # Until the quorum, look often: a grace period is a fraction of a call, and a
        # check half a second late would spend most of it.
        return left if left is not None else QUORUM_POLL_S

    # --- during a call: what the worker's watch and keeper know, no round trip -------

    @property
    def _watching_now(self) -> bool:
        """In an LLM call, with the worker's watch hearing the job signals: the call
        goes on whatever the spend (a paid call finishes), so only a stop matters, and
        the watch and the keeper's round know of those without a store read."""
        return self.watched is not None and in_flight() and self.svc.watch.listening

    def _watching(self, *, late: bool) -> float:
        """The check during a call: the job ended (a signal, or the keeper's read), the
        lease was lost (the keeper), the quorum's deadline passed (a signal's re-read,
        or the keeper's). Returns when to look again: soon (it costs nothing), or at
        the quorum's deadline if that is sooner."""
        watched = self.watched
        assert watched is not None
        if watched.ended is not None:
            raise Cancelled(f"job {self.job.job_id} ended ({watched.ended})")
        self._stop_if_taken_over()
        left = watched.late_in() if late else None
        if left is not None and left <= 0:
            raise Late("the straggler policy's quorum and grace period had passed")
        return WATCH_S if left is None else min(WATCH_S, left)

    def _renewed(self, renewal: Renewal) -> None:
        """The keeper's round read the job with the lease: the safety net under the
        signals (one lost while the subscription was down is seen here)."""
        if self.watched is not None:
            self.svc.watch.saw(self.watched, renewal.status, renewal.late_in)

    @property
    def _in_budgeted_batch(self) -> bool:
        plan = self.job.plan
        return plan.batch_id is not None and plan.batch_budget is not None

    def _batch_check(self, *, late: bool) -> SpendCheck:
        """One read of the job's status and spend and its batch's spend and budget (the
        budget as the batch has it now: a resume may have raised it); BatchBudgetReached
        once the batch's spend reached it, unless the job ended."""
        plan = self.job.plan
        assert plan.batch_id is not None
        read = self.svc.storage.batches.spend_check(self.job.job_id, plan.batch_id, late=late)
        self._stop_if_ended(_status(read.status), read.job_spent)
        budget = read.budget if read.budget is not None else plan.batch_budget
        if budget is not None and read.batch_spent >= budget:
            raise BatchBudgetReached(plan.batch_id, read.batch_spent, budget, self._currency)
        return read

    def _stop_if_ended(self, status: JobStatus | None, spent: float = 0.0) -> None:
        if status is None or status.terminal:
            ended = status.value if status else "expired"
            raise Cancelled(f"job {self.job.job_id} ended ({ended})")
        limit = self.job.plan.request.max_cost
        if limit is not None and spent >= limit:
            raise BudgetReached(spent, limit, self._currency)

    @functools.cached_property
    def _currency(self) -> str:
        return budget_currency(self.job.plan, self.svc.config)

    def _stop_if_taken_over(self) -> None:
        if self.lease.lost:
            raise Cancelled(f"job {self.job.job_id}: {self.lease.what} was taken over")
