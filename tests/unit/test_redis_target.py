"""Sentinel and plain Redis targets: one parser, and one line naming the variable when wrong."""

from __future__ import annotations

import pytest

from vpsweb import settings
from vpsweb.errors import SettingsError
from vpsweb.redis_target import RedisTarget, parse_target
from vpsweb.workers import broker, results

PASSWORDS = ["pa/ss", "p@ss:w#rd", "a+b=c?d e%2F"]


def test_sentinel_url_is_parsed_into_one_target():
    t = parse_target("redis+sentinel://:pw@h1:26379,h2:26380,[::1]:5000/mymaster/2", "X")
    assert t.is_sentinel
    assert t.sentinels == (("h1", 26379), ("h2", 26380), ("::1", 5000))
    assert (t.master, t.db, t.password, t.sentinel_password) == ("mymaster", 2, "pw", None)


def test_sentinel_url_defaults_db_0_and_port_26379():
    t = parse_target("redis+sentinel://h1,h2:1/m", "X")
    assert t.sentinels == (("h1", 26379), ("h2", 1))
    assert (t.master, t.db) == ("m", 0)


def test_plain_url_is_kept_as_given():
    assert parse_target("redis://:x@h:6379/3", "X") == RedisTarget(url="redis://:x@h:6379/3")


@pytest.mark.parametrize("password", PASSWORDS)
@pytest.mark.parametrize("sentinel_password", PASSWORDS)
def test_passwords_survive_the_round_trip(password, sentinel_password):
    t = RedisTarget(sentinels=(("h", 1),), master="m", password=password)
    t = t.with_passwords("ignored", sentinel_password)
    again = parse_target(t.as_url(), "X")
    assert (again.password, again.sentinel_password) == (password, sentinel_password)


def test_sentinel_variables_make_the_same_target():
    env = {
        settings.REDIS_SENTINELS_ENV: "s1:26379, s2:26379,s3",
        settings.REDIS_MASTER_ENV: "mymaster",
        settings.REDIS_DB_ENV: "4",
        settings.REDIS_PASSWORD_ENV: "redis/pw",
        settings.SENTINEL_PASSWORD_ENV: "sent#pw",
    }
    url = settings.redis_url(env)
    assert url is not None and url.startswith("redis+sentinel://")
    t = parse_target(url, "X")
    assert t.sentinels == (("s1", 26379), ("s2", 26379), ("s3", 26379))
    assert (t.master, t.db, t.password, t.sentinel_password) == (
        "mymaster",
        4,
        "redis/pw",
        "sent#pw",
    )
    assert settings.broker_url(env) == url


BAD = [
    ({settings.REDIS_URL_ENV: "sentinel://h:26379"}, settings.REDIS_URL_ENV),
    ({settings.REDIS_URL_ENV: "redis+sentinel://h:26379"}, settings.REDIS_URL_ENV),
    ({settings.REDIS_URL_ENV: "redis+sentinel://h:port/m/0"}, settings.REDIS_URL_ENV),
    ({settings.REDIS_URL_ENV: "redis+sentinel://h:1/m/zero"}, settings.REDIS_URL_ENV),
    ({settings.REDIS_URL_ENV: "redis+sentinel://:secret@/m/0"}, settings.REDIS_URL_ENV),
    ({settings.REDIS_URL_ENV: "redis://h:notaport/0"}, settings.REDIS_URL_ENV),
    ({settings.REDIS_SENTINELS_ENV: "h:1"}, settings.REDIS_MASTER_ENV),
    ({settings.REDIS_SENTINELS_ENV: "h:x", settings.REDIS_MASTER_ENV: "m"}, "SENTINELS"),
    (
        {
            settings.REDIS_SENTINELS_ENV: "h:1",
            settings.REDIS_MASTER_ENV: "m",
            settings.REDIS_DB_ENV: "a",
        },
        settings.REDIS_DB_ENV,
    ),
    (
        {settings.REDIS_SENTINELS_ENV: "h:1", settings.REDIS_URL_ENV: "redis://h"},
        settings.REDIS_SENTINELS_ENV,
    ),
]


