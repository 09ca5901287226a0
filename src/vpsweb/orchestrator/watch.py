"""What a worker process knows about the jobs its steps are calling LLMs for.

A step's calls in flight must stop promptly when its job ends, and a candidate's
when its straggler quorum's grace runs out. Asking the store every half second per
call cost ~3 commands per call-second; here one thread per worker process listens
to the store's signals (storage.signals: a job ended, a quorum candidate succeeded)
for all its steps, and a step's check during a call reads only what this thread
and the keeper wrote down (no round trip). The keeper's lease renewal reads the
job's status and quorum deadline too (``saw``), every few seconds: the safety net
for a signal lost while the subscription was down.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass

from vpsweb.errors import StoreUnavailable
from vpsweb.storage import TERMINAL, ProgressLog
from vpsweb.storage.signals import SignalKind, Signals

log = logging.getLogger(__name__)

LISTEN_S = 1.0  # a subscription's read wakes up this often (to notice a stop)
RESUBSCRIBE_S = 1.0  # after losing the subscription, wait this long before the next


@dataclass(eq=False)
class Watched:
    """One job, as the steps of this process running for it see it.

    ended: the status that ended it ("expired" when its record is gone), else None.
    late_at: when (monotonic s) its running candidates become late, once a straggler
      quorum was reached; None before.
    stragglers: a step of this job waits for a quorum's deadline (worth a read when
      a candidate of it succeeds).
    """

    job_id: str
    ended: str | None = None
    late_at: float | None = None
    stragglers: bool = False
    steps: int = 0

    def late_in(self) -> float | None:
        """Seconds until the quorum's deadline (negative: passed), None before a quorum."""
        return None if self.late_at is None else self.late_at - time.monotonic()


class JobWatch:
    """One per worker process: the jobs its steps run for, told by the store's signals.

    ``watch`` starts the listening thread on first use; until a signal or the keeper
    says otherwise, a job is taken as running (its step's first round trip read that).
    """

    def __init__(self, signals: Signals | None, progress: ProgressLog) -> None:
        self.signals, self.progress = signals, progress
        self._jobs: dict[str, Watched] = {}
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    @property
    def listening(self) -> bool:
        """Signals reach this process (without them, a step's check asks the store)."""
        return self.signals is not None

    def watch(self, job_id: str, *, stragglers: bool = False) -> Watched:
        """The job's entry, shared by this process's steps of it (``unwatch`` each)."""
        with self._lock:
            watched = self._jobs.get(job_id)
            if watched is None:
                watched = self._jobs[job_id] = Watched(job_id)
            watched.steps += 1
            watched.stragglers = watched.stragglers or stragglers
            if self.signals is not None and (self._thread is None or not self._thread.is_alive()):
                self._thread = threading.Thread(
                    target=self._listen, name="vpsweb-watch", daemon=True
                )
                self._thread.start()
        return watched

    def unwatch(self, watched: Watched) -> None:
        with self._lock:
            watched.steps -= 1
            if watched.steps <= 0 and self._jobs.get(watched.job_id) is watched:
                del self._jobs[watched.job_id]

    def saw(self, watched: Watched, status: str | None, late_in: float | None) -> None:
        """What a read of the store said (the keeper's round, a quorum's re-read)."""
        if status is None or status in TERMINAL:  # StrEnum members equal their text
            watched.ended = status or "expired"
        if late_in is not None:
            watched.late_at = time.monotonic() + late_in

    def _get(self, job_id: str) -> Watched | None:
        with self._lock:
            return self._jobs.get(job_id)

    def _listen(self) -> None:
        """The thread: read signals forever, subscribing again after a loss."""
        assert self.signals is not None
        feed, lost = self.signals.subscribe(), False
        while True:
            try:
                got = feed.next(LISTEN_S)
            except Exception as exc:  # a lost subscription: the keeper's round covers it
                if not lost:  # once per outage, not once a second
                    log.warning("job signals lost (the keeper's round covers them): %s", exc)
                lost = True
                time.sleep(RESUBSCRIBE_S)
                continue
            if lost:
                log.info("job signals heard again")
                lost = False
            for signal in got:
                watched = self._get(signal.job_id)
                if watched is None:
                    continue
                if signal.kind is SignalKind.ENDED:
                    watched.ended = watched.ended or "ended"
                elif watched.stragglers and watched.late_at is None:
                    self._reread_quorum(watched)

    def _reread_quorum(self, watched: Watched) -> None:
        """A candidate of the job succeeded: did it reach the quorum? One read."""
        try:
            status, left, _spent = self.progress.straggler_check(watched.job_id)
        except StoreUnavailable as exc:
            log.warning("could not read %s's quorum (the keeper will): %s", watched.job_id, exc)
            return
        self.saw(watched, status, left)
