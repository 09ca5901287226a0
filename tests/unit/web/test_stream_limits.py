"""The web page's event-stream limits: read from the environment, refused clearly."""

from __future__ import annotations

import pytest

from vpsweb import settings
from vpsweb.errors import SettingsError
from vpsweb.web.feed import StreamLimits


def test_limits_default_and_follow_the_environment() -> None:
    assert StreamLimits.from_env({}) == StreamLimits()
    limits = StreamLimits.from_env(
        {settings.WEB_MAX_STREAMS_ENV: "10", settings.WEB_MAX_JOBS_FOLLOWED_ENV: " 3 "}
    )
    assert (limits.streams, limits.per_job, limits.jobs) == (10, StreamLimits.per_job, 3)


@pytest.mark.parametrize("value", ["abc", "0", "-4", "2.5"])
def test_a_bad_limit_names_the_variable(value: str) -> None:
    with pytest.raises(SettingsError, match=settings.WEB_MAX_STREAMS_PER_JOB_ENV):
        StreamLimits.from_env({settings.WEB_MAX_STREAMS_PER_JOB_ENV: value})
