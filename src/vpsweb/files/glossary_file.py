"""Reading a glossary file (YAML or CSV) in any encoding a poem file may have.

The domain parses the text (``vpsweb.domain.glossary_text``); here it is read, like a
poem, as UTF-8 or in the encoding detected for the source language (``poems``), and
its format taken from its name (.csv, .tsv; .yaml, .yml) or, failing that, sniffed.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from vpsweb.domain.glossary import Glossary, GlossaryMode
from vpsweb.domain.glossary_text import GlossaryFormat, parse_glossary
from vpsweb.files.poems import read_text

_FORMATS: dict[str, GlossaryFormat] = {
    ".csv": "csv",
    ".tsv": "csv",
    ".yaml": "yaml",
    ".yml": "yaml",
}


def format_of(name: str) -> GlossaryFormat | None:
    """The format a file's name says (None: sniff the text)."""
    return _FORMATS.get(Path(name).suffix.lower())


def read_glossary(
    path: str,
    *,
    mode: GlossaryMode = "flag",
    encoding: str | None = None,
    languages: Sequence[str] = (),
) -> Glossary:
    """The glossary in the file (``languages``: the source's and the target's, whose
    legacy encodings are tried); InputFileError when it cannot be read, RequestInvalid
    naming each bad line."""
    text, _ = read_text(path, encoding=encoding, language=languages)
    return parse_glossary(text, mode=mode, name=path, fmt=format_of(path))
