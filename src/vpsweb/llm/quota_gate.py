"""The worker's side of the providers' quotas: wait for a permit before each call,
settle it after.

The allowance itself lives in the state store (``vpsweb.storage.quotas``), shared by
every worker process on every host. Waiting is not an attempt: it uses none of the
step's retries and none of the call's ``timeout_s``; it ends with the step's slot
(``JobPlan.step_slot_s``; for a step with fallback models, at the step's worst case,
so that the next model can take over). A batch step's first call may park instead
(QuotaParked: its task comes back later) so that waiting never takes every thread.
Settlements are not sent on their own when it can be helped: they ride with a step's
finish or the process's next ask (no round trip of their own), or go within RIDE_S;
at once where calls wait for the provider.
"""

from __future__ import annotations

import contextlib
import logging
import random
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from vpsweb.config.schema import Limits as LimitsConfig
from vpsweb.config.schema import ModelsConfig
from vpsweb.domain.permits import Bucket, Grant, Limits, QuotaAsk, Settlement
from vpsweb.domain.tokens import estimate_tokens
from vpsweb.errors import QuotaParked, QuotaWaitTooLong, StoreUnavailable, TransientLLMError
from vpsweb.llm.endpoints import Endpoint

if TYPE_CHECKING:  # pragma: no cover - the storage package imports the plan, which imports llm
    from vpsweb.domain.plan import StepCall
    from vpsweb.storage.quotas import Quotas

log = logging.getLogger(__name__)

RIDE_S = 3.0  # an uncontended settlement waits at most this long for an ask to ride with
NAP_MAX_S = 2.0  # a waiting call checks for cancellation at least this often
HOLD_MARGIN_S = 30.0  # a permit outlives its call's timeout by this much
TELL_S = 1.0  # a wait this long (or expected to be) is said in the job's progress
# A parked step's task runs again when its turn may have come (the queue's expected
# wait, jittered), within these bounds: every return costs a task run.
PARK_MIN_S, PARK_MAX_S = 1.0, 30.0


@dataclass(frozen=True)
class Caller:
    """Who is calling: the job's place in the fair share and how long it may wait."""

    job_id: str
    key: str  # the step's (candidate-0, evaluation, ...)
    batch: bool
    flow: str
    deadline: float  # epoch s: a quota wait ends before the job's deadline
    # A batch step's first call may give its thread back (QuotaParked) rather than wait
    # in it, when enough of the process's threads already wait for quota.
    parkable: bool = False
    # Told once when a call starts waiting ("waiting for deepseek quota ...") and once
    # when it got its permit after such a wait (done=True).
    on_wait: Callable[[str, bool], None] | None = None


