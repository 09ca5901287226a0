"""Messages in the reader's own terms (issue 21, point 14): a NUL byte is named as
such, poem lengths in a translator's words, the Python client's way to give a Redis
URL in Python, and one figure for how long `make bench` takes."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from vpsweb import Client, settings
from vpsweb.bench.profiles import add_arguments
from vpsweb.errors import InputFileError, RequestInvalid, SettingsError
from vpsweb.files.poems import decode, read_text

REPO = Path(__file__).resolve().parents[2]
FOG = "The fog comes\non little cat feet.\n"

# --- (a) a NUL byte in a valid UTF-8 file -------------------------------------------------


@pytest.mark.parametrize(
    ("data", "offset"),
    [
        (b"The fog\x00 comes\n", 7),
        ("床前\x00明月光\n".encode(), 6),
        (b"\xef\xbb\xbfab\x00c", 5),  # the offset counts the BOM: it is in the file
    ],
)
def test_a_nul_byte_is_named_with_its_offset(data: bytes, offset: int) -> None:
    with pytest.raises(InputFileError) as info:
        decode(data, "poem.txt", "en")
    said = str(info.value)
    assert f"poem.txt contains a NUL byte at byte offset {offset} (is it a binary file?)" in said
    assert "encoding was not recognised" not in said


def test_a_nul_byte_in_a_file_on_disk(tmp_path: Path) -> None:
    path = tmp_path / "fog.txt"
    path.write_bytes(FOG.encode() + b"\x00")
    with pytest.raises(InputFileError, match=f"NUL byte at byte offset {len(FOG)}"):
        read_text(str(path), language="en")


@pytest.mark.parametrize("encoding", ["utf-16-le", "utf-16-be"])
def test_utf16_without_a_bom_is_still_read(encoding: str) -> None:
    """ASCII text in UTF-16 is valid UTF-8 full of NULs: it must not be called binary."""
    poem = FOG + "\nIt sits looking\nover harbor and city\n"
    assert decode(poem.encode(encoding), "p.txt", "en") == (poem, "UTF-16")


def test_a_binary_file_that_is_not_utf8_keeps_its_message() -> None:
    with pytest.raises(InputFileError, match="encoding was not recognised"):
        decode(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x01\xff\xfe", "image.png", "en")


# --- (b) poem lengths, through the Python client ----------------------------------------------


@pytest.mark.parametrize(
    ("poem", "said"),
    [
        ("", "poem: the poem is empty; paste or load the poem's text"),
        ("x" * 50_001, "poem: the poem has 50,001 characters; the limit is 50,000"),
    ],
)
def test_the_python_client_says_poem_lengths_in_words(poem: str, said: str) -> None:
    client = Client(redis_url="redis://127.0.0.1:1/0")  # plan() touches no store
    with pytest.raises(RequestInvalid) as info:
        client.plan({"poem": poem, "source_lang": "en", "target_lang": "zh-CN"})
    assert info.value.errors == [said]
    assert "String should" not in str(info.value)


def test_other_text_lengths_are_said_the_same_way() -> None:
    client = Client(redis_url="redis://127.0.0.1:1/0")
    request = {"poem": FOG, "source_lang": "en", "target_lang": "zh-CN", "title": "t" * 501}
    with pytest.raises(RequestInvalid) as info:
        client.plan(request)
    assert info.value.errors == ["title: the title has 501 characters; the limit is 500"]


# --- (c) how to give a Redis URL: in Python, and on the command line -------------------------


def test_client_from_env_says_how_to_do_it_in_python(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(settings.REDIS_URL_ENV, raising=False)
    with pytest.raises(SettingsError) as info:
        Client.from_env()
    said = str(info.value)
    assert "set VPSWEB_REDIS_URL" in said and "Client(redis_url=...)" in said
    assert "--redis-url" not in said


def test_commands_keep_the_flag() -> None:
    with pytest.raises(SettingsError, match=r"or pass --redis-url$"):
        settings.require_redis_url("vpsweb worker", {})


# --- (e) one figure for `make bench` --------------------------------------------------------


def _minutes(text: str, pattern: str) -> str:
    found = re.search(pattern, text)
    assert found is not None, pattern
    return found.group(1)


def test_every_place_gives_make_bench_the_same_duration() -> None:
    import argparse

    parser = argparse.ArgumentParser()
    add_arguments(parser)
    quick_help = next(a.help for a in parser._actions if "--quick" in a.option_strings)
    readme = (REPO / "README.md").read_text()
    makefile = (REPO / "Makefile").read_text()
    baseline = (REPO / "docs/performance-baseline.md").read_text()
    quick = {
        "README": _minutes(readme, r"`vpsweb bench --quick`, about (\d+) minutes"),
        "make help": _minutes(makefile, r"Quick benchmark run \(about (\d+) minutes\)"),
        "--quick": _minutes(quick_help or "", r"about (\d+) minutes"),
        "baseline": _minutes(baseline, r"--quick +\(fewer repetitions; ~(\d+) minutes\)"),
    }
    full = {
        "README": _minutes(readme, r"`vpsweb bench`, about (\d+) minutes"),
        "make help": _minutes(makefile, r"Full benchmark run \(about (\d+) minutes\)"),
        "baseline": _minutes(baseline, r"\(this document; ~(\d+) minutes\)"),
    }
    assert len(set(quick.values())) == 1, quick
    assert len(set(full.values())) == 1, full
    # The full figure is the committed run's own measurement.
    measured = re.search(
        r'"wall_time_s": ([\d.]+)', (REPO / "docs/performance-baseline.json").read_text()
    )
    assert measured is not None
    assert int(full["README"]) == round(float(measured.group(1)) / 60)
