"""The job registry in Redis: status, plan, step outputs, results and submissions.

Any process with the Redis URL can read any job. Step outputs are written with
SET NX, so a redelivered task finds the first writer's output and returns it
without paying for the LLM call again. Ending a job is one Lua script, so the
status and the terminal event can never disagree. With replica acknowledgements on
(``durability.ReplicaAcks``), a stored output and the end wait for a replica, and a
job read as ended is fenced once first, so that no failover can take the end back.

Every script touches one job's keys (one Cluster slot); the global indexes
(deadlines, jobs, submissions) are written beside it in the same pipeline, and each
such write is safe to lose: the sweeper forgets the deadline of a job that ended or
waits for a person, and a job's submission is written after the job itself.
"""

from __future__ import annotations

import json
import threading
import time
from collections import OrderedDict
from typing import Any, cast

import redis

from vpsweb.domain.models import utcnow
from vpsweb.domain.plan import JobPlan
from vpsweb.domain.progress import EventKind
from vpsweb.domain.request import Priority
from vpsweb.redis_target import Durability
from vpsweb.stages.table import STAGES
from vpsweb.storage.base import Event, JobRecord, JobStatus, JobStore, Submission
from vpsweb.storage.redis import keys
from vpsweb.storage.redis.connection_errors import translating
from vpsweb.storage.redis.durability import ReplicaAcks
from vpsweb.storage.redis.lua import Lua
from vpsweb.storage.redis.signals import announce_quietly
from vpsweb.storage.redis.slots import in_order
from vpsweb.storage.signals import Signal, SignalKind
from vpsweb.storage.spend import SPENT_FIELD

PLAN_CACHE_SIZE = 512
STREAM_MAXLEN = 1000
# A submission a dispatcher read but did not acknowledge within this is taken over.
CLAIM_IDLE_MS = 30_000
CLAIM_EVERY_S = 10.0
LANES = tuple(p.value for p in Priority)  # submission lanes, in the order dispatchers read


def with_request(raw: str | None, plan: str | None) -> str | None:
    """A stored result with its request put back from the plan (``end`` stores the
    result without it: the plan already holds it)."""
    if raw is None or plan is None:
        return raw
    data = json.loads(raw)
    data.setdefault("request", json.loads(plan)["request"])
    return json.dumps(data, ensure_ascii=False)


def event_fields(event: Event) -> dict[str, str]:
    """An event as the stream stores it: strings only, empty for None."""
    payload = {"event": event.kind.value, "ts": f"{time.time():.3f}", **event.fields}
    return {k: "" if v is None else str(v) for k, v in payload.items()}


