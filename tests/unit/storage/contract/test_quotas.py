"""The providers' quotas: token buckets, concurrency, the adaptive allowance, pauses,
and a queue served by class, then round-robin between flows, then arrival.

Every test runs on both stores; time passes with ``store.advance`` (the memory clock
moves, Redis is slept on, so waits stay short).
"""

from __future__ import annotations

import threading
import time

import pytest

from tests.helpers.storage_backends import Backend
from vpsweb.domain.permits import Bucket, Limits, QuotaAsk, QuotaState, Settlement
from vpsweb.storage.memory import ManualClock, memory_storage
from vpsweb.storage.memory.quotas import BURST_S, INCREASE, INITIAL, PACE, SOFT_CUT
from vpsweb.storage.quotas import Quotas

P = "prov"


def _quotas(store: Backend) -> Quotas:
    quotas = store.storage.quotas
    assert quotas is not None
    return quotas


def _ask(
    ticket: str,
    limits: Limits,
    *,
    flow: str = "f",
    batch: bool = True,
    tokens: int = 10,
    hold_s: float = 60.0,
    resume: bool = False,
    model: Bucket | None = None,
) -> QuotaAsk:
    return QuotaAsk(
        provider=Bucket(P, limits),
        model=model,
        ticket=ticket,
        flow=flow,
        batch=batch,
        tokens=tokens,
        hold_s=hold_s,
        resume=resume,
    )


def _done(
    ask: QuotaAsk,
    used: int | None = 10,
    *,
    throttled: bool = False,
    retry_after_s: float | None = None,
    waited_s: float = 0.0,
) -> Settlement:
    return Settlement(ask, ask.ticket, used, throttled, retry_after_s, waited_s)


def _state(quotas: Quotas, bucket: str = P) -> QuotaState:
    return quotas.state([bucket])[0]


def _serve_one(quotas: Quotas, waiting: list[QuotaAsk]) -> QuotaAsk:
    """Ask again for every waiting call (in arrival order): exactly one may go."""
    won = [a for a in list(waiting) if quotas.acquire(a).granted]
    assert len(won) == 1, [a.ticket for a in won]
    waiting.remove(won[0])
    return won[0]


# --- token buckets ---------------------------------------------------------------------


def test_requests_per_minute_admit_a_burst_then_refuse_until_refilled(store: Backend) -> None:
    rpm = 632  # paced to 10.0 a second, a burst of half a second's worth: 5
    rate = rpm / 60 * PACE
    assert int(rate * BURST_S) == 5
    quotas, lim = _quotas(store), Limits(requests_per_minute=rpm, max_concurrent=10)
    for i in range(5):
        assert quotas.acquire(_ask(f"t{i}", lim)).granted
    late = _ask("late", lim)
    grant = quotas.acquire(late)
    assert (grant.granted, grant.reason, grant.ahead) == (False, "requests", 0)
    assert grant.retry_in_s == pytest.approx(1 / rate, abs=0.02)  # one request refills
    store.advance(0.15)
    assert quotas.acquire(late).granted  # the same ticket: it kept its place
    assert _state(quotas).calls == 6


def test_a_batch_call_leaves_a_request_for_an_interactive_one(store: Backend) -> None:
    quotas, lim = _quotas(store), Limits(requests_per_minute=632)  # a burst of 5
    granted = [quotas.acquire(_ask(f"b{i}", lim, flow=f"b{i}")).granted for i in range(6)]
    assert granted == [True] * 5 + [False]  # the burst; the one above it is a person's
    assert quotas.acquire(_ask("person", lim, batch=False)).granted


def test_a_slow_bucket_still_holds_one_request(store: Backend) -> None:
    quotas, lim = _quotas(store), Limits(requests_per_minute=30)  # a burst of at least 1
    assert quotas.acquire(_ask("a", lim)).granted
    grant = quotas.acquire(_ask("b", lim))
    assert grant.reason == "requests"
    assert grant.retry_in_s == pytest.approx(60 / 30 / PACE, abs=0.05)


