"""The batch's summary table (issue 24, "What comes out"): one row per poem, as CSV and
JSONL, read back by the csv and json modules as a spreadsheet or a script would.

Rows come from whole jobs run in-process (tests/helpers/anthology.py): the chosen
strategy, the judge's agreement and the flags are the ones the stages recorded.
"""

from __future__ import annotations

import csv
import io
import json

import pytest

from tests.helpers.anthology import HOSTILE_TITLE, not_translated, request, sample_batch
from tests.helpers.poems import JING_YE_SI
from vpsweb.batches.anthology import AnthologyItem
from vpsweb.batches.summary import SummaryRow, summary_csv, summary_jsonl, summary_rows
from vpsweb.domain.models import ResultFlag, Totals

COLUMNS = [
    *("poem", "where", "title", "author", "translated_title", "status", "job_id"),
    *("strategy", "judge_agreement", "flags", "calls", "tokens", "cost", "currency", "error"),
]


@pytest.fixture(scope="module")
def items() -> list[AnthologyItem]:
    return sample_batch()


def read_csv(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text, newline="")))


def test_a_translated_poems_row_says_what_its_job_recorded(items) -> None:
    rows = summary_rows(items)
    assert [r.poem for r in rows] == [i.name for i in items]
    li_bai, du_fu = (i.output for i in items[:2])
    assert li_bai is not None and du_fu is not None
    row = rows[0]
    assert (row.status, row.title, row.author) == ("succeeded", "静夜思", "李白")
    assert row.translated_title == "Quiet Night Thought" and row.job_id == li_bai.job_id
    assert row.strategy == li_bai.selected_candidate.variant
    # The double's judge names the second position in both orders: they disagree.
    assert row.judge_agreement == li_bai.evaluation.agreement == 0.5
    assert row.flags == ["low judge agreement: orders agree 50%"]
    assert (row.calls, row.tokens) == (li_bai.totals.llm_calls, li_bai.totals.total_tokens)
    assert row.calls == 7 and row.tokens == 840
    [(currency, cost)] = li_bai.totals.cost.items()
    assert (row.cost, row.currency) == (cost, currency)
    # One candidate, and a judge that named one that was not shown: a rule chose.
    assert rows[1].judge_agreement is None
    assert [f.split(":")[0] for f in rows[1].flags] == ["Translation Evaluation"]
    assert "picked by line count, not judged" in rows[1].flags[0]


def test_glossary_misses_are_flags_and_the_delivered_ones_say_so(items) -> None:
    output = items[0].output
    assert output is not None
    missed = [
        ResultFlag(where="candidate #1", index=1, message='glossary: "月" should be "moon"'),
        ResultFlag(
            where="revision", index=-1, message='glossary: "霜" should be "frost"', final=True
        ),
    ]
    item = items[0].model_copy(update={"output": output.model_copy(update={"flags": missed})})
    [row] = summary_rows([item])
    assert row.flags[-2:] == [
        'candidate #1: glossary: "月" should be "moon"',
        'revision (delivered): glossary: "霜" should be "frost"',
    ]


def test_a_poem_without_output_has_its_row_with_status_and_error(items) -> None:
    failed, cancelled = summary_rows(items)[2:]
    assert failed.status == "failed" and "HTTP 401" in failed.error
    assert failed.job_id == items[2].job_id and failed.strategy == ""
    assert (failed.calls, failed.tokens, failed.cost) == (None, None, None)
    assert cancelled.status == "cancelled" and cancelled.error == ""
    # What a failed job spent, when the caller knows it.
    spent = Totals(llm_calls=4, total_tokens=900, cost={"USD": 0.0125})
    row = summary_rows([items[2].model_copy(update={"spent": spent})])[0]
    assert (row.calls, row.tokens, row.cost, row.currency) == (4, 900, 0.0125, "USD")
    mixed = Totals(llm_calls=2, cost={"USD": 0.01, "CNY": 0.02})
    row = summary_rows([items[2].model_copy(update={"spent": mixed})])[0]
    assert (row.cost, row.currency) == (None, "")
    assert row.flags == ["cost in several currencies: 0.020000 CNY, 0.010000 USD"]


def test_csv_has_a_header_and_one_row_per_poem(items) -> None:
    rows = summary_rows(items)
    text = summary_csv(rows)
    assert text.splitlines()[0].split(",") == COLUMNS == list(SummaryRow.model_fields)
    read = read_csv(text)
    assert [r["poem"] for r in read] == [i.name for i in items]
    assert read[0]["judge_agreement"] == "0.5" and read[1]["judge_agreement"] == ""
    assert read[0]["cost"] == f"{rows[0].cost:.6f}".rstrip("0")
    assert read[1]["translated_title"] == HOSTILE_TITLE  # quotes and commas survive
    assert read[2]["calls"] == "" and read[2]["status"] == "failed"
    two = rows[0].model_copy(update={"flags": ["one; a", "two"]})
    assert read_csv(summary_csv([two]))[0]["flags"] == "one; a; two"


def test_no_csv_cell_is_read_as_a_formula() -> None:
    hostile = not_translated(
        "sum", "failed", "-2+3 went wrong", request(JING_YE_SI, title="=HYPERLINK(evil)")
    )
    row = summary_rows([hostile])[0].model_copy(
        update={"author": "@SUM(A1)", "flags": ["+1", "fine"], "where": "\t=cmd"}
    )
    [read] = read_csv(summary_csv([row]))
    assert read["title"] == "'=HYPERLINK(evil)"
    assert read["error"] == "'-2+3 went wrong"
    assert read["author"] == "'@SUM(A1)"
    assert read["flags"] == "'+1; fine"
    assert read["where"] == "'\t=cmd"
    assert read["poem"] == "sum"


def test_jsonl_is_one_row_a_line_that_reads_back(items) -> None:
    rows = summary_rows(items)
    lines = summary_jsonl(rows).splitlines()
    assert len(lines) == len(items)
    assert [SummaryRow.model_validate_json(line) for line in lines] == rows
    first = json.loads(lines[0])
    assert list(first) == COLUMNS and isinstance(first["flags"], list)
    assert json.loads(lines[2])["calls"] is None
    assert summary_jsonl([]) == "" and summary_csv([]).strip() == ",".join(COLUMNS)
