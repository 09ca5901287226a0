"""What a chat request asks of the simulator: its text, and the faults its model name
orders (directives such as ``sim-429x2``; see the server's docstring)."""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from vpsweb.errors import VpswebError

_COUNTED = re.compile(r"(429|500|malformed|trickle|html200|truncate)x(\d+)")
_SLOW = re.compile(r"slow(\d+)")
_ALWAYS = (
    "fail401",
    "fail400",
    "fail404",
    "fail500",
    "hang",
    "malformed",
    "trickle",
    "html200",
    "truncate",
)
_COUNTED_FAULT = {
    "429": "rate429",
    "500": "fail500",
    "malformed": "malformed",
    "trickle": "trickle",
    "html200": "html200",
    "truncate": "truncate",
}
# A trickled body comes in one piece per tick: each read succeeds well within any
# per-read timeout, so only a deadline on the whole call stops it.


@dataclass(frozen=True)
class Directives:
    """What the model name asks of this request (see the module docstring)."""

    always: str | None = None
    counted: tuple[str, int] | None = None  # (fault, first K requests)
    slow_ms: float | None = None

    @classmethod
    def parse(cls, model: str) -> Directives:
        name = model.lower()
        m = _COUNTED.search(name)
        counted = (_COUNTED_FAULT[m.group(1)], int(m.group(2))) if m else None
        # "malformedx2" must not also read as the unconditional "malformed".
        rest = _COUNTED.sub(" ", name)
        always = next((d for d in _ALWAYS if d in rest), None)
        slow = _SLOW.search(rest)
        return cls(always, counted, float(slow.group(1)) if slow else None)


class BadChatRequest(VpswebError):
    """A request the simulator answers with 400, as a provider would."""


def error_response(status: int, message: str, kind: str, code: str | None = None) -> web.Response:
    body = {"error": {"message": message, "type": kind, "param": None, "code": code}}
    return web.json_response(body, status=status)


def _content_text(content: Any) -> str:
    """Message content as text; list content is OpenAI's multi-part form."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = (p.get("text", "") for p in content if isinstance(p, dict))
        return "".join(str(p) for p in parts)
    return "" if content is None else str(content)


@dataclass(frozen=True)
class ChatRequest:
    model: str
    texts: list[str]  # each message's text, in order
    temperature: float
    key: str  # identifies identical requests for the ``429xK`` style directives

    @property
    def prompt(self) -> str:
        return "\n".join(self.texts)

    @classmethod
    def parse(cls, body: Any) -> ChatRequest:
        if not isinstance(body, dict) or not isinstance(body.get("messages"), list):
            raise BadChatRequest("body must be a JSON object with 'model' and 'messages'")
        if body.get("stream"):
            raise BadChatRequest("streaming is not supported by the simulator; send stream=false")
        messages = body["messages"]
        texts = [_content_text(m.get("content")) for m in messages if isinstance(m, dict)]
        model = str(body.get("model") or "vpsweb-sim")
        try:
            temperature = float(body.get("temperature") or 0.0)
        except (TypeError, ValueError):
            raise BadChatRequest("temperature must be a number") from None
        # The same question asked again (a retry, or a re-ask with a note appended)
        # counts as one request for the ``429xK``-style directives.
        canonical = json.dumps([model, messages[:2]], sort_keys=True, ensure_ascii=False)
        key = hashlib.sha256(canonical.encode()).hexdigest()
        return cls(model, texts, temperature, key)
