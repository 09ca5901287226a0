"""The worker's quota gate over the memory store: waiting, parking, settling, deadlines."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from vpsweb.config import load_config
from vpsweb.config.schema import Limits as LimitsConfig
from vpsweb.domain.models import ModelInfo
from vpsweb.errors import QuotaParked, QuotaWaitTooLong
from vpsweb.llm.endpoints import Endpoint
from vpsweb.llm.quota_gate import Caller, QuotaGate
from vpsweb.storage.memory import memory_storage


def _gate(*, threads: int, **limits: int) -> QuotaGate:
    models = load_config().models.model_copy(deep=True)
    models.providers["simulator"].limits = LimitsConfig(**limits)
    quotas = memory_storage().quotas
    assert quotas is not None
    return QuotaGate(quotas, models, threads=threads)


ENDPOINT = Endpoint(
    info=ModelInfo(
        model="simulator", provider="simulator", api_model="vpsweb-sim", reasoning=False
    ),
    base_url="http://127.0.0.1:1/v1",
    api_key_env=None,
    price=load_config().models.models["simulator"].price,
    offline=True,
)
BODY: dict[str, Any] = {"messages": [{"role": "user", "content": "a poem"}], "max_tokens": 100}


def _caller(*, parkable: bool = False, deadline_s: float = 30, said: list[str] | None = None):
    def on_wait(message: str, done: bool) -> None:
        if said is not None:
            said.append(message)

    return Caller(
        job_id="j",
        key="candidate-0",
        batch=parkable,
        flow="f",
        deadline=time.time() + deadline_s,
        on_wait=on_wait,
        parkable=parkable,
    )


def _take(gate: QuotaGate, caller: Caller, **kw: Any):
    return gate.take(ENDPOINT, BODY, caller, timeout_s=5, give_up_after_s=None, check=None, **kw)


def _until_queued(gate: QuotaGate, n: int) -> None:
    """Until ``n`` calls wait in the simulator's queue (a loaded machine starts threads
    late: a fixed sleep would race them)."""
    deadline = time.monotonic() + 10
    while gate.quotas.state(["simulator"])[0].queued < n:
        assert time.monotonic() < deadline, f"{n} calls never queued"
        time.sleep(0.01)


def test_a_call_waits_for_a_returned_permit_and_says_so() -> None:
    gate = _gate(threads=8, max_concurrent=1)
    first = _take(gate, _caller())
    assert first is not None
    said: list[str] = []
    got: list[Any] = []
    waiter = threading.Thread(target=lambda: got.append(_take(gate, _caller(said=said))))
    waiter.start()
    time.sleep(1.3)  # a wait is said once it lasted a second
    assert not got and said and "waiting for simulator quota" in said[0]
    gate.settle(first, used_tokens=10)
    waiter.join(timeout=5)
    assert got and got[0] is not None and got[0].waited_s > 1.2
    assert "got simulator quota after" in said[-1]


def test_a_batch_call_parks_when_half_the_threads_already_wait() -> None:
    gate = _gate(threads=2, max_concurrent=1)  # one waiter at most
    holder = _take(gate, _caller())
    assert holder is not None
    waiting = threading.Thread(target=lambda: _take(gate, _caller(parkable=True)))
    waiting.start()
    _until_queued(gate, 1)
    time.sleep(0.1)  # ... and counted among the gate's waiters, just after
    with pytest.raises(QuotaParked) as parked:
        _take(gate, _caller(parkable=True))
    assert 1.0 <= parked.value.after_s <= 30.0 * 1.25
    # An interactive call never parks: it waits in its thread.
    interactive: list[Any] = []
    t = threading.Thread(target=lambda: interactive.append(_take(gate, _caller())))
    t.start()
    _until_queued(gate, 2)  # both wait: the permit goes to the interactive one
    gate.settle(holder, used_tokens=1)
    t.join(timeout=5)
    assert interactive and interactive[0] is not None  # went before the waiting batch call
    gate.settle(interactive[0], used_tokens=1)
    waiting.join(timeout=5)
    assert not waiting.is_alive()


def test_a_wait_ends_at_the_callers_deadline() -> None:
    gate = _gate(threads=8, max_concurrent=1)
    assert _take(gate, _caller()) is not None
    started = time.monotonic()
    with pytest.raises(QuotaWaitTooLong, match="time to wait is over"):
        _take(gate, _caller(deadline_s=0.5))
    assert time.monotonic() - started < 2


def test_a_step_with_fallbacks_gives_up_at_its_worst_case() -> None:
    gate = _gate(threads=8, max_concurrent=1)
    assert _take(gate, _caller()) is not None
    with pytest.raises(QuotaWaitTooLong, match="worst case"):
        gate.take(ENDPOINT, BODY, _caller(), timeout_s=5, give_up_after_s=0.3, check=None)
