"""One task's view of its job (``JobRun``) and the services a worker shares.

``JobRun`` loads the job, stops if it ended, runs a step's output under a lease
(``once``), stores it patiently and records progress; ``execution`` and ``lean``
drive it per step. Split from ``execution`` so that ``lean`` can name it without
importing the module that imports ``lean``.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Protocol, TypeVar

from pydantic import BaseModel

from vpsweb.config import AppConfig, load_config
from vpsweb.domain.job_warnings import warning_text
from vpsweb.domain.plan import JobPlan
from vpsweb.domain.progress import EventKind, gated_field
from vpsweb.errors import Cancelled, JobGone, Late, StoreUnavailable
from vpsweb.llm.client import LLMClient, OpenAICompatibleClient
from vpsweb.orchestrator.keeper import Claim, Keeper
from vpsweb.stages import runs
from vpsweb.stages.shared import Prior, StageContext
from vpsweb.stages.table import STAGES, Stage, stage_bounds
from vpsweb.storage import Event, JobStatus, Storage, connect

M = TypeVar("M", bound=BaseModel)
log = logging.getLogger(__name__)

LEASE_TTL_S = 15.0  # a dead worker's step is free again this long after its last renewal
POLL_S = 0.5  # how often a second delivery looks for the first one's output
SAVE_PATIENCE_S = 300.0  # how long a paid output waits for an unreachable store
FINALIZE_BUDGET_S = 120.0  # finalize makes no LLM call: a short keep-alive suffices
STORE_RETRIES = 30  # commands retried with back-off: rides out a Redis restart
QUORUM_POLL_S = 0.1  # a candidate's check under a straggler quorum, until its deadline
FRESH_STATUS_S = 0.05  # a status read this recent stands for a cancel check


class Delivery(Protocol):
    """The broker message a task is working on (Celery side: kept invisible while the
    step runs, so that a healthy long step is not delivered again)."""

    def renew(self) -> bool: ...


@dataclass(frozen=True)
class Services:
    """What a worker process shares between its threads: the store, its own config
    (prompts, routing), one LLM client, and the keeper of its leases."""

    storage: Storage
    config: AppConfig
    llm: LLMClient
    keeper: Keeper = field(default_factory=Keeper)
    owner: str = field(default_factory=lambda: uuid.uuid4().hex[:12])


_services_lock = threading.Lock()


@lru_cache(maxsize=4)
def services(store_url: str) -> Services:
    with _services_lock:
        cfg = load_config()
        return Services(
            storage=connect(store_url, retries=STORE_RETRIES),
            config=cfg,
            llm=OpenAICompatibleClient(models=cfg.models),
        )


class JobRun:
    """One task's view of its job."""

    def __init__(self, svc: Services, job_id: str, *, read_status: bool = True) -> None:
        """``read_status=False``: the caller reads it in its first batch (lean_step)."""
        self.svc = svc
        self.jobs = svc.storage.jobs
        self.progress = svc.storage.progress
        self.leases = svc.storage.leases
        self.manual = svc.storage.manual
        status = self.jobs.status(job_id) if read_status else JobStatus.RUNNING
        plan = self.jobs.plan(job_id) if status is not None else None
        if status is None or plan is None:
            raise JobGone(f"job {job_id} is unknown or has expired")
        if status.terminal:
            raise Cancelled(f"job {job_id} already {status.value}")
        self.job_id = job_id
        self.plan: JobPlan = plan
        self.ttl = plan.retention_s
        self.lease: Claim | None = None
        self.status_read_at = 0.0  # monotonic time of the last status read (see check)

    def check(self) -> None:
        """Called before and during every LLM call: an ended job spends nothing more,
        and a step whose lease another worker took stops. A status read within
        FRESH_STATUS_S (the step's first batch, just before its first call) is not
        read again: a cancel after it is seen by the checks during the call."""
        if time.monotonic() - self.status_read_at < FRESH_STATUS_S:
            self.status_read_at = 0.0  # once: the next check reads
        else:
            try:
                status = self.jobs.status(self.job_id)
            except StoreUnavailable:
                status = JobStatus.RUNNING  # cannot tell right now: a paid call goes on
            if status is None or status.terminal:
                ended = status.value if status else "expired"
                raise Cancelled(f"job {self.job_id} ended ({ended})")
        if self.lease is not None and self.lease.lost.is_set():
            raise Cancelled(f"job {self.job_id}: {self.lease.what} was taken over")

    def check_late(self) -> float | None:
        """A candidate's check under a straggler quorum: ``check``'s, in the same one
        read, plus Late once the quorum's grace has run out; before that, the seconds
        left, so that the LLM call's wait wakes up at the deadline."""
        try:
            raw, left = self.progress.straggler_check(self.job_id)
        except StoreUnavailable:
            return None  # cannot tell right now: a paid call goes on
        status = JobStatus(raw) if raw else None
        if status is None or status.terminal:
            raise Cancelled(f"job {self.job_id} ended ({status.value if status else 'expired'})")
        if self.lease is not None and self.lease.lost.is_set():
            raise Cancelled(f"job {self.job_id}: {self.lease.what} was taken over")
        if left is not None and left <= 0:
            raise Late("the straggler policy's quorum and grace period had passed")
        # Until the quorum, look often: a grace period is a fraction of a call, and a
        # check half a second late would spend most of it.
        return left if left is not None else QUORUM_POLL_S

    def context(self, llm: LLMClient | None = None, *, fan_out: bool = False) -> StageContext:
        cfg = self.svc.config
        quorum = self.plan.straggler.quorum_count(self.plan.parallel_count)
        return StageContext(
            plan=self.plan,
            prompts=cfg.prompts,
            llm=llm or self.svc.llm,
            models=cfg.models,
            check=self.check_late if fan_out and quorum is not None else self.check,
        )

    def outputs(self, s: Stage) -> Any:
        """A stage's stored output (for a fan-out stage, every item; a missing item
        becomes its stage's "lost" record so the next stage can go on without it)."""
        return self.parse(s, self.jobs.load_steps(self.job_id, s.keys(self.plan)))

    def parse(self, s: Stage, raw: list[str | None]) -> Any:
        """A stage's outputs from their stored JSON (see ``outputs``)."""
        if not s.fan_out:
            if raw[0] is None:
                raise RuntimeError(f"job {self.job_id}: output of {s.name} is missing")
            return s.output.model_validate_json(raw[0])
        return [
            s.output.model_validate_json(r) if r is not None else runs.lost(s, self.plan, i, "lost")
            for i, r in enumerate(raw)
        ]

    def prior(self, names: tuple[str, ...], raw: list[str | None] | None = None) -> Prior:
        """The outputs of the stages ``names``: read now, or parsed from ``raw`` (their
        keys' stored JSON in order, as ``prior_keys`` lists them)."""
        by_name = {s.name: s for s in STAGES}
        if raw is None:
            return Prior({name: self.outputs(by_name[name]) for name in names})
        found, at = {}, 0
        for name in names:
            count = len(by_name[name].keys(self.plan))
            found[name] = self.parse(by_name[name], raw[at : at + count])
            at += count
        return Prior(found)

    def prior_keys(self, names: tuple[str, ...]) -> list[str]:
        by_name = {s.name: s for s in STAGES}
        return [k for name in names for k in by_name[name].keys(self.plan)]

    def once(self, key: str, model: type[M], produce: Callable[[], M], budget_s: float) -> M:
        """The stored output if any delivery finished the step; else run it under a
        lease; or, while another delivery holds the lease, wait for its output."""
        while True:
            stored = self.jobs.load_step(self.job_id, key)
            if stored is not None:
                return model.model_validate_json(stored)
            token = f"{self.svc.owner}:{uuid.uuid4().hex[:8]}"
            if self.leases.acquire(self.job_id, key, token, LEASE_TTL_S):
                return self._run_leased(key, model, produce, budget_s, token)
            self._wait_for_other(key)

    def _run_leased(
        self, key: str, model: type[M], produce: Callable[[], M], budget_s: float, token: str
    ) -> M:
        def renew() -> bool:
            return self.leases.renew(self.job_id, key, token, LEASE_TTL_S)

        claim = self.svc.keeper.keep(renew, for_s=budget_s, what=f"lease on {self.job_id}/{key}")
        try:
            stored = self.jobs.load_step(self.job_id, key)  # finished just before we took it
            if stored is not None:
                return model.model_validate_json(stored)
            self.lease = claim
            output = produce()
            return model.model_validate_json(self._save(key, output.model_dump_json()))
        finally:
            self.lease = None
            self.svc.keeper.drop(claim)
            self.leases.release(self.job_id, key, token)

    def _wait_for_other(self, key: str) -> None:
        """Until the other delivery stored its output or its lease lapsed (it died)."""
        log.warning(
            "job %s step %s is running in another delivery; waiting for its output",
            self.job_id,
            key,
        )
        while self.leases.holder(self.job_id, key) is not None:
            if self.jobs.load_step(self.job_id, key) is not None:
                return
            self.check()
            time.sleep(POLL_S)

    def _save(self, key: str, payload: str) -> str:
        return self.patiently(lambda: self.jobs.save_step(self.job_id, key, payload, self.ttl))

    def patiently(self, save: Callable[[], str]) -> str:
        """A paid output is stored before anything else can fail: keep trying while the
        store is unreachable."""
        give_up = time.monotonic() + SAVE_PATIENCE_S
        while True:
            try:
                return save()
            except StoreUnavailable:
                if time.monotonic() > give_up:
                    raise
                time.sleep(2.0)

    def stage_event(self, s: Stage, *, started: bool, message: str, output: object = None) -> None:
        """A stage's start (at its lower bound) or end (upper bound), once each."""
        once = f"{'start' if started else 'end'}:{s.name}"
        event = self.event_of(s, started=started, message=message, output=output)
        self.progress.emit(self.job_id, event, self.ttl, once=once)

    def event_of(self, s: Stage, *, started: bool, message: str, output: object = None) -> Event:
        """``output``: an end's; what it fell back on is said beside its summary (every
        follower shows a warning, not a plain completion), and who a check barred."""
        start, end = stage_bounds(self.plan.progress_weights, s.name)
        model = self.plan.call(s.name, 0 if s.fan_out else None).model
        kind = EventKind.STAGE_STARTED if started else EventKind.STAGE_COMPLETED
        fields = {
            "stage": s.display_name,
            "status": "running" if started else "completed",
            "model": model,
            "message": message,
        }
        extra = {"warning": warning_text(output), "gated": gated_field(output)}
        fields.update({k: v for k, v in extra.items() if v})
        return Event(kind, start if started else end, fields)
