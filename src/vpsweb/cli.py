"""The `vpsweb` command. It talks only to the orchestrator's API (via Client)."""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from collections.abc import Iterator
from pathlib import Path

from vpsweb.config import ConfigError, load_config
from vpsweb.config.loader import CONFIG_DIR_ENV, summarize
from vpsweb.models import TranslationOutput, WorkflowMode
from vpsweb.plan import RequestInvalid, build_plan, offline_from_env

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


def _err(msg: str) -> None:
    sys.stderr.write(f"vpsweb: {msg}\n")


def _redis_url(args: argparse.Namespace) -> str | None:
    from vpsweb.workers.app import REDIS_URL_ENV

    return getattr(args, "redis_url", None) or os.environ.get(REDIS_URL_ENV)


def _client(args: argparse.Namespace):  # -> Client
    from vpsweb.client import Client

    url = _redis_url(args)
    if not url:
        raise SystemExit(_fail("no Redis URL: pass --redis-url or set VPSWEB_REDIS_URL"))
    return Client(redis_url=url)


def _fail(msg: str, code: int = EXIT_USAGE) -> int:
    _err(msg)
    return code


def _show_output(output: TranslationOutput, args: argparse.Namespace) -> int:
    """Print the result (summary or --json) and save it with --output-dir."""
    from vpsweb.cli_view import print_result
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
    from vpsweb.workers.embedded import EmbeddedCluster

    sys.stderr.write(
        f"starting embedded Redis, worker{' and LLM simulator' if needs_simulator else ''}...\n"
    )
    # A little simulated latency so that the demo's progress is visible.
    sim_args = (
        []
        if os.environ.get("VPSWEB_SIM_LATENCY_MS")
        else ["--latency-ms", "300", "--jitter-ms", "150"]
    )
    with EmbeddedCluster(simulator=needs_simulator, simulator_args=sim_args) as cluster:
        yield cluster.redis_url


def _read_optional(path: str | None) -> str | None:
    return Path(path).read_text(encoding="utf-8") if path else None


