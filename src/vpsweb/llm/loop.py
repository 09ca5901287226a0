"""A private asyncio event loop in a daemon thread, for synchronous callers.

Worker threads call LLMs synchronously, but a blocking HTTP call can neither be
held to a wall-clock deadline (SDK timeouts are per read, so a trickling server
keeps it alive) nor abandoned from outside. On an event loop each attempt is a
task, and cancelling the task closes its connection at once.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import os
import threading
import time
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, TypeVar

from vpsweb.errors import BudgetReached, VpswebError

T = TypeVar("T")

# How often a waiting caller runs its cancel check: cancellation reaches an
# in-flight call or a back-off sleep within about this long (a check may ask to be
# run sooner: see ``LoopThread.run``).
POLL_S = 0.5
# The first check comes this soon after the request went out: a job cancelled just
# as its calls started is not left running for a whole POLL_S.
FIRST_LOOK_S = 0.1

_flight = threading.local()


def in_flight() -> bool:
    """True while this thread waits for an LLM request it sent (``LoopThread.run``).

    A check then has less to do than before a call: the paid call goes on whatever
    the spend, so only a stop matters (the job ended, the lease was lost, a straggler
    deadline passed), and a worker can know those without asking the store each
    time (orchestrator.watch)."""
    return bool(getattr(_flight, "on", False))


class DeadlinePassed(VpswebError):
    """The coroutine did not finish within its wall-clock budget; it was cancelled.
    (The client turns it into LLMTimeout; it never reaches callers of ``complete``.)"""


class LoopThread:
    """One event loop, run forever by a daemon thread (it never keeps a process alive)."""

    def __init__(self, name: str) -> None:
        self.pid = os.getpid()  # a forked child has the object but not the thread
        self.loop = asyncio.new_event_loop()
        self._cleanup: Callable[[], Awaitable[None]] | None = None
        self.thread = threading.Thread(target=self._run, name=name, daemon=True)
        self.thread.start()

    @property
    def usable(self) -> bool:
        return self.pid == os.getpid() and self.thread.is_alive()

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        try:
            self.loop.run_forever()
            # Stopped: cancel what is still in flight (its callers see CancelledError),
            # then let the owner close its clients on the loop they belong to.
            tasks = asyncio.all_tasks(self.loop)
            for task in tasks:
                task.cancel()
            self.loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))
            if self._cleanup is not None:
                self.loop.run_until_complete(self._cleanup())
            self.loop.run_until_complete(self.loop.shutdown_asyncgens())
            self.loop.run_until_complete(self.loop.shutdown_default_executor())
        finally:
            self.loop.close()

    def run(
        self,
        coro: Coroutine[Any, Any, T],
        *,
        timeout_s: float,
        check: Callable[[], float | None] | None = None,
    ) -> T:
        """The coroutine's result, from any thread.

        The deadline is kept here, by the waiting thread, rather than by
        asyncio.wait_for inside the loop: one exit path then serves the deadline,
        a raising ``check`` and the caller's own interruption (KeyboardInterrupt),
        and every one of them cancels the task, which drops its HTTP connection. A
        spent budget (BudgetReached) is not one of them: it stops new calls only.
        A ``check`` may return how many seconds until it has something new to say (a
        straggler's deadline): the next check comes then, not a whole POLL_S later.
        """
        try:
            future = asyncio.run_coroutine_threadsafe(coro, self.loop)
        except RuntimeError as exc:  # closed by a concurrent close()
            coro.close()
            raise concurrent.futures.CancelledError("the event loop is closed") from exc
        deadline = time.monotonic() + timeout_s
        poll = POLL_S if check is None else min(POLL_S, FIRST_LOOK_S)
        _flight.on = True
        try:
            while True:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise DeadlinePassed(f"no result within {timeout_s:g}s")
                done, _ = concurrent.futures.wait([future], timeout=min(poll, left))
                if done:
                    return future.result()
                if check is not None:
                    try:
                        soon = check()
                    except BudgetReached:
                        # A call already sent is paid for: it finishes and its output is
                        # stored; the budget stops the next call, not this one.
                        soon = None
                    poll = POLL_S if soon is None else min(POLL_S, max(0.005, soon))
        finally:
            _flight.on = False
            future.cancel()  # a no-op once it is done

    def stop(
        self, cleanup: Callable[[], Awaitable[None]] | None = None, wait_s: float = 5.0
    ) -> None:
        """Stop the loop after cancelling its tasks and running ``cleanup`` on it."""
        if not self.usable:
            return
        self._cleanup = cleanup
        with contextlib.suppress(RuntimeError):  # closed meanwhile by another stop()
            self.loop.call_soon_threadsafe(self.loop.stop)
        if threading.current_thread() is not self.thread:
            self.thread.join(wait_s)
