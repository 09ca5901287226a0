"""`vpsweb translate --glossary FILE --glossary-mode flag|strict` as a user runs it:
an embedded run whose simulator plants a miss in one candidate (its variant's model is
a ``sim-glossraw``), the flag said in the progress lines and the report, the candidate
gated with ``strict``; a bad glossary refused, every line named, nothing started."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.helpers.cli import TRANSLATE_FOG, our_processes, run_cli
from tests.helpers.config import make_config_dir, variant_on
from vpsweb import settings

pytestmark = pytest.mark.integration

RAWS = [
    'glossary: "fog" should be "迷雾" (left untranslated)',
    'glossary: "harbor" should be "港湾" (left untranslated)',
    'glossary: "city" should be "城市" (left untranslated)',
]
RAW = "; ".join(RAWS)


@pytest.fixture()
def env(tmp_path: Path) -> dict[str, str]:
    """Candidate 1 (variant lyric) leaves every glossary term untranslated."""
    config = make_config_dir(tmp_path, pipeline_edit=variant_on(1, "sim-glossraw"))
    return {settings.CONFIG_DIR_ENV: str(config)}


def _glossary(tmp_path: Path) -> str:
    path = tmp_path / "terms.csv"
    text = "source,target,note\nfog,迷雾,not 雾\nharbor,港湾,\ncity,城市,\n"
    path.write_bytes(text.encode("gb18030"))  # read right though the source is English
    return str(path)


def test_flag_mode_flags_the_candidate_in_the_lines_and_the_report(
    tmp_path: Path, env: dict[str, str]
) -> None:
    glossary = _glossary(tmp_path)
    res = run_cli(
        *TRANSLATE_FOG, "--offline", "--parallel-count", "3", "--glossary", glossary, env=env
    )
    assert res.returncode == 0, res.stderr
    assert f"⚑ candidate 1 flagged: {RAW}" in res.stderr
    assert "FLAG (glossary) candidate #1" in res.stdout and RAW in res.stdout
    assert f"#1 lyric: ✓ succeeded ⚑ {RAW}" in res.stdout
    as_json = run_cli(
        *TRANSLATE_FOG,
        "--offline",
        "--parallel-count",
        "3",
        "--glossary",
        glossary,
        "--json",
        env=env,
    )
    data = json.loads(as_json.stdout)
    terms = data["request"]["glossary"]["terms"]
    assert terms[0] == {"source": "fog", "target": "迷雾", "note": "not 雾"} and len(terms) == 3
    assert [f["message"] for f in data["flags"]] == RAWS


def test_strict_mode_gates_the_candidate(tmp_path: Path, env: dict[str, str]) -> None:
    args = ("--offline", "--parallel-count", "3", "--glossary", _glossary(tmp_path))
    res = run_cli(*TRANSLATE_FOG, *args, "--glossary-mode", "strict", env=env)
    assert res.returncode == 0, res.stderr
    assert f"⊘ candidate 1 gated: {RAW}" in res.stderr
    assert f"#1 lyric: ⊘ gated: {RAW}" in res.stdout and "FLAG" not in res.stdout


def test_a_bad_glossary_is_refused_before_anything_starts(tmp_path: Path) -> None:
    path = tmp_path / "terms.yaml"
    path.write_text("fog: 迷雾\nharbor:\ncity: {target: 城市, colour: grey}\n", encoding="utf-8")
    before = our_processes()
    res = run_cli(*TRANSLATE_FOG, "--offline", "--glossary", str(path))
    assert res.returncode == 2, res.stderr
    assert f"{path}: line 2: 'harbor' has no target" in res.stderr
    assert f"{path}: line 3: unknown field 'colour'" in res.stderr
    assert "Traceback" not in res.stderr
    mode_alone = run_cli(*TRANSLATE_FOG, "--offline", "--glossary-mode", "strict")
    assert (
        mode_alone.returncode == 2 and "--glossary-mode needs --glossary FILE" in mode_alone.stderr
    )
    assert our_processes() - before == set()
