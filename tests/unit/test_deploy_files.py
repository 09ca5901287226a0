"""docker-compose.yml, .env.example, Makefile and README agree (no Docker engine here)."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
TARGETS = [
    "setup",
    "demo",
    "test",
    "worker",
    "flower",
    "simulator",
    "lint",
    "bench",
    "compose-up",
    "compose-down",
]


def compose() -> dict:
    return yaml.safe_load((REPO / "docker-compose.yml").read_text())


def env_example_vars() -> set[str]:
    names = set()
    for line in (REPO / ".env.example").read_text().splitlines():
        m = re.match(r"^#?\s*([A-Z][A-Z0-9_]+)=", line)
        if m:
            names.add(m.group(1))
    return names


def test_every_service_has_image_or_build_and_healthcheck():
    services = compose()["services"]
    assert {"redis", "worker", "flower", "simulator"} <= set(services)
    anchors = compose()  # merge keys are resolved by safe_load
    for name, svc in anchors["services"].items():
        assert "image" in svc or "build" in svc, name
        assert "healthcheck" in svc and svc["healthcheck"]["test"], name
    worker_check = " ".join(services["worker"]["healthcheck"]["test"])
    assert "inspect ping" in worker_check
    assert services["simulator"]["profiles"] == ["offline"]
    # One image built from the project's Dockerfile for every vpsweb service.
    for name in ("worker", "flower", "simulator"):
        assert services[name]["build"] == "." and services[name]["image"] == "vpsweb:latest"
    assert (REPO / "Dockerfile").exists()


def test_redis_has_password_persistence_and_noeviction():
    redis = compose()["services"]["redis"]
    cmd = redis["command"]
    assert cmd[cmd.index("--requirepass") + 1].startswith("${REDIS_PASSWORD")
    assert cmd[cmd.index("--appendonly") + 1] == "yes"
    assert cmd[cmd.index("--maxmemory-policy") + 1] == "noeviction"
    assert any(v.endswith(":/data") for v in redis["volumes"])
    worker_url = compose()["services"]["worker"]["environment"]["VPSWEB_REDIS_URL"]
    assert "${REDIS_PASSWORD" in worker_url


def test_worker_scales_and_flower_has_auth():
    services = compose()["services"]
    assert "container_name" not in services["worker"]  # --scale worker=N needs this
    assert "ports" not in services["worker"]
    assert services["flower"]["env_file"] == ".env"
    assert {"VPSWEB_FLOWER_USER", "VPSWEB_FLOWER_PASSWORD"} <= env_example_vars()


def test_every_variable_is_documented_in_env_example():
    text = (REPO / "docker-compose.yml").read_text()
    used = set(re.findall(r"\$\{([A-Z][A-Z0-9_]*)", text))
    src = "\n".join(p.read_text() for p in (REPO / "src").rglob("*.py"))
    used |= set(
        re.findall(
            r"\"((?:VPSWEB|DEEPSEEK|DASHSCOPE|OPENAI|MOONSHOT|SILICONFLOW|"
            r"OLLAMA)_[A-Z0-9_]*[A-Z0-9])\"",  # not prefixes such as VPSWEB_SIM_
            src,
        )
    )
    used |= set(re.findall(r"api_key_env: ([A-Z0-9_]+)", (REPO / "config/models.yaml").read_text()))
    missing = used - env_example_vars()
    assert not missing, f"not in .env.example: {sorted(missing)}"


def test_make_help_lists_targets_and_readme_matches():
    out = subprocess.run(
        ["make", "-s", "help"], cwd=REPO, capture_output=True, text=True, check=True
    ).stdout
    listed = {line.split()[0] for line in out.splitlines() if line.strip()}
    assert set(TARGETS) <= listed
    readme = (REPO / "README.md").read_text()
    assert "make demo" in readme and "make test" in readme
    assert "## Operating a cluster" in readme
    for target in ("compose-up", "flower", "worker"):
        assert f"make {target}" in readme
