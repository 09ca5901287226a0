"""VPSWEB_REDIS_PASSWORD is URL-encoded into the Redis URLs, whatever its characters."""

from __future__ import annotations

import pytest
from kombu.utils.url import url_to_parts
from redis.connection import parse_url

from vpsweb import settings

# One password per awkward character, plus the shape `openssl rand -base64 32` gives.
PASSWORDS = [
    "pa/ss-word",
    "pa#ss-word",
    "pa@ss-word",
    "pa:ss-word",
    "pa%ss-word",
    "pa%2Fss",  # already looks encoded: must still come back literally
    "pa+ss-word",
    "pa=ss-word",
    "pa?ss-word",
    "pa ss word",
    "/#@:%+=? all of them",
    "k3J/9+Qx#a@b:c%d=e?f g/Zm0vYmFyYmF6cXV4PQ==",
]


@pytest.mark.parametrize("password", PASSWORDS)
def test_redis_url_carries_the_password_exactly(password):
    env = {
        settings.REDIS_URL_ENV: "redis://redis:6379/0",
        settings.REDIS_PASSWORD_ENV: password,
    }
    url = settings.redis_url(env)
    assert url is not None
    parsed = parse_url(url)
    assert parsed["password"] == password
    assert (parsed["host"], parsed["port"], parsed["db"]) == ("redis", 6379, 0)
    assert "username" not in parsed
    # Celery's broker and result backend parse with kombu: the same password.
    assert url_to_parts(url).password == password
    assert settings.broker_url(env) == url  # no broker URL of its own: the store's
    assert settings.require_redis_url("a test", env) == url


@pytest.mark.parametrize("password", PASSWORDS)
def test_the_password_replaces_one_already_in_the_url(password):
    env = {
        settings.REDIS_URL_ENV: "rediss://app:old-secret@cache.example:6380/2?ssl_cert_reqs=required",
        settings.REDIS_PASSWORD_ENV: password,
    }
    url = settings.redis_url(env)
    assert url is not None and "old-secret" not in url
    parsed = parse_url(url)
    assert parsed["password"] == password
    assert parsed["username"] == "app"  # an ACL user stays
    assert (parsed["host"], parsed["port"], parsed["db"]) == ("cache.example", 6380, 2)
    assert url.startswith("rediss://") and url.endswith("?ssl_cert_reqs=required")


def test_merging_twice_changes_nothing():
    env = {settings.REDIS_URL_ENV: "redis://h:1/0", settings.REDIS_PASSWORD_ENV: "a/b@c"}
    once = settings.redis_url(env)
    assert once is not None
    twice = settings.redis_url({**env, settings.REDIS_URL_ENV: once})
    assert once == twice == "redis://:a%2Fb%40c@h:1/0"


def test_without_a_password_the_urls_are_untouched():
    env = {settings.REDIS_URL_ENV: "redis://:inline@h:6379/0"}
    assert settings.redis_url(env) == "redis://:inline@h:6379/0"
    assert settings.broker_url(env) == "redis://:inline@h:6379/0"
    assert settings.redis_url({settings.REDIS_PASSWORD_ENV: "x"}) is None
    assert settings.broker_url({settings.REDIS_PASSWORD_ENV: "x"}) is None


def test_ipv6_host_keeps_its_brackets():
    env = {settings.REDIS_URL_ENV: "redis://[::1]:6379/0", settings.REDIS_PASSWORD_ENV: "p@ss"}
    url = settings.redis_url(env)
    assert url == "redis://:p%40ss@[::1]:6379/0"
    assert parse_url(url)["host"] == "::1"


def test_broker_gets_the_password_only_when_it_is_redis_without_one():
    store = "redis://redis:6379/0"
    pw = "s3cret/with#chars"
    own = {settings.REDIS_URL_ENV: store, settings.REDIS_PASSWORD_ENV: pw}
    # A separate Redis broker without a password: it gets VPSWEB_REDIS_PASSWORD.
    bare = settings.broker_url({**own, settings.BROKER_URL_ENV: "redis://broker:6379/1"})
    assert bare is not None and parse_url(bare)["password"] == pw
    # One with a password of its own keeps it.
    kept = "rediss://:broker-pw@broker:6379/1"
    assert settings.broker_url({**own, settings.BROKER_URL_ENV: kept}) == kept
    # RabbitMQ is never touched.
    amqp = "amqp://vpsweb:rabbit@rabbit:5672/vpsweb"
    assert settings.broker_url({**own, settings.BROKER_URL_ENV: amqp}) == amqp


def test_other_schemes_are_left_alone():
    env = {settings.REDIS_URL_ENV: "unix:///run/redis.sock?db=0", settings.REDIS_PASSWORD_ENV: "x"}
    assert settings.redis_url(env) == "unix:///run/redis.sock?db=0"
