"""A batch from the web page's uploads: the same validation as ``load_source``, and no
file read but the uploaded ones, whatever a manifest names."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from vpsweb.batches.uploads import load_uploads, upload_name
from vpsweb.errors import RequestInvalid

LANGUAGES = {"source_lang": "en", "target_lang": "zh-CN"}
FOG = b"The fog comes\non little cat feet.\n"
GRASS = b"Pile the bodies high at Austerlitz and Waterloo.\n"


def _load(files: dict[str, bytes], manifest: str | None = None, **defaults: Any) -> Any:
    return load_uploads(files, {**LANGUAGES, **defaults}, manifest=manifest, max_parallel_count=8)


def _problems(files: dict[str, bytes], manifest: str | None = None, **defaults: Any) -> list[str]:
    with pytest.raises(RequestInvalid) as info:
        _load(files, manifest, **defaults)
    return info.value.errors


def test_poem_files_are_read_as_a_directory_in_name_order_with_titles() -> None:
    gbk = "床前明月光\n疑是地上霜\n".encode("gb18030")
    entries = _load(
        {"10_grass.txt": GRASS, "2_fog.txt": FOG, "li-bai.txt": gbk},
        source_lang="zh-CN",
        target_lang="en",
        parallel_count=2,
    )
    assert [e.where for e in entries] == ["2_fog.txt", "10_grass.txt", "li-bai.txt"]
    assert [e.request.title for e in entries] == ["Fog", "Grass", "Li bai"]
    assert entries[2].request.poem.startswith("床前明月光") and entries[2].encoding == "GB18030"
    assert {e.request.parallel_count for e in entries} == {2}


def test_a_manifest_names_the_files_uploaded_with_it() -> None:
    manifest = "\n".join(
        [
            json.dumps({"file": "fog.txt", "title": "Fog", "parallel_count": 3}),
            json.dumps({"file": "poems/grass.txt", "author": "Sandburg"}),  # a CLI manifest
            json.dumps({"text": "A poem given as text", "name": "inline"}),
        ]
    )
    files = {"poems.jsonl": manifest.encode(), "fog.txt": FOG, "grass.txt": GRASS}
    entries = _load(files, "poems.jsonl")
    assert [e.where for e in entries] == [f"poems.jsonl line {i}" for i in (1, 2, 3)]
    assert [e.name for e in entries] == ["fog", "grass", "inline"]
    assert entries[0].request.parallel_count == 3 and entries[1].request.author == "Sandburg"
    assert entries[1].request.poem == GRASS.decode()


def test_a_manifest_cannot_read_a_server_path(tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("the server's own file")
    manifest = "\n".join(
        [
            "poems:",
            f"  - file: {secret}",
            "  - file: /etc/passwd",
            "  - file: ../../etc/passwd",
            "  - file: ~/.ssh/id_rsa",
            "  - {text: a poem, background_file: /etc/hostname}",
            "  - missing.txt",
            "  - fog.txt",
        ]
    )
    lines = _problems({"p.yaml": manifest.encode(), "fog.txt": FOG, "extra.txt": GRASS}, "p.yaml")
    joined = "\n".join(lines)
    assert "the server's own file" not in joined
    refused = [line for line in lines if "not paths on the server" in line]
    assert len(refused) == 5, lines
    assert any(line.startswith("p.yaml line 3: /etc/passwd:") for line in refused)
    assert any("~/.ssh/id_rsa" in line for line in refused)  # not expanded: no home shown
    assert any("background_file" not in line and "/etc/hostname" in line for line in refused)
    assert any("missing.txt: no uploaded file of that name" in line for line in lines)
    assert "(uploaded: extra.txt, fog.txt)" in joined
    assert lines[-1] == "extra.txt: uploaded, but p.yaml does not name it: leave it out"


def test_every_bad_entry_is_named_with_its_row() -> None:
    csv = "file,text,target_lang,parallel_count\nfog.txt,,xx,2\n,poem,en,99\n,,,\nnope.txt,,,\n"
    lines = _problems({"b.csv": csv.encode(), "fog.txt": FOG}, "b.csv")
    assert any(line.startswith("b.csv row 2") and "target_lang" in line for line in lines), lines
    assert any(line.startswith("b.csv row 3") and "parallel_count" in line for line in lines)
    assert any(line.startswith("b.csv row 5") and "nope.txt" in line for line in lines)


def test_uploads_that_are_not_poems_or_manifests_are_refused() -> None:
    assert _problems({"a.docx": b"PK\x03\x04"}) == [
        "a.docx: not a poem file (plain text: *.txt, *.text, *.md or no extension)"
    ]
    assert _problems({}) == ["no poem files: choose poem files, or a manifest"]
    assert _problems({"m.xlsx": b"x"}, "m.xlsx")[0].startswith("m.xlsx: a manifest is .yaml")
    lines = _problems({"f.txt": b"x" * 300_000})
    assert lines[0].startswith("f.txt is 300,000 bytes")
    assert _problems({"f.txt": FOG}, parallel_count=99)[0].startswith("the form's defaults")


def test_upload_names_are_the_last_part() -> None:
    assert upload_name("C:\\Users\\me\\fog.txt") == "fog.txt"
    assert upload_name("poems/fog.txt ") == "fog.txt"
    assert upload_name("../../x") == "x"