@dataclass
class Permit:
    ask: QuotaAsk
    permit: str
    waited_s: float
    contended: bool = False  # other calls were waiting when it was granted


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

    def __init__(self, quotas: Quotas, models: ModelsConfig, *, threads: int = 32) -> None:
        """``threads``: the worker's; parkable calls wait in at most half of them, so
        that the other half stays free for interactive jobs' tasks."""
        self.quotas, self.models = quotas, models
        self.max_waiters = max(1, threads // 2)
        self._waiters = 0
        self._cond = threading.Condition()
        self._due: list[Settlement] = []
        self._urgent = False  # a due settlement frees a slot someone waits for
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
        """The call's permit, once it has one (None: the store is unreachable, and the
        call goes out without). Raises QuotaParked (a parkable call, half the threads
        already waiting) or QuotaWaitTooLong (the caller's time is over, or a step with
        fallbacks would wait past ``give_up_after_s``)."""
        ask = self._ask(endpoint, body, caller, timeout_s=timeout_s, resume=resume)
        started, told, refused = time.monotonic(), False, False
        try:
            while True:
                try:
                    grant = self.quotas.acquire(ask, self.take_due())
                except StoreUnavailable:
                    # No store, no shared allowance: the call goes out as it did before
                    # quotas (a 429 is then an attempt); a job is not failed for it.
                    log.warning("quota store unreachable: %s goes out without a permit", caller.key)
                    return None
                waited = time.monotonic() - started
                if grant.granted:
                    if told and caller.on_wait is not None:
                        caller.on_wait(f"got {ask.provider.name} quota after {waited:.1f}s", True)
                    contended = grant.ahead > 0 or grant.room <= 1
                    if contended:
                        self._hurry()  # settlements held back for a ride go now
                    return Permit(ask, grant.permit, waited if refused else 0.0, contended)
                if not refused:
                    self._park_or_wait(ask, caller, grant.retry_in_s)
                    refused = True
                left = _time_left(ask, grant, caller, waited, give_up_after_s)
                if not told and max(waited, grant.retry_in_s) >= TELL_S:
                    told = _tell(ask, grant, caller)
                if check is not None:
                    check()
                self.quotas.nap(ask, min(max(grant.retry_in_s, 0.01), NAP_MAX_S, left))
        except BaseException:
            self._withdraw(ask)
            raise
        finally:
            if refused:
                with self._cond:
                    self._waiters -= 1

    def _ask(
        self,
        endpoint: Endpoint,
        body: dict[str, object],
        caller: Caller,
        *,
        timeout_s: float,
        resume: bool,
    ) -> QuotaAsk:
        provider, model = self.buckets(endpoint)
        prompt = sum(estimate_tokens(str(m.get("content", ""))) for m in _messages(body))
        return QuotaAsk(
            provider=provider,
            model=model,
            ticket=uuid.uuid4().hex,
            flow=caller.flow,
            batch=caller.batch,
            tokens=prompt + int(str(body.get("max_tokens", 0))),
            hold_s=timeout_s + HOLD_MARGIN_S,
            resume=resume,
        )

    def _park_or_wait(self, ask: QuotaAsk, caller: Caller, retry_in_s: float) -> None:
        """Count this call among the process's waiters, or park it (QuotaParked) when
        it may and half the threads already wait."""
        with self._cond:
            if not caller.parkable or self._waiters < self.max_waiters:
                self._waiters += 1
                return
        after = min(max(retry_in_s, PARK_MIN_S), PARK_MAX_S) * (1 + random.random() / 4)
        self._withdraw(ask)
        raise QuotaParked(
            f"{caller.key}: {ask.provider.name} quota is taken; again in {after:.1f}s",
            after_s=after,
        )

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
        """Queue the settlement. Where calls wait for the provider (or after a 429) it
        goes at once; otherwise it rides with the process's next ask, or goes within
        RIDE_S: an uncontended slot returned a little late costs nobody anything."""
        done = Settlement(
            ask=permit.ask,
            permit=permit.permit,
            used_tokens=used_tokens,
            throttled=throttled,
            retry_after_s=pause_s,
            waited_s=permit.waited_s,
        )
        with self._cond:
            self._due.append(done)
            self._urgent |= throttled or permit.contended
            if self._flusher is None or not self._flusher.is_alive():
                self._flusher = threading.Thread(
                    target=self._flush_loop, name="vpsweb-quota-settle", daemon=True
                )
                self._flusher.start()
            self._cond.notify_all()

    def _hurry(self) -> None:
        with self._cond:
            if self._due:
                self._urgent = True
                self._cond.notify_all()

    def take_due(self) -> list[Settlement]:
        with self._cond:
            due, self._due, self._urgent = self._due, [], False
        return due

    def _flush_loop(self) -> None:
        while True:
            with self._cond:
                while not self._due:
                    self._cond.wait()
                until = time.monotonic() + RIDE_S
                while self._due and not self._urgent and (left := until - time.monotonic()) > 0:
                    self._cond.wait(left)
            due = self.take_due()
            if not due:
                continue
            try:
                self.quotas.settle(due)
            except StoreUnavailable:
                # Lapsing permits return their slots; counters miss these calls.
                time.sleep(1.0)

    def flush(self) -> None:
        """Send what is due now (tests and shutdown)."""
        self.quotas.settle(self.take_due())


def check_still_time(caller: Caller | None, throttled: TransientLLMError) -> None:
    """After a 429: QuotaWaitTooLong once the caller's time to wait is over (a provider
    that keeps refusing a call that gets its permit at once is waited for no longer)."""
    if caller is not None and time.time() >= caller.deadline:
        raise QuotaWaitTooLong(
            f"the step's time to wait is over; the provider last said: {throttled}"
        ) from None


def permit_for(
    gate: QuotaGate,
    endpoint: Endpoint,
    body: dict[str, object],
    caller: Caller,
    call: StepCall,
    check: Callable[[], float | None] | None,
    throttled: TransientLLMError | None,
) -> Permit | None:
    """The call's permit; after a 429 (``throttled``), at the front of its queue, and a
    wait that runs out says what the provider last said."""
    try:
        return gate.take(
            endpoint,
            body,
            caller,
            timeout_s=call.timeout_s,
            give_up_after_s=call.budget_s() if call.fallbacks else None,
            check=check,
            resume=throttled is not None,
        )
    except QuotaWaitTooLong as exc:
        if throttled is None:
            raise
        raise QuotaWaitTooLong(f"{exc}; the provider last said: {throttled}") from exc


def _time_left(
    ask: QuotaAsk, grant: Grant, caller: Caller, waited: float, give_up_after_s: float | None
) -> float:
    """Seconds the call may still wait; QuotaWaitTooLong when none are left."""
    left = caller.deadline - time.time()
    why = f"waited {waited:.1f}s for {ask.provider.name} quota ({grant.reason})"
    if left <= 0:
        raise QuotaWaitTooLong(f"{why}: the step's time to wait is over")
    if give_up_after_s is not None and waited + grant.retry_in_s > give_up_after_s:
        raise QuotaWaitTooLong(
            f"{why}: more would pass the step's worst case ({give_up_after_s:g}s)"
        )
    return left


def _tell(ask: QuotaAsk, grant: Grant, caller: Caller) -> bool:
    """Say the wait in the job's progress (once); True when it was said."""
    if caller.on_wait is None:
        return False
    where = f"{grant.ahead} ahead; {grant.reason}"
    caller.on_wait(f"waiting for {ask.provider.name} quota ({where})", False)
    return True


def _messages(body: dict[str, object]) -> list[dict[str, object]]:
    messages = body.get("messages")
    return [m for m in messages if isinstance(m, dict)] if isinstance(messages, list) else []
