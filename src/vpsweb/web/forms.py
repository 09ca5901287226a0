"""The submit form: its fields are the request's, its errors the request's.

Field names are those of ``TranslationRequest`` (poem, title, author, source_lang,
target_lang, parallel_count, workflow_mode, background_briefing, straggler) and of
its strategy dials (``StrategyOverrides``: adaptation_level, ..., few_shots), and the
glossary (its text, or an uploaded file, and ``glossary_mode``), so a
validation error's location ("parallel_count", "strategy.adaptation_level")
names the field it is shown beside. A test checks the form against the model.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from typing import Any

from aiohttp import web

from vpsweb.client.core import straggler_of
from vpsweb.config import AppConfig
from vpsweb.domain.glossary import GLOSSARY_MODES
from vpsweb.domain.glossary_text import parse_glossary
from vpsweb.domain.languages import LANGUAGE_NAMES, SOURCE_CODES, TARGET_CODES, language_name
from vpsweb.domain.models import WorkflowMode
from vpsweb.errors import InputFileError, RequestInvalid
from vpsweb.files.glossary_file import format_of
from vpsweb.files.poems import decode

DIALS = (
    ("adaptation_level", ("foreignizing", "balanced", "domesticating")),
    ("repetition_policy", ("strict", "adaptive")),
    ("additions_policy", ("forbid", "allow_with_alt")),
)
TEXT_FIELDS = (
    "poem",
    "title",
    "author",
    "source_lang",
    "target_lang",
    "parallel_count",
    "workflow_mode",
    "prosody_target",
    "few_shots",
    "background_briefing",
    "straggler",
    "priority",
    "max_cost",
    "idempotency_key",
    "glossary",
    "glossary_mode",
    "offline",
    "manual",
    *(name for name, _ in DIALS),
)
HIDDEN_FIELDS = frozenset({"idempotency_key"})  # filled by the page, not the person
# Uploads, each filling its text field when that is empty.
UPLOADS = {"poem_file": "poem", "glossary_file": "glossary"}
MAX_FILE_BYTES = 400_000
CONTENT_TYPES = frozenset({"multipart/form-data", "application/x-www-form-urlencoded"})
UNSUPPORTED = (
    "POST /jobs takes a form (multipart/form-data or application/x-www-form-urlencoded), "
    "not {!r}; scripts can use the Python client (vpsweb.Client) instead"
)


async def read(request: web.Request) -> dict[str, str]:
    """The posted values as text; an uploaded poem file fills an empty poem box.

    ``request.post()``, not ``request.multipart()``: it reads urlencoded forms too,
    bounds the body (client_max_size), and is cached, so the CSRF check (which
    reads the token field first) and this read see the same form.
    """
    values: dict[str, str] = {}
    uploads: dict[str, bytes] = {}
    try:
        form = await request.post()
    except (ValueError, AssertionError):
        raise web.HTTPBadRequest(text="malformed form data") from None
    for name, value in form.items():
        if isinstance(value, web.FileField):
            if name in UPLOADS:
                uploads[name] = value.file.read(MAX_FILE_BYTES + 1)
                values[f"_{name}"] = value.filename or name.replace("_", " ")
        elif name in TEXT_FIELDS:
            values[name] = str(value).replace("\r\n", "\n")
    for name, field in UPLOADS.items():
        if uploads.get(name) and not values.get(field, "").strip():
            values[field] = _text_from(uploads[name], name, values)
    return values


def _text_from(data: bytes, upload: str, values: dict[str, str]) -> str:
    """An uploaded file's text; a problem is kept for the page (``_{upload}_error``)."""
    if len(data) > MAX_FILE_BYTES:
        values[f"_{upload}_error"] = f"the file is larger than {MAX_FILE_BYTES:,} bytes"
        return ""
    # A glossary holds the target's language too: its legacy encodings are tried as well.
    languages = [values.get("source_lang", "")]
    languages += [values.get("target_lang", "")] if upload == "glossary_file" else []
    try:
        text, _ = decode(data, values[f"_{upload}"], languages)
    except InputFileError as exc:
        values[f"_{upload}_error"] = str(exc)
        return ""
    return text


