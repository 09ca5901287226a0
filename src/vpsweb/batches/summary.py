"""A batch's summary table: one row per poem, as CSV (spreadsheets) and JSONL (scripts).

The row says what a person checks before reading the anthology: how each poem's job
ended, which strategy won, whether the judge agreed with itself across orders, what
was flagged, and what it cost. A poem with no output still has its row (status and
error), so the table accounts for the whole batch.

The CSV is opened in spreadsheets, which run a cell that starts with ``=``, ``+``,
``-`` or ``@`` as a formula; a title or an error is user or model text, so such a cell
is written with a leading ``'`` (OWASP's advice for CSV injection).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence

from pydantic import BaseModel, ConfigDict, Field

from vpsweb.batches.anthology import AnthologyItem
from vpsweb.domain.models import Totals
from vpsweb.domain.result import TranslationOutput
from vpsweb.files.output import format_cost

# Excel reads a CSV as the machine's legacy code page unless it starts with a BOM: a
# Chinese title would be garbled. Write the file (or a download) in this encoding.
CSV_ENCODING = "utf-8-sig"
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


class SummaryRow(BaseModel):
    """One poem of the batch in the summary table."""

    model_config = ConfigDict(extra="forbid")

    poem: str  # the poem's name in the batch
    where: str
    title: str
    author: str
    translated_title: str = ""
    status: str
    job_id: str = ""
    strategy: str = ""  # the chosen candidate's variant (pipeline.yaml ``variants``)
    # Share of the judge's orders whose own choice is the final one (None: one order,
    # or no judging); the flags say when it is low.
    judge_agreement: float | None = None
    flags: list[str] = Field(default_factory=list)
    calls: int | None = None  # None: not known (a poem with no output and no usage)
    tokens: int | None = None
    cost: float | None = None  # None: not known, or in several currencies (see flags)
    currency: str = ""
    error: str = ""


def flags(output: TranslationOutput) -> list[str]:
    """What a reader should look at: steps that fell back, a judge that disagreed with
    itself, candidates and a revision kept from judging by a gate, glossary terms
    missed (the delivered translation's marked as such)."""
    found = [f"{w.stage}: {w.message}" if w.stage else w.message for w in output.warnings]
    ev = output.evaluation
    if ev.low_agreement and ev.agreement is not None:
        found.append(f"low judge agreement: orders agree {ev.agreement:.0%}")
    found += [f"candidate #{g.index} gated: {'; '.join(g.reasons)}" for g in ev.gated]
    if output.revision_check.gate_reasons:
        found.append(f"revision gated: {'; '.join(output.revision_check.gate_reasons)}")
    found += [f"{f.where}{' (delivered)' if f.final else ''}: {f.message}" for f in output.flags]
    return found


def _cost(totals: Totals | None) -> tuple[float | None, str, list[str]]:
    """(amount, currency, flags): several currencies are not added up."""
    if totals is None:
        return None, "", []
    if len(totals.cost) > 1:
        return None, "", [f"cost in several currencies: {format_cost(totals.cost)}"]
    currency, amount = next(iter(totals.cost.items()), ("", 0.0))
    return amount, currency, []


def summary_row(item: AnthologyItem) -> SummaryRow:
    out = item.output
    totals = out.totals if out is not None else item.spent
    cost, currency, cost_flags = _cost(totals)
    return SummaryRow(
        poem=item.name,
        where=item.where,
        title=item.request.title,
        author=item.request.author,
        translated_title=out.final.translated_title if out is not None else "",
        status=item.status,
        job_id=out.job_id if out is not None else item.job_id,
        strategy=out.selected_candidate.variant if out is not None else "",
        judge_agreement=out.evaluation.agreement if out is not None else None,
        flags=(flags(out) if out is not None else []) + cost_flags,
        calls=totals.llm_calls if totals is not None else None,
        tokens=totals.total_tokens if totals is not None else None,
        cost=cost,
        currency=currency,
        error=" ".join((item.error or "").split()),
    )


def summary_rows(items: Sequence[AnthologyItem]) -> list[SummaryRow]:
    """One row per poem, in the batch's order."""
    return [summary_row(item) for item in items]


def _cell(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, list):
        text = "; ".join(str(v) for v in value)
    elif isinstance(value, float):
        text = f"{value:.6f}".rstrip("0").rstrip(".")  # 0.5, 1, 0.000123: never 1e-05
    else:
        text = str(value)
    return "'" + text if text.startswith(_FORMULA_START) else text


def summary_csv(rows: Sequence[SummaryRow]) -> str:
    """A header row, then one row per poem; flags joined by "; "; no cell a formula."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    fields = list(SummaryRow.model_fields)
    writer.writerow(fields)
    for row in rows:
        writer.writerow([_cell(getattr(row, name)) for name in fields])
    return buffer.getvalue()


def summary_jsonl(rows: Sequence[SummaryRow]) -> str:
    """One JSON object per line, per poem (flags as a list, unknowns as null)."""
    return "".join(row.model_dump_json() + "\n" for row in rows)
