"""What the batch pages show, computed from the async client's batch (``AsyncBatch``):
the counts and the bar (``BatchSummary``), one row per poem (``BatchRow``), and the
anthology and summary files made on request from the batch's results.

The server says everything (labels, classes, formatted cost and times); the page's
script only draws it, as on the job page (vpsweb.view.JobView).
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import AsyncIterator, Sequence
from typing import Any, Literal

from pydantic import BaseModel, Field, computed_field

from vpsweb.batches.anthology import CSP as ANTHOLOGY_CSP
from vpsweb.batches.anthology import AnthologyItem, anthology_html, anthology_markdown
from vpsweb.batches.summary import CSV_ENCODING, flags, summary_csv, summary_jsonl, summary_rows
from vpsweb.client.aio import AsyncClient, AsyncJob
from vpsweb.domain.batch import BatchEvent, BatchMember, BatchProgress, BatchRecord
from vpsweb.domain.result import TranslationOutput
from vpsweb.errors import VpswebError
from vpsweb.files.output import format_cost
from vpsweb.storage import JobStatus
from vpsweb.view.marks import clock

RowStatus = Literal["queued", "running", "succeeded", "failed", "cancelled", "expired"]
ROW_MARK: dict[str, tuple[str, str]] = {  # status -> (symbol, CSS class): never color alone
    "queued": ("·", "pending"),
    "running": ("…", "running"),
    "succeeded": ("✓", "done"),
    "failed": ("✗", "failed"),
    "cancelled": ("■", "cancelled"),
    "expired": ("✗", "failed"),
}
EVENT_STATUS: dict[str, RowStatus] = {
    "job_started": "running",
    "job_succeeded": "succeeded",
    "job_failed": "failed",
    "job_cancelled": "cancelled",
}
COUNTED = ("queued", "running", "succeeded", "failed", "cancelled", "expired")
# The files a batch page offers: name -> (content type, how it is served).
FILES: dict[str, tuple[str, str]] = {
    "anthology.html": ("text/html; charset=utf-8", "inline"),
    "anthology.md": ("text/markdown; charset=utf-8", "attachment"),
    "summary.csv": ("text/csv; charset=utf-8", "attachment"),
    "summary.jsonl": ("application/x-ndjson; charset=utf-8", "attachment"),
}
# The anthology is a document of its own, opened from this server: the policy it
# carries in its <meta> (styles only), and no framing, no script, no same-origin
# rights (``sandbox``) should a poem's text ever slip through unescaped.
ANTHOLOGY_HEADER_CSP = f"{ANTHOLOGY_CSP}; frame-ancestors 'none'; sandbox"
READS_AT_ONCE = 16  # member reads in flight while a download is made


class BatchRow(BaseModel):
    """One poem: its job's status, why it failed, and what it cost (once ended)."""

    index: int
    name: str
    where: str
    job_id: str
    status: RowStatus = "queued"
    cause: str = ""
    cost: str = ""
    # A job that did (or is doing) this translation already, found by its content: the
    # batch pays nothing for it (its cost is the job's, paid before).
    reused: bool = False
    # What a reader of the translation should look at (a translated poem only): the
    # delivered translation's glossary flags, fallbacks, a judge unsure of itself.
    notes: list[str] = Field(default_factory=list)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def label(self) -> str:
        symbol = ROW_MARK[self.status][0]
        said = f"{symbol} {self.status}" + (f": {self.cause}" if self.cause else "")
        return said + (" (reused: translated before)" if self.reused else "")

    @computed_field  # type: ignore[prop-decorator]
    @property
    def css(self) -> str:
        return ROW_MARK[self.status][1]


def rows_of(record: BatchRecord) -> list[BatchRow]:
    return [
        BatchRow(index=i, name=m.name, where=m.where, job_id=m.job_id, reused=m.reused)
        for i, m in enumerate(record.entries)
    ]


def apply_event(row: BatchRow, event: BatchEvent) -> None:
    """A member's event on its row (a resumed member's new job replaces the old)."""
    row.job_id, row.reused = event.job_id, event.reused
    row.status = EVENT_STATUS[event.kind]
    row.cause = event.cause or ""
    if row.status == "failed" and "no longer stored" in row.cause:
        row.status = "expired"
    if row.status == "running":
        row.cost, row.notes = "", []


class BatchSummary(BaseModel):
    """The batch as a whole: the bar (a whole percent), the counts, cost, times."""

    percent: int
    counts: dict[str, int]
    total: int
    cost: str
    elapsed: str
    eta: str
    ended: bool
    status_text: str


