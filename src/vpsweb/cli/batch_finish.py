"""A batch followed to its end, and what it leaves: the files and the summary.

Shared by `vpsweb batch SOURCE`, `batch resume` (follow, then write the outputs) and
`batch results` (write them again at any time). Paid work is never lost: a Ctrl-C
cancels the poems not finished (no further LLM calls), writes the outputs of those
that finished, and says how to carry on; the finished jobs stay in the store, so a
resume or the same command again pays only for the rest.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from vpsweb.cli.common import (
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_OK,
    fail,
    interrupt_deferred,
    print_error,
)
from vpsweb.view.batch_view import BatchView, duration

if TYPE_CHECKING:  # pragma: no cover
    from vpsweb.batches.anthology import AnthologyItem
    from vpsweb.client.sync import Batch, Client, Job

TITLE_DEFAULT = "Anthology"


def _job(client: Client, job_id: str) -> Job:
    from vpsweb.client.sync import Job

    return Job(client, job_id)


def stage_of(client: Client) -> Callable[[str], str]:
    """A running job's stage, as its last event said (one read of its snapshot)."""

    def stage(job_id: str) -> str:
        return _job(client, job_id).progress().stage

    return stage


def anthology_items(client: Client, batch: Batch[Job]) -> tuple[list[AnthologyItem], list[str]]:
    """Each poem of the batch as the outputs show it (its request from its job's stored
    plan, its output if it succeeded, what it spent if it did not), in the batch's order;
    and a note for each poem left out because its job is no longer stored."""
    from vpsweb.batches.anthology import AnthologyItem
    from vpsweb.domain.result import TranslationOutput
    from vpsweb.errors import JobNotFound
    from vpsweb.storage import JobStatus

    items, notes = [], []
    for member in batch.record.entries:
        job = _job(client, member.job_id)
        try:
            record = job.record()
        except JobNotFound:
            notes.append(f"{member.name} ({member.where}): its job {member.job_id} has expired")
            continue
        output = spent = None
        if record.status is JobStatus.SUCCEEDED:
            raw = client.load_result(member.job_id)
            output = TranslationOutput.model_validate_json(raw) if raw else None
        elif record.status.terminal:
            spent = job.spent()
        error = f"{record.error_stage}: {record.error}" if record.error_stage else record.error
        items.append(
            AnthologyItem(
                name=member.name,
                where=member.where,
                request=record.plan.request,
                status=record.status.value,
                output=output,
                error=error,
                job_id=member.job_id,
                spent=spent,
            )
        )
    return items, notes


def write_outputs(client: Client, batch: Batch[Job], directory: Path) -> list[Path]:
    """Write the batch's files (each poem's JSON and Markdown, the anthology, the
    summary) under ``directory``, saying each poem left out; the paths written."""
    from vpsweb.batches.outputs import write_batch_outputs

    items, notes = anthology_items(client, batch)
    for note in notes:
        print_error(f"left out: {note}")
    return write_batch_outputs(directory, items, title=batch.record.name or TITLE_DEFAULT)


def said_files(paths: list[Path], directory: Path) -> str:
    """``out/: anthology.md, anthology.html, summary.csv, summary.jsonl, poems/ (97)``"""
    top = [p.name for p in paths if p.parent == directory]
    poems = {p.stem for p in paths if p.parent != directory}
    return f"{directory}/: {', '.join(top)}" + (f", poems/ ({len(poems)} poems)" if poems else "")


def print_summary(view: BatchView, out: TextIO) -> None:
    """Counts, spend and time; the failures were each said (with their cause) as they
    happened, so here only their number."""
    c = view.counts
    reused = f" ({view.reused} translated before: reused, not paid again)" if view.reused else ""
    failed = f"{c.failed} failed" + (" (each named above)" if c.failed else "")
    out.write(
        f"batch {view.batch_id}{f' ({view.name})' if view.name else ''}: {view.total} poems: "
        f"{c.succeeded} succeeded{reused}, {failed}, {c.cancelled} cancelled"
        + (f", {c.expired} expired" if c.expired else "")
        + "\n"
    )
    out.write(
        f"  cost {view.spend()}, {view.calls} calls, {view.tokens:,} tokens; "
        f"elapsed {duration(view.elapsed_s)}\n"
    )


def resume_hint(batch_id: str, directory: Path | None) -> str:
    where = f" --output-dir {shlex.quote(str(directory))}" if directory else ""
    return f"vpsweb batch resume {batch_id}{where}"


def _interrupted(
    client: Client, batch: Batch[Job], directory: Path | None, again: str | None
) -> int:
    """Ctrl-C: cancel what has not finished, keep and write what has, say how to go on."""
    sys.stderr.write("\n")  # off the line the terminal echoed ^C on
    with interrupt_deferred():  # a second Ctrl-C does not leave this half done
        cancelled = batch.cancel()
        written = write_outputs(client, batch, directory) if directory else []
        finished = batch.progress().counts
    lines = [
        f"interrupted: batch {batch.id}: {cancelled} unfinished poem(s) cancelled (no further "
        f"LLM calls), {finished.succeeded} finished poem(s) kept"
    ]
    if directory is not None and written:
        lines.append(f"files: {said_files(written, directory)}")
    if again is None:
        lines.append("this run kept no jobs (--ephemeral): the same command again starts over")
    else:
        lines.append(
            f"to carry on, paying only for the poems not finished: "
            f"{resume_hint(batch.id, directory)} (or {again})"
        )
    return fail("\n  ".join(lines), EXIT_INTERRUPTED)


def follow_to_end(
    client: Client,
    batch: Batch[Job],
    args: argparse.Namespace,
    *,
    directory: Path | None,
    again: str | None = "the same command again",
    said: str = "",
) -> int:
    """Say ``said`` (what was submitted), follow the batch (live, plain or JSON lines:
    progress on stderr, JSON on stdout), then write its outputs to ``directory`` and
    print the summary. EXIT_FAILED if a poem did not succeed, EXIT_INTERRUPTED after a
    Ctrl-C from the moment the batch exists (see ``_interrupted``: ``again`` is the other
    way to carry on, None when the run keeps nothing)."""
    from vpsweb.cli.batch_live import JsonDisplay, display_for, follow_batch

    try:
        sys.stderr.write(said)
        view = BatchView.of(batch.record)
        display = display_for(view, sys.stdout if args.json else sys.stderr, json_lines=args.json)
        follow_batch(batch, display, stage_of(client), timeout=args.timeout)
    except KeyboardInterrupt:
        return _interrupted(client, batch, directory, again)
    except TimeoutError as exc:
        return fail(f"{exc}; the batch goes on: `vpsweb batch watch {batch.id}`", EXIT_FAILED)
    with interrupt_deferred() as interrupted:
        written = write_outputs(client, batch, directory) if directory else []
        if isinstance(display, JsonDisplay):
            done = {"event": "batch_finished", **view.model_dump(mode="json", exclude={"running"})}
            display.write(done | {"files": [str(p) for p in written]})
        else:
            print_summary(view, sys.stdout)
            if written and directory is not None:
                sys.stdout.write(f"  files: {said_files(written, directory)}\n")
    if interrupted:
        print_error("interrupted; the batch had finished and its files are written")
        return EXIT_INTERRUPTED
    if view.counts.succeeded < view.total:
        return fail(
            f"not every poem succeeded: `{resume_hint(batch.id, directory)}` tries again",
            EXIT_FAILED,
        )
    return EXIT_OK


def print_json(obj: object) -> None:
    sys.stdout.write(json.dumps(obj, ensure_ascii=False, indent=2) + "\n")
