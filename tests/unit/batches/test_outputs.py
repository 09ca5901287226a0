"""A batch's files in one directory (issue 24, "What comes out"): each poem's JSON and
Markdown as ``translate --output-dir`` writes them, the anthology and the summary;
written again over an earlier run without a half-written file or a stray temporary."""

from __future__ import annotations

import codecs
import csv
import io
from pathlib import Path

import pytest

from tests.helpers.anthology import sample_batch
from vpsweb.batches.anthology import AnthologyItem, anthology_html, anthology_markdown
from vpsweb.batches.outputs import write_atomically, write_batch_outputs
from vpsweb.batches.summary import summary_jsonl, summary_rows
from vpsweb.domain.result import TranslationOutput
from vpsweb.files.output import to_markdown


@pytest.fixture(scope="module")
def items() -> list[AnthologyItem]:
    return sample_batch()


def listing(directory: Path) -> list[str]:
    return sorted(p.relative_to(directory).as_posix() for p in directory.rglob("*"))


def test_every_file_of_the_batch_is_written(tmp_path: Path, items) -> None:
    out = tmp_path / "out"
    written = write_batch_outputs(out, items, title="Tang poems")
    names = [p.relative_to(out).as_posix() for p in written]
    assert names == [
        "poems/li-bai-jing-ye-si.json",
        "poems/li-bai-jing-ye-si.md",
        "poems/du-fu-chun-wang.json",
        "poems/du-fu-chun-wang.md",
        "anthology.md",
        "anthology.html",
        "summary.csv",
        "summary.jsonl",
    ]
    assert listing(out) == sorted([*names, "poems"])  # nothing else: no temporary left
    for item in items[:2]:
        assert item.output is not None
        saved = (out / f"poems/{item.name}.json").read_text(encoding="utf-8")
        assert TranslationOutput.model_validate_json(saved) == item.output
        assert (out / f"poems/{item.name}.md").read_text(encoding="utf-8") == to_markdown(
            item.output
        )
    html = (out / "anthology.html").read_text(encoding="utf-8")
    assert html == anthology_html(items, title="Tang poems")
    md = (out / "anthology.md").read_text(encoding="utf-8")
    assert md == anthology_markdown(items, title="Tang poems")
    raw = (out / "summary.csv").read_bytes()
    assert raw.startswith(codecs.BOM_UTF8)  # so that a spreadsheet reads the Chinese right
    rows = list(csv.DictReader(io.StringIO(raw.decode("utf-8-sig"), newline="")))
    assert [r["poem"] for r in rows] == [i.name for i in items] and rows[0]["title"] == "静夜思"
    jsonl = (out / "summary.jsonl").read_text(encoding="utf-8")
    assert jsonl == summary_jsonl(summary_rows(items))


def test_a_second_run_replaces_the_files_in_place(tmp_path: Path, items) -> None:
    write_batch_outputs(tmp_path, items, title="First")
    before = listing(tmp_path)
    # The failed poem translated on a resume: its files join; the rest are replaced.
    resumed = [*items[:2], items[0].model_copy(update={"name": "wang-wei"}), items[3]]
    write_batch_outputs(tmp_path, resumed, title="Second")
    after = listing(tmp_path)
    assert sorted(set(after) - set(before)) == ["poems/wang-wei.json", "poems/wang-wei.md"]
    assert "Second" in (tmp_path / "anthology.html").read_text(encoding="utf-8")
    assert "First" not in (tmp_path / "anthology.md").read_text(encoding="utf-8")


def test_poem_names_must_be_unique(tmp_path: Path, items) -> None:
    with pytest.raises(ValueError, match="unique in a batch: li-bai-jing-ye-si"):
        write_batch_outputs(tmp_path, [items[0], items[0]], title="t")
    assert listing(tmp_path) == []  # refused before anything was written


def test_a_write_that_fails_leaves_the_old_file_and_no_temporary(tmp_path: Path) -> None:
    target = tmp_path / "anthology.md"
    write_atomically(target, "old")
    write_atomically(target, "new")
    assert target.read_text() == "new"
    blocked = tmp_path / "summary.csv"
    (blocked / "in-the-way").mkdir(parents=True)  # a rename over it fails
    with pytest.raises(OSError):
        write_atomically(blocked, "rows")
    assert listing(tmp_path) == ["anthology.md", "summary.csv", "summary.csv/in-the-way"]
