"""Every way a user's setup can be wrong ends in one line that says what to do.

Each case runs the real command and asserts the whole of stderr: a single line
starting with ``vpsweb:``, no traceback (``--debug`` brings the traceback back).
"""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from tests.helpers.cli import FOG, one_line, our_processes, run_cli
from tests.helpers.config import REPO, make_config_dir
from vpsweb.local.processes import free_port, redis_server_binary, stop_process

pytestmark = pytest.mark.integration

JOB = "0123456789ab"


@pytest.fixture(scope="module")
def locked_redis() -> Iterator[str]:
    """A Redis that wants a password: its URL without one."""
    port = free_port()
    proc = subprocess.Popen(
        [
            *(redis_server_binary(), "--port", str(port), "--bind", "127.0.0.1"),
            *("--save", "", "--requirepass", "s3cret"),
        ],
        stdout=subprocess.DEVNULL,
        start_new_session=True,  # its own group: stop_process signals the group
    )
    client = redis.Redis(port=port, password="s3cret")
    for _ in range(100):
        try:
            client.ping()
            break
        except redis.ConnectionError:
            time.sleep(0.05)
    yield f"redis://127.0.0.1:{port}/0"
    stop_process(proc)


@pytest.mark.parametrize(
    "command",
    [
        ("status", JOB),
        ("jobs",),
        ("stats",),
        ("watch", JOB),
        ("batch", "status", JOB),
        ("batch", "list"),
    ],
)
def test_redis_refused(command: tuple[str, ...]) -> None:
    url = f"redis://127.0.0.1:{free_port()}/0"
    line = one_line(run_cli(*command, "--redis-url", url), 1)
    assert "cannot reach Redis at 127.0.0.1:" in line and "is it running" in line


def test_redis_unknown_host() -> None:
    res = run_cli("status", JOB, "--redis-url", "redis://no-such-host.invalid:6379/0")
    assert "cannot reach Redis at no-such-host.invalid:6379" in one_line(res, 1)


def test_redis_wrong_or_missing_password(locked_redis: str) -> None:
    missing = one_line(run_cli("jobs", "--redis-url", locked_redis), 1)
    wrong = one_line(run_cli("jobs", "--redis-url", locked_redis.replace("//", "//:wrong@")), 1)
    for line in (missing, wrong):
        assert "refused the credentials: check the password in the URL" in line
    right = run_cli("jobs", "--redis-url", locked_redis.replace("//", "//:s3cret@"))
    assert right.returncode == 0 and right.stderr == ""


def test_translate_against_a_refused_redis_starts_nothing() -> None:
    before = our_processes()
    url = f"redis://127.0.0.1:{free_port()}/0"
    res = run_cli(
        "translate",
        FOG,
        "--source-lang",
        "en",
        "--target-lang",
        "zh-CN",
        "--offline",
        "--redis-url",
        url,
    )
    assert "cannot reach Redis" in one_line(res, 1)
    assert our_processes() - before == set()


def test_debug_shows_the_traceback() -> None:
    url = f"redis://127.0.0.1:{free_port()}/0"
    res = run_cli("--debug", "jobs", "--redis-url", url)
    assert res.returncode == 1 and "Traceback" in res.stderr


def test_broken_config_help_still_works_and_commands_say_where(tmp_path: Path) -> None:
    broken = make_config_dir(tmp_path)
    (broken / "pipeline.yaml").write_text("parallel_count: [unclosed\n")
    env = {"VPSWEB_CONFIG_DIR": str(broken)}
    helped = run_cli("--help", env=env)
    assert helped.returncode == 0 and "translate" in helped.stdout
    assert run_cli("translate", "--help", env=env).returncode == 0
    check = run_cli("config", "check", env=env)
    assert check.returncode == 1 and "pipeline.yaml" in check.stderr
    assert "Traceback" not in check.stderr
    res = run_cli(
        "translate", FOG, "--source-lang", "en", "--target-lang", "zh-CN", "--offline", env=env
    )
    line = one_line(res, 2)
    assert line.startswith("vpsweb: invalid configuration: ") and "pipeline.yaml" in line


def test_unwritable_output_dir_is_refused_before_anything_starts() -> None:
    before = our_processes()
    res = run_cli(
        "translate",
        FOG,
        "--source-lang",
        "en",
        "--target-lang",
        "zh-CN",
        "--offline",
        "--output-dir",
        "/sys/vpsweb-out",
    )
    assert "cannot write to --output-dir /sys/vpsweb-out" in one_line(res, 2)
    assert our_processes() - before == set()