def test_tokens_per_minute_reserve_the_ask_and_refund_what_was_not_used(store: Backend) -> None:
    quotas, lim = _quotas(store), Limits(tokens_per_minute=600)  # 9.5 tokens/s, paced
    first = _ask("first", lim, tokens=300)
    assert quotas.acquire(first).granted  # a bucket holds max(rate, the ask's tokens)
    second = _ask("second", lim, tokens=200)
    grant = quotas.acquire(second)
    assert (grant.granted, grant.reason) == (False, "tokens")
    assert grant.retry_in_s == pytest.approx(200 / (10 * PACE), abs=0.1)
    quotas.settle([_done(first, used=100)])  # 200 of the 300 reserved come back
    assert quotas.acquire(second).granted


def test_tokens_unknown_at_settlement_stay_reserved(store: Backend) -> None:
    quotas, lim = _quotas(store), Limits(tokens_per_minute=600)
    first = _ask("first", lim, tokens=300)
    assert quotas.acquire(first).granted
    quotas.settle([_done(first, used=None)])  # no answer: the reservation stands
    grant = quotas.acquire(_ask("second", lim, tokens=200))
    assert (grant.granted, grant.reason) == (False, "tokens")


# --- concurrency -----------------------------------------------------------------------


def test_max_concurrent_admits_n_then_refuses_until_a_settlement(store: Backend) -> None:
    quotas, lim = _quotas(store), Limits(max_concurrent=2)
    a, b, c = _ask("a", lim), _ask("b", lim), _ask("c", lim)
    assert quotas.acquire(a).granted and quotas.acquire(b).granted
    grant = quotas.acquire(c)
    assert (grant.granted, grant.reason, grant.ahead) == (False, "concurrency", 0)
    assert grant.retry_in_s > 0
    assert not quotas.acquire(c).granted  # asking again changes nothing
    assert quotas.acquire(c, [_done(a)]).granted  # a settlement rides with the ask
    assert _state(quotas).in_flight == 2
    quotas.settle([_done(b), _done(c)])
    assert _state(quotas).in_flight == 0


def test_the_reason_names_the_limit_that_binds(store: Backend) -> None:
    quotas, lim = _quotas(store), Limits(requests_per_minute=6000, max_concurrent=1)
    assert quotas.acquire(_ask("a", lim)).granted
    grant = quotas.acquire(_ask("b", lim))  # 49 requests left: concurrency binds
    assert (grant.granted, grant.reason) == (False, "concurrency")


def test_a_permit_never_settled_lapses_after_its_hold(store: Backend) -> None:
    quotas, lim = _quotas(store), Limits(max_concurrent=1)
    assert quotas.acquire(_ask("dead", lim, hold_s=0.2)).granted  # its worker dies
    nxt = _ask("next", lim)
    assert quotas.acquire(nxt).reason == "concurrency"
    store.advance(0.3)
    assert quotas.acquire(nxt).granted


def test_a_model_bucket_limits_its_calls_within_the_provider(store: Backend) -> None:
    quotas, lim = _quotas(store), Limits(max_concurrent=5)
    model = Bucket(f"{P}/m1", Limits(max_concurrent=1))
    a = _ask("a", lim, model=model)
    assert quotas.acquire(a).granted
    grant = quotas.acquire(_ask("b", lim, model=model))
    assert (grant.granted, grant.reason) == (False, "concurrency")
    other = _ask("other", lim, flow="g")  # behind "b", but the provider has room
    assert quotas.acquire(other).granted
    m, p = quotas.state([model.name, P])
    assert (m.bucket, m.in_flight, m.queued) == (model.name, 1, 1)
    assert (p.in_flight, p.calls, p.queued) == (2, 2, 1)
    quotas.settle([_done(a)])
    assert quotas.acquire(_ask("b", lim, model=model)).granted


# --- the queue -------------------------------------------------------------------------


def test_an_interactive_ask_goes_before_queued_batch_asks(store: Backend) -> None:
    quotas, lim = _quotas(store), Limits(max_concurrent=1)
    busy = _ask("busy", lim)
    assert quotas.acquire(busy).granted
    waiting = [_ask(f"batch{i}", lim, flow=f"batch{i}") for i in range(3)]
    assert [quotas.acquire(a).ahead for a in waiting] == [0, 1, 2]
    person = _ask("person", lim, flow="job", batch=False)
    assert quotas.acquire(person).ahead == 0  # asked last, first in line
    assert quotas.acquire(waiting[0]).ahead == 1
    waiting.append(person)
    quotas.settle([_done(busy)])
    assert _serve_one(quotas, waiting) is person


