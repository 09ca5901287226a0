"""What each `vpsweb` subcommand does. Jobs are reached only through the client API."""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from vpsweb import settings
from vpsweb.errors import ConfigError

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


def print_error(msg: str) -> None:
    sys.stderr.write(f"vpsweb: {msg}\n")


def _fail(msg: str, code: int = EXIT_USAGE) -> int:
    print_error(msg)
    return code


def _redis_url(args: argparse.Namespace) -> str | None:
    """--redis-url, else VPSWEB_REDIS_URL; VPSWEB_REDIS_PASSWORD fills in a missing password."""
    flag = getattr(args, "redis_url", None)
    if not flag:
        return settings.redis_url()
    password = os.environ.get(settings.REDIS_PASSWORD_ENV, "")
    return settings.with_redis_password(flag, password, replace=False)


def _client(args: argparse.Namespace) -> Any:
    from vpsweb.client import Client

    url = _redis_url(args) or settings.require_redis_url("this command")
    return Client(redis_url=url)


def _show_output(output: Any, args: argparse.Namespace) -> int:
    """Print the result (summary or --json) and save it with --output-dir."""
    from vpsweb.cli.view import print_result
    from vpsweb.output_files import save_output

    if args.json:
        sys.stdout.write(output.model_dump_json(indent=2) + "\n")
    else:
        print_result(output, sys.stdout)
    if args.output_dir:
        for path in save_output(output, Path(args.output_dir)):
            sys.stderr.write(f"saved {path}\n")
    return EXIT_OK


# --- translate -------------------------------------------------------------------


@contextlib.contextmanager
def _cluster(args: argparse.Namespace, needs_simulator: bool) -> Iterator[str]:
    """The configured cluster, or an embedded one that is torn down afterwards."""
    url = _redis_url(args)
    if url:
        yield url
        return
    from vpsweb.local.embedded import EmbeddedCluster

    sys.stderr.write(
        f"starting embedded Redis, worker{' and LLM simulator' if needs_simulator else ''}...\n"
    )
    # A little simulated latency so that the demo's progress is visible.
    sim_args = (
        []
        if os.environ.get(f"{settings.SIM_ENV_PREFIX}LATENCY_MS")
        else ["--latency-ms", "300", "--jitter-ms", "150"]
    )
    with EmbeddedCluster(simulator=needs_simulator, simulator_args=sim_args) as cluster:
        yield cluster.redis_url


def _read_optional(path: str | None) -> str | None:
    return Path(path).read_text(encoding="utf-8") if path else None


def _translate_request(args: argparse.Namespace) -> dict[str, Any]:
    return {
        "poem": Path(args.file).read_text(encoding="utf-8"),
        "source_lang": args.source_lang,
        "target_lang": args.target_lang,
        "parallel_count": args.parallel_count,
        "workflow_mode": args.mode,
        "title": args.title or "",
        "author": args.author or "",
        "strategy": {
            "adaptation_level": args.adaptation_level,
            "repetition_policy": args.repetition_policy,
            "additions_policy": args.additions_policy,
            "prosody_target": args.prosody_target,
            "few_shots": _read_optional(args.few_shots),
        },
        "background_briefing": _read_optional(args.background),
    }


def _follow(job: Any, args: argparse.Namespace) -> int | Any:
    """Show progress and wait; the output, or an exit code if the job did not succeed."""
    from vpsweb.cli.view import ProgressView
    from vpsweb.errors import JobError

    try:
        if not args.json:
            ProgressView().follow(job.events(timeout=args.timeout))
        return job.result(timeout=args.timeout)
    except KeyboardInterrupt:
        job.cancel()
        print_error(f"interrupted: job {job.id} cancelled")
        return EXIT_INTERRUPTED
    except TimeoutError as exc:
        return _fail(f"{exc}; the job keeps running: `vpsweb status {job.id}`", EXIT_FAILED)
    except JobError as exc:
        return _fail(str(exc), EXIT_FAILED)


