"""Progress aggregated in Redis: counters, milestones, a monotonic percentage, events.

Both writes are Lua scripts, so that concurrent workers and redelivered tasks
cannot double-count a candidate, publish a milestone twice, move the percentage
back, or append anything after the terminal event.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from typing import Any, cast

import redis
from pydantic import BaseModel, ConfigDict

from vpsweb.config.schema import ProgressWeights
from vpsweb.models import StepName
from vpsweb.orchestrator import keys
from vpsweb.orchestrator.store import load_lua

STREAM_MAXLEN = 1000
# What XREAD returns with decode_responses=True: [(stream, [(id, fields), ...])].
StreamBatch = list[tuple[str, list[tuple[str, dict[str, str]]]]] | None
FINALIZE_STAGE = "Finalize"


def milestones(n: int) -> list[int]:
    """Finished-candidate counts at which progress is published: about 1/3, 2/3, all."""
    if n <= 2:
        return list(range(1, n + 1))
    return sorted({math.ceil(n / 3), math.ceil(2 * n / 3), n})


def stage_bounds(weights: ProgressWeights, step: StepName) -> tuple[float, float]:
    """Percent at the start and at the end of a stage."""
    ends = [
        weights.initial_translation,
        weights.evaluation,
        weights.editor_review,
        weights.translator_revision,
    ]
    i = list(StepName).index(step)
    return (0.0 if i == 0 else ends[i - 1], ends[i])


class ProgressEvent(BaseModel):
    """One entry of a job's event stream."""

    model_config = ConfigDict(extra="ignore")

    id: str = ""
    event: str
    stage: str = ""
    status: str = ""
    progress_percent: float = 0.0
    parallel_progress: str = ""
    successful: int | None = None
    failed: int | None = None
    message: str = ""
    model: str = ""
    error: str = ""
    ts: float = 0.0

    @property
    def terminal(self) -> bool:
        return self.event == "job_finished"

    @classmethod
    def from_stream(cls, entry_id: str, fields: dict[str, str]) -> ProgressEvent:
        data: dict[str, Any] = {k: v for k, v in fields.items() if v != ""}
        return cls(id=entry_id, **data)


class ProgressSnapshot(BaseModel):
    model_config = ConfigDict(extra="ignore")

    stage: str = ""
    status: str = "queued"
    progress_percent: float = 0.0
    parallel_progress: str = ""
    successful: int = 0
    failed: int = 0
    message: str = ""
    terminal: bool = False


class ProgressRecorder:
    """Writes a job's progress. Cheap to build; holds no job state of its own."""

    def __init__(self, client: redis.Redis) -> None:
        self.redis = client
        self._emit = client.register_script(load_lua("emit.lua"))
        self._finished = client.register_script(load_lua("candidate_finished.lua"))

    def emit(
        self,
        job_id: str,
        *,
        event: str,
        percent: float,
        ttl: int,
        once: str = "",
        terminal: bool = False,
        **fields: Any,
    ) -> bool:
        args: list[Any] = [round(percent, 2), ttl, STREAM_MAXLEN, once, "1" if terminal else "0"]
        payload = {"event": event, "ts": f"{time.time():.3f}", **fields}
        for k, v in payload.items():
            args += [k, "" if v is None else str(v)]
        result = self._emit(keys=[keys.progress(job_id), keys.events(job_id)], args=args)
        return bool(result)

    def stage_started(
        self, job_id: str, step: StepName, weights: ProgressWeights, ttl: int, *, model: str
    ) -> bool:
        return self._stage(
            job_id,
            step,
            weights,
            ttl,
            model=model,
            started=True,
            message=f"{step.display_name} started ({model})",
        )

    def stage_completed(
        self,
        job_id: str,
        step: StepName,
        weights: ProgressWeights,
        ttl: int,
        *,
        model: str,
        message: str = "",
    ) -> bool:
        return self._stage(
            job_id,
            step,
            weights,
            ttl,
            model=model,
            started=False,
            message=message or f"{step.display_name} completed",
        )

    def _stage(
        self,
        job_id: str,
        step: StepName,
        weights: ProgressWeights,
        ttl: int,
        *,
        model: str,
        started: bool,
        message: str,
    ) -> bool:
        """A stage's start (at its lower bound) or end (upper bound), once each."""
        start, end = stage_bounds(weights, step)
        return self.emit(
            job_id,
            event="stage_started" if started else "stage_completed",
            percent=start if started else end,
            ttl=ttl,
            once=f"{'start' if started else 'end'}:{step.value}",
            stage=step.display_name,
            status="running" if started else "completed",
            model=model,
            message=message,
        )

    def candidate_finished(
        self, job_id: str, index: int, *, ok: bool, n: int, weights: ProgressWeights, ttl: int
    ) -> tuple[int, bool]:
        """Returns (finished count, milestone published); count 0 means already counted."""
        _, end = stage_bounds(weights, StepName.INITIAL_TRANSLATION)
        args = [
            index,
            "1" if ok else "0",
            n,
            ttl,
            STREAM_MAXLEN,
            end,
            f"{time.time():.3f}",
            StepName.INITIAL_TRANSLATION.display_name,
            *milestones(n),
        ]
        k, published = self._finished(
            keys=[keys.finished_candidates(job_id), keys.progress(job_id), keys.events(job_id)],
            args=args,
        )
        return int(k), bool(published)

    def finished(
        self,
        job_id: str,
        outcome: str,
        ttl: int,
        *,
        stage: str = "",
        error: str = "",
        message: str = "",
    ) -> bool:
        """The terminal event: succeeded, failed or cancelled. Nothing follows it."""
        percent = 100.0 if outcome == "succeeded" else 0.0
        return self.emit(
            job_id,
            event="job_finished",
            percent=percent,
            ttl=ttl,
            terminal=True,
            status=outcome,
            stage=stage,
            error=error,
            message=message or f"job {outcome}",
        )


class ProgressReader:
    """Reads snapshots and replays/follows the stream; used by the client and the CLI."""

    def __init__(self, client: redis.Redis) -> None:
        self.redis = client

    def snapshot(self, job_id: str) -> ProgressSnapshot:
        data = cast(dict[str, str], self.redis.hgetall(keys.progress(job_id)))
        clean: dict[str, Any] = {
            k: v for k, v in data.items() if not k.startswith("once:") and v != ""
        }
        clean["terminal"] = data.get("terminal") == "1"
        return ProgressSnapshot.model_validate(clean)

    def events(
        self,
        job_id: str,
        *,
        timeout: float | None = None,
        block_ms: int = 1000,
        start: str = "0-0",
    ) -> Iterator[ProgressEvent]:
        """Replay from ``start``, then block for new events; ends after the terminal event.

        Raises TimeoutError when ``timeout`` seconds pass without the terminal event.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        last = start
        stream = keys.events(job_id)
        while True:
            wait = block_ms
            if deadline is not None:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(f"job {job_id}: no terminal event within {timeout:g}s")
                wait = max(1, min(block_ms, int(remaining * 1000)))
            batch = cast(StreamBatch, self.redis.xread({stream: last}, block=wait, count=100))
            for _name, entries in batch or []:
                for entry_id, fields in entries:
                    last = entry_id
                    event = ProgressEvent.from_stream(entry_id, fields)
                    yield event
                    if event.terminal:
                        return