def test_batch_flows_are_served_round_robin(store: Backend) -> None:
    quotas, lim = _quotas(store), Limits(max_concurrent=1)
    holder = _ask("busy", lim, flow="X")
    assert quotas.acquire(holder).granted
    waiting = [_ask(f"a{i}", lim, flow="A") for i in range(5)]
    waiting += [_ask(f"b{i}", lim, flow="B") for i in range(5)]
    for ask in waiting:  # A's five queue first, then B's
        assert not quotas.acquire(ask).granted
    order = []
    while waiting:
        quotas.settle([_done(holder)])
        holder = _serve_one(quotas, waiting)
        order.append(holder.ticket)
    assert order == ["a0", "b0", "a1", "b1", "a2", "b2", "a3", "b3", "a4", "b4"]


def test_a_batch_far_ahead_of_its_turn_is_told_to_come_back_later(store: Backend) -> None:
    """Parked steps withdraw their places but not their flow's lead. Beside another
    batch that asked lately, a batch that asked for many calls comes back when its
    turn may have come, not at the queue's wait, so hundreds of parked steps do not
    churn through the workers; the other batch is told its nearer turn. Alone, the
    queue's wait (its own re-asks are all that inflated its tag)."""
    quotas, lim = _quotas(store), Limits(requests_per_minute=60)
    assert quotas.acquire(_ask("first", lim, flow="A")).granted  # the burst of one
    parked = [_ask(f"a{i}", lim, flow="A") for i in range(6)]
    assert not any(quotas.acquire(a).granted for a in parked)
    for ask in parked:
        quotas.withdraw(ask)
    alone = _ask("a-alone", lim, flow="A")
    assert quotas.acquire(alone).retry_in_s <= 1 / 0.95 + 0.01  # first in the queue
    quotas.withdraw(alone)
    other = quotas.acquire(_ask("b0", lim, flow="B"))
    again = quotas.acquire(_ask("a-again", lim, flow="A"))
    person = quotas.acquire(_ask("p0", lim, flow="job", batch=False))
    assert not again.granted and not other.granted and not person.granted
    assert again.retry_in_s >= 8 / 0.95 - 0.01  # its tag is 8 turns past the virtual time
    assert other.retry_in_s <= 2 / 0.95
    assert person.retry_in_s <= 1 / 0.95 + 0.01  # interactive: the queue's wait only


def test_a_flow_arriving_later_joins_the_current_round(store: Backend) -> None:
    quotas, lim = _quotas(store), Limits(max_concurrent=1)
    holder = _ask("busy", lim, flow="X")
    assert quotas.acquire(holder).granted
    waiting = [_ask(f"a{i}", lim, flow="A") for i in range(4)]
    for ask in waiting:
        quotas.acquire(ask)
    order = []
    for _ in range(2):
        quotas.settle([_done(holder)])
        holder = _serve_one(quotas, waiting)
        order.append(holder.ticket)
    waiting += [_ask(f"b{i}", lim, flow="B") for i in range(2)]  # B comes in now
    for ask in waiting[-2:]:
        quotas.acquire(ask)
    while waiting:
        quotas.settle([_done(holder)])
        holder = _serve_one(quotas, waiting)
        order.append(holder.ticket)
    # B joins the round being served (it neither waits behind all of A's calls nor
    # catches up on the rounds it missed)
    assert order == ["a0", "a1", "a2", "b0", "a3", "b1"]


def test_equal_tags_are_served_by_arrival(store: Backend) -> None:
    quotas, lim = _quotas(store), Limits(max_concurrent=1)
    holder = _ask("busy", lim, flow="X")
    assert quotas.acquire(holder).granted
    # two flows' first calls share a fair-share tag; the one that asked first goes first
    waiting = [_ask("zz-first", lim, flow="A"), _ask("aa-second", lim, flow="B")]
    ahead = [quotas.acquire(a).ahead for a in waiting]
    quotas.settle([_done(holder)])
    first = _serve_one(quotas, waiting).ticket
    assert (ahead, first) == ([0, 1], "zz-first")


