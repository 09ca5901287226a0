"""The sweeper: fails jobs that stopped making progress, so that none runs forever.

Every worker process runs one, but only the holder of a cluster-wide lock sweeps
(one at a time across the cluster). A job's deadline is moved later whenever one
of its steps starts (the plan's worst case for the rest of the job plus the queue
allowance); a job still unfinished past it is failed as stalled, naming its
stage, with its terminal event, so every follower learns of it.
"""

from __future__ import annotations

import logging
import threading
import time

from vpsweb.orchestrator.lifecycle import stall_job
from vpsweb.storage import Storage

log = logging.getLogger(__name__)

LOCK = "sweeper"


class Sweeper:
    """Options (keyword-only):
    storage: the state store.
    owner: this sweeper's name in the lock (the worker's node name).
    every_s: seconds between sweeps.
    """

    def __init__(self, *, storage: Storage, owner: str, every_s: float = 5.0) -> None:
        self.storage = storage
        self.owner = owner
        self.every_s = every_s
        self.stop = threading.Event()

    def sweep(self, now: float | None = None) -> list[str]:
        """The jobs this sweep failed as stalled (none unless this sweeper holds the lock)."""
        if not self.storage.leases.try_lock(LOCK, self.owner, self.every_s * 3):
            return []
        now = time.time() if now is None else now
        stalled = []
        for job_id in self.storage.jobs.overdue(now):
            if stall_job(self.storage, job_id, now):
                log.warning("job %s stalled: failed by the sweeper", job_id)
                stalled.append(job_id)
            else:
                self.storage.jobs.forget_deadline(job_id)  # ended, expired or extended
        return stalled

    def run(self) -> None:
        while not self.stop.wait(self.every_s):
            try:
                self.sweep()
            except Exception:
                log.exception("sweeper %s: store error; retrying", self.owner)
