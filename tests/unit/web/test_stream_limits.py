"""The web page's event-stream limits: read from the environment, refused clearly, one
cap for job and batch pages."""

from __future__ import annotations

from typing import Any, cast

import pytest

from vpsweb import settings
from vpsweb.errors import SettingsError
from vpsweb.web.batch_feed import BatchFeeds
from vpsweb.web.feed import JobFeeds, StreamCount, StreamLimits, StreamsFull


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


def test_job_and_batch_pages_share_the_process_cap() -> None:
    """A batch page's stream counts against the same per-process cap as a job page's:
    the shared StreamCount is what both hubs check, before any Redis read."""
    count = StreamCount()
    limits = StreamLimits(streams=2)
    jobs, batches = (hub(cast(Any, None), limits, count) for hub in (JobFeeds, BatchFeeds))
    jobs.check_room()
    batches.check_room()
    count.open = 2  # two job pages open
    for hub in (jobs, batches):
        with pytest.raises(StreamsFull, match="2 event streams, its most"):
            hub.check_room()
