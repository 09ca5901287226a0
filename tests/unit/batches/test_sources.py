"""A batch's poems come from a directory or a manifest, with the request's fields in
layers: the file name's title, the command line's defaults, the manifest's defaults,
the entry's own."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.helpers.batch_sources import load, write
from tests.helpers.poems import FOG, FOG_COUPLET, JING_YE_SI
from vpsweb.batches.names import slug, title_from_stem


@pytest.fixture(autouse=True)
def _in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)


def test_a_directory_reads_its_poem_files_by_name_in_any_encoding() -> None:
    write("poems/10_fog.txt", FOG)
    write("poems/2-jing_ye_si.txt", JING_YE_SI, "gb18030")
    write("poems/静夜思.md", JING_YE_SI + "\n", "utf-16")  # Word's "Unicode text"
    write("poems/couplet", FOG_COUPLET)
    for skipped in ("poems/.draft.txt", "poems/fog.txt~", "poems/notes.docx", "poems/sub/a.txt"):
        write(skipped, FOG + skipped)
    entries = load("poems", {"source_lang": "zh-CN", "target_lang": "en"})
    assert [(e.where, e.name, e.request.title, e.encoding) for e in entries] == [
        ("poems/2-jing_ye_si.txt", "2-jing-ye-si", "Jing ye si", "GB18030"),
        ("poems/10_fog.txt", "10-fog", "Fog", "utf-8"),
        ("poems/couplet", "couplet", "Couplet", "utf-8"),
        ("poems/静夜思.md", "静夜思", "静夜思", "UTF-16"),
    ]
    assert entries[0].request.poem == JING_YE_SI
    assert entries[3].request.poem == JING_YE_SI + "\n"
    assert {e.request.source_lang for e in entries} == {"zh-CN"}


def test_a_directory_takes_the_defaults_title_and_settings() -> None:
    write("poems/a.txt", FOG)
    write("poems/b.txt", FOG_COUPLET)
    # As `translate` builds its request from the command line: None is "not given".
    defaults = {
        "poem": None,
        "source_lang": "en",
        "target_lang": "zh-CN",
        "title": "Fog",
        "author": "Carl Sandburg",
        "parallel_count": 3,
        "strategy": {"adaptation_level": "domesticating", "few_shots": None},
        "max_cost": None,
        "straggler": {"policy": "quorum", "quorum": "0.5"},
    }
    entries = load("poems", defaults, encoding="utf-8")
    assert [(e.name, e.request.title, e.request.parallel_count) for e in entries] == [
        ("a", "Fog", 3),
        ("b", "Fog", 3),
    ]
    assert entries[1].request.strategy.adaptation_level == "domesticating"
    assert entries[1].request.max_cost is None and entries[1].encoding == "utf-8"
    assert entries[1].request.straggler is not None and entries[1].request.straggler.quorum == 0.5


def test_yaml_with_defaults_nested_and_flat_dials_and_files_beside_it() -> None:
    write("work/poems/fog.txt", FOG)
    write("work/notes/sandburg.md", "Chicago, 1916.")
    write(
        "work/batch.yaml",
        "defaults:\n"
        "  author: Carl Sandburg\n"
        "  background: notes/sandburg.md\n"  # the command line's name: a file
        "  strategy: {adaptation_level: foreignizing}\n"
        "poems:\n"
        "  - file: poems/fog.txt\n"
        "    parallel_count: 2\n"
        "  - text: |\n"
        + "".join(f"      {line}\n" for line in FOG_COUPLET.splitlines())
        + "    title: 1916\n"  # a number where text is meant
        "    Author: Anon\n"
        "    target-lang: en\n"
        "    source_lang: zh-CN\n"
        "    adaptation_level: balanced\n"
        "    straggler: quorum:0.5\n"
        "  - poems/fog.txt\n"  # a bare file name
        "    \n",
    )
    first, second, third = load("work/batch.yaml")
    assert (first.where, first.name, first.request.title) == (
        "work/batch.yaml entry 1 (line 6)",
        "fog",
        "",
    )
    assert first.request.author == "Carl Sandburg" and first.request.parallel_count == 2
    assert first.request.background_briefing == "Chicago, 1916."
    assert first.request.strategy.adaptation_level == "foreignizing"
    assert second.where == "work/batch.yaml entry 2 (line 8)" and second.name == "1916"
    assert second.request.poem == FOG_COUPLET and second.request.title == "1916"
    assert (second.request.author, second.request.source_lang) == ("Anon", "zh-CN")
    assert second.request.strategy.adaptation_level == "balanced"
    assert second.request.straggler is not None and second.request.straggler.quorum == 0.5
    assert second.encoding is None
    # The same file again, but with other settings than entry 1: not a duplicate.
    assert third.name == "fog-2" and third.request.parallel_count is None


def test_a_yaml_list_of_poems() -> None:
    write(
        "p.yml",
        f"- text: {json.dumps(FOG_COUPLET)}\n  title: Fog\n"
        "- text: 床前明月光\n  source_lang: zh\n  target_lang: English\n",
    )
    entries = load("p.yml")
    assert [(e.name, e.request.poem, e.request.source_lang) for e in entries] == [
        ("fog", FOG_COUPLET, "en"),
        ("床前明月光", "床前明月光", "zh-CN"),
    ]


def test_jsonl_skips_blank_and_comment_lines_and_says_lines() -> None:
    write("poems/fog.txt", FOG)
    write(
        "batch.jsonl",
        "# Sandburg\n"
        '{"file": "poems/fog.txt", "title": "Fog", "mode": "reasoning"}\n'
        "\n"
        '{"text": "The fog comes\\non little cat feet.",'
        ' "strategy": {"repetition_policy": "adaptive"}, "source_lang": "en",'
        ' "target_lang": "zh-CN", "name": "Fog, short"}\n',
    )
    first, second = load("batch.jsonl", {"target_lang": "zh-CN", "source_lang": "en"})
    assert (first.where, first.name, first.request.workflow_mode) == (
        "batch.jsonl line 2",
        "fog",
        "reasoning",
    )
    assert (second.where, second.name) == ("batch.jsonl line 4", "fog-short")
    assert second.request.strategy.repetition_policy == "adaptive"


def test_csv_with_flat_dials_empty_cells_taking_the_defaults() -> None:
    write("poems/fog.txt", FOG)
    write(
        "batch.csv",
        "File,Text,title,parallel_count,adaptation-level,max_cost,straggler,prosody_target\n"
        "poems/fog.txt,,Fog,3,domesticating,0.5,wait_all,\n"
        ',"床前明月光，\n疑是地上霜。",静夜思,,,,,five characters a line\n'
        ",,,,,,,\n",  # an empty row, as spreadsheets leave them
    )
    first, second = load(
        "batch.csv", {"source_lang": "zh-CN", "target_lang": "en", "parallel_count": 5}
    )
    assert first.where == "batch.csv row 2" and first.request.parallel_count == 3
    assert first.request.strategy.adaptation_level == "domesticating"
    assert first.request.max_cost == 0.5
    assert first.request.straggler is not None and first.request.straggler.policy == "wait_all"
    assert (second.where, second.name, second.request.parallel_count) == (
        "batch.csv row 3",
        "静夜思",
        5,
    )
    assert second.request.strategy.prosody_target == "five characters a line"
    assert second.request.poem == "床前明月光，\n疑是地上霜。"


def test_excel_unicode_text_is_utf16_with_tabs() -> None:
    write("batch.csv", "text\ttitle\r\n床前明月光\t静夜思\r\n", "utf-16")
    (entry,) = load("batch.csv", {"source_lang": "zh-CN", "target_lang": "en"})
    assert (entry.request.poem, entry.request.title) == ("床前明月光", "静夜思")


def test_the_command_line_fills_the_manifest_defaults_and_the_entry_wins() -> None:
    write(
        "b.yaml",
        "defaults: {workflow_mode: reasoning, parallel_count: 2}\n"
        "poems:\n"
        "  - {text: a, title: A}\n"
        "  - {text: b, title: B, parallel_count: 4}\n",
    )
    cli = {"source_lang": "en", "target_lang": "zh-CN", "mode": "non_reasoning", "author": "X"}
    a, b = load("b.yaml", cli)
    assert (a.request.workflow_mode, a.request.parallel_count, a.request.author) == (
        "reasoning",
        2,
        "X",
    )
    assert b.request.parallel_count == 4


def test_names_are_unique_slugs_and_never_the_batch_outputs() -> None:
    write(
        "b.jsonl",
        '{"text": "a", "title": "Anthology"}\n'
        '{"text": "b", "title": "Fog / Part 1"}\n'
        '{"text": "c", "title": "Fog: part 1"}\n'
        '{"text": "d", "name": "fog-part-1-2"}\n'
        '{"text": "e", "title": "Fog  part 1"}\n',
    )
    names = [e.name for e in load("b.jsonl")]
    assert names == ["anthology-2", "fog-part-1", "fog-part-1-3", "fog-part-1-2", "fog-part-1-4"]


@pytest.mark.parametrize(
    ("stem", "title", "name"),
    [
        ("03_quiet-night_thought", "Quiet night thought", "03-quiet-night-thought"),
        ("001", "", "001"),
        ("Li Bai. 静夜思", "Li Bai. 静夜思", "li-bai-静夜思"),
        ("12. the fog", "The fog", "12-the-fog"),
    ],
)
def test_titles_and_names_from_file_stems(stem: str, title: str, name: str) -> None:
    assert (title_from_stem(stem), slug(stem)) == (title, name)
