"""The worker's side of the providers' quotas: wait for a permit before each call,
settle it after.

The allowance itself lives in the state store (``vpsweb.storage.quotas``), shared by
every worker process on every host. Waiting is not an attempt: it uses none of the
step's retries and none of the call's ``timeout_s``; it ends at the job's deadline
(or, for a step with fallback models, at the step's worst case, so that the next
model can take over). Settlements are not sent on their own when it can be helped:
they ride with the process's next ask (one round trip for both), or go within
FLUSH_S when no ask comes.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from vpsweb.config.schema import Limits as LimitsConfig
from vpsweb.config.schema import ModelsConfig
from vpsweb.domain.permits import Bucket, Limits, QuotaAsk, Settlement
from vpsweb.domain.tokens import estimate_tokens
from vpsweb.errors import QuotaWaitTooLong, StoreUnavailable
from vpsweb.llm.endpoints import Endpoint

if TYPE_CHECKING:  # pragma: no cover - the storage package imports the plan, which imports llm
    from vpsweb.storage.quotas import Quotas

log = logging.getLogger(__name__)

FLUSH_S = 0.02  # a settlement waits at most this long for an ask to ride with
NAP_MAX_S = 0.5  # a waiting call checks for cancellation at least this often
HOLD_MARGIN_S = 30.0  # a permit outlives its call's timeout by this much


@dataclass(frozen=True)
class Caller:
    """Who is calling: the job's place in the fair share and how long it may wait."""

    job_id: str
    key: str  # the step's (candidate-0, evaluation, ...)
    batch: bool
    flow: str
    deadline: float  # epoch s: a quota wait ends before the job's deadline
    # Told once when a call starts waiting ("waiting for deepseek quota ...") and once
    # when it got its permit after such a wait (done=True).
    on_wait: Callable[[str, bool], None] | None = None


@dataclass
class Permit:
    ask: QuotaAsk
    permit: str
    waited_s: float


def _limits(cfg: LimitsConfig | None) -> Limits:
    if cfg is None:
        return Limits()
    return Limits(
        requests_per_minute=cfg.requests_per_minute or 0,
        tokens_per_minute=cfg.tokens_per_minute or 0,
        max_concurrent=cfg.max_concurrent or 0,
    )


class QuotaGate:
    """One per worker process, shared by its threads (thread-safe)."""

    def __init__(self, quotas: Quotas, models: ModelsConfig) -> None:
        self.quotas, self.models = quotas, models
        self._lock = threading.Lock()
        self._due: list[Settlement] = []
        self._wake = threading.Event()
        self._flusher: threading.Thread | None = None

    # --- buckets -----------------------------------------------------------------------

    def buckets(self, endpoint: Endpoint) -> tuple[Bucket, Bucket | None]:
        """The provider's bucket, and the model's where it declares limits of its own.
        Offline calls go to the simulator, so they draw on the simulator's quota."""
        info = endpoint.info
        provider = Bucket(info.provider, _limits(self.models.providers[info.provider].limits))
        entry = self.models.models.get(info.model)
        if endpoint.offline or entry is None or entry.limits is None:
            return provider, None
        return provider, Bucket(f"{info.provider}/{info.model}", _limits(entry.limits))

    # --- waiting -----------------------------------------------------------------------

    def take(
        self,
        endpoint: Endpoint,
        body: dict[str, object],
        caller: Caller,
        *,
        timeout_s: float,
        give_up_after_s: float | None,
        check: Callable[[], float | None] | None,
        resume: bool = False,
    ) -> Permit | None:
        provider, model = self.buckets(endpoint)
        prompt = sum(estimate_tokens(str(m.get("content", ""))) for m in _messages(body))
        ask = QuotaAsk(
            provider=provider,
            model=model,
            ticket=uuid.uuid4().hex,
            flow=caller.flow,
            batch=caller.batch,
            tokens=prompt + int(str(body.get("max_tokens", 0))),
            hold_s=timeout_s + HOLD_MARGIN_S,
            resume=resume,
        )
        started, told, refused = time.monotonic(), False, False
        try:
            while True:
                try:
                    grant = self.quotas.acquire(ask, self._take_due())
                except StoreUnavailable:
                    # No store, no shared allowance: the call goes out as it did before
                    # quotas (a 429 is then an attempt); a job is not failed for it.
                    log.warning("quota store unreachable: %s goes out without a permit", caller.key)
                    return None
                waited = time.monotonic() - started
                if grant.granted:
                    if told and caller.on_wait is not None:
                        caller.on_wait(f"got {provider.name} quota after {waited:.1f}s", True)
                    return Permit(ask, grant.permit, waited if refused else 0.0)
                refused = True
                left = caller.deadline - time.time()
                why = f"waited {waited:.1f}s for {provider.name} quota ({grant.reason})"
                if left <= 0:
                    raise QuotaWaitTooLong(f"{why}: the job's deadline has passed")
                if give_up_after_s is not None and waited + grant.retry_in_s > give_up_after_s:
                    raise QuotaWaitTooLong(
                        f"{why}: more would pass the step's worst case ({give_up_after_s:g}s)"
                    )
                if not told and caller.on_wait is not None:
                    caller.on_wait(
                        f"waiting for {provider.name} quota ({grant.ahead} ahead; {grant.reason})",
                        False,
                    )
                    told = True
                if check is not None:
                    check()
                self.quotas.nap(ask, min(max(grant.retry_in_s, 0.01), NAP_MAX_S, left))
        except BaseException:
            self._withdraw(ask)
            raise

    def _withdraw(self, ask: QuotaAsk) -> None:
        with contextlib.suppress(StoreUnavailable):  # a stale ticket leaves on its own
            self.quotas.withdraw(ask)

    # --- settling ----------------------------------------------------------------------

    def settle(
        self,
        permit: Permit,
        *,
        used_tokens: int | None,
        throttled: bool = False,
        pause_s: float | None = None,
    ) -> None:
        """Queue the settlement: it rides with the next ask, or goes within FLUSH_S."""
        done = Settlement(
            ask=permit.ask,
            permit=permit.permit,
            used_tokens=used_tokens,
            throttled=throttled,
            retry_after_s=pause_s,
            waited_s=permit.waited_s,
        )
        with self._lock:
            self._due.append(done)
            if self._flusher is None or not self._flusher.is_alive():
                self._flusher = threading.Thread(
                    target=self._flush_loop, name="vpsweb-quota-settle", daemon=True
                )
                self._flusher.start()
        self._wake.set()

    def _take_due(self) -> list[Settlement]:
        with self._lock:
            due, self._due = self._due, []
        return due

    def _flush_loop(self) -> None:
        while True:
            self._wake.wait()
            self._wake.clear()
            time.sleep(FLUSH_S)
            due = self._take_due()
            if not due:
                continue
            try:
                self.quotas.settle(due)
            except StoreUnavailable:
                # Lapsing permits return their slots; counters miss these calls.
                time.sleep(1.0)

    def flush(self) -> None:
        """Send what is due now (tests and shutdown)."""
        self.quotas.settle(self._take_due())


def _messages(body: dict[str, object]) -> list[dict[str, object]]:
    messages = body.get("messages")
    return [m for m in messages if isinstance(m, dict)] if isinstance(messages, list) else []
