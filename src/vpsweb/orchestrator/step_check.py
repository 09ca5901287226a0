"""The check an LLM call runs before and during each attempt, for one delivery of a
step (``StepRun``): an ended job spends nothing more, a budget stops the next call,
a lease another worker took stops the step, a straggler past its quorum's grace is
cut. Before a call it reads the store; during one it reads what the worker's watch
and keeper already know, so a long call costs no round trips (docs/reliability.md).
"""

from __future__ import annotations

import functools
import time

from vpsweb.domain.estimate import budget_currency
from vpsweb.errors import BatchBudgetReached, BudgetReached, Cancelled, Late, StoreUnavailable
from vpsweb.llm.client import LLMClient
from vpsweb.llm.loop import in_flight
from vpsweb.orchestrator.job import JobRun
from vpsweb.orchestrator.lease import Lease
from vpsweb.orchestrator.services import Services
from vpsweb.orchestrator.watch import Watched
from vpsweb.stages.shared import StageContext
from vpsweb.stages.table import Stage
from vpsweb.storage import JobStatus
from vpsweb.storage.batches import SpendCheck
from vpsweb.storage.leases import Renewal

QUORUM_POLL_S = 0.1  # a candidate's check under a straggler quorum, until its deadline
FRESH_STATUS_S = 0.05  # a status read this recent stands for a cancel check
WATCH_S = 0.1  # a check during a call reads no store (see check): it looks this often


def _status(value: str | None) -> JobStatus | None:
    return JobStatus(value) if value else None


class StepCheck:
    """The checks of one delivery of the step ``stage`` of ``job``, holding ``lease``."""

    def __init__(self, svc: Services, job: JobRun, stage: Stage, lease: Lease) -> None:
        self.svc, self.job, self.stage, self.lease = svc, job, stage, lease
        self.status_read_at = 0.0  # monotonic time of the last status read (see check)
        self.watched: Watched | None = None  # the job, as the worker's watch knows it

    def context(self, llm: LLMClient) -> StageContext:
        cfg, plan = self.svc.config, self.job.plan
        return StageContext(
            plan=plan,
            prompts=cfg.prompts,
            llm=llm,
            models=cfg.models,
            check=self.check_late if self.under_quorum else self.check,
        )

    @property
    def under_quorum(self) -> bool:
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

    def renewed(self, renewal: Renewal) -> None:
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
