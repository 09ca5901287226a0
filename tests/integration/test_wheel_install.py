"""A wheel built from the repository runs anywhere: its config ships inside it."""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from tests.helpers.config import REPO
from tests.helpers.poems import FOG_COUPLET as POEM

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def run(cmd: list[str], cwd: Path, env: dict[str, str], timeout: float = 180):
    return subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


def test_a_wheel_installed_in_a_fresh_venv_runs_from_an_empty_directory(tmp_path: Path) -> None:
    dist = tmp_path / "dist"
    built = run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            str(REPO),
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(dist),
        ],
        cwd=tmp_path,
        env=dict(os.environ),
    )
    assert built.returncode == 0, built.stderr
    (wheel,) = dist.glob("vpsweb-*.whl")

    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    env = {k: v for k, v in os.environ.items() if not k.startswith("VPSWEB_")}
    # A user's defaults, but the per-user store (XDG data home) is the test's own: not
    # the real user's, and not the one another test run on the machine has locked.
    env["XDG_DATA_HOME"] = str(tmp_path / "xdg-data")
    env.pop("PYTHONPATH", None)
    installed = run(
        [str(venv / "bin/pip"), "install", "-q", "--no-deps", "--no-index", str(wheel)],
        cwd=tmp_path,
        env=env,
    )
    assert installed.returncode == 0, installed.stderr
    # The dependencies come from the test's own environment; vpsweb itself from the wheel
    # (a plain path line: the source tree's editable-install hook is not loaded).
    site = Path(
        run(
            [
                str(venv / "bin/python"),
                "-c",
                "import sysconfig; print(sysconfig.get_paths()['purelib'])",
            ],
            cwd=tmp_path,
            env=env,
        ).stdout.strip()
    )
    (site / "deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")

    empty = tmp_path / "empty"
    empty.mkdir()
    where = run(
        [str(venv / "bin/python"), "-c", "import vpsweb; print(vpsweb.__file__)"],
        cwd=empty,
        env=env,
    )
    assert where.stdout.strip().startswith(str(venv)), where.stdout + where.stderr

    checked = run([str(venv / "bin/vpsweb"), "config", "check"], cwd=empty, env=env)
    assert checked.returncode == 0, checked.stderr
    assert checked.stdout.startswith(f"config OK: {site}/vpsweb/config/defaults")

    poem = tmp_path / "fog.txt"
    poem.write_text(POEM)
    translated = run(
        [
            str(venv / "bin/vpsweb"),
            "translate",
            str(poem),
            "--source-lang",
            "en",
            "--target-lang",
            "zh-CN",
            "--parallel-count",
            "2",
            "--offline",
            "--output-dir",
            "out",
        ],
        cwd=empty,
        env=env,
    )
    assert translated.returncode == 0, translated.stderr
    assert "Final translation" in translated.stdout
    assert len(list((empty / "out").glob("*.json"))) == 1
