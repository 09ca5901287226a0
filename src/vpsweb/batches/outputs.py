"""A batch's files in one directory: each poem's JSON and Markdown, the anthology and
the summary.

``vpsweb batch results BATCH --output-dir DIR`` writes them again at any time, over
what an earlier run wrote, and may be interrupted or run twice at once: so every
file is written whole beside its final name and renamed into place (a rename within
a directory is atomic), and everything is rendered before anything is written. A
reader of the directory sees each file either as it was or as it is now, never half.

Each poem's files are named by its name in the batch (``poems/<name>.json`` and
``.md``, as ``translate --output-dir`` writes them, content for content), not by the
job's time stamp: a run again replaces them instead of adding copies. They sit in a
folder of their own so that no poem's name can collide with ``anthology.md``.
"""

from __future__ import annotations

import os
import uuid
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

from vpsweb.batches.anthology import AnthologyItem, anthology_html, anthology_markdown
from vpsweb.batches.summary import CSV_ENCODING, summary_csv, summary_jsonl, summary_rows
from vpsweb.files.output import to_markdown

POEMS_DIR = "poems"
ANTHOLOGY_MD = "anthology.md"
ANTHOLOGY_HTML = "anthology.html"
SUMMARY_CSV = "summary.csv"
SUMMARY_JSONL = "summary.jsonl"


def write_atomically(path: Path, text: str, encoding: str = "utf-8") -> None:
    """Write ``text`` to a new file beside ``path`` and rename it over ``path``."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        # newline="": the CSV's own \r\n line ends stay as the csv module wrote them.
        with tmp.open("x", encoding=encoding, newline="") as f:
            f.write(text)
        tmp.replace(path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _rendered(items: Sequence[AnthologyItem], title: str) -> list[tuple[str, str, str]]:
    """(relative path, text, encoding) of every file, in the order they are written."""
    files: list[tuple[str, str, str]] = []
    for item in items:
        if item.output is not None:
            stem = f"{POEMS_DIR}/{item.name}"
            files.append((f"{stem}.json", item.output.model_dump_json(indent=2), "utf-8"))
            files.append((f"{stem}.md", to_markdown(item.output), "utf-8"))
    rows = summary_rows(items)
    return [
        *files,
        (ANTHOLOGY_MD, anthology_markdown(items, title=title), "utf-8"),
        (ANTHOLOGY_HTML, anthology_html(items, title=title), "utf-8"),
        (SUMMARY_CSV, summary_csv(rows), CSV_ENCODING),
        (SUMMARY_JSONL, summary_jsonl(rows), "utf-8"),
    ]


def write_batch_outputs(
    directory: Path, items: Sequence[AnthologyItem], *, title: str
) -> list[Path]:
    """Write every file of the batch's results under ``directory``; the paths written.

    A poem with no output has no files of its own (the anthology and the summary say
    why); files an earlier run wrote for it are left as they were.
    """
    repeated = sorted(name for name, n in Counter(i.name for i in items).items() if n > 1)
    if repeated:
        raise ValueError(f"poem names must be unique in a batch: {', '.join(repeated)}")
    files = _rendered(items, title)
    (directory / POEMS_DIR).mkdir(parents=True, exist_ok=True)
    written = []
    for relative, text, encoding in files:
        path = directory / relative
        write_atomically(path, text, encoding)
        written.append(path)
    return written
