"""Credentials against the real services: Flower's basic auth, Redis's requirepass."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from tests.helpers.config import FAKE_KEY
from tests.helpers.flower import PASSWORD, USER, base_env, start_flower, status
from tests.helpers.jobs import submit
from vpsweb import settings
from vpsweb.client.sync import Client
from vpsweb.config import load_config
from vpsweb.local.processes import (
    RedisServer,
    free_port,
    redis_server_binary,
    spawn_worker,
    stop_process,
    wait_for_worker,
)
from vpsweb.monitoring.flower import flower_environment
from vpsweb.workers.factory import create_app

pytestmark = pytest.mark.integration

# What `openssl rand -base64 32` can give, with every character a URL cares about.
REDIS_PASSWORD = "k3J/9+Qx#a@b:c%d=e?f g/Zm0vYmFyYmF6cXV4PQ=="


@pytest.fixture(scope="module")
def flower(redis_server: RedisServer, worker_logs: Path) -> Iterator[str]:
    """Flower with the environment `vpsweb flower` builds from accepted credentials."""
    env = flower_environment(
        {
            **base_env(redis_server.url),
            settings.FLOWER_USER_ENV: USER,
            settings.FLOWER_PASSWORD_ENV: PASSWORD,
        },
        address="127.0.0.1",
        allow_no_auth_on_localhost=False,
    )
    proc, base = start_flower(env, worker_logs / "flower-auth.log")
    yield base
    stop_process(proc)


@pytest.mark.parametrize("path", ["/", "/api/tasks", "/api/workers", "/metrics"])
def test_only_the_full_user_and_password_log_in(flower, path):
    url = flower + path
    assert status(url, f"{USER}:{PASSWORD}") == 200
    wrong = [
        None,
        "",
        USER,
        PASSWORD,
        f"{USER}:",
        f":{PASSWORD}",
        f"{USER}:{PASSWORD[:-1]}",
        f"{USER}:{PASSWORD}x",
        f"{USER.upper()}:{PASSWORD}",
        *PASSWORD.split(":"),  # the pieces either side of the ':' in the password
    ]
    for credentials in wrong:
        assert status(url, credentials) == 401, credentials


def test_flower_itself_lets_a_fragment_after_a_comma_log_in(redis_server, worker_logs):
    """Why vpsweb refuses commas: Flower 2.2 splits FLOWER_BASIC_AUTH on them."""
    env = {**base_env(redis_server.url), "FLOWER_BASIC_AUTH": f"{USER}:long-enough,fragment"}
    proc, base = start_flower(env, worker_logs / "flower-comma.log")
    try:
        assert status(f"{base}/api/tasks", "fragment") == 200  # no user, no ':'
        assert status(f"{base}/api/tasks", f"{USER}:long-enough") == 200
        assert status(f"{base}/api/tasks", f"{USER}:long-enough,fragment") == 401
    finally:
        stop_process(proc)


@pytest.fixture()
def redis_with_password() -> Iterator[str]:
    """A private redis-server with ``--requirepass REDIS_PASSWORD``; yields its bare URL."""
    port, workdir = free_port(), tempfile.mkdtemp(prefix="vpsweb-redis-pw-")
    proc = subprocess.Popen(
        [
            redis_server_binary(),
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            workdir,
            "--requirepass",
            REDIS_PASSWORD,  # its own argv element, as docker-compose passes it
        ],
        start_new_session=True,
        stdout=subprocess.DEVNULL,
    )
    client = redis.Redis(port=port, password=REDIS_PASSWORD, socket_connect_timeout=0.5)
    deadline = time.monotonic() + 10
    while True:
        try:
            client.ping()
            break
        except redis.ConnectionError:
            if proc.poll() is not None or time.monotonic() > deadline:
                stop_process(proc)
                pytest.fail("redis-server with --requirepass did not start")
            time.sleep(0.05)
    client.close()
    yield f"redis://127.0.0.1:{port}/0"
    stop_process(proc)
    shutil.rmtree(workdir, ignore_errors=True)


def test_a_generated_redis_password_works_through_the_setting(redis_with_password):
    env = {settings.REDIS_URL_ENV: redis_with_password, settings.REDIS_PASSWORD_ENV: REDIS_PASSWORD}
    url = settings.redis_url(env)
    assert url is not None
    with redis.Redis.from_url(url) as r:
        assert r.ping() is True
        r.set("vpsweb:test:pw", "ok")
        assert r.get("vpsweb:test:pw") == b"ok"
    with redis.Redis.from_url(redis_with_password) as r, pytest.raises(redis.AuthenticationError):
        r.ping()
    # What docker-compose used to do: paste the password raw into the URL.
    raw = redis_with_password.replace("redis://", f"redis://:{REDIS_PASSWORD}@")
    with pytest.raises(ValueError):
        redis.Redis.from_url(raw).ping()


def test_a_worker_and_a_client_run_a_job_with_that_password(
    redis_with_password, simulator, tmp_path
):
    """Celery's broker, its result backend and vpsweb's store all decode the password."""
    env = {
        settings.REDIS_PASSWORD_ENV: REDIS_PASSWORD,
        settings.SIMULATOR_URL_ENV: simulator,
        "DEEPSEEK_API_KEY": FAKE_KEY,
    }
    url = settings.redis_url({**env, settings.REDIS_URL_ENV: redis_with_password})
    assert url is not None
    # The worker gets the bare URL and the password apart, as in docker-compose.
    proc, name = spawn_worker(
        redis_with_password, env=env, concurrency=4, name="pw@%h", log_path=tmp_path / "w.log"
    )
    app = create_app(url)
    try:
        wait_for_worker(app, name, proc)
        with Client(redis_url=url, config=load_config()) as client:
            out = submit(client, parallel_count=2).result(timeout=60)
        assert len(out.candidates) == 2 and out.revision.translation.strip()
    finally:
        app.close()
        stop_process(proc)