def cmd_translate(args: argparse.Namespace) -> int:
    from vpsweb.client import Client, plan_job
    from vpsweb.config import load_config
    from vpsweb.llm.endpoints import resolve

    for path in (args.file, args.few_shots, args.background):
        if path and not Path(path).is_file():
            return _fail(f"cannot read {path}: no such file")
    cfg = load_config()
    offline = True if args.offline else settings.offline()
    # Validate and plan before starting anything: bad input costs nothing, leaves nothing.
    plan = plan_job(_translate_request(args), cfg, offline=offline)
    # An embedded worker shares this process's config and environment: check for it now.
    endpoints = [resolve(cfg.models, c) for c in plan.calls()]
    sim = cfg.simulator_provider()
    needs_simulator = offline or any(e.info.provider == sim for e in endpoints)
    if not _redis_url(args) and not offline:
        envs = {e.api_key_env for e in endpoints if e.api_key_env}
        if missing := sorted(e for e in envs if not os.environ.get(e)):
            return _fail(
                f"no API key: set {', '.join(missing)} for the models of mode "
                f"{plan.workflow_mode.value}, or run with --offline"
            )

    with _cluster(args, needs_simulator) as url, Client(redis_url=url, config=cfg) as client:
        job = client.submit_plan(plan)
        sys.stderr.write(
            f"job {job.id} submitted ({plan.parallel_count} candidates, "
            f"mode {plan.workflow_mode.value})\n"
        )
        outcome = _follow(job, args)
    return outcome if isinstance(outcome, int) else _show_output(outcome, args)


# --- job commands ------------------------------------------------------------------


def cmd_status(args: argparse.Namespace) -> int:
    from vpsweb.cli.view import print_status

    with _client(args) as client:
        job = client.get(args.job)
        print_status(job.record(), job.progress(), sys.stdout)
    return EXIT_OK


def cmd_result(args: argparse.Namespace) -> int:
    from vpsweb.errors import JobError

    with _client(args) as client:
        try:
            output = client.get(args.job).result(timeout=args.timeout)
        except (JobError, TimeoutError) as exc:
            return _fail(str(exc), EXIT_FAILED)
    return _show_output(output, args)


def cmd_cancel(args: argparse.Namespace) -> int:
    with _client(args) as client:
        if client.cancel(args.job):
            sys.stdout.write(f"job {args.job} cancelled\n")
            return EXIT_OK
        status = client.get(args.job).status()
    sys.stdout.write(f"job {args.job} had already ended ({status.value})\n")
    return EXIT_OK


def cmd_watch(args: argparse.Namespace) -> int:
    from vpsweb.cli.view import ProgressView

    with _client(args) as client:
        try:
            last = ProgressView(sys.stdout).follow(
                client.get(args.job).events(timeout=args.timeout)
            )
        except TimeoutError as exc:
            return _fail(str(exc), EXIT_FAILED)
    return EXIT_OK if last is not None and last.status == "succeeded" else EXIT_FAILED


def cmd_jobs(args: argparse.Namespace) -> int:
    with _client(args) as client:
        for r in client.recent(args.limit):
            p = r.plan
            sys.stdout.write(
                f"{r.job_id}  {r.status.value:<10} {r.created_at:%Y-%m-%d %H:%M:%S}  "
                f"{p.workflow_mode.value:<13} N={p.parallel_count}  "
                f"{p.request.title or '(untitled)'}\n"
            )
    return EXIT_OK


# --- operations ----------------------------------------------------------------------


def cmd_worker(args: argparse.Namespace) -> int:
    from vpsweb.local.processes import worker_command

    url = args.redis_url or settings.require_redis_url("vpsweb worker")
    os.environ[settings.REDIS_URL_ENV] = url
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
        return _fail(str(exc))
    env[settings.REDIS_URL_ENV] = args.redis_url or settings.require_redis_url("vpsweb flower")
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
