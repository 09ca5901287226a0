"""`vpsweb batch SOURCE` and `vpsweb batch COMMAND BATCH` share a word: the command
words are reserved, SOURCE is short for `batch run SOURCE`; the options are translate's."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from vpsweb.cli.batch_parser import COMMANDS, implied_run
from vpsweb.cli.batch_run import batch_defaults, output_dir, source_name
from vpsweb.cli.parser import build_parser
from vpsweb.errors import InputFileError


def parse(*argv: str) -> argparse.Namespace:
    return build_parser().parse_args(implied_run(list(argv)))


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["batch", "poems/"], ["batch", "run", "poems/"]),
        (
            ["--debug", "batch", "--offline", "p.csv"],
            ["--debug", "batch", "run", "--offline", "p.csv"],
        ),
        (["batch", "status", "abc"], ["batch", "status", "abc"]),
        (["batch", "./status"], ["batch", "run", "./status"]),
        (["batch", "run", "status"], ["batch", "run", "status"]),
        (["batch", "--help"], ["batch", "--help"]),
        (["translate", "batch"], ["translate", "batch"]),
        (["jobs", "--batch", "abc"], ["jobs", "--batch", "abc"]),
    ],
)
def test_a_source_is_short_for_batch_run(argv: list[str], expected: list[str]) -> None:
    assert implied_run(argv) == expected


def test_every_batch_command_parses_and_the_help_says_how_they_coexist(capsys) -> None:
    for name in COMMANDS:
        argv = ["batch", name] + ([] if name == "list" else ["src" if name == "run" else "b1"])
        argv += ["--output-dir", "out"] if name == "results" else []
        assert parse(*argv).batch_command == name
    with pytest.raises(SystemExit):
        parse("batch", "--help")
    said = capsys.readouterr().out
    assert "short for `vpsweb batch run SOURCE" in said and "./status" in said


def test_the_options_are_every_poems_defaults_as_translate_reads_them(tmp_path: Path) -> None:
    brief = tmp_path / "brief.txt"
    brief.write_text("Tang dynasty.\n", encoding="utf-8")
    args = parse(
        *("batch", "poems", "--source-lang", "zh-CN", "--target-lang", "en", "--author", "Li Bai"),
        *("--parallel-count", "2", "--straggler", "quorum:0.5", "--adaptation-level", "balanced"),
        *("--background", str(brief), "--max-cost", "0.5", "--budget", "3", "--force"),
    )
    defaults = batch_defaults(args)
    assert "poem" not in defaults
    assert defaults["title"] is None and defaults["author"] == "Li Bai"  # None: not given
    assert defaults["workflow_mode"] is None  # the manifest's or the config's
    assert defaults["straggler"] == {"policy": "quorum", "quorum": "0.5"}  # as translate
    assert defaults["background_briefing"] == "Tang dynasty.\n"
    assert defaults["strategy"]["adaptation_level"] == "balanced"
    assert defaults["idempotency_key"] is None  # per poem, never one for all
    assert (args.budget, args.force, args.max_cost) == (3.0, True, 0.5)


def test_the_output_dir_is_next_to_the_source_and_never_the_source(tmp_path: Path) -> None:
    poems = tmp_path / "poems"
    poems.mkdir()
    manifest = tmp_path / "tang.yaml"
    manifest.write_text("[]\n")
    none = argparse.Namespace(output_dir=None)
    assert output_dir(none, poems) == tmp_path / "poems-translated"
    assert output_dir(none, manifest) == tmp_path / "tang-translated"
    assert source_name(poems) == "poems" and source_name(manifest) == "tang"
    with pytest.raises(InputFileError, match="is the source directory"):
        output_dir(argparse.Namespace(output_dir=str(poems / ".")), poems)
