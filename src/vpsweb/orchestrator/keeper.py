"""Keeping a worker's claims alive while its steps run: one thread per worker process.

A step's lease (in the store) and its message's invisibility (in a Redis broker)
both expire unless renewed, so that a worker that dies gives them up within
seconds. The keeper renews each claim every few seconds, but only until the
step's worst case from the plan: a step stuck past it lets its claims lapse, and
another worker takes over. A claim that cannot be renewed because somebody else
holds it is marked lost, and the step stops before its next LLM call.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

log = logging.getLogger(__name__)


@dataclass(eq=False)
class Claim:
    """Something renewed until ``until`` (monotonic seconds); ``lost`` is set when a
    renewal says somebody else holds it."""

    renew: Callable[[], bool]
    until: float
    what: str
    lost: threading.Event = field(default_factory=threading.Event)


class Keeper:
    """Options (keyword-only):
    every_s: seconds between renewals (a third of the claims' TTL, so one missed
      renewal, e.g. during a Redis restart, loses nothing).
    """

    def __init__(self, *, every_s: float = 5.0) -> None:
        self.every_s = every_s
        self._claims: set[Claim] = set()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def keep(self, renew: Callable[[], bool], *, for_s: float, what: str) -> Claim:
        claim = Claim(renew=renew, until=time.monotonic() + for_s, what=what)
        with self._lock:
            self._claims.add(claim)
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="vpsweb-keeper", daemon=True)
                self._thread.start()
        return claim

    def drop(self, claim: Claim) -> None:
        with self._lock:
            self._claims.discard(claim)

    def renew_all(self) -> None:
        now = time.monotonic()
        with self._lock:
            claims = list(self._claims)
        for claim in claims:
            if now > claim.until:
                continue  # past the plan's worst case: let it lapse
            try:
                held = claim.renew()
            except Exception as exc:  # the store or broker is briefly unreachable
                log.warning("could not renew %s (will retry): %s", claim.what, exc)
                continue
            if not held:
                log.warning("%s was taken over by another worker", claim.what)
                claim.lost.set()
                self.drop(claim)

    def _run(self) -> None:
        while True:
            time.sleep(self.every_s)
            self.renew_all()