@translating
class RedisJobStore(JobStore):
    """Safe to share between threads.

    Options (keyword-only):
      claim_idle_ms: a submission read but not acknowledged for this long belongs to a
        dispatcher that died; another one takes it over.
      acks: the replica acknowledgements of the guarded writes (default: none).
    """

    def __init__(
        self,
        client: redis.Redis,
        *,
        claim_idle_ms: int = CLAIM_IDLE_MS,
        acks: ReplicaAcks | None = None,
    ) -> None:
        self.redis = client
        self.acks = acks or ReplicaAcks(client, Durability())
        self.claim_idle_ms = claim_idle_ms
        self._mark_running = Lua(client, "mark_running.lua")
        self._end = Lua(client, "end.lua")
        self._extend = Lua(client, "extend_deadline.lua")
        self._plans: OrderedDict[str, JobPlan] = OrderedDict()
        self._plans_lock = threading.Lock()
        self._group_ready = False
        self._last_claim = 0.0

    # --- registry -------------------------------------------------------------

    def create(self, plans: list[JobPlan]) -> None:
        if not plans:
            return
        ordered = in_order(self.redis)
        with self.redis.pipeline(transaction=False) as pipe:
            queue_create(pipe, plans)
            if ordered:
                queue_submit(pipe, plans)
            pipe.execute()
        if not ordered:
            with self.redis.pipeline(transaction=False) as pipe:
                queue_submit(pipe, plans)
                pipe.execute()

    def get(self, job_id: str) -> JobRecord | None:
        record = JobRecord.from_hash(
            job_id, cast(dict[str, str], self.redis.hgetall(keys.job(job_id)))
        )
        self._fenced(job_id, record.status if record else None)
        return record

    def status(self, job_id: str) -> JobStatus | None:
        value = cast(str | None, self.redis.hget(keys.job(job_id), "status"))
        return self._fenced(job_id, JobStatus(value) if value else None)

    def status_and_spent(self, job_id: str) -> tuple[JobStatus | None, float]:
        reply = cast(list[str | None], self.redis.hmget(keys.job(job_id), ["status", SPENT_FIELD]))
        value, spent = reply
        return self._fenced(job_id, JobStatus(value) if value else None), float(spent or 0.0)

    def _fenced(self, job_id: str, status: JobStatus | None) -> JobStatus | None:
        """``status``, once a replica has the job's end if it is one (see ReplicaAcks)."""
        if status is not None and status.terminal:
            self.acks.fence(job_id)
        return status

    def plan(self, job_id: str) -> JobPlan | None:
        with self._plans_lock:
            plan = self._plans.get(job_id)
        if plan is not None:
            return plan
        raw = cast(str | None, self.redis.hget(keys.job(job_id), "plan"))
        if raw is None:
            return None
        plan = JobPlan.model_validate_json(raw)
        with self._plans_lock:
            self._plans[job_id] = plan
            while len(self._plans) > PLAN_CACHE_SIZE:
                self._plans.popitem(last=False)
        return plan

    def mark_running(self, job_id: str, ttl: int) -> None:
        self.mark_running_on(self.redis, job_id)

    def mark_running_on(self, client: Any, job_id: str) -> Any:
        """mark_running.lua on ``client`` (this store's connection, or a pipeline)."""
        return self._mark_running(
            keys=[keys.job(job_id)], args=[utcnow().isoformat()], client=client
        )

    def end(
        self,
        job_id: str,
        status: JobStatus,
        ttl: int,
        *,
        events: list[Event],
        result: str | None = None,
        error: str | None = None,
        error_stage: str | None = None,
    ) -> bool:
        redundant: list[str] = []
        if result is not None:
            result, redundant = deduplicated(self.plan(job_id), job_id, result)
        names, args = end_call(job_id, status, ttl, events, result, error, error_stage)
        with self.redis.pipeline(transaction=False) as pipe:
            self._end(keys=[*names, *redundant], args=args, client=pipe)
            pipe.zrem(keys.DEADLINES, job_id)  # lost: the sweeper forgets an ended job's
            self.acks.wait_on(pipe)
            ended = bool(self.acks.settled(pipe.execute(), job_id, "the end")[0])
        if ended:  # the steps still in flight stop now, not at their next keeper round
            announce_quietly(self.redis, Signal(SignalKind.ENDED, job_id))
        return ended

    def recent_jobs(self, limit: int = 20) -> list[str]:
        return cast(list[str], self.redis.zrevrange(keys.JOBS_INDEX, 0, limit - 1))

    def extend_deadline(self, job_id: str, at: float) -> None:
        self.extend_deadline_on(self.redis, job_id, at)

    def extend_deadline_on(self, client: Any, job_id: str, at: float) -> Any:
        """extend_deadline.lua on ``client`` (this store's connection, or a pipeline), then
        the deadlines set: only a job still in it (not ended, not waiting), only later."""
        if client is self.redis:
            with self.redis.pipeline(transaction=False) as pipe:
                self.extend_deadline_on(pipe, job_id, at)
                return pipe.execute()[0]
        at_s = f"{at:.3f}"
        done = self._extend(keys=[keys.job(job_id)], args=[at_s], client=client)
        client.zadd(keys.DEADLINES, {job_id: at_s}, xx=True, gt=True)
        return done

    def deadline(self, job_id: str) -> float | None:
        value = cast(str | None, self.redis.hget(keys.job(job_id), "deadline_at"))
        return float(value) if value else None

    def forget_deadline(self, job_id: str) -> None:
        status = self.status(job_id)
        if status is None or status.terminal or status is JobStatus.WAITING:
            self.redis.zrem(keys.DEADLINES, job_id)

    def overdue(self, now: float, limit: int = 100) -> list[str]:
        found = self.redis.zrangebyscore(keys.DEADLINES, "-inf", now, start=0, num=limit)
        return cast(list[str], found)

    # --- step outputs and results --------------------------------------------------

    def save_step(self, job_id: str, key: str, payload: str, ttl: int) -> str:
        name = keys.step(job_id, key)
        with self.redis.pipeline(transaction=False) as pipe:
            pipe.set(name, payload, nx=True, ex=ttl)
            self.acks.wait_on(pipe)
            stored = self.acks.settled(pipe.execute(), job_id, f"step {key}")[0]
        if stored:
            return payload
        existing = cast(str | None, self.redis.get(name))
        return existing if existing is not None else payload

    def load_steps(self, job_id: str, step_keys: list[str]) -> list[str | None]:
        if not step_keys:
            return []
        return cast(list[str | None], self.redis.mget([keys.step(job_id, k) for k in step_keys]))

    def load_result(self, job_id: str) -> str | None:
        with self.redis.pipeline(transaction=False) as pipe:
            pipe.get(keys.result(job_id))
            pipe.hget(keys.job(job_id), "plan")
            raw, plan = cast(list[str | None], pipe.execute())
        if raw is not None:  # a result is stored by the job's end
            self.acks.fence(job_id)
        return with_request(raw, plan)

    # --- submissions ------------------------------------------------------------------

    def _ensure_group(self) -> None:
        if self._group_ready:
            return
        for lane in LANES:
            try:
                self.redis.xgroup_create(
                    keys.submissions(lane), keys.DISPATCHERS, id="0", mkstream=True
                )
            except redis.ResponseError as exc:
                if "BUSYGROUP" not in str(exc):
                    raise
        self._group_ready = True

    def next_submissions(self, consumer: str, *, block_ms: int, count: int) -> list[Submission]:
        self._ensure_group()
        found: list[Submission] = []
        now = time.monotonic()
        if now - self._last_claim > min(CLAIM_EVERY_S, self.claim_idle_ms / 1000):
            self._last_claim = now
            for lane in LANES:
                reply = self.redis.xautoclaim(
                    keys.submissions(lane),
                    keys.DISPATCHERS,
                    consumer,
                    self.claim_idle_ms,
                    count=count,
                )
                found += _submissions(cast(list[Any], reply)[1], lane)
        if found:
            return found
        # One read of both lanes (up to ``count`` of each): interactive ones go first.
        streams: dict[Any, Any] = {keys.submissions(lane): ">" for lane in LANES}
        batch = self.redis.xreadgroup(
            keys.DISPATCHERS, consumer, streams, count=count, block=block_ms
        )
        for stream, entries in cast(list[Any], batch) or []:
            found += _submissions(entries, _lane_of(stream))
        return sorted(found, key=lambda sub: LANES.index(sub.lane))

    def ack_submissions(self, entries: list[Submission]) -> None:
        if not entries:
            return
        with self.redis.pipeline(transaction=False) as pipe:
            for lane in LANES:
                ids = [e.entry_id for e in entries if e.lane == lane]
                if ids:
                    pipe.xack(keys.submissions(lane), keys.DISPATCHERS, *ids)
                    pipe.xdel(keys.submissions(lane), *ids)
            pipe.execute()

    def close(self) -> None:
        self.redis.close()