@pytest.mark.parametrize(
    ("what", "argv"),
    [
        ("vpsweb worker", ("worker",)),
        ("vpsweb flower", ("flower",)),
    ],
)
def test_no_silent_default_redis(what: str, argv: tuple[str, ...]) -> None:
    env = {"VPSWEB_FLOWER_USER": "admin", "VPSWEB_FLOWER_PASSWORD": "correct-horse-battery"}
    line = one_line(run_cli(*argv, env=env, unset=("VPSWEB_REDIS_URL",)), 1)
    assert f"{what} needs the cluster's Redis: set VPSWEB_REDIS_URL" in line


def _celery_worker(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """Plain ``celery -A vpsweb.workers.app worker`` in ``env``, as an operator starts it."""
    return subprocess.run(
        [str(REPO / ".venv" / "bin" / "celery"), "-A", "vpsweb.workers.app", "worker"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO,
    )


def test_celery_app_refuses_without_a_redis_url() -> None:
    from tests.helpers.cli import cli_env

    res = _celery_worker(cli_env(unset=("VPSWEB_REDIS_URL", "VPSWEB_BROKER_URL")))
    assert res.returncode != 0
    assert "needs the cluster's Redis: set VPSWEB_REDIS_URL" in res.stderr
    assert "Traceback" not in res.stderr


# --- poem files in the encodings translators' editors save -----------------------------

POEMS = {
    "simplified": "床前明月光，\n疑是地上霜。\n举头望明月，\n低头思故乡。\n",
    "traditional": "國破山河在，城春草木深。\n感時花濺淚，恨別鳥驚心。\n",
}


@pytest.mark.parametrize(
    ("poem", "encoding"),
    [
        ("simplified", "gbk"),
        ("simplified", "gb18030"),
        ("traditional", "big5"),
        ("simplified", "utf-16"),
        ("traditional", "utf-16-le"),  # no BOM
        ("traditional", "utf-8-sig"),
    ],
)
def test_poem_files_in_other_encodings_are_read_right(
    redis_server, workers, tmp_path: Path, poem: str, encoding: str
) -> None:
    path = tmp_path / "poem.txt"
    path.write_bytes(POEMS[poem].encode(encoding))
    res = run_cli(
        "translate",
        str(path),
        "--source-lang",
        "zh-CN",
        "--target-lang",
        "en",
        "--parallel-count",
        "1",
        "--offline",
        "--json",
        "--redis-url",
        redis_server.url,
    )
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout)["request"]["poem"].strip() == POEMS[poem].strip()


def test_a_file_that_reads_two_ways_is_refused_with_the_choices(tmp_path: Path) -> None:
    path = tmp_path / "title.txt"
    path.write_bytes("静夜思\n".encode("gbk"))  # three characters: GBK or Big5?
    res = run_cli(
        "translate", str(path), "--source-lang", "zh-CN", "--target-lang", "en", "--offline"
    )
    line = one_line(res, 2)
    assert "--encoding gb18030 (静夜思" in line and "--encoding big5" in line
    forced = tmp_path / "forced.txt"
    forced.write_bytes("静夜思\n".encode("gbk"))
    wrong = run_cli(
        "translate",
        str(forced),
        "--source-lang",
        "zh-CN",
        "--target-lang",
        "en",
        "--encoding",
        "utf-8",
        "--offline",
    )
    assert "is not valid utf-8" in one_line(wrong, 2)


def test_unreadable_poem_files(tmp_path: Path) -> None:
    for path, says in (
        (tmp_path / "missing.txt", "no such file"),
        (tmp_path, "it is a directory"),
    ):
        res = run_cli(
            "translate", str(path), "--source-lang", "en", "--target-lang", "zh-CN", "--offline"
        )
        assert says in one_line(res, 2)
    binary = tmp_path / "image.png"
    binary.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x01\xff\xfe")
    res = run_cli(
        "translate", str(binary), "--source-lang", "en", "--target-lang", "zh-CN", "--offline"
    )
    assert "encoding was not recognised" in one_line(res, 2)


# --- the reader's own terms (issue 21, point 14) -------------------------------------------


def test_the_python_client_says_how_to_give_a_url_in_python() -> None:
    """Client.from_env() is Python: "pass --redis-url" means nothing there. Commands
    keep the flag."""
    from tests.helpers.cli import cli_env

    code = "from vpsweb import Client\nClient.from_env()\n"
    res = subprocess.run(
        [str(REPO / ".venv" / "bin" / "python"), "-c", code],
        env=cli_env(unset=("VPSWEB_REDIS_URL",)),
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO,
    )
    last = res.stderr.strip().splitlines()[-1]
    assert res.returncode == 1
    assert last.startswith("vpsweb.errors.SettingsError: the client needs the cluster's Redis")
    assert "set VPSWEB_REDIS_URL" in last and "pass Client(redis_url=...)" in last
    assert "--redis-url" not in last
    worker = one_line(run_cli("worker", unset=("VPSWEB_REDIS_URL",)), 1)
    assert worker.endswith("or pass --redis-url")


TRANSLATE = ("translate", FOG, "--source-lang", "en", "--target-lang", "zh-CN")


def piped(argv: list[str], reader: str) -> subprocess.CompletedProcess[str]:
    """``vpsweb ARGV | READER`` through a real shell pipe; the exit status is vpsweb's."""
    from tests.helpers.cli import cli_env

    command = " ".join([f"'{REPO / '.venv' / 'bin' / 'python'}'", "-m", "vpsweb.cli", *argv])
    return subprocess.run(
        ["bash", "-c", f"{command} | {reader}; exit ${{PIPESTATUS[0]}}"],
        env=cli_env(),
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO,
    )


def test_a_reader_that_stops_reading_ends_vpsweb_quietly(redis_server, workers) -> None:
    """`vpsweb result J | head`: no "Broken pipe", no traceback, for every command that
    prints. A reader gone before the first write (``head -c 0``) always breaks the pipe:
    then the status is a SIGPIPE death's, as for any Unix tool. (``head -n 1`` breaks
    it only if the writer is still writing when head exits.)"""
    url = ("--redis-url", redis_server.url)
    done = run_cli(*TRANSLATE, "--parallel-count", "1", "--offline", "--json", *url)
    assert done.returncode == 0, done.stderr
    job = json.loads(done.stdout)["job_id"]
    for argv in (
        ["result", job, *url],
        ["result", job, "--json", *url],
        ["status", job, *url],
        ["jobs", *url],
        ["config", "check"],
    ):
        for reader, codes in (("head -n 1", (0, 141)), ("head -c 0", (141,))):
            res = piped(argv, reader)
            assert res.stderr == "", (argv, reader, res.stderr)
            assert res.returncode in codes, (argv, reader, res.returncode)


# --- a malformed Redis or Sentinel setting: one line naming it ---------------------------

BAD_SENTINEL = {"VPSWEB_REDIS_URL": "sentinel://127.0.0.1:26379"}


@pytest.mark.parametrize(
    ("argv", "env", "named"),
    [
        (
            ("translate", FOG, "--source-lang", "en", "--target-lang", "zh-CN", "--offline"),
            BAD_SENTINEL,
            "VPSWEB_REDIS_URL",
        ),
        (
            (
                "translate",
                FOG,
                "--source-lang",
                "en",
                "--target-lang",
                "zh-CN",
                "--redis-url",
                "redis+sentinel://h:1",
            ),
            {},
            "--redis-url",
        ),
        (("worker",), {"VPSWEB_REDIS_SENTINELS": "127.0.0.1:26379"}, "VPSWEB_REDIS_MASTER"),
        (("web",), {"VPSWEB_REDIS_URL": "redis+sentinel://h:x/m/0"}, "VPSWEB_REDIS_URL"),
        (("status", JOB), {"VPSWEB_REDIS_URL": "redis+sentinel://h:1/m/0?x=1"}, "VPSWEB_REDIS_URL"),
    ],
)
def test_a_bad_sentinel_setting_is_one_line(argv, env, named) -> None:
    res = run_cli(*argv, env=env, unset=() if "VPSWEB_REDIS_URL" in env else ("VPSWEB_REDIS_URL",))
    assert res.returncode != 0
    lines = res.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"vpsweb: {named}: "), res.stderr


def test_celery_app_says_which_variable_is_bad() -> None:
    from tests.helpers.cli import cli_env

    res = _celery_worker(
        cli_env({"VPSWEB_REDIS_URL": "sentinel://127.0.0.1:26379"}, unset=("VPSWEB_BROKER_URL",))
    )
    assert res.returncode != 0
    assert "vpsweb: VPSWEB_REDIS_URL: " in res.stderr
    assert "Traceback" not in res.stderr
