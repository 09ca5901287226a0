"""`vpsweb batch status|watch|results|cancel|resume|list`: a batch after it was submitted.

Reached, like jobs, only through the client API, on the configured cluster or else the
per-user store of embedded runs. Only ``resume`` runs anything: without a cluster it
starts an embedded one on that store (with the simulator when the poems' plans need
it), as the run that made the batch did.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vpsweb.cli.batch_finish import (
    follow_to_end,
    print_json,
    print_summary,
    resume_hint,
    said_files,
    stage_of,
    write_outputs,
)
from vpsweb.cli.common import (
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_OK,
    fail,
    open_client,
    prepare_output_dir,
    redis_url,
)
from vpsweb.view.batch_view import BatchView, duration

if TYPE_CHECKING:  # pragma: no cover
    from vpsweb.client.sync import Batch, Client, Job
    from vpsweb.config import AppConfig
    from vpsweb.domain.batch import BatchMember
    from vpsweb.storage import JobRecord


def member_records(client: Client, batch: Batch[Job]) -> list[tuple[BatchMember, JobRecord | None]]:
    """Each poem with its job's record (None: expired): a read per poem."""
    from vpsweb.errors import JobNotFound

    found: list[tuple[BatchMember, JobRecord | None]] = []
    for member in batch.record.entries:
        try:
            found.append((member, client.record(member.job_id)))
        except JobNotFound:
            found.append((member, None))
    return found


def _failures(client: Client, batch: Batch[Job]) -> list[dict[str, str]]:
    failed = []
    for member, record in member_records(client, batch):
        if record is not None and record.status.value == "failed":
            cause = f"{record.error_stage or 'unknown stage'}: {record.error or 'no cause'}"
            failed.append(
                {
                    "name": member.name,
                    "where": member.where,
                    "job_id": member.job_id,
                    "cause": cause,
                }
            )
    return failed


def cmd_batch_status(args: argparse.Namespace) -> int:
    with open_client(args) as client:
        batch = client.batch(args.batch)
        progress = batch.progress()
        failed = _failures(client, batch) if progress.counts.failed else []
    record = batch.record
    if args.json:
        print_json(
            {
                "batch": record.model_dump(mode="json"),
                "progress": progress.model_dump(mode="json"),
                "failed": failed,
            }
        )
        return EXIT_OK
    view = BatchView.of(record)
    view.apply_progress(progress)
    from vpsweb.cli.report import bar

    out = sys.stdout
    reused = f", {view.reused} reused" if view.reused else ""
    out.write(
        f"batch {record.batch_id}{f' ({record.name})' if record.name else ''}: created "
        f"{record.created_at:%Y-%m-%d %H:%M:%S}, {view.total} poems{reused}\n"
        f"  {bar(view.percent)}  {view.finished}/{view.total} finished\n"
        f"  {view.counts_text()}\n"
        f"  cost {view.spend()}, {view.calls} calls, {view.tokens:,} tokens; "
        f"elapsed {duration(view.elapsed_s)}, ETA {duration(view.eta_s)}\n"
    )
    for f in failed:
        out.write(f"  ✗ {f['name']} ({f['where']}) failed: {' '.join(f['cause'].split())}\n")
    return EXIT_OK


def _ended(view: BatchView) -> int:
    return EXIT_OK if view.counts.succeeded >= view.total else EXIT_FAILED


def cmd_batch_watch(args: argparse.Namespace) -> int:
    from vpsweb.cli.batch_live import JsonDisplay, display_for, follow_batch

    with open_client(args) as client:
        batch = client.batch(args.batch)
        view = BatchView.of(batch.record)
        display = display_for(view, sys.stdout, json_lines=args.json)
        try:
            follow_batch(batch, display, stage_of(client), timeout=args.timeout)
        except TimeoutError as exc:
            return fail(f"{exc}; the batch goes on", EXIT_FAILED)
        except KeyboardInterrupt:
            sys.stderr.write("\n")
            return fail(
                f"stopped watching; the batch goes on (`vpsweb batch cancel {batch.id}` stops it)",
                EXIT_INTERRUPTED,
            )
    if isinstance(display, JsonDisplay):
        display.write(
            {"event": "batch_finished", **view.model_dump(mode="json", exclude={"running"})}
        )
    else:
        print_summary(view, sys.stdout)
    return _ended(view)


