"""The canvas of one job, derived from the stage table:

    chain(chord(group(candidate x N), evaluation), editor_review, translator_revision, finalize)

A fan-out stage becomes a group whose chord callback is the next stage; every
other stage is a link of the chain. Signatures are immutable and built by task
name: each task reads its inputs from the store, not from its parent's return
value. Every task gets a deterministic id ({job}.{step key}) that Flower can
group by. Arguments are the job id and an item index only: the poem and every
step output stay in the store, never in a broker message.
"""

from __future__ import annotations

from celery import Celery, chain, chord, group
from celery.canvas import Signature

from vpsweb.domain.models import Priority
from vpsweb.domain.plan import JobPlan
from vpsweb.stages.table import STAGES, Stage
from vpsweb.workers.routing import FINALIZE_TASK, TASK_NAMES


def message_priority(app: Celery, plan: JobPlan) -> int:
    """An interactive job's tasks go before a batch's in the broker too, or they would
    queue behind a 500-poem batch's before their quota priority could count. Redis
    serves priority 0 first (kombu keeps a list per priority step and pops them in
    order); RabbitMQ the highest (quorum queues from 4.0: 5 and above; 3.x ignores it)."""
    scheme = str(app.conf.broker_url or "").partition(":")[0]
    high, low = (0, 9) if scheme.startswith(("redis", "rediss", "sentinel")) else (9, 0)
    return low if plan.priority is Priority.BATCH else high


def task_id(job_id: str, key: str) -> str:
    return f"{job_id}.{key}"


def _sig(
    app: Celery, plan: JobPlan, task: str, key: str, queue: str, index: int | None, label: str
) -> Signature:
    job = plan.job_id
    args: tuple[object, ...] = (job,) if index is None else (job, index)
    return app.signature(
        task,
        args=args,
        immutable=True,
        task_id=task_id(job, key),
        queue=queue,
        priority=message_priority(app, plan),
        # What Flower shows: short, no poem text, no secrets.
        argsrepr=f"job={job}{label}",
        kwargsrepr="{}",
    )


def _stage_sigs(app: Celery, plan: JobPlan, s: Stage, queue: str) -> list[Signature]:
    if not s.fan_out:
        return [_sig(app, plan, TASK_NAMES[s.name], s.key(), queue, None, "")]
    return [
        _sig(
            app,
            plan,
            TASK_NAMES[s.name],
            s.key(c.index),
            queue,
            c.index,
            f" {s.item}={c.index} variant={c.variant}",
        )
        for c in plan.candidates
    ]


def build_canvas(
    app: Celery, plan: JobPlan, routing: dict[str, str], start: str | None = None
) -> Signature:
    """The job's canvas from stage ``start`` on (default: the first): a job resumed
    after manual answers runs only what is left (``"finalize"``: nothing but the
    result); ``finalize`` always ends it."""
    names = [s.name for s in STAGES]
    first = len(names) if start == "finalize" else names.index(start) if start else 0
    links: list[Signature] = []
    header: list[Signature] | None = None
    for s in STAGES[first:]:
        sigs = _stage_sigs(app, plan, s, routing[s.name])
        if s.fan_out:
            header = sigs
            continue
        if header is not None:
            # chord() built explicitly: a one-member group in a chain would be unrolled.
            links.append(chord(group(header), sigs[0]))
            header = None
        else:
            links.extend(sigs)
    if header is not None:  # the job ends with a fan-out: the chord's body is finalize
        final = _sig(app, plan, FINALIZE_TASK, "finalize", routing["finalize"], None, "")
        return chain(chord(group(header), final))
    links.append(_sig(app, plan, FINALIZE_TASK, "finalize", routing["finalize"], None, ""))
    return chain(*links)
