"""Reading the user's text files (poems, few-shot examples, briefings) as Unicode.

Translators' files come in the encodings of their editors: GBK or GB18030 on
mainland Windows, Big5 in Taiwan and Hong Kong, UTF-16 from Word's "Unicode text",
cp1250 for Polish. UTF-8 (with or without BOM) is taken as is; anything else is
detected among the encodings plausible for the poem's language (charset-normalizer),
and a file that could be read two ways is refused with both readings shown, never
guessed: a mis-decoded poem would be translated, and paid for, as gibberish.
"""

from __future__ import annotations

import codecs
from collections.abc import Sequence
from pathlib import Path

import charset_normalizer

from vpsweb.errors import InputFileError

_UNICODE = ["utf_16", "utf_32"]  # UTF-8 is tried first, on its own
_BY_LANGUAGE = {
    "zh": ["gb18030", "big5"],
    "pl": ["cp1250", "iso8859_2"],
}
_WESTERN = ["cp1252", "latin_1"]
_CLOSE = 0.02  # readings whose "chaos" differs less than this are equally plausible
_NAMES = {"gb18030": "GB18030", "big5": "Big5", "utf_16": "UTF-16", "utf_32": "UTF-32"}


def _display(encoding: str) -> str:
    return _NAMES.get(encoding, encoding.replace("_", "-"))


def _candidates(language: str | Sequence[str] | None) -> list[str]:
    """The encodings plausible for a text in ``language``, or in any of several (a
    glossary holds the source's and the target's): a language's own legacy encodings
    (Chinese, Polish); Western ones only when no language has its own, since they read
    any bytes and would make every short file look ambiguous."""
    languages = [language] if language is None or isinstance(language, str) else language
    prefixes = [p for lang in languages if (p := (lang or "").split("-")[0].lower())]
    own = [e for p in prefixes for e in _BY_LANGUAGE.get(p, [])]
    return _UNICODE + list(dict.fromkeys(own or (_WESTERN if prefixes else [])))


def _preview(text: str) -> str:
    return " ".join(text.split())[:16]


def _printable_share(text: str) -> float:
    good = sum(ch.isprintable() or ch in "\n\r\t" for ch in text)
    return good / max(len(text), 1)


def _bomless_utf16(data: bytes) -> tuple[str, str] | None:
    """UTF-16 saved without a BOM (NUL bytes give it away): the byte order that reads
    as text, if exactly one does."""
    if len(data) % 2:
        return None
    readings = []
    for encoding in ("utf_16_le", "utf_16_be"):
        try:
            text = data.decode(encoding)
        except UnicodeDecodeError:
            continue
        if _printable_share(text) > 0.97:
            readings.append((text, "UTF-16"))
    return readings[0] if len(readings) == 1 else None


def decode(data: bytes, name: str, language: str | Sequence[str] | None = None) -> tuple[str, str]:
    """The text and the encoding it was read in (``utf-8`` or the detected one)."""
    skipped = len(codecs.BOM_UTF8) if data.startswith(codecs.BOM_UTF8) else 0
    data = data[skipped:]
    try:
        text = data.decode("utf-8")
        if "\x00" not in text:
            return text, "utf-8"
        utf8 = True
    except UnicodeDecodeError:
        utf8 = False
    bom = data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE))
    if b"\x00" in data and not bom and (utf16 := _bomless_utf16(data)) is not None:
        return utf16
    found = charset_normalizer.from_bytes(data, cp_isolation=_candidates(language))
    readings: dict[str, tuple[str, float]] = {}
    for match in found:
        readings.setdefault(str(match), (match.encoding, match.chaos))
    ranked = sorted(readings.items(), key=lambda r: r[1][1])
    if not ranked and utf8:
        # Valid UTF-8 that no other encoding reads: the encoding is not the problem,
        # the NUL is (a binary file, or text pasted from one).
        at = skipped + data.index(b"\x00")
        raise InputFileError(
            f"{name} contains a NUL byte at byte offset {at} (is it a binary file?): "
            "a poem file is plain text; save it again as plain text"
        )
    if not ranked:
        raise InputFileError(
            f"{name} is not UTF-8 and its encoding was not recognised: save it as UTF-8, "
            "or pass --encoding (e.g. gb18030, big5, utf-16, cp1250)"
        )
    if len(ranked) > 1 and ranked[1][1][1] - ranked[0][1][1] < _CLOSE:
        options = ", ".join(
            f"--encoding {enc} ({_preview(text)}...)" for text, (enc, _) in ranked[:3]
        )
        raise InputFileError(
            f"{name} is not UTF-8 and reads plausibly in more than one encoding; "
            f"choose the right one: {options}"
        )
    text, (encoding, _) = ranked[0]
    return text, _display(encoding)


def read_text(
    path: str, *, encoding: str | None = None, language: str | Sequence[str] | None = None
) -> tuple[str, str]:
    """The file's text and the encoding it was read in; InputFileError, saying what to
    do, when it cannot be read."""
    try:
        data = Path(path).read_bytes()
    except FileNotFoundError:
        raise InputFileError(f"cannot read {path}: no such file") from None
    except IsADirectoryError:
        raise InputFileError(f"cannot read {path}: it is a directory") from None
    except PermissionError:
        raise InputFileError(f"cannot read {path}: permission denied") from None
    except OSError as exc:
        raise InputFileError(f"cannot read {path}: {exc.strerror or exc}") from None
    if encoding:
        try:
            return data.decode(codecs.lookup(encoding).name), encoding
        except LookupError:
            raise InputFileError(f"--encoding {encoding}: no such encoding") from None
        except UnicodeDecodeError as exc:
            raise InputFileError(
                f"{path} is not valid {encoding} (byte {exc.start}); "
                "try another --encoding, or leave it out to detect it"
            ) from None
    return decode(data, path, language)