def cmd_batch_results(args: argparse.Namespace) -> int:
    directory = Path(args.output_dir)
    prepare_output_dir(directory)
    with open_client(args) as client:
        batch = client.batch(args.batch)
        written = write_outputs(client, batch, directory)
        progress = batch.progress()
    c = progress.counts
    sys.stdout.write(f"wrote {said_files(written, directory)}\n")
    if not progress.done:
        sys.stdout.write(
            f"  the batch has not ended ({c.running} running, {c.queued} queued): those poems "
            "are listed as not translated yet; run this again when it ends\n"
        )
    return EXIT_OK


def cmd_batch_cancel(args: argparse.Namespace) -> int:
    with open_client(args) as client:
        batch = client.batch(args.batch)
        cancelled = batch.cancel()
        c = batch.progress().counts
    if cancelled:
        sys.stdout.write(
            f"batch {batch.id}: {cancelled} unfinished poem(s) cancelled, no further LLM calls; "
            f"{c.succeeded} finished poem(s) kept; `{resume_hint(batch.id, None)}` carries on\n"
        )
    else:
        sys.stdout.write(f"batch {batch.id} had no unfinished poem ({c.succeeded} succeeded)\n")
    return EXIT_OK


def cmd_batch_list(args: argparse.Namespace) -> int:
    with open_client(args) as client:
        for record in client.batches(args.limit):
            progress = client.batch(record.batch_id).progress()
            c = progress.counts
            sys.stdout.write(
                f"{record.batch_id}  {record.created_at:%Y-%m-%d %H:%M:%S}  "
                f"{c.finished:>4}/{c.total:<4} {progress.percent:5.1f}%  "
                f"{c.succeeded} ok, {c.failed} failed, {c.cancelled} cancelled  "
                f"{record.name}\n"
            )
    return EXIT_OK


def _needs_simulator(client: Client, batch: Batch[Job], cfg: AppConfig) -> bool:
    from vpsweb.cli.cluster import needs_simulator

    return any(
        record is not None and needs_simulator(cfg, record.plan)
        for _, record in member_records(client, batch)
    )


@contextlib.contextmanager
def _cluster_for_resume(args: argparse.Namespace, cfg: AppConfig) -> Iterator[str]:
    """The configured cluster, else an embedded one on the local store the batch is in."""
    from vpsweb.cli.cluster import cluster

    if redis_url(args):
        with cluster(args, False) as url:
            yield url
        return
    with open_client(args) as client:
        needs = _needs_simulator(client, client.batch(args.batch), cfg)
    with cluster(args, needs, must_keep=True) as url:
        yield url


def cmd_batch_resume(args: argparse.Namespace) -> int:
    from vpsweb.client.sync import Client
    from vpsweb.config import load_config
    from vpsweb.settings import REDIS_URL_ENV

    if args.detach and not redis_url(args):
        return fail(f"--detach needs a cluster ({REDIS_URL_ENV} or --redis-url)")
    directory = Path(args.output_dir) if args.output_dir else None
    prepare_output_dir(directory)
    cfg = load_config()
    with _cluster_for_resume(args, cfg) as url, Client(redis_url=url, config=cfg) as client:
        batch = client.batch(args.batch)
        before = {m.name: m.job_id for m in batch.record.entries}
        batch = batch.resume(force=args.force, budget=args.budget)
        again = [m for m in batch.record.entries if before.get(m.name) != m.job_id]
        said = _resumed(batch.id, len(again), sum(m.reused for m in again))
        if args.detach:
            sys.stderr.write(said)
            sys.stdout.write(batch.id + "\n")
            return EXIT_OK
        return follow_to_end(
            client, batch, args, directory=directory, again="this again", said=said
        )


def _resumed(batch_id: str, again: int, reused: int) -> str:
    if not again:
        return f"batch {batch_id}: no failed or cancelled poem to resume\n"
    found = f" ({reused} found translated elsewhere: reused)" if reused else ""
    return f"batch {batch_id} resumed: {again} poem(s) given a new job{found}\n"


def batch_jobs(client: Client, batch_id: str) -> list[tuple[str, Any]]:
    """`vpsweb jobs --batch`: each poem's name and its job's record (None: expired)."""
    batch = client.batch(batch_id)
    return [(m.name, record) for m, record in member_records(client, batch)]
