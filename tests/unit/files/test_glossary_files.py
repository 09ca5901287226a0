"""Glossary files: read in any encoding a poem file may have, their format taken from
their name (or sniffed), every problem named with the file and its line."""

from __future__ import annotations

from pathlib import Path

import pytest

from vpsweb.errors import InputFileError, RequestInvalid
from vpsweb.files.glossary_file import format_of, read_glossary

CSV = "source,target,note\n长安,Chang'an,the Tang capital\n李白,Li Bai,\n"
YAML = "长安: Chang'an\n李白: {target: Li Bai, note: the poet}\n"


@pytest.mark.parametrize(
    ("name", "text", "encoding"),
    [
        ("terms.csv", CSV, "gb18030"),
        ("terms.csv", CSV, "utf-16"),
        ("terms.yaml", YAML.replace("长", "長"), "big5"),  # Big5: traditional characters
        ("terms.txt", CSV, "utf-8"),  # no telling suffix: sniffed
        ("terms", YAML, "utf-8"),
    ],
)
def test_read_in_the_encodings_of_either_language(
    tmp_path: Path, name: str, text: str, encoding: str
) -> None:
    path = tmp_path / name
    path.write_bytes(text.encode(encoding))
    g = read_glossary(str(path), mode="strict", languages=("en", "zh-CN"))
    assert g.mode == "strict"
    capital = "長安" if encoding == "big5" else "长安"
    assert [(t.source, t.target) for t in g.terms] == [(capital, "Chang'an"), ("李白", "Li Bai")]


def test_the_suffix_decides_the_format() -> None:
    assert [format_of(n) for n in ("a.CSV", "a.tsv", "a.yml", "a.yaml", "a.txt", "")] == [
        "csv",
        "csv",
        "yaml",
        "yaml",
        None,
        None,
    ]


def test_problems_name_the_file_and_the_line(tmp_path: Path) -> None:
    path = tmp_path / "terms.csv"
    path.write_text("source,target\n长安,\n李白,Li Bai\n李白,Li Po\n", encoding="utf-8")
    with pytest.raises(RequestInvalid) as bad:
        read_glossary(str(path))
    assert bad.value.errors == [
        f"{path}: row 2: no target",
        f"{path}: row 4: '李白' is already given on row 3",
    ]


def test_an_unreadable_file_says_so(tmp_path: Path) -> None:
    with pytest.raises(InputFileError, match="no such file"):
        read_glossary(str(tmp_path / "missing.yaml"))


def test_a_polish_glossary_in_cp1250(tmp_path: Path) -> None:
    """The source's legacy encodings are tried for a glossary into English too."""
    path = tmp_path / "terms.csv"
    text = "source,target\nKraków,Cracow\nWisła,the Vistula\nŁódź,Lodz\nźdźbło,blade\n"
    path.write_bytes(text.encode("cp1250"))
    g = read_glossary(str(path), languages=("pl", "en"))
    assert [t.source for t in g.terms] == ["Kraków", "Wisła", "Łódź", "źdźbło"]
