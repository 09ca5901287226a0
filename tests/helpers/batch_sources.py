"""Loading a batch source the way the tests of ``vpsweb.batches.sources`` do: from the
current directory (so places read ``poems.csv row 3``, as a user typing a relative
path sees them), with the languages as defaults unless a test gives others."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from vpsweb.batches import BatchEntry, load_source
from vpsweb.errors import RequestInvalid

LANGUAGES = {"source_lang": "en", "target_lang": "zh-CN"}


def load(source: str, defaults: dict[str, Any] | None = None, **options: Any) -> list[BatchEntry]:
    given = LANGUAGES if defaults is None else defaults
    return load_source(Path(source), given, max_parallel_count=8, **options)


def problems(source: str, defaults: dict[str, Any] | None = None, **options: Any) -> list[str]:
    """The refusal's lines (the load must be refused)."""
    with pytest.raises(RequestInvalid) as info:
        load(source, defaults, **options)
    return info.value.errors


def write(path: str, text: str, encoding: str = "utf-8") -> Path:
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(text.encode(encoding))
    return target