def test_a_resumed_ask_takes_the_front_of_its_class(store: Backend) -> None:
    quotas, lim = _quotas(store), Limits(max_concurrent=1)
    holder = _ask("busy", lim, flow="X")
    assert quotas.acquire(holder).granted
    waiting = [_ask("a0", lim, flow="A"), _ask("a1", lim, flow="A"), _ask("b0", lim, flow="B")]
    for ask in waiting:
        quotas.acquire(ask)
    again = _ask("again", lim, flow="A", resume=True)  # throttled: asks anew, not at the back
    assert quotas.acquire(again).ahead == 0
    person = _ask("person", lim, flow="job", batch=False)
    assert quotas.acquire(person).ahead == 0  # interactive still goes first
    assert quotas.acquire(again).ahead == 1


def test_withdrawing_moves_the_next_waiter_up(store: Backend) -> None:
    quotas, lim = _quotas(store), Limits(max_concurrent=1)
    busy = _ask("busy", lim)
    assert quotas.acquire(busy).granted
    w = [_ask(f"w{i}", lim, flow=f"w{i}") for i in range(3)]
    assert [quotas.acquire(a).ahead for a in w] == [0, 1, 2]
    assert _state(quotas).queued == 3
    quotas.withdraw(w[0])
    assert _state(quotas).queued == 2
    assert [quotas.acquire(a).ahead for a in w[1:]] == [0, 1]
    quotas.settle([_done(busy)])
    assert _serve_one(quotas, w[1:]) is w[1]