def _glossary(values: dict[str, str]) -> dict[str, Any] | None:
    """The glossary box (or its uploaded file) with its mode; RequestInvalid naming
    each bad line, beside the glossary field."""
    if "_glossary_file_error" in values:  # never submitted without the glossary it names
        said = f"{values['_glossary_file']}: {values['_glossary_file_error']}"
        raise RequestInvalid([f"glossary: {said}"])
    text = values.get("glossary", "")
    if not text.strip():
        return None
    mode = values.get("glossary_mode") or "flag"
    if mode not in GLOSSARY_MODES:
        raise RequestInvalid([f"glossary_mode: expected flag or strict, got {mode!r}"])
    fmt = format_of(values.get("_glossary_file", ""))
    found = parse_glossary(text, mode="strict" if mode == "strict" else "flag", fmt=fmt)
    return found.model_dump()


def _number(text: str) -> float | str | None:
    if not text:
        return None
    try:
        return float(text)
    except ValueError:
        return text


def request_of(values: dict[str, str]) -> dict[str, Any]:
    """The client's request from the form (empty fields: the configured defaults);
    RequestInvalid for a straggler policy that is not spelled as the CLI's."""
    count = values.get("parallel_count", "").strip()
    request = {
        "poem": values.get("poem", ""),
        "source_lang": values.get("source_lang", ""),
        "target_lang": values.get("target_lang", ""),
        "title": values.get("title", ""),
        "author": values.get("author", ""),
        "workflow_mode": values.get("workflow_mode") or WorkflowMode.HYBRID.value,
        # A non-number is passed on as text: the request's validation names it.
        "parallel_count": (int(count) if count.isdigit() else count) if count else None,
        "strategy": {
            **{name: values.get(name) or None for name, _ in DIALS},
            "prosody_target": values.get("prosody_target") or None,
            "few_shots": values.get("few_shots", "").strip() or None,
        },
        "background_briefing": values.get("background_briefing", "").strip() or None,
        "priority": values.get("priority") or None,
        # A non-number is passed on as text: the request's validation names it.
        "max_cost": _number(values.get("max_cost", "").strip()),
        "glossary": _glossary(values),
    }
    straggler = straggler_of(values.get("straggler", ""))
    request |= {"straggler": straggler} if straggler else {}
    return request | {"idempotency_key": _submission_key(values, request)}


def _submission_key(values: dict[str, str], request: dict[str, Any]) -> str | None:
    """The page's own key (a hidden field, new with each page load) and a digest of what
    the form asks: posted twice as it was (a double click, a resubmitted POST), the form
    makes one job; changed (back, edit, submit), it makes another."""
    page = values.get("idempotency_key", "").strip()
    if not page:
        return None
    asked = json.dumps(request, sort_keys=True, ensure_ascii=False, default=str)
    return f"{page}-{hashlib.sha256(asked.encode('utf-8')).hexdigest()[:16]}"


def errors_by_field(lines: list[str]) -> dict[str, str]:
    """ "strategy.adaptation_level: ..." -> {"adaptation_level": "..."}; the rest under "_"."""
    found: dict[str, str] = {}
    for line in lines:
        where, sep, message = line.partition(": ")
        parts = where.split(".") if sep else ["_"]
        name = parts[-1] if parts[-1] in TEXT_FIELDS else parts[0]  # straggler.quorum
        if where.startswith("straggler "):  # straggler_of's own message
            name, message = "straggler", line
        if name not in TEXT_FIELDS or name in HIDDEN_FIELDS:  # shown at the top instead
            name, message = "_", line
        found[name] = f"{found[name]}; {message}" if name in found else message
    return found


def context(cfg: AppConfig, values: dict[str, str], errors: dict[str, str]) -> dict[str, Any]:
    for upload, field in UPLOADS.items():
        if f"_{upload}_error" in values:  # the file's problem, not "the poem is empty"
            said = f"{values[f'_{upload}']}: {values[f'_{upload}_error']}"
            errors = {**errors, field: said}
    # A page shown again after an error keeps its key: no job was made with it yet.
    key = values.get("idempotency_key") or secrets.token_hex(16)
    return {
        "values": {"source_lang": "en", "target_lang": "zh-CN", **values, "idempotency_key": key},
        "errors": errors,
        "sources": [(c, LANGUAGE_NAMES[c]) for c in SOURCE_CODES],
        "targets": [(c, language_name(c, target=True)) for c in TARGET_CODES],
        "modes": [m.value for m in WorkflowMode],
        "dials": DIALS,
        "max_n": cfg.pipeline.parallel_count.max,
    }
