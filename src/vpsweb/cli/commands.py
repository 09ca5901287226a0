"""What each `vpsweb` subcommand does. Jobs are reached only through the client API."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from vpsweb import settings
from vpsweb.cli.common import EXIT_FAILED, EXIT_OK, fail, open_client, print_error, show_output
from vpsweb.errors import ConfigError

if TYPE_CHECKING:  # pragma: no cover
    from vpsweb.config import AppConfig
    from vpsweb.storage import JobRecord

# --- job commands ------------------------------------------------------------------


def cmd_status(args: argparse.Namespace) -> int:
    from vpsweb.cli.report import print_status

    with open_client(args) as client:
        job = client.get(args.job)
        print_status(job.record(), job.progress(), sys.stdout)
    return EXIT_OK


def cmd_result(args: argparse.Namespace) -> int:
    from vpsweb.errors import JobError

    with open_client(args) as client:
        try:
            output = client.get(args.job).result(timeout=args.timeout)
        except (JobError, TimeoutError) as exc:
            return fail(str(exc), EXIT_FAILED)
        show_output(output, args)
    return EXIT_OK


def cmd_cancel(args: argparse.Namespace) -> int:
    with open_client(args) as client:
        if client.cancel(args.job):
            sys.stdout.write(f"job {args.job} cancelled\n")
            return EXIT_OK
        status = client.get(args.job).status()
    sys.stdout.write(f"job {args.job} had already ended ({status.value})\n")
    return EXIT_OK


def cmd_watch(args: argparse.Namespace) -> int:
    from vpsweb.cli.live import follow, why_failed
    from vpsweb.view import JobView

    with open_client(args) as client:
        job = client.get(args.job)
        state = JobView.of(job.id, job.record().plan)
        try:
            last = follow(job.events(timeout=args.timeout), state, sys.stdout)
        except TimeoutError as exc:
            return fail(str(exc), EXIT_FAILED)
        record = job.record()
    if last is not None and last.status == "succeeded":
        return EXIT_OK
    if record.error:
        stage = record.error_stage or "?"
        print_error(f"job {job.id} failed in {stage}: {why_failed(state, stage, record.error)}")
    return EXIT_FAILED


def cmd_jobs(args: argparse.Namespace) -> int:
    from vpsweb.cli.batch_commands import batch_jobs

    with open_client(args) as client:
        if args.batch:  # one line per poem, named as in the batch
            for name, r in batch_jobs(client, args.batch):
                if r is None:
                    sys.stdout.write(f"{'-' * 12}  {'expired':<10} {name}\n")
                else:
                    sys.stdout.write(f"{_job_line(r, name)}\n")
            return EXIT_OK
        for r in client.recent(args.limit):
            sys.stdout.write(f"{_job_line(r, r.plan.request.title or '(untitled)')}\n")
    return EXIT_OK


def _job_line(r: JobRecord, name: str) -> str:
    p = r.plan
    return (
        f"{r.job_id}  {r.status.value:<10} {r.created_at:%Y-%m-%d %H:%M:%S}  "
        f"{p.workflow_mode.value:<13} N={p.parallel_count}  {name}"
    )


# --- operations ----------------------------------------------------------------------


def cmd_worker(args: argparse.Namespace) -> int:
    from vpsweb.local.processes import worker_command

    flag = args.redis_url and settings.check_redis_url(args.redis_url, "--redis-url")
    settings.set_store_url(os.environ, flag or settings.require_redis_url("vpsweb worker"))
    queues = args.queues.split(",") if args.queues else None
    cmd = worker_command(
        queues=queues, concurrency=args.concurrency, loglevel=args.loglevel, name=args.name
    )
    os.execv(cmd[0], cmd)  # becomes a plain `celery worker`: signals behave as usual
    return EXIT_OK  # pragma: no cover


def cmd_flower(args: argparse.Namespace) -> int:
    from vpsweb.monitoring.flower import FlowerConfigError, flower_environment

    address = "127.0.0.1" if args.dev_no_auth and not args.address else (args.address or "0.0.0.0")
    try:
        env = flower_environment(
            dict(os.environ), address=address, allow_no_auth_on_localhost=args.dev_no_auth
        )
    except FlowerConfigError as exc:
        return fail(str(exc))
    flag = args.redis_url and settings.check_redis_url(args.redis_url, "--redis-url")
    settings.set_store_url(env, flag or settings.require_redis_url("vpsweb flower"))
    cmd = [
        sys.executable,
        "-m",
        "vpsweb.monitoring.flower",
        f"--address={address}",
        f"--port={args.port}",
    ]
    os.execve(cmd[0], cmd, env)
    return EXIT_OK  # pragma: no cover


def cmd_config_check(args: argparse.Namespace) -> int:
    from vpsweb.config import load_config
    from vpsweb.config.loader import summarize

    try:
        cfg = load_config(args.config_dir)
    except ConfigError as exc:
        sys.stderr.write(f"{exc}\n")
        return EXIT_FAILED
    sys.stdout.write(summarize(cfg) + "\n")
    return _report_keys(cfg) if getattr(args, "keys", False) else EXIT_OK


def _report_keys(cfg: AppConfig) -> int:
    """Keys are read by workers from their own environment: this checks the one it runs
    in, so run it where the workers run."""
    from vpsweb.config.api_keys import describe, provider_keys

    keys = provider_keys(cfg, os.environ)
    sys.stdout.write("  API keys (in this environment; values not shown):\n")
    sys.stdout.writelines(describe(k) + "\n" for k in keys)
    missing = [k.variable for k in keys if k.missing and k.variable]
    if missing:
        return fail(f"API key not set: {', '.join(missing)} (used by the modes above)", EXIT_FAILED)
    return EXIT_OK


def cmd_config_init(args: argparse.Namespace) -> int:
    from vpsweb.config import init_config

    target = init_config(Path(args.directory), force=args.force)
    sys.stdout.write(
        f"wrote the default config to {target}; use it with "
        f"{settings.CONFIG_DIR_ENV}={target.resolve()}\n"
    )
    return EXIT_OK


def cmd_bench(args: argparse.Namespace) -> int:
    from vpsweb.bench.run import run

    return run(args)


def cmd_simulate(args: argparse.Namespace) -> int:
    from vpsweb.simulator.server import run_from_args

    return run_from_args(args)
