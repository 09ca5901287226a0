"""What every `vpsweb` command shares: exit codes, messages, the Redis to talk to,
and how a result is shown and saved."""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from vpsweb import settings

if TYPE_CHECKING:  # pragma: no cover
    from vpsweb.client.sync import Client
    from vpsweb.domain.result import TranslationOutput

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


def print_error(msg: str) -> None:
    sys.stderr.write(f"vpsweb: {msg}\n")
    sys.stderr.flush()


def fail(msg: str, code: int = EXIT_USAGE) -> int:
    print_error(msg)
    return code


def redis_url(args: argparse.Namespace) -> str | None:
    """--redis-url, else VPSWEB_REDIS_URL; VPSWEB_REDIS_PASSWORD fills in a missing password."""
    flag = getattr(args, "redis_url", None)
    if not flag:
        return settings.redis_url()
    return settings.check_redis_url(flag, "--redis-url")


@contextlib.contextmanager
def open_client(args: argparse.Namespace) -> Iterator[Client]:
    """A client of the configured cluster or, with none configured, of the per-user
    store where embedded runs keep their jobs."""
    from vpsweb.client.sync import Client
    from vpsweb.local.data_dir import LocalStore

    url = redis_url(args)
    with contextlib.ExitStack() as stack:
        if url is None:
            url = stack.enter_context(LocalStore(settings.data_dir()).opened())
        yield stack.enter_context(Client(redis_url=url))


@contextlib.contextmanager
def interrupt_deferred() -> Iterator[list[int]]:
    """A Ctrl-C in the block is remembered (the yielded list gets an entry), not raised:
    a finished result is saved and printed whole, and the caller then says so."""
    caught: list[int] = []
    try:
        previous = signal.signal(signal.SIGINT, lambda signum, _frame: caught.append(signum))
    except ValueError:  # not the main thread: nothing to defer
        yield caught
        return
    try:
        yield caught
    finally:
        signal.signal(signal.SIGINT, previous)


def prepare_output_dir(path: str | Path | None) -> None:
    """Make sure results can be saved before paying for them: the directory is made and
    a file written in it and removed (InputFileError, saying why, if not)."""
    if not path:
        return
    from vpsweb.errors import InputFileError

    try:
        Path(path).mkdir(parents=True, exist_ok=True)
        probe = Path(path) / f".vpsweb-write-test-{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise InputFileError(
            f"cannot write to --output-dir {path}: {exc.strerror or exc}"
        ) from None


def show_output(output: TranslationOutput, args: argparse.Namespace) -> None:
    """Save the result first (with --output-dir), then print it (summary or --json):
    a finished, paid result reaches the disk before anything else can go wrong."""
    from vpsweb.cli.report import print_result
    from vpsweb.files.output import save_output

    if args.output_dir:
        for path in save_output(output, Path(args.output_dir)):
            sys.stderr.write(f"saved {path}\n")
    if args.json:
        sys.stdout.write(output.model_dump_json(indent=2) + "\n")
    else:
        print_result(output, sys.stdout)
    sys.stdout.flush()
