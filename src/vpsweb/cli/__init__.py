"""The `vpsweb` command (entry point ``vpsweb.cli:main``)."""

from __future__ import annotations

from vpsweb.cli.commands import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_USAGE, print_error
from vpsweb.cli.parser import build_parser
from vpsweb.errors import RequestInvalid, VpswebError

__all__ = ["main"]


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except RequestInvalid as exc:
        print_error("invalid request:\n  " + "\n  ".join(exc.errors))
        return EXIT_USAGE
    except VpswebError as exc:
        print_error(str(exc))
        return EXIT_FAILED
    except KeyboardInterrupt:
        print_error("interrupted")
        return EXIT_INTERRUPTED
