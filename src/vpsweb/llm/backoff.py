"""How long to wait before the next attempt: the server's Retry-After, else our own
exponential back-off; both jittered so that clients turned away together do not
all come back at the same instant."""

from __future__ import annotations

import email.utils
import math
import random
import re
import time
from collections.abc import Callable, Mapping

MAX_RETRY_AFTER_S = 120.0
# Retry-After is stretched by up to this fraction, never shortened: coming back
# earlier than the server asked would only earn another 429.
RETRY_AFTER_JITTER = 0.2


def _seconds(value: float) -> float | None:
    """A usable wait: at least 0, at most MAX_RETRY_AFTER_S; NaN is no answer."""
    if math.isnan(value):
        return None
    return min(max(value, 0.0), MAX_RETRY_AFTER_S)


def retry_after_s(headers: Mapping[str, str] | None) -> float | None:
    """The server's requested wait (retry-after-ms, then Retry-After seconds or date);
    None when absent or unreadable, so the caller falls back to its own back-off."""
    if not headers:
        return None
    ms = headers.get("retry-after-ms")
    if ms:
        try:
            if (wait := _seconds(float(ms) / 1000)) is not None:
                return wait
        except ValueError:
            pass
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return _seconds(float(value))
    except ValueError:
        pass
    try:
        parsed = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return _seconds(parsed.timestamp() - time.time())


def backoff_s(
    attempt: int,
    retry_after: float | None,
    *,
    base_s: float,
    max_s: float,
    rand: Callable[[], float] = random.random,
) -> float:
    """The wait after failed attempt ``attempt`` (0-based); ``rand`` draws from [0, 1)."""
    if retry_after is not None:
        return min(MAX_RETRY_AFTER_S, retry_after * (1 + RETRY_AFTER_JITTER * rand()))
    return min(max_s, base_s * 2**attempt) * (0.5 + rand() / 2)


_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|h|m|s)")
_UNIT_S = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


def _duration_s(text: str) -> float | None:
    """OpenAI's reset spelling ("1s", "6m0s", "250ms", "1.5s"), or plain seconds."""
    text = text.strip()
    try:
        return float(text)
    except ValueError:
        pass
    parts = _DURATION.findall(text)
    if not parts or "".join(n + u for n, u in parts) != text:
        return None
    return sum(float(n) * _UNIT_S[u] for n, u in parts)


def exhausted_for_s(headers: Mapping[str, str] | None) -> float | None:
    """How long a provider said its window has nothing left (x-ratelimit-remaining-*
    at 0, until x-ratelimit-reset-*); None when something is left or it did not say."""
    if not headers:
        return None
    waits = []
    for kind in ("requests", "tokens"):
        if headers.get(f"x-ratelimit-remaining-{kind}", "").strip() != "0":
            continue
        reset = _duration_s(headers.get(f"x-ratelimit-reset-{kind}", ""))
        if reset is not None and reset > 0:
            waits.append(min(reset, MAX_RETRY_AFTER_S))
    return max(waits) if waits else None