def test_a_waiter_that_stops_asking_leaves_the_queue(
    store: Backend, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("vpsweb.storage.memory.quotas.STALE_S", 0.3)
    monkeypatch.setattr("vpsweb.storage.redis.quotas.STALE_S", 0.3)
    quotas, lim = _quotas(store), Limits(max_concurrent=1)
    assert quotas.acquire(_ask("busy", lim)).granted
    gone, alive = _ask("gone", lim), _ask("alive", lim)  # one flow: tags 2 and 3
    assert [quotas.acquire(gone).ahead, quotas.acquire(alive).ahead] == [0, 1]
    store.advance(0.2)
    assert quotas.acquire(alive).ahead == 1
    store.advance(0.2)  # "gone" last asked 0.4 s ago, "alive" 0.2 s ago
    assert quotas.acquire(alive).ahead == 0
    assert _state(quotas).queued == 1


def test_a_settlement_wakes_the_head_of_the_queue(store: Backend) -> None:
    quotas, lim = _quotas(store), Limits(max_concurrent=1)
    busy, head = _ask("busy", lim), _ask("head", lim)
    assert quotas.acquire(busy).granted
    assert not quotas.acquire(head).granted
    woke: list[float] = []

    def napper() -> None:
        started = time.monotonic()
        quotas.nap(head, 5.0)
        woke.append(time.monotonic() - started)

    thread = threading.Thread(target=napper)
    thread.start()
    time.sleep(0.05)
    quotas.settle([_done(busy)])
    thread.join(3.0)
    assert woke and woke[0] < 1.0
    assert quotas.acquire(head).granted


# --- the adaptive allowance ------------------------------------------------------------


def test_an_undeclared_provider_starts_slow_and_grows_a_call_per_success(
    store: Backend,
) -> None:
    quotas, lim = _quotas(store), Limits()  # nothing declared
    calls = [_ask(f"c{i}", lim, flow=f"c{i}") for i in range(INITIAL + 1)]
    assert [quotas.acquire(a).granted for a in calls] == [True] * INITIAL + [False]
    assert quotas.acquire(calls[-1]).reason == "concurrency"
    assert _state(quotas).allowance is None  # unset: INITIAL
    quotas.settle([_done(calls[0])])
    assert _state(quotas).allowance == INITIAL + 1  # slow start: one more per success
    quotas.settle([_done(calls[1], used=None)])  # no answer: not a success
    assert _state(quotas).allowance == INITIAL + 1
    more = [_ask(f"m{i}", lim, flow=f"m{i}") for i in range(3)]
    assert quotas.acquire(calls[-1]).granted  # 3 in flight of 5
    assert [quotas.acquire(a).granted for a in more] == [True, True, False]


def test_a_throttle_cuts_the_allowance_once_per_round(store: Backend) -> None:
    quotas, lim = _quotas(store), Limits(max_concurrent=8)
    calls = [_ask(f"c{i}", lim, flow=f"c{i}") for i in range(4)]
    assert all(quotas.acquire(a).granted for a in calls)
    store.advance(0.01)
    quotas.settle([_done(calls[0], used=None, throttled=True)])
    cut = 3 * SOFT_CUT  # what the provider was serving besides the refused call
    assert _state(quotas).allowance == pytest.approx(cut)
    quotas.settle([_done(calls[1], used=None, throttled=True)])  # sent before the cut
    s = _state(quotas)
    assert (s.allowance, s.throttled, s.in_flight) == (pytest.approx(cut), 2, 2)
    late = _ask("late", lim)
    assert quotas.acquire(late).reason == "concurrency"  # 2 in flight of floor(2.55)
    quotas.settle([_done(calls[2])])
    grown = cut + INCREASE / cut
    assert _state(quotas).allowance == pytest.approx(grown)
    store.advance(0.01)
    assert quotas.acquire(late).granted  # granted after the cut: its 429 is news
    store.advance(0.01)
    quotas.settle([_done(late, used=None, throttled=True)])
    assert _state(quotas).allowance == pytest.approx(1.0)  # 1 serving: never below one
    assert _state(quotas).throttled == 3


def test_successes_grow_the_allowance_back_up_to_max_concurrent(store: Backend) -> None:
    quotas, lim = _quotas(store), Limits(max_concurrent=4)
    calls = [_ask(f"c{i}", lim, flow=f"c{i}") for i in range(4)]
    assert all(quotas.acquire(a).granted for a in calls)
    quotas.settle([_done(calls[0])])
    assert _state(quotas).allowance == 4  # declared: it starts there, and stays
    store.advance(0.01)
    quotas.settle([_done(calls[1], used=None, throttled=True)])
    expected = 2 * SOFT_CUT
    assert _state(quotas).allowance == pytest.approx(expected)
    for i in range(20):
        quotas.settle([_done(calls[2 + i] if i < 2 else _ask(f"x{i}", lim))])
        expected = min(4.0, expected + INCREASE / expected)  # about half a call a round
        assert _state(quotas).allowance == pytest.approx(expected)
    assert expected == 4.0  # and no further


def test_the_slow_start_ends_at_the_first_throttle(store: Backend) -> None:
    quotas, lim = _quotas(store), Limits()
    calls = [_ask(f"c{i}", lim, flow=f"c{i}") for i in range(4)]
    assert all(quotas.acquire(a).granted for a in calls)
    quotas.settle([_done(calls[0])])
    assert _state(quotas).allowance == INITIAL + 1
    quotas.settle([_done(calls[1], used=None, throttled=True)])
    assert _state(quotas).allowance == pytest.approx(2 * SOFT_CUT)  # min(5, 2 serving)
    quotas.settle([_done(calls[2])])
    assert _state(quotas).allowance == pytest.approx(2 * SOFT_CUT + INCREASE / (2 * SOFT_CUT))


def test_the_first_cut_starts_from_max_concurrent(store: Backend) -> None:
    quotas = _quotas(store)
    calls = [_ask(f"c{i}", Limits(max_concurrent=8), flow=f"c{i}") for i in range(6)]
    assert all(quotas.acquire(a).granted for a in calls)
    lowered = _ask("c0", Limits(max_concurrent=4))  # the limit was lowered since
    quotas.settle([_done(lowered, used=None, throttled=True)])
    assert _state(quotas).allowance == pytest.approx(4 * SOFT_CUT)  # min(4, 5 serving)


def test_retry_after_pauses_the_bucket(store: Backend) -> None:
    quotas, lim = _quotas(store), Limits()
    call = _ask("call", lim)
    assert quotas.acquire(call).granted
    quotas.settle([_done(call, retry_after_s=0.3)])  # x-ratelimit reset at 0 left
    nxt = _ask("next", lim)
    grant = quotas.acquire(nxt)
    assert (grant.granted, grant.reason, grant.ahead) == (False, "paused", 0)
    assert grant.retry_in_s == pytest.approx(0.3, abs=0.05)
    store.advance(0.35)
    assert quotas.acquire(nxt).granted


# --- state -----------------------------------------------------------------------------


def test_state_reports_calls_waits_throttles_and_the_queue(store: Backend) -> None:
    quotas, lim = _quotas(store), Limits(max_concurrent=2)
    assert _state(quotas) == QuotaState(bucket=P)  # nothing yet
    a, b, c = _ask("a", lim), _ask("b", lim), _ask("c", lim)
    assert quotas.acquire(a).granted and quotas.acquire(b).granted
    assert not quotas.acquire(c).granted
    quotas.settle([_done(a, waited_s=0.25), _done(b, throttled=True, used=None)])
    assert quotas.acquire(c).granted
    quotas.settle([_done(c, used=None, waited_s=0.5)])  # no answer: the allowance stays
    assert quotas.acquire(_ask("d", lim)).granted
    assert not quotas.acquire(_ask("e", lim)).granted  # allowance 1: b was alone
    s = _state(quotas)
    assert (s.calls, s.waits, s.throttled, s.in_flight, s.queued) == (4, 2, 1, 1, 1)
    assert s.wait_s == pytest.approx(0.75)
    assert s.allowance == pytest.approx(1.0)
    assert quotas.state([]) == []


# --- memory only: nap in real time -----------------------------------------------------


def test_memory_nap_waits_its_seconds_unless_woken() -> None:
    quotas = memory_storage().quotas  # the real clock
    assert quotas is not None
    lim = Limits(max_concurrent=1)
    busy, head = _ask("busy", lim), _ask("head", lim)
    assert quotas.acquire(busy).granted and not quotas.acquire(head).granted
    started = time.monotonic()
    quotas.nap(head, 0.1)
    assert 0.09 <= time.monotonic() - started < 1.0
    quotas.settle([_done(busy)])  # woken while not napping: the next nap returns at once
    started = time.monotonic()
    quotas.nap(head, 5.0)
    assert time.monotonic() - started < 0.5
    quotas.nap(_ask("other", lim), 0)  # nothing to wait for


def test_memory_nap_on_a_manual_clock_returns_at_once() -> None:
    quotas = memory_storage(clock=ManualClock()).quotas
    assert quotas is not None
    started = time.monotonic()
    quotas.nap(_ask("head", Limits()), 5.0)
    assert time.monotonic() - started < 0.5


def test_memory_quotas_hold_max_concurrent_across_threads() -> None:
    quotas = memory_storage().quotas  # the real clock
    assert quotas is not None
    lim, lock = Limits(max_concurrent=3), threading.Lock()
    in_flight, most, served = [0], [0], []

    def worker(w: int) -> None:
        for i in range(5):
            ask = _ask(f"w{w}-{i}", lim, flow=f"w{w}")
            while not quotas.acquire(ask).granted:
                quotas.nap(ask, 0.05)
            with lock:
                in_flight[0] += 1
                most[0] = max(most[0], in_flight[0])
            time.sleep(0.002)
            with lock:
                in_flight[0] -= 1
                served.append(ask.ticket)
            quotas.settle([_done(ask)])

    threads = [threading.Thread(target=worker, args=(w,)) for w in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10.0)
    assert len(served) == 40 and most[0] <= 3
    s = _state(quotas)
    assert (s.calls, s.in_flight, s.queued) == (40, 0, 0)


def test_settlements_sent_alone_are_counted_once_per_round_trip(store: Backend) -> None:
    quotas, lim = _quotas(store), Limits(max_concurrent=10)
    asks = [_ask(f"s{i}", lim) for i in range(3)]
    for a in asks:
        assert quotas.acquire(a).granted
    quotas.settle([_done(asks[0]), _done(asks[1])])  # one round trip of their own
    quotas.settle([_done(asks[2])], alone=False)  # rode with a step's own writes
    state = _state(quotas)
    assert (state.settled_alone, state.in_flight) == (1, 0)
