"""The providers' quotas for operators: the buckets of the config, `vpsweb stats`'s
"Provider quotas" table (only when the store keeps quotas) and the quota families of
Flower's /metrics."""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
from collections.abc import Iterator, Sequence
from types import SimpleNamespace
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.helpers.metrics import parse_exposition
from vpsweb.cli import stats as stats_cli
from vpsweb.config import load_config
from vpsweb.config.schema import ModelsConfig
from vpsweb.domain.permits import Grant, QuotaAsk, QuotaState, Settlement
from vpsweb.monitoring import flower
from vpsweb.monitoring.quota_stats import (
    FAMILIES,
    buckets,
    declared,
    quota_prometheus,
    quota_states,
    quota_table,
)
from vpsweb.storage import Storage
from vpsweb.storage.memory import memory_storage
from vpsweb.storage.quotas import Quotas

DEEPSEEK = QuotaState(
    bucket="deepseek", calls=120, waits=7, wait_s=21.25, throttled=3, allowance=2.5, in_flight=2
)
CHAT = QuotaState(bucket="deepseek/deepseek-chat", calls=80, queued=4)


def models() -> ModelsConfig:
    """The packaged models, deepseek limited, deepseek-chat with limits of its own."""
    raw = load_config().models.model_dump(exclude_none=True)
    raw["providers"]["deepseek"]["limits"] = {"requests_per_minute": 60, "max_concurrent": 8}
    raw["models"]["deepseek-chat"]["limits"] = {"tokens_per_minute": 100_000}
    return ModelsConfig.model_validate(raw)


class FakeQuotas(Quotas):
    """Answers ``state`` from fixed figures (zeros for a bucket it does not know)."""

    def __init__(self, *known: QuotaState) -> None:
        self.known = {s.bucket: s for s in known}
        self.asked: list[str] = []

    def state(self, buckets: Sequence[str]) -> list[QuotaState]:
        self.asked = list(buckets)
        return [self.known.get(b, QuotaState(bucket=b)) for b in buckets]

    def acquire(self, ask: QuotaAsk, settle: Sequence[Settlement] = ()) -> Grant:
        raise NotImplementedError

    def settle(self, done: Sequence[Settlement]) -> None:
        raise NotImplementedError

    def nap(self, ask: QuotaAsk, seconds: float) -> None:
        raise NotImplementedError

    def withdraw(self, ask: QuotaAsk) -> None:
        raise NotImplementedError


def store(quotas: Quotas | None) -> Storage:
    return dataclasses.replace(memory_storage(), quotas=quotas)


# --- buckets -----------------------------------------------------------------------


def test_every_provider_is_a_bucket_and_so_is_every_model_with_limits() -> None:
    found = buckets(models())
    names = list(found)
    assert names[:2] == ["deepseek", "deepseek/deepseek-chat"]  # a model after its provider
    assert set(names) == set(load_config().models.providers) | {"deepseek/deepseek-chat"}
    assert declared(found["deepseek"]) == "60 rpm, 8 concurrent"
    assert declared(found["deepseek/deepseek-chat"]) == "100000 tpm"
    assert declared(found["tongyi"]) == "-"


def test_the_store_is_asked_for_every_bucket_and_a_memory_store_has_none() -> None:
    fake = FakeQuotas(DEEPSEEK)
    states = quota_states(store(fake), models())
    assert fake.asked == list(buckets(models()))
    assert states is not None and states[0] == DEEPSEEK
    assert quota_states(store(None), models()) is None


# --- the table ---------------------------------------------------------------------


def test_the_table_has_a_row_per_bucket_with_its_limits_and_figures() -> None:
    text = quota_table([DEEPSEEK, CHAT, QuotaState(bucket="tongyi")], models())
    lines = text.splitlines()
    assert lines[0] == "Provider quotas"
    assert lines[2].split("  ")[0] == "bucket"
    for column in ("limits", "calls", "waits", "wait s", "429s", "allowance", "in flight"):
        assert column in lines[2]
    rows = {line.split()[0]: line for line in lines[4:7]}
    assert "60 rpm, 8 concurrent" in rows["deepseek"]
    assert rows["deepseek"].split()[-7:] == ["120", "7", "21.2", "3", "2.5", "2", "0"]
    assert rows["deepseek/deepseek-chat"].split()[-7:] == [
        "80",
        "0",
        "0.0",
        "0",
        "unlimited",
        "0",
        "4",
    ]
    assert "100000 tpm" in rows["deepseek/deepseek-chat"]
    assert rows["tongyi"].split()[1] == "-"
    assert len({len(line) for line in lines[2:4]}) == 1  # the rule is as wide as the head


