"""The `vpsweb` command (entry point ``vpsweb.cli:main``)."""

from __future__ import annotations

import logging
import os
import signal
import sys

from vpsweb.cli.common import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_USAGE, print_error
from vpsweb.errors import ConfigError, InputFileError, RequestInvalid, VpswebError

__all__ = ["main"]

# A reader that stopped reading (`vpsweb result J | head`) is not an error: end as a
# command killed by SIGPIPE does, quietly, with the status a shell reports for one.
EXIT_CLOSED_STDOUT = 128 + signal.SIGPIPE


def _one_line(exc: BaseException) -> tuple[str, int] | None:
    """What to tell the user about an error they can act on; None for a bug."""
    import redis

    if isinstance(exc, RequestInvalid):
        return "invalid request:\n  " + "\n  ".join(exc.errors), EXIT_USAGE
    if isinstance(exc, ConfigError):
        more = len(exc.problems) - 1
        rest = f" (and {more} more: `vpsweb config check` lists them)" if more > 0 else ""
        return f"invalid configuration: {exc.problems[0]}{rest}", EXIT_USAGE
    if isinstance(exc, InputFileError):
        return str(exc), EXIT_USAGE
    if isinstance(exc, VpswebError):
        return str(exc), EXIT_FAILED
    if isinstance(exc, redis.AuthenticationError | redis.ConnectionError | redis.TimeoutError):
        return f"cannot use Redis: {exc} (check the URL and password)", EXIT_FAILED
    if isinstance(exc, UnicodeError):
        return f"cannot decode text: {exc}; save the file as UTF-8", EXIT_USAGE
    if isinstance(exc, PermissionError):
        return f"permission denied: {exc.filename or exc}", EXIT_FAILED
    if isinstance(exc, OSError):
        where = f" ({exc.filename})" if exc.filename else ""
        return f"{exc.strerror or exc}{where}", EXIT_FAILED
    return None


def _stdout_closed() -> int:
    """Point stdout at devnull, as the Python docs advise: the interpreter's final
    flush would otherwise fail again and print "Exception ignored ... BrokenPipeError"."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)
    return EXIT_CLOSED_STDOUT


def main(argv: list[str] | None = None) -> int:
    # Ctrl-C must always stop (and cancel) what vpsweb is doing. Python leaves SIGINT
    # ignored when the parent ignored it, as a non-interactive shell does for a command
    # started with '&' (CI runners, `make test &`): the interrupt was then silently lost.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    logging.basicConfig(format="vpsweb: %(message)s", level=logging.WARNING)
    from vpsweb.cli.batch_parser import implied_run
    from vpsweb.cli.parser import build_parser

    args = build_parser().parse_args(implied_run(sys.argv[1:] if argv is None else argv))
    try:
        code = int(args.func(args))
        sys.stdout.flush()  # here, where a closed pipe can still be caught
        return code
    except BrokenPipeError:
        return _stdout_closed()
    except KeyboardInterrupt:
        print_error("interrupted")
        return EXIT_INTERRUPTED
    except Exception as exc:
        if args.debug or (said := _one_line(exc)) is None:
            raise
        print_error(said[0])
        return said[1]