@pytest.mark.parametrize(("env", "variable"), BAD)
def test_a_bad_value_is_one_line_naming_its_variable(env, variable):
    with pytest.raises(SettingsError) as caught:
        settings.redis_url(env)
    said = str(caught.value)
    assert "\n" not in said
    assert said.split(":")[0].endswith(variable)
    assert "secret" not in said


def test_a_bad_broker_url_names_its_variable():
    env = {settings.REDIS_URL_ENV: "redis://h", settings.BROKER_URL_ENV: "redis+sentinel://h:1"}
    with pytest.raises(SettingsError, match=f"^{settings.BROKER_URL_ENV}: "):
        settings.broker_url(env)


def test_sentinel_store_means_kombus_sentinel_transport_and_backend(tmp_path):
    from vpsweb.config import load_config

    url = "redis+sentinel://:rp@s1:26379,s2:26380/mymaster/1?sentinel_password=sp"
    conf = broker.celery_settings(url, load_config())
    assert conf["broker_url"] == "sentinel://:rp@s1:26379/1;sentinel://:rp@s2:26380/1"
    assert conf["broker_transport"].endswith(":SentinelTransport")
    options = conf["broker_transport_options"]
    assert options["master_name"] == "mymaster"
    assert options["sentinel_kwargs"] == {"password": "sp"}
    assert options["visibility_timeout"] == broker.VISIBILITY_TIMEOUT_S
    backend = results.backend_settings(url)
    assert backend["result_backend"].endswith("WorkerSentinelBackend+" + conf["broker_url"])
    assert backend["result_backend_transport_options"]["master_name"] == "mymaster"


def test_plain_store_keeps_the_plain_transport():
    from vpsweb.config import load_config

    conf = broker.celery_settings("redis://h:6379/0", load_config())
    assert conf["broker_url"] == "redis://h:6379/0"
    assert conf["broker_transport"].endswith(":RedisTransport")
    assert results.backend_url("redis://h:6379/0").endswith("WorkerResultBackend+redis://h:6379/0")


def test_a_child_gets_one_store_url_and_no_sentinel_variables():
    env = {
        settings.REDIS_SENTINELS_ENV: "s1:1",
        settings.REDIS_MASTER_ENV: "m",
        settings.REDIS_DB_ENV: "2",
        settings.SENTINEL_PASSWORD_ENV: "sp",
    }
    url = settings.redis_url(env)
    assert url is not None
    settings.set_store_url(env, url)
    assert settings.redis_url(env) == url
    assert set(env) == {settings.REDIS_URL_ENV, settings.SENTINEL_PASSWORD_ENV}


# --- replica acknowledgements (VPSWEB_REDIS_REPLICA_ACKS, VPSWEB_REDIS_ACK_TIMEOUT_MS) ---

SENTINEL_URL = "redis+sentinel://h1:26379/m/0"


def test_acks_default_to_one_behind_sentinel_and_off_for_a_plain_redis():
    sentinel = settings.durability(parse_target(SENTINEL_URL, "X"), {})
    plain = settings.durability(parse_target("redis://h:6379/0", "X"), {})
    assert (sentinel.replicas, sentinel.timeout_ms) == (1, 1000)
    assert (plain.replicas, plain.timeout_ms) == (0, 1000)


