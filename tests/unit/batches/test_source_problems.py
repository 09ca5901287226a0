"""A bad batch is refused whole, before anything is enqueued, with every problem named
by its place: the file, the manifest's line or row, the key or column."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.helpers.batch_sources import load, problems, write
from tests.helpers.poems import FOG, FOG_COUPLET, JING_YE_SI
from vpsweb.batches.entry_fields import allowed


@pytest.fixture(autouse=True)
def _in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)


def test_a_10_mb_cell_is_refused_by_row_and_column_and_the_other_rows_still_checked() -> None:
    write(
        "big.csv",
        "text,title,source_lang\n"
        f"{FOG_COUPLET.replace(chr(10), ' ')},Fog,en\n"
        f'"{"x" * 10_000_000}",Big,en\n'
        "a poem,Bad,fr\n",
    )
    assert problems("big.csv") == [
        "big.csv row 3: the cell in column 'text' has 10,000,000 characters; a cell holds at "
        "most 131,072 (a poem at most 50,000): is a quote left open?",
        "big.csv row 4: source_lang: unsupported source language 'fr'; "
        "allowed: en (English), zh-CN (Chinese), pl (Polish)",
    ]


def test_a_10_mb_poem_in_yaml_or_jsonl_is_refused_with_its_size() -> None:
    write("big.jsonl", json.dumps({"text": "x" * 10_000_000}) + "\n")
    assert problems("big.jsonl") == [
        "big.jsonl line 1: poem: the poem has 10,000,000 characters; the limit is 50,000"
    ]


def test_a_duplicate_entry_names_both_places() -> None:
    write("poems/fog.txt", FOG)
    write("poems/fog-crlf.txt", FOG.replace("\n", "\r\n") + "  \r\n")
    write(
        "b.csv",
        f'file,text,title\npoems/fog.txt,,Fog\n,"{JING_YE_SI}",\n,"{JING_YE_SI}",\n'
        ",x,\npoems/fog-crlf.txt,,Fog\n",
    )
    assert problems("b.csv") == [
        "b.csv row 4: the same poem with the same settings as b.csv row 3: "
        "remove one (or change a setting)",
        "b.csv row 6: the same poem with the same settings as b.csv row 2: "
        "remove one (or change a setting)",
    ]


def test_an_unknown_column_is_named_once_with_the_allowed_ones() -> None:
    write("b.csv", "text,Titel,Source Lang,colour\na,A,en,\nb,B,en,red\n")
    assert problems("b.csv") == [
        f"b.csv row 1: unknown column 'titel'; allowed: {allowed()}",
        f"b.csv row 1: unknown column 'colour'; allowed: {allowed()}",
    ]
    assert allowed().startswith("file, text, name, source_lang, target_lang, title, author")


def test_yaml_problems_are_named_by_the_line_of_their_key() -> None:
    write("poems/fog.txt", FOG)
    write(
        "b.yaml",
        "defaults:\n"
        "  parallel_count: 99\n"
        "poems:\n"
        "  - file: poems/fog.txt\n"
        "    titel: Fog\n"
        "  - file: poems/nope.txt\n"
        "    source_lang: fr\n"
        "  - text: a\n"
        "    file: poems/fog.txt\n"
        "  - title: no poem\n"
        "  - text: b\n"
        "    strategy: {adaptation_level: wild}\n"
        "    title: one\n"
        "    title: two\n"
        "  - 42\n",
    )
    assert problems("b.yaml") == [
        # What the YAML says as a whole first, then each entry in turn.
        "b.yaml line 14: 'title' given twice (also b.yaml line 13)",
        "b.yaml entry 6 (line 15): expected the poem's fields (file or text, title, ...) "
        "as a mapping, or a file name",
        f"b.yaml line 5: unknown key 'titel'; allowed: {allowed()}",
        "b.yaml line 2: parallel_count: parallel_count must be between 1 and 8, got 99",
        "b.yaml line 6: cannot read poems/nope.txt: no such file",
        "b.yaml line 7: source_lang: unsupported source language 'fr'; "
        "allowed: en (English), zh-CN (Chinese), pl (Polish)",
        "b.yaml entry 3 (line 8): give the poem as file or text (both given)",
        "b.yaml entry 4 (line 10): give the poem as file or text (neither given)",
        "b.yaml line 12: strategy.adaptation_level: Input should be 'foreignizing', "
        "'balanced' or 'domesticating'",
    ]


def test_a_directory_names_each_bad_file() -> None:
    write("poems/ok.txt", FOG)
    write("poems/empty.txt", "  \n")
    Path("poems/binary").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\xff\xfe\x00")
    Path("poems/huge.md").write_bytes(b"x" * 300_000)
    write("poems/ambiguous.txt", "静夜思\n", "gbk")
    found = problems("poems", {"source_lang": "zh-CN", "target_lang": "en"})
    assert found[0].startswith(
        "poems/ambiguous.txt is not UTF-8 and reads plausibly in more than one encoding; "
        "choose the right one: --encoding "
    )
    assert "--encoding gb18030 (静夜思...)" in found[0]
    assert found[1:] == [
        "poems/binary is not UTF-8 and its encoding was not recognised: save it as UTF-8, "
        "or pass --encoding (e.g. gb18030, big5, utf-16, cp1250)",
        "poems/empty.txt: poem: poem has no visible text; paste the poem text",
        "poems/huge.md is 300,000 bytes: more than a poem of 50,000 characters can be "
        "(is it the right file?)",
    ]


def test_bad_syntax_is_named_by_line() -> None:
    write("b.yaml", "- text: a\n- text: [b,\n- text: c\n")
    (problem,) = problems("b.yaml")
    assert problem.startswith("b.yaml line 3: not valid YAML: while parsing a flow")
    write("b.jsonl", '{"text": "a"}\n{"text": "b",}\n["c"]\n{"text": "d", "text": "e"}\n')
    assert problems("b.jsonl") == [
        "b.jsonl line 2: not valid JSON: Expecting property name enclosed in double quotes "
        "(column 14)",
        "b.jsonl line 3: expected one JSON object per line, got ['c']",
        "b.jsonl line 4: key 'text' given twice",
    ]


def test_a_field_missing_from_every_poem_is_said_once() -> None:
    write("b.jsonl", '{"text": "a"}\n{"text": "b", "target_lang": "zh"}\n{"text": "c"}\n')
    assert problems("b.jsonl", {"source_lang": "en"}) == [
        "b.jsonl line 1: target_lang is required (--target-lang gives it for all)",
        "b.jsonl line 3: target_lang is required (--target-lang gives it for all)",
    ]
    assert problems("b.jsonl", {}) == [
        "no poem gives source_lang: give it for all (--source-lang) or per poem",
        "b.jsonl line 1: target_lang is required (--target-lang gives it for all)",
        "b.jsonl line 3: target_lang is required (--target-lang gives it for all)",
    ]


def test_bad_defaults_are_said_once_as_defaults() -> None:
    write("b.jsonl", '{"text": "a"}\n{"text": "b"}\n')
    assert problems("b.jsonl", {"source_lang": "en", "target_lang": "en"}) == [
        "defaults: request: source_lang and target_lang are both 'en'; "
        "choose a different target language"
    ]
    bad = {"source_lang": "en", "target_lang": "xx", "text": "a", "max_cost": "lots"}
    assert problems("b.jsonl", bad) == [
        "defaults: text is given per poem, not as a default",
        "defaults: max_cost: 'lots' is not a number",
        "defaults: target_lang: unsupported target language 'xx'; "
        "allowed: en (English), zh-CN (Chinese)",
    ]


def test_csv_values_are_checked_as_the_command_line_checks_them() -> None:
    write(
        "b.csv",
        "text,parallel_count,straggler,name\na,two,quorum:0.5,x\nb,3,sometimes,x\nc,,,con\n",
    )
    assert problems("b.csv") == [
        "b.csv row 2: parallel_count: 'two' is not a whole number",
        "b.csv row 3: straggler: 'sometimes': expected wait_all or quorum[:FRACTION[:GRACE]], "
        "e.g. quorum:0.75:0.1",
        "b.csv row 4: name 'con' cannot name files: choose another",
    ]
    write("c.csv", "text,name,title\na,x,A\nb,x,B\nc,,C,extra\n")
    assert problems("c.csv") == [
        "c.csv row 4: 4 cells, but the header has 3 columns",
        "c.csv row 3: name 'x' is also the name of c.csv row 2",
    ]


def test_the_source_itself_must_be_a_batch() -> None:
    assert problems("nowhere") == ["nowhere: no such file or directory"]
    write("fog.txt", FOG)
    assert problems("fog.txt") == [
        "fog.txt: a batch source is a directory of poem files or a manifest (.yaml, .yml, "
        ".jsonl, .ndjson, .csv); for a single poem use `vpsweb translate`"
    ]
    write("empty/notes.docx", "x")
    write("empty/sub/a.txt", FOG)
    assert problems("empty") == [
        "empty: no poem files (*.txt, *.text, *.md or no extension) in it; "
        "not read: notes.docx, sub/"
    ]
    write("empty.csv", "text,title\n")
    assert problems("empty.csv") == ["empty.csv: no poems in it"]
    write("b.jsonl", '{"text": "a"}\n')
    assert problems("b.jsonl", encoding="klingon") == ["--encoding klingon: no such encoding"]


def test_size_and_count_limits_are_refused_before_reading_on() -> None:
    with open("huge.yaml", "wb") as f:
        f.truncate(65 * 2**20)  # sparse: the size alone refuses it
    assert problems("huge.yaml") == [
        "huge.yaml is 65.0 MB; a manifest may be at most 64 MB: split the batch"
    ]
    write("many.jsonl", '{"text": "a"}\n' * 10_001)
    assert problems("many.jsonl") == [
        "many.jsonl has 10,001 poems; a batch holds at most 10,000: split it"
    ]


def test_a_non_utf8_manifest_is_read_as_detected_or_as_told() -> None:
    write("gbk.csv", "text,title\n床前明月光,静夜思\n", "gb18030")
    (problem,) = problems("gbk.csv", {"source_lang": "zh-CN", "target_lang": "en"})
    assert problem.startswith("gbk.csv is not UTF-8 and its encoding was not recognised")
    (entry,) = load("gbk.csv", {"source_lang": "zh-CN", "target_lang": "en"}, encoding="gb18030")
    assert entry.request.title == "静夜思"


def test_a_quote_left_open_in_csv_is_named_not_swallowed_as_one_poem() -> None:
    write("b.csv", 'text,title\n"The fog comes,Fog\non little cat feet.,Feet\n')
    assert problems("b.csv") == [
        "b.csv row 2: not valid CSV: unexpected end of data (is a quote left open, or a "
        'quoted cell followed by more text? a quote inside a cell is written "")'
    ]


def test_a_value_of_the_wrong_shape_is_said_once() -> None:
    write("b.yaml", "- text: [a, b]\n- file: {name: x}\n- {text: c, strategy: balanced}\n")
    assert problems("b.yaml") == [
        "b.yaml line 1: text: expected text, got ['a', 'b']",
        "b.yaml line 2: file: expected a file name, got {'name': 'x'}",
        "b.yaml line 3: strategy must be a mapping of dials (adaptation_level, "
        "repetition_policy, additions_policy, prosody_target, few_shots)",
    ]
