"""What the tests of `vpsweb batch` share: collections written as a directory or as each
manifest format, a batch's record, progress and events made by hand (for the displays'
unit tests), and the percentages a display showed."""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

from vpsweb.domain.batch import (
    BatchCounts,
    BatchEvent,
    BatchMember,
    BatchProgress,
    BatchRecord,
)

FORMATS = ("directory", "yaml", "jsonl", "csv")


def short_poem(i: int, tag: str) -> str:
    """A two-line poem, different for each ``i`` and ``tag`` (so that no two tests'
    poems share a content key: each run pays for its own)."""
    return f"The fog comes ({tag} {i})\non little cat feet.\n"


def write_collection(root: Path, kind: str, count: int, tag: str, **fields: Any) -> Path:
    """``count`` poems as a directory of files or a YAML/JSONL/CSV manifest (poems as
    files beside it, or inline text for JSONL) under ``root``; the source's path.
    ``fields`` are given to every entry of a manifest (e.g. ``mode="reasoning"``)."""
    poems = root / f"{kind}-poems"
    poems.mkdir(parents=True, exist_ok=True)
    names = []
    for i in range(1, count + 1):
        path = poems / f"poem-{i:03d}.txt"
        path.write_text(short_poem(i, f"{tag} {kind}"), encoding="utf-8")
        names.append(path.name)
    if kind == "directory":
        return poems
    entries = [{"file": f"{poems.name}/{name}", **fields} for name in names]
    if kind == "yaml":
        path = root / "poems.yaml"
        path.write_text(yaml.safe_dump({"poems": entries}), encoding="utf-8")
    elif kind == "jsonl":
        path = root / "poems.jsonl"
        lines = [
            json.dumps({"text": short_poem(i, f"{tag} {kind}"), "name": f"poem-{i:03d}", **fields})
            for i in range(1, count + 1)
        ]
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    else:
        path = root / "poems.csv"
        out = io.StringIO()
        writer = csv.DictWriter(out, fieldnames=list(entries[0]))
        writer.writeheader()
        writer.writerows(entries)
        path.write_text(out.getvalue(), encoding="utf-8")
    return path


PERCENT = re.compile(r"(\d+)/(\d+)\s+(\d+\.\d)%")


def percentages(text: str) -> list[float]:
    """Every ``12/100  12.0%`` a display showed, in order."""
    return [float(m.group(3)) for m in PERCENT.finditer(text)]


BATCH_ID = "0123456789ab"
T0 = datetime(2025, 1, 1, tzinfo=UTC)


def record(n: int, name: str = "poems") -> BatchRecord:
    members = [
        BatchMember(
            name=f"poem-{i}", where=f"poems/poem-{i}.txt", job_id=f"job{i:09d}", content_key="k"
        )
        for i in range(n)
    ]
    return BatchRecord(
        batch_id=BATCH_ID,
        name=name,
        created_at=T0,
        run_started_at=T0,
        currency="CNY",
        entries=members,
    )


def progress(
    rec: BatchRecord, *, succeeded: int = 0, failed: int = 0, running: int = 0, cost: float = 0.0
) -> BatchProgress:
    """The batch with its first members ended, the next ones running."""
    total = len(rec.entries)
    ended = succeeded + failed
    counts = BatchCounts(
        queued=total - ended - running,
        running=running,
        succeeded=succeeded,
        failed=failed,
        total=total,
    )
    return BatchProgress(
        batch_id=rec.batch_id,
        counts=counts,
        calls=ended * 6,
        tokens=ended * 1000,
        cost=cost,
        currency="CNY",
        elapsed_s=10.0,
        eta_s=None if not ended else 5.0,
        percent=round(ended / total * 100, 2),
        running=[m.job_id for m in rec.entries[ended : ended + running]],
    )


def event(rec: BatchRecord, i: int, kind: str, cause: str | None = None) -> BatchEvent:
    m = rec.entries[i]
    return BatchEvent(kind=kind, name=m.name, where=m.where, job_id=m.job_id, cause=cause)  # type: ignore[arg-type]


class ScriptedBatch:
    """A batch that plays a script: what ``Batch.progress()`` and ``Batch.events()``
    return, step by step (the displays' unit tests follow it without a store)."""

    def __init__(self, rec: BatchRecord, steps: list[tuple[BatchProgress, list[BatchEvent]]]):
        self.rec, self.steps, self.at = rec, steps, 0

    def progress(self) -> BatchProgress:
        return self.steps[min(self.at, len(self.steps) - 1)][0]

    def events(self, timeout: float | None = None) -> Iterator[BatchEvent]:
        import time

        for i, (_, events) in enumerate(self.steps):
            self.at = i
            yield from events
            time.sleep(0.25)