def test_acks_and_their_timeout_are_read_from_the_environment():
    env = {settings.REDIS_REPLICA_ACKS_ENV: " 2 ", settings.REDIS_ACK_TIMEOUT_ENV: "250"}
    found = settings.durability(parse_target("redis://h:6379/0", "X"), env)
    assert (found.replicas, found.timeout_ms) == (2, 250)
    off = settings.durability(
        parse_target(SENTINEL_URL, "X"), {settings.REDIS_REPLICA_ACKS_ENV: "0"}
    )
    assert off.replicas == 0


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("VPSWEB_REDIS_REPLICA_ACKS", "-1"),
        ("VPSWEB_REDIS_REPLICA_ACKS", "one"),
        ("VPSWEB_REDIS_REPLICA_ACKS", "17"),
        ("VPSWEB_REDIS_ACK_TIMEOUT_MS", "0"),
        ("VPSWEB_REDIS_ACK_TIMEOUT_MS", "1.5"),
        ("VPSWEB_REDIS_ACK_TIMEOUT_MS", "5000"),  # past redis-py's 5 s read timeout
    ],
)
def test_a_bad_ack_setting_is_one_line_naming_its_variable(name, value):
    with pytest.raises(SettingsError) as caught:
        settings.durability(parse_target(SENTINEL_URL, "X"), {name: value})
    message = str(caught.value)
    assert message.startswith(f"{name}: ") and "\n" not in message
    assert repr(value) in message


def test_cluster_url_is_parsed_into_one_target():
    t = parse_target("redis+cluster://:pw@h1:7000,h2,[::1]:7002/0", "X")
    assert t.is_cluster and not t.is_sentinel
    assert t.nodes == (("h1", 7000), ("h2", 6379), ("::1", 7002))
    assert (t.password, t.db) == ("pw", 0)
    assert parse_target(t.as_url(), "X") == t
    assert parse_target("redis+cluster://h1:7000", "X").nodes == (("h1", 7000),)


@pytest.mark.parametrize(
    "url", ["redis+cluster://h:1/2", "redis+cluster:///0", "redis+cluster://h:x/0"]
)
def test_a_bad_cluster_url_is_one_line_naming_its_variable(url):
    with pytest.raises(SettingsError) as caught:
        settings.redis_url({settings.REDIS_URL_ENV: url})
    said = str(caught.value)
    assert "\n" not in said and said.startswith(f"{settings.REDIS_URL_ENV}: ")


def test_a_cluster_store_needs_a_broker_of_its_own():
    store = {settings.REDIS_URL_ENV: "redis+cluster://h1:7000,h2:7001/0"}
    with pytest.raises(SettingsError, match=f"^{settings.BROKER_URL_ENV}: ") as caught:
        settings.broker_url(store)
    assert "\n" not in str(caught.value)
    cluster_broker = {**store, settings.BROKER_URL_ENV: "redis+cluster://h3:7000/0"}
    with pytest.raises(SettingsError, match=f"^{settings.BROKER_URL_ENV}: "):
        settings.broker_url(cluster_broker)
    assert settings.broker_url({**store, settings.BROKER_URL_ENV: "redis://b:6379/0"}) == (
        "redis://b:6379/0"
    )


def test_a_cluster_stores_celery_results_follow_the_brokers_redis():
    from vpsweb.workers.factory import create_app

    cluster = "redis+cluster://h1:7000/0"
    backend = results.backend_url(cluster, "redis://b:6379/0")
    assert backend.endswith("WorkerResultBackend+redis://b:6379/0")
    sentinel = "redis+sentinel://s1:26379/mymaster/0"
    assert "WorkerSentinelBackend+sentinel://s1:26379/0" in results.backend_url(cluster, sentinel)
    with pytest.raises(SettingsError, match=f"^{settings.BROKER_URL_ENV}: .*not amqp$"):
        results.backend_settings(cluster, "amqp://guest@rabbit//")
    with pytest.raises(SettingsError, match=f"^{settings.BROKER_URL_ENV}: "):
        create_app(cluster)  # the broker would default to the cluster


def test_acks_are_off_on_a_cluster_and_refused_when_asked_for():
    cluster = parse_target("redis+cluster://h1:7000/0", "X")
    assert settings.durability(cluster, {}).replicas == 0
    with pytest.raises(SettingsError, match=f"^{settings.REDIS_REPLICA_ACKS_ENV}: ") as caught:
        settings.durability(cluster, {settings.REDIS_REPLICA_ACKS_ENV: "1"})
    assert "\n" not in str(caught.value)
