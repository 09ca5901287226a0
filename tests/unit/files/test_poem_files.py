"""Poem files in the encodings translators' editors produce are read as the poet wrote them."""

from __future__ import annotations

import codecs

import pytest

from vpsweb.errors import InputFileError
from vpsweb.files.poems import decode, read_text

SIMPLIFIED = "春眠不觉晓，\n处处闻啼鸟。\n夜来风雨声，\n花落知多少。\n"
TRADITIONAL = "千山鳥飛絕，\n萬徑人蹤滅。\n孤舟蓑笠翁，\n獨釣寒江雪。\n"
POLISH = "Litwo! Ojczyzno moja! ty jesteś jak zdrowie:\nIle cię trzeba cenić, ten tylko się dowie\n"
ENGLISH = "The fog comes\non little cat feet.\n"


@pytest.mark.parametrize(
    ("text", "encoding", "language", "named"),
    [
        (SIMPLIFIED, "utf-8", "zh-CN", "utf-8"),
        (SIMPLIFIED, "gbk", "zh-CN", "GB18030"),
        (SIMPLIFIED, "gb18030", "zh-CN", "GB18030"),
        (TRADITIONAL, "big5", "zh-CN", "Big5"),
        (TRADITIONAL, "gb18030", "zh-CN", "GB18030"),
        (SIMPLIFIED, "utf-16", "zh-CN", "UTF-16"),
        (SIMPLIFIED, "utf-16-be", "zh-CN", "UTF-16"),  # no BOM
        (ENGLISH, "utf-16-le", "en", "UTF-16"),  # no BOM
        (POLISH, "cp1250", "pl", "cp1250"),
    ],
)
def test_detected(text: str, encoding: str, language: str, named: str) -> None:
    assert decode(text.encode(encoding), "poem.txt", language) == (text, named)


def test_a_utf8_bom_is_dropped() -> None:
    assert decode(codecs.BOM_UTF8 + ENGLISH.encode(), "p", "en") == (ENGLISH, "utf-8")


def test_two_plausible_readings_are_refused_with_both_shown() -> None:
    with pytest.raises(InputFileError) as info:
        decode("静夜思\n".encode("gbk"), "title.txt", "zh-CN")
    message = str(info.value)
    assert message.startswith("title.txt is not UTF-8 and reads plausibly")
    assert "--encoding gb18030 (静夜思...)" in message and "--encoding big5 (" in message


def test_binary_is_refused() -> None:
    with pytest.raises(InputFileError, match="encoding was not recognised"):
        decode(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\xff\xfe\x00", "image.png", "en")


def test_read_text_with_a_given_encoding(tmp_path) -> None:
    path = tmp_path / "p.txt"
    path.write_bytes("静夜思\n".encode("gbk"))
    assert read_text(str(path), encoding="gbk") == ("静夜思\n", "gbk")
    with pytest.raises(InputFileError, match="not valid utf-8"):
        read_text(str(path), encoding="utf-8")
    with pytest.raises(InputFileError, match="--encoding klingon: no such encoding"):
        read_text(str(path), encoding="klingon")
    with pytest.raises(InputFileError, match="no such file"):
        read_text(str(tmp_path / "nope.txt"))
