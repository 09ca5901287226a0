"""What the pages show, computed from the async client's records and results."""

from __future__ import annotations

from typing import Any

from vpsweb.client.aio import AsyncClient, AsyncJob
from vpsweb.domain.languages import language_name
from vpsweb.domain.result import TranslationOutput
from vpsweb.errors import JobNotFound
from vpsweb.files.output import format_cost, to_markdown
from vpsweb.storage import JobStatus
from vpsweb.view import JobView, ResultView
from vpsweb.view.job_view import STATUS_TEXT


async def job_context(client: AsyncClient, job: AsyncJob) -> dict[str, Any]:
    record = await job.record()
    plan = record.plan
    req = plan.request
    status = record.status.value
    text = STATUS_TEXT[status]
    if record.error:
        text += f" in {record.error_stage}: {record.error}"
    return {
        "job_id": job.id,
        "title": req.title,
        "languages": f"{language_name(req.source_lang)} → "
        f"{language_name(req.target_lang, target=True)}",
        "mode": plan.workflow_mode.value,
        "n": plan.parallel_count,
        "manual": ", ".join(plan.manual_steps),
        "percent": int(await job.percent()),
        "status": status,
        "status_text": text,
        "ended": record.status.terminal,
        # Every row waiting: the event stream's replay (job.js) draws the rest.
        "view": JobView.of(job.id, plan),
        "result_html": "",
    }


async def no_result_text(client: AsyncClient, job_id: str) -> str:
    """Why a job has no result to show. "Expired" only when it is true (a job that
    succeeded but whose output is gone): a failed job's page once said "expired"."""
    try:
        record = await client.record(job_id)
    except JobNotFound:
        return "This job has expired: its record and result are gone."
    status = record.status
    if status is JobStatus.FAILED:
        where = f" in {record.error_stage}" if record.error_stage else ""
        why = f": {record.error}" if record.error else "."
        return f"No result: the job failed{where}{why}"
    if status is JobStatus.CANCELLED:
        return "No result: the job was cancelled" + (f": {record.error}" if record.error else ".")
    if not status.terminal:
        return f"No result yet: the job is {status.value}."
    kept = record.plan.retention_s
    span = f"{kept / 86400:g} days" if kept >= 2 * 86400 else f"{kept / 3600:g} hours"
    return f"The result has expired (results are kept {span} after a job is submitted)."


async def output_of(client: AsyncClient, job_id: str) -> TranslationOutput | None:
    raw = await client.load_result(job_id)
    return TranslationOutput.model_validate_json(raw) if raw else None


def result_context(output: TranslationOutput) -> dict[str, Any]:
    return {"r": ResultView.of(output)}


def download(output: TranslationOutput, kind: str) -> tuple[str, str]:
    if kind == "json":
        return output.model_dump_json(indent=2), "application/json"
    return to_markdown(output), "text/markdown"


async def job_rows(client: AsyncClient, limit: int = 30) -> list[dict[str, Any]]:
    rows = []
    for record in await client.recent(limit):
        req = record.plan.request
        cost = ""
        if record.status.value == "succeeded" and (out := await output_of(client, record.job_id)):
            cost = format_cost(out.totals.cost)
        rows.append(
            {
                "id": record.job_id,
                "title": req.title,
                "status": record.status.value,
                "languages": f"{req.source_lang} → {req.target_lang}",
                "n": record.plan.parallel_count,
                "cost": cost,
                "created": f"{record.created_at:%Y-%m-%d %H:%M}",
            }
        )
    return rows
