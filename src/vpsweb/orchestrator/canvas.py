"""The canvas of one job: chain(chord([candidate x N], evaluate), review, revision, finalize).

Signatures are built by task name, so a client can submit without importing the
task code, and every task gets a deterministic id (job id + step) that cancel can
revoke and Flower can group by. Arguments are the job id and small numbers only:
the poem and every step output stay in Redis, never in a broker message.
"""

from __future__ import annotations

from celery import Celery, chain, chord, group
from celery.canvas import Signature

from vpsweb.orchestrator import keys
from vpsweb.plan import JobPlan

FINAL_STEPS = ("editor_review", "translator_revision", "finalize")


def task_ids(plan: JobPlan) -> list[str]:
    ids = [keys.task_id(plan.job_id, f"candidate-{c.index}") for c in plan.candidates]
    return ids + [keys.task_id(plan.job_id, s) for s in ("evaluate", *FINAL_STEPS)]


def _sig(
    app: Celery,
    plan: JobPlan,
    step: str,
    queue: str,
    *args: object,
    immutable: bool = True,
    label: str = "",
) -> Signature:
    job = plan.job_id
    return app.signature(
        f"vpsweb.{step.split('-')[0]}",
        args=args,
        immutable=immutable,
        task_id=keys.task_id(job, step),
        queue=queue,
        # What Flower shows: short, no poem text, no secrets.
        argsrepr=f"job={job}{label}",
        kwargsrepr="{}",
    )


def build_canvas(app: Celery, plan: JobPlan) -> Signature:
    routing = plan.routing
    job = plan.job_id
    header = group(
        _sig(
            app,
            plan,
            f"candidate-{c.index}",
            routing.candidate,
            job,
            c.index,
            label=f" candidate={c.index} variant={c.variant}",
        )
        for c in plan.candidates
    )
    # chord() built explicitly: a one-member group inside a chain would otherwise be
    # unrolled into a plain task, and the callback would get a dict, not a list.
    body = _sig(
        app,
        plan,
        "evaluate",
        routing.evaluation,
        job,
        immutable=False,
        label=f" candidates={plan.parallel_count}",
    )
    rest = [
        _sig(app, plan, "editor_review", routing.editor_review, job),
        _sig(app, plan, "translator_revision", routing.translator_revision, job),
        _sig(app, plan, "finalize", routing.finalize, job),
    ]
    return chain(chord(header, body), *rest)