@contextlib.contextmanager
def client_of(storage: Storage) -> Iterator[Any]:
    yield SimpleNamespace(storage=storage, config=SimpleNamespace(models=models()))


def run_stats(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    storage: Storage,
    *flags: str,
) -> str:
    monkeypatch.setattr(stats_cli, "open_client", lambda args: client_of(storage))
    args = argparse.Namespace(since="24h", json="--json" in flags, redis_url=None)
    assert stats_cli.cmd_stats(args) == 0
    return capsys.readouterr().out


def test_stats_adds_the_quota_table_only_when_the_store_has_quotas(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    text = run_stats(monkeypatch, capsys, store(FakeQuotas(DEEPSEEK)))
    assert text.startswith("jobs ended ") and "\nProvider quotas\n" in text
    assert "unlimited" in text and "60 rpm, 8 concurrent" in text
    assert "Provider quotas" not in run_stats(monkeypatch, capsys, store(None))


def test_stats_json_carries_the_quotas(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    found = json.loads(run_stats(monkeypatch, capsys, store(FakeQuotas(DEEPSEEK)), "--json"))
    assert found["overall"]["jobs"] == 0
    assert found["quotas"][0] == dataclasses.asdict(DEEPSEEK)
    bare = json.loads(run_stats(monkeypatch, capsys, store(None), "--json"))
    assert "quotas" not in bare


# --- Prometheus ----------------------------------------------------------------------


def test_prometheus_text_has_every_family_and_omits_an_unlimited_allowance() -> None:
    text = quota_prometheus([DEEPSEEK, CHAT])
    list(text_string_to_metric_families(text))  # the whole text parses
    samples = parse_exposition(text)

    def value(family: str, bucket: str) -> float | None:
        return samples.get((family, frozenset({("bucket", bucket)})))

    assert value("vpsweb_quota_calls_total", "deepseek") == 120
    assert value("vpsweb_quota_waits_total", "deepseek") == 7
    assert value("vpsweb_quota_wait_seconds_total", "deepseek") == 21.25
    assert value("vpsweb_provider_throttled_total", "deepseek") == 3
    assert value("vpsweb_quota_allowance", "deepseek") == 2.5
    assert value("vpsweb_quota_allowance", "deepseek/deepseek-chat") is None  # unlimited
    assert value("vpsweb_quota_in_flight", "deepseek") == 2
    assert value("vpsweb_quota_queued", "deepseek/deepseek-chat") == 4
    for family, (kind, _, _) in FAMILIES.items():
        assert f"# TYPE {family} {kind}\n" in text and f"# HELP {family} " in text
    assert quota_prometheus([]) == ""


def test_bucket_labels_are_escaped() -> None:
    odd = 'acme/m"1\\x\ny'
    samples = parse_exposition(quota_prometheus([QuotaState(bucket=odd, calls=1)]))
    assert samples[("vpsweb_quota_calls_total", frozenset({("bucket", odd)}))] == 1


def test_flower_metrics_add_the_quotas_after_the_usage(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(flower, "_usage_store", lambda: store(FakeQuotas(DEEPSEEK)))
    text = flower.usage_metrics()
    list(text_string_to_metric_families(text))
    assert text.index("# HELP vpsweb_jobs_total") < text.index("# HELP vpsweb_quota_calls_total")
    assert 'vpsweb_quota_calls_total{bucket="deepseek"} 120' in text


def test_flower_metrics_keep_the_usage_when_the_quotas_cannot_be_read(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    class Broken(FakeQuotas):
        def state(self, buckets: Sequence[str]) -> list[QuotaState]:
            raise ConnectionError("redis went away")

    monkeypatch.setattr(flower, "_usage_store", lambda: store(Broken()))
    text = flower.usage_metrics()
    assert "# HELP vpsweb_jobs_total" in text
    assert text.endswith("# vpsweb quota metrics unavailable: redis went away\n")
    monkeypatch.setattr(flower, "_usage_store", lambda: store(None))
    assert "vpsweb_quota" not in flower.usage_metrics()  # a store without quotas