def _submissions(entries: list[Any], lane: str) -> list[Submission]:
    # A claimed entry that was deleted meanwhile comes back with no fields.
    return [Submission(entry_id, fields["job"], lane) for entry_id, fields in entries if fields]


def _lane_of(stream: str | bytes) -> str:
    name = stream.decode() if isinstance(stream, bytes) else stream
    return next(lane for lane in LANES if keys.submissions(lane) == name)


def queue_create(pipe: Any, plans: list[JobPlan]) -> None:
    """Queue the commands that register ``plans`` on ``pipe`` (a pipeline, sync or
    asyncio): status queued and a queued event each, each job's keys first, then its
    deadline and its place in the jobs' index. Their submissions (``queue_submit``)
    come after, in the same pipeline only where it runs in order (``in_order``): a
    dispatcher drops the submission of a job it cannot find."""
    for plan in plans:
        _queue_one(pipe, plan)
    newest = max(p.created_at.timestamp() for p in plans)
    pipe.zremrangebyscore(keys.JOBS_INDEX, "-inf", newest - plans[0].retention_s)


def queue_submit(pipe: Any, plans: list[JobPlan]) -> None:
    """Queue a submission for each of ``plans`` (already written) on ``pipe``."""
    for plan in plans:
        pipe.xadd(keys.submissions(plan.priority.value), {"job": plan.job_id})


