"""The dispatcher: turns submitted jobs into Celery canvases, inside the workers.

Clients only write to the state store (a job record and an entry in the
submissions stream); every worker process runs one dispatcher thread that reads
that stream through a consumer group and sends each job's canvas. So a client
needs no Celery, no broker URL and no broker connection (the web page and the
async client stay pure Redis), a batch of jobs is submitted in one round trip,
and a dispatcher that dies with its worker leaves its unacknowledged
submissions to another one.
"""

from __future__ import annotations

import logging
import threading

from celery import Celery
from celery.result import denied_join_result

from vpsweb.domain.admission import check_plan
from vpsweb.domain.plan import JobPlan
from vpsweb.orchestrator.canvas import build_canvas
from vpsweb.orchestrator.execution import Services
from vpsweb.orchestrator.lifecycle import fail_job
from vpsweb.stages.table import STAGES
from vpsweb.storage import Submission

log = logging.getLogger(__name__)

BATCH = 2  # per lane: an interactive submission waits behind at most this many
SUBMISSION = "Submission"
BLOCK_MS = 1000


class Dispatcher:
    """One per worker process; ``run`` until ``stop`` is set.

    Options (keyword-only):
      app: the Celery app to send with.
      services: the worker's store and config (routing comes from the worker's config).
      consumer: this dispatcher's name in the consumer group (the worker's node name).
    """

    def __init__(self, *, app: Celery, services: Services, consumer: str) -> None:
        self.app = app
        self.svc = services
        self.consumer = consumer
        self.stop = threading.Event()

    def dispatch(self, job_id: str) -> None:
        jobs = self.svc.storage.jobs
        status, plan = jobs.status(job_id), jobs.plan(job_id)
        if status is None or plan is None or status.terminal:
            return  # expired, or cancelled before it started: nothing to send
        refused = check_plan(plan, self.svc.config)
        if refused:
            log.warning("job %s refused: %s", job_id, "; ".join(refused))
            cause = "refused by this cluster's workers: " + "; ".join(refused)
            fail_job(self.svc.storage, job_id, SUBMISSION, cause)
            return
        canvas = build_canvas(self.app, plan, self.svc.config.routing(), self._start(plan))
        try:
            # The sender never joins Celery results (clients follow the store), so
            # sending must not subscribe to result channels.
            with denied_join_result():
                canvas.apply_async()
        except Exception as exc:
            log.exception("could not enqueue job %s", job_id)
            fail_job(self.svc.storage, job_id, SUBMISSION, f"could not enqueue: {exc}")

    def _start(self, plan: JobPlan) -> str:
        """The first stage without every output stored: a job resumed after a person's
        answers, or re-sent after its dispatcher died, does not run finished stages."""
        jobs = self.svc.storage.jobs
        for s in STAGES:
            if any(raw is None for raw in jobs.load_steps(plan.job_id, s.keys(plan))):
                return s.name
        return "finalize"

    def run_once(self) -> list[Submission]:
        jobs = self.svc.storage.jobs
        batch = jobs.next_submissions(self.consumer, block_ms=BLOCK_MS, count=BATCH)
        for sub in batch:
            self.dispatch(sub.job_id)
        jobs.ack_submissions(batch)
        return batch

    def run(self) -> None:
        while not self.stop.is_set():
            try:
                self.run_once()
            except Exception:
                log.exception("dispatcher %s: store error; retrying in 1 s", self.consumer)
                self.stop.wait(1.0)
