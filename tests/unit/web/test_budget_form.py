"""A job refused for its max_cost: the web form shows why beside the max_cost field."""

from __future__ import annotations

import pytest

from tests.helpers.poems import FOG
from vpsweb.client.core import plan_job
from vpsweb.config import load_config
from vpsweb.errors import RequestInvalid
from vpsweb.web import forms


def test_the_refusal_is_shown_beside_the_max_cost_field() -> None:
    values = {"poem": FOG, "source_lang": "en", "target_lang": "zh-CN", "max_cost": "0.0001"}
    with pytest.raises(RequestInvalid) as info:
        plan_job(forms.request_of(values), load_config())
    errors = forms.errors_by_field(info.value.errors)
    assert list(errors) == ["max_cost"]
    assert errors["max_cost"].startswith("0.0001 CNY is below this job's estimated cost")