def _queue_one(pipe: Any, plan: JobPlan) -> None:
    job, ttl = plan.job_id, plan.retention_s
    deadline = plan.deadline_after(STAGES[0].name, plan.created_at.timestamp())
    pipe.hset(
        keys.job(job),
        mapping={
            "status": JobStatus.QUEUED.value,
            "plan": plan.model_dump_json(),
            "created_at": plan.created_at.isoformat(),
            "deadline_at": f"{deadline:.3f}",
        },
    )
    pipe.expire(keys.job(job), ttl)
    queued = event_fields(
        Event(
            EventKind.JOB_QUEUED,
            0,
            {
                "status": "queued",
                "message": f"queued with {plan.parallel_count} candidate(s), "
                f"mode {plan.workflow_mode.value}",
            },
        )
    )
    fields = {**queued, "progress_percent": "0"}
    pipe.hset(keys.progress(job), mapping=fields)
    pipe.xadd(keys.events(job), fields, maxlen=STREAM_MAXLEN, approximate=True)
    pipe.expire(keys.progress(job), ttl)
    pipe.expire(keys.events(job), ttl)
    pipe.zadd(keys.DEADLINES, {job: deadline})
    pipe.zadd(keys.JOBS_INDEX, {job: plan.created_at.timestamp()})


def end_call(
    job_id: str,
    status: JobStatus,
    ttl: int,
    events: list[Event],
    result: str | None,
    error: str | None,
    error_stage: str | None,
) -> tuple[list[str], list[Any]]:
    """end.lua's keys and arguments (the step keys a result repeats go after the keys)."""
    fields = {"finished_at": utcnow().isoformat()}
    if error is not None:
        fields["error"] = error
    if error_stage is not None:
        fields["error_stage"] = error_stage
    encoded = [{"percent": round(e.percent, 2), "fields": event_fields(e)} for e in events]
    names = [
        keys.job(job_id),
        keys.progress(job_id),
        keys.events(job_id),
        keys.result(job_id),
    ]
    args = [
        status.value,
        ttl,
        STREAM_MAXLEN,
        result or "",
        json.dumps(fields),
        json.dumps(encoded),
    ]
    return names, args


def deduplicated(plan: JobPlan | None, job_id: str, result: str) -> tuple[str, list[str]]:
    """The result without the request (the plan holds it), and the step outputs it
    repeats: each poem and translation is stored once per job."""
    if plan is None:
        return result, []
    data = json.loads(result)
    data.pop("request", None)
    steps = [keys.step(job_id, k) for s in STAGES for k in s.keys(plan)]
    return json.dumps(data, ensure_ascii=False), steps