def cmd_translate(args: argparse.Namespace) -> int:
    from vpsweb.cli_view import ProgressView
    from vpsweb.client import Client, JobError

    for path in (args.file, args.few_shots, args.background):
        if path and not Path(path).is_file():
            return _fail(f"cannot read {path}: no such file")
    poem = Path(args.file).read_text(encoding="utf-8")
    cfg = load_config()
    offline = True if args.offline else offline_from_env()
    request = {
        "poem": poem,
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
    # Validate before starting anything: bad input costs nothing and leaves nothing.
    plan = build_plan(request, cfg, job_id="preview", offline=offline)
    calls = [c.call for c in plan.candidates]
    calls += [plan.evaluation, plan.editor_review, plan.translator_revision]
    needs_simulator = offline or any(c.model.provider == "simulator" for c in calls)
    if not _redis_url(args) and not offline:
        # Embedded: the local worker has this process's environment, so check now.
        missing = sorted(
            {c.api_key_env for c in calls if c.api_key_env and not os.environ.get(c.api_key_env)}
        )
        if missing:
            return _fail(
                f"no API key: set {', '.join(missing)} for the models of mode "
                f"{plan.workflow_mode.value}, or run with --offline"
            )

    with _cluster(args, needs_simulator) as url, Client(redis_url=url, config=cfg) as client:
        job = client.submit(**request, offline=offline)
        sys.stderr.write(
            f"job {job.id} submitted ({plan.parallel_count} candidates, "
            f"mode {plan.workflow_mode.value})\n"
        )
        try:
            if not args.json:
                ProgressView().follow(job.events(timeout=args.timeout))
            output = job.result(timeout=args.timeout)
        except KeyboardInterrupt:
            job.cancel()
            _err(f"interrupted: job {job.id} cancelled")
            return EXIT_INTERRUPTED
        except TimeoutError as exc:
            return _fail(f"{exc}; the job keeps running: `vpsweb status {job.id}`", EXIT_FAILED)
        except JobError as exc:
            return _fail(str(exc), EXIT_FAILED)
    return _show_output(output, args)


# --- job commands ------------------------------------------------------------------


def cmd_status(args: argparse.Namespace) -> int:
    from vpsweb.cli_view import print_status

    with _client(args) as client:
        job = client.get(args.job)
        print_status(job.record(), job.progress(), sys.stdout)
    return EXIT_OK


def cmd_result(args: argparse.Namespace) -> int:
    from vpsweb.client import JobError

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
    from vpsweb.cli_view import ProgressView

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
    from vpsweb.workers.processes import worker_command

    if args.redis_url:
        os.environ["VPSWEB_REDIS_URL"] = args.redis_url
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
    if args.redis_url:
        env["VPSWEB_REDIS_URL"] = args.redis_url
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
    try:
        cfg = load_config(args.config_dir)
    except ConfigError as exc:
        sys.stderr.write(f"{exc}\n")
        return EXIT_FAILED
    sys.stdout.write(summarize(cfg) + "\n")
    return EXIT_OK


def cmd_bench(args: argparse.Namespace) -> int:
    from vpsweb.bench.run import run

    return run(args)


def cmd_simulate(args: argparse.Namespace) -> int:
    from vpsweb.llm.simulator import run_from_args

    return run_from_args(args)


# --- parser --------------------------------------------------------------------------


def _add_redis(p: argparse.ArgumentParser) -> None:
    p.add_argument("--redis-url", help="the cluster's Redis (default: $VPSWEB_REDIS_URL)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="vpsweb", description="Distributed poetry translation with LLMs."
    )
    sub = parser.add_subparsers(dest="command", required=True)

    t = sub.add_parser("translate", help="translate a poem file and wait for the result")
    t.add_argument("file")
    t.add_argument("--source-lang", required=True, help="en, zh-CN or pl")
    t.add_argument("--target-lang", required=True, help="en or zh-CN")
    t.add_argument("--parallel-count", type=int, help="number of candidates (default: config)")
    t.add_argument(
        "--mode", default=WorkflowMode.HYBRID.value, choices=[m.value for m in WorkflowMode]
    )
    t.add_argument("--title")
    t.add_argument("--author")
    dials = t.add_argument_group("strategy dials (default: strategy_defaults in pipeline.yaml)")
    dials.add_argument("--adaptation-level", choices=["foreignizing", "balanced", "domesticating"])
    dials.add_argument("--repetition-policy", choices=["strict", "adaptive"])
    dials.add_argument("--additions-policy", choices=["forbid", "allow_with_alt"])
    dials.add_argument("--prosody-target", help="free text, e.g. 'rhymed quatrains'")
    dials.add_argument("--few-shots", metavar="FILE", help="example translations to imitate")
    dials.add_argument("--background", metavar="FILE", help="background briefing on the poem")
    t.add_argument(
        "--offline", action="store_true", help="use the offline LLM simulator for every step"
    )
    t.add_argument("--json", action="store_true", help="print the full result as JSON")
    t.add_argument("--output-dir", help="save JSON and Markdown files here")
    t.add_argument("--timeout", type=float, default=None, help="give up waiting after N s")
    _add_redis(t)
    t.set_defaults(func=cmd_translate)

    for name, func, text in (
        ("status", cmd_status, "show a job's status and progress"),
        ("result", cmd_result, "wait for and print a job's result"),
        ("cancel", cmd_cancel, "cancel a job: no further LLM calls"),
        ("watch", cmd_watch, "follow a job's progress until it ends"),
    ):
        p = sub.add_parser(name, help=text)
        p.add_argument("job")
        _add_redis(p)
        if name in ("result", "watch"):
            p.add_argument("--timeout", type=float, default=None)
        if name == "result":
            p.add_argument("--json", action="store_true")
            p.add_argument("--output-dir")
        p.set_defaults(func=func)

    j = sub.add_parser("jobs", help="list recent jobs")
    j.add_argument("--limit", type=int, default=20)
    _add_redis(j)
    j.set_defaults(func=cmd_jobs)

    w = sub.add_parser("worker", help="start a Celery worker (threads pool)")
    w.add_argument("--queues", help="comma-separated queues (default: all)")
    w.add_argument("--concurrency", type=int, help="threads (default 32)")
    w.add_argument("--loglevel", default="INFO")
    w.add_argument("--name", help="node name, e.g. candidates1@%%h (default celery@%%h)")
    _add_redis(w)
    w.set_defaults(func=cmd_worker)

    f = sub.add_parser("flower", help="start Flower (basic auth from VPSWEB_FLOWER_USER/PASSWORD)")
    f.add_argument("--port", type=int, default=5555)
    f.add_argument("--address", help="bind address (default 0.0.0.0; 127.0.0.1 with --dev-no-auth)")
    f.add_argument(
        "--dev-no-auth",
        action="store_true",
        help="development only: run without credentials, bound to 127.0.0.1",
    )
    _add_redis(f)
    f.set_defaults(func=cmd_flower)

    b = sub.add_parser("bench", help="run the benchmarks (own Redis, simulator and workers)")
    from vpsweb.bench.run import add_arguments as add_bench_arguments

    add_bench_arguments(b)
    b.set_defaults(func=cmd_bench)

    c = sub.add_parser("config", help="configuration commands")
    csub = c.add_subparsers(dest="config_command", required=True)
    check = csub.add_parser("check", help="validate config/ and print a summary")
    check.add_argument("--config-dir", help=f"default: ${CONFIG_DIR_ENV} or ./config")
    check.set_defaults(func=cmd_config_check)

    s = sub.add_parser("simulate-llm", help="run the offline OpenAI-compatible LLM simulator")
    from vpsweb.llm.simulator import add_arguments

    add_arguments(s)
    s.set_defaults(func=cmd_simulate)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except RequestInvalid as exc:
        _err("invalid request:\n  " + "\n  ".join(exc.errors))
        return EXIT_USAGE
    except ConfigError as exc:
        _err(str(exc))
        return EXIT_FAILED
    except KeyboardInterrupt:
        _err("interrupted")
        return EXIT_INTERRUPTED
    except KeyError as exc:  # JobNotFound
        _err(str(exc))
        return EXIT_FAILED


if __name__ == "__main__":
    sys.exit(main())
