"""Submitting the tests' usual job (Fog, en -> zh-CN, offline) through a Client."""

from __future__ import annotations

from tests.helpers.poems import FOG_OPENING as POEM
from vpsweb.client import Client


def submit(client: Client, **kw):
    args = {
        "poem": POEM,
        "source_lang": "en",
        "target_lang": "zh-CN",
        "title": "Fog",
        "author": "Carl Sandburg",
        "offline": True,
    }
    args.update(kw)
    return client.submit(**args)
