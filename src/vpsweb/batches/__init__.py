"""Collections translated as one batch: where its poems come from (``sources``: a
directory of poem files or a YAML, JSONL or CSV manifest, validated whole before
anything is enqueued) and what it gives back."""

from __future__ import annotations

from vpsweb.batches.sources import BatchEntry, load_source

__all__ = ["BatchEntry", "load_source"]
