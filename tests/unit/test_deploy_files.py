"""docker-compose.yml, .env.example, Makefile and README agree (no Docker engine here)."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
import yaml
from redis.connection import parse_url

from vpsweb import settings
from vpsweb.monitoring.flower import PLACEHOLDER_PASSWORDS, FlowerConfigError, flower_environment

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


def interpolate(value: str, env: dict[str, str]) -> str:
    """Compose's ${VAR}, ${VAR:-default} and ${VAR:?error}, with ``env`` as the .env file."""

    def one(m: re.Match[str]) -> str:
        name, op, arg = m.group(1), m.group(2), m.group(3)
        got = env.get(name, "")
        if op == ":?" and not got:
            raise ValueError(f"compose refuses: {arg}")
        return got or (arg if op == ":-" else "")

    return re.sub(r"\$\{([A-Z][A-Z0-9_]*)(?:(:-|:\?)([^}]*))?\}", one, value)


def env_example_values() -> dict[str, str]:
    values = {}
    for line in (REPO / ".env.example").read_text().splitlines():
        m = re.match(r"^([A-Z][A-Z0-9_]+)=(.*)$", line)
        if m:
            values[m.group(1)] = m.group(2)
    return values


PROVIDER_VARS = {
    "DEEPSEEK_API_KEY",
    "DASHSCOPE_API_KEY",
    "OPENAI_API_KEY",
    "MOONSHOT_API_KEY",
    "SILICONFLOW_API_KEY",
    "OLLAMA_BASE_URL",
    "VPSWEB_SIMULATOR_URL",
}


def test_redis_has_password_persistence_maxmemory_and_noeviction():
    redis = compose()["services"]["redis"]
    cmd = redis["command"]
    # Its own argv element: no shell and no URL, so any character is safe.
    assert cmd[cmd.index("--requirepass") + 1].startswith("${REDIS_PASSWORD:?")
    assert cmd[cmd.index("--appendonly") + 1] == "yes"
    assert cmd[cmd.index("--maxmemory") + 1] == "${REDIS_MAXMEMORY:-512mb}"
    assert cmd[cmd.index("--maxmemory-policy") + 1] == "noeviction"
    assert redis["environment"]["REDISCLI_AUTH"] == "${REDIS_PASSWORD}"  # the healthcheck
    assert any(v.endswith(":/data") for v in redis["volumes"])
    assert "REDIS_MAXMEMORY" in env_example_vars()


def test_redis_urls_carry_no_inline_password():
    services = compose()["services"]
    for name in ("worker", "flower"):
        env = services[name]["environment"]
        assert env["VPSWEB_REDIS_URL"] == "redis://redis:6379/0", name
        assert env["VPSWEB_REDIS_PASSWORD"].startswith("${REDIS_PASSWORD:?"), name
    for line in (REPO / ".env.example").read_text().splitlines():
        if re.match(r"^#?\s*VPSWEB_(REDIS|BROKER)_URL=", line):
            assert "@" not in line, line


def test_a_generated_password_reaches_the_workers_intact():
    """What compose hands a worker, read back by vpsweb: the password survives."""
    password = "k3J/9+Qx#a@b:c%d=e?f g/Zm0vYmFyYmF6PQ=="
    env = {
        k: interpolate(str(v), {"REDIS_PASSWORD": password})
        for k, v in compose()["services"]["worker"]["environment"].items()
    }
    url = settings.redis_url(env)
    assert url is not None and parse_url(url)["password"] == password
    assert settings.broker_url(env) == url
    with pytest.raises(ValueError, match="REDIS_PASSWORD"):  # empty: compose refuses
        interpolate(compose()["services"]["worker"]["environment"]["VPSWEB_REDIS_PASSWORD"], {})


def test_api_keys_reach_the_workers_only():
    services = compose()["services"]
    for name, svc in services.items():
        assert "env_file" not in svc, f"{name}: env_file would hand it every key in .env"
    assert set(services["worker"]["environment"]) >= PROVIDER_VARS
    for name in ("redis", "flower", "simulator"):
        given = set(services[name].get("environment") or {})
        assert not given & PROVIDER_VARS, name
        text = yaml.safe_dump(services[name])
        assert not any(f"${{{var}" in text for var in PROVIDER_VARS), name
    assert not {"VPSWEB_FLOWER_USER", "VPSWEB_FLOWER_PASSWORD"} & set(
        services["worker"]["environment"]
    )


def test_worker_scales_and_flower_has_auth_on_localhost():
    services = compose()["services"]
    assert "container_name" not in services["worker"]  # --scale worker=N needs this
    assert "ports" not in services["worker"]
    flower = services["flower"]
    assert {"VPSWEB_FLOWER_USER", "VPSWEB_FLOWER_PASSWORD"} <= set(flower["environment"])
    assert {"VPSWEB_FLOWER_USER", "VPSWEB_FLOWER_PASSWORD"} <= env_example_vars()
    (published,) = flower["ports"]
    assert interpolate(published, {}) == "127.0.0.1:5555:5555"
    assert interpolate(published, {"FLOWER_BIND": "0.0.0.0"}) == "0.0.0.0:5555:5555"
    assert {"FLOWER_BIND", "FLOWER_PORT"} <= env_example_vars()
    for name, svc in services.items():
        for port in svc.get("ports", []):
            assert interpolate(str(port), {}).startswith("127.0.0.1:"), name


def test_env_example_placeholders_are_refused():
    values = env_example_values()
    placeholder = values["VPSWEB_FLOWER_PASSWORD"]
    assert placeholder in PLACEHOLDER_PASSWORDS
    with pytest.raises(FlowerConfigError, match="placeholder"):
        flower_environment(
            {
                "VPSWEB_FLOWER_USER": values["VPSWEB_FLOWER_USER"],
                "VPSWEB_FLOWER_PASSWORD": placeholder,
            },
            address="0.0.0.0",
            allow_no_auth_on_localhost=False,
        )
    assert values["REDIS_PASSWORD"] == ""  # compose's ${REDIS_PASSWORD:?} refuses to start
    text = (REPO / ".env.example").read_text()
    assert "openssl rand -base64 32" in text
    assert "bytes per job" in text and "docs/security.md" in text


def test_security_doc_covers_the_checklist():
    doc = (REPO / "docs/security.md").read_text()
    for topic in ("rediss://", "maxmemory", "noeviction", "appendonly", "bytes per job", "TLS"):
        assert topic in doc, topic


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
