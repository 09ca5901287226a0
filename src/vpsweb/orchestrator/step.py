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
import logging
import time
from dataclasses import dataclass

from pydantic import BaseModel

from vpsweb.errors import (
    AwaitingAnswer,
    Cancelled,
    JobGone,
    QuotaParked,
)
from vpsweb.llm.client import LLMClient, OpenAICompatibleClient
from vpsweb.orchestrator.answer_sources import AnswerSource
from vpsweb.orchestrator.job import JobRun, patiently
from vpsweb.orchestrator.lease import Lease
from vpsweb.orchestrator.services import Services
from vpsweb.orchestrator.step_check import StepCheck
from vpsweb.orchestrator.summaries import summary
from vpsweb.stages import runs
from vpsweb.stages.shared import Prior, StageContext
from vpsweb.stages.table import STAGES, Stage

log = logging.getLogger(__name__)

POLL_S = 0.5  # how often a waiting delivery looks for the other one's output


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

    It owns the step's lease and its check (StepCheck); the job view owns reading the
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
            storage.leases,
            svc.keeper,
            job.job_id,
            self.key,
            svc.owner,
            on_renewal=lambda renewal: self.checks.renewed(renewal),
        )
        self.checks = StepCheck(svc, job, s, self.lease)

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
        self.checks.status_read_at = time.monotonic()
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
            self.checks.check()
            time.sleep(POLL_S)

    def produce(self, prior: list[str | None] | None) -> BaseModel:
        """Run the stage under the lease with the source's client; on any way out but
        an output, give the lease up (and, without a person's answer, park the prompt)."""
        s = self.stage
        self.checks.watched = self.svc.watch.watch(
            self.job.job_id, stragglers=self.checks.under_quorum
        )
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
            self.svc.watch.unwatch(self.checks.watched)

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
        """A stored step's end, recorded again: the count and the event are once each, and
        so is the batch's count (the delivery that stored the step may have died before
        it: on Redis it is a write of its own, in the batch's slot)."""
        job, s = self.job, self.stage
        if job.plan.batch_id is not None:
            self.svc.storage.batches.count_step(
                job.plan.batch_id, job.job_id, self.key, output.model_dump_json(), job.ttl
            )
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

    def context(self, llm: LLMClient) -> StageContext:
        return self.checks.context(llm)