def summary_of(progress: BatchProgress) -> BatchSummary:
    counts = progress.counts
    by_status = {name: getattr(counts, name) for name in COUNTED}
    finished = counts.total - counts.queued - counts.running
    said = ", ".join(f"{n} {s}" for s, n in by_status.items() if n and s not in ("queued",))
    if progress.done:
        text = f"All {counts.total} poems finished: {said or 'none'}."
    else:
        text = f"{finished} of {counts.total} poems finished" + (f" ({said})" if said else "")
    costs = progress.costs or ({progress.currency: progress.cost} if progress.currency else {})
    eta = "—" if progress.eta_s is None else clock(progress.eta_s)
    return BatchSummary(
        percent=math.floor(progress.percent),
        counts=by_status,
        total=counts.total,
        cost=format_cost(costs),
        elapsed=clock(progress.elapsed_s),
        eta="done" if progress.done else eta,
        ended=progress.done,
        status_text=text,
    )


async def row_states(events: AsyncIterator[BatchEvent]) -> list[BatchEvent]:
    """The events of one look at a batch (``events(timeout=0)``): every member that
    started or ended so far, without waiting for the rest."""
    found = []
    try:
        async for event in events:
            found.append(event)
    except TimeoutError:
        pass  # not every member has ended: what one look saw is the state now
    return found


async def job_end(client: AsyncClient, job_id: str, status: str) -> tuple[str, list[str]]:
    """What an ended member's job cost (its output's totals, or what its steps spent),
    and, translated, what to look at in it (``BatchRow.notes``)."""
    try:
        if status == "succeeded":
            raw = await client.load_result(job_id)
            if raw is None:
                return "", []
            output = TranslationOutput.model_validate_json(raw)
            said = [f"glossary: {f.message}" for f in output.flags if f.final]
            return format_cost(output.totals.cost), said + flags(output)
        return format_cost((await AsyncJob(client, job_id).spent()).cost), []
    except VpswebError:
        return "", []


# --- downloads --------------------------------------------------------------------


async def _item(client: AsyncClient, member: BatchMember) -> AnthologyItem | None:
    """The member as the anthology shows it; None when its job is no longer stored
    (its request is gone with it)."""
    try:
        record = await client.record(member.job_id)
    except VpswebError:
        return None
    status = record.status
    output, spent = None, None
    if status is JobStatus.SUCCEEDED:
        raw = await client.load_result(member.job_id)
        output = TranslationOutput.model_validate_json(raw) if raw else None
    elif status.terminal:
        try:
            spent = await AsyncJob(client, member.job_id).spent()
        except VpswebError:
            spent = None
    error = f"{record.error_stage}: {record.error}" if record.error else None
    return AnthologyItem(
        name=member.name,
        where=member.where,
        request=record.plan.request,
        status=status.value,
        output=output,
        error=error,
        job_id=member.job_id,
        spent=spent,
    )


async def anthology_items(client: AsyncClient, record: BatchRecord) -> list[AnthologyItem]:
    """Every member still stored, in the batch's order: finished ones with their
    results, the others with their status (a download mid-batch shows what is done)."""
    gate = asyncio.Semaphore(READS_AT_ONCE)

    async def one(member: BatchMember) -> AnthologyItem | None:
        async with gate:
            return await _item(client, member)

    found = await asyncio.gather(*(one(m) for m in record.entries))
    return [item for item in found if item is not None]


def render_file(kind: str, items: Sequence[AnthologyItem], title: str) -> bytes:
    """One of FILES, as the bytes served (the CSV in CSV_ENCODING: Excel reads UTF-8
    only with its BOM)."""
    if kind == "anthology.html":
        return anthology_html(items, title=title).encode("utf-8")
    if kind == "anthology.md":
        return anthology_markdown(items, title=title).encode("utf-8")
    if kind == "summary.csv":
        return summary_csv(summary_rows(items)).encode(CSV_ENCODING)
    return summary_jsonl(summary_rows(items)).encode("utf-8")


def batch_title(record: BatchRecord) -> str:
    return record.name or f"Batch {record.batch_id}"


def page_context(record: BatchRecord, progress: BatchProgress, rows: list[BatchRow]) -> Any:
    return {
        "batch_id": record.batch_id,
        "title": batch_title(record),
        "created": f"{record.created_at:%Y-%m-%d %H:%M}",
        "budget": record.budget,
        "s": summary_of(progress),
        "rows": rows,
        "files": list(FILES),
    }
