"""The batch form: a collection (several poem files, or a manifest with the files it
names), the defaults for every poem, and the batch's own options.

Everything uploaded stays in memory and is read by ``vpsweb.batches.uploads``, which
finds a manifest's files among the uploads only: a manifest from the web cannot make
the server read one of its own files. Bounded: the request body
(``MAX_BODY_BYTES``, checked by aiohttp as the body arrives, before the CSRF token is
even read), the number of files, a manifest's size, and each poem file's (the loader's
``MAX_POEM_FILE_BYTES``).

Default field names are the request's (as on the single-poem form), so that the
loader's messages ("the form's defaults: parallel_count: ...") name the field shown.
A glossary (a file, or terms typed in, and its mode) goes to every poem: one
glossary keeps a collection's names and terms translated alike.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Any

from aiohttp import web

from vpsweb.batches.manifest import MANIFEST_KINDS
from vpsweb.batches.uploads import upload_name
from vpsweb.config import AppConfig
from vpsweb.domain.glossary import GLOSSARY_MODES
from vpsweb.domain.glossary_text import parse_glossary
from vpsweb.domain.languages import LANGUAGE_NAMES, SOURCE_CODES, TARGET_CODES, language_name
from vpsweb.domain.models import WorkflowMode
from vpsweb.errors import InputFileError, RequestInvalid
from vpsweb.files.glossary_file import format_of
from vpsweb.files.poems import decode
from vpsweb.web.forms import DIALS

MAX_UPLOAD_FILES = 1000  # poem files in one upload (the command line takes 10,000)
MAX_MANIFEST_BYTES = 16 * 2**20
MAX_BODY_BYTES = 32 * 2**20  # the whole form, files and all
MAX_FIELDS = MAX_UPLOAD_FILES + 50  # aiohttp's cap on a form's parts
MAX_GLOSSARY_BYTES = 2**20
POEM_FILES, MANIFEST, GLOSSARY_FILE = "poem_files", "manifest", "glossary_file"
DEFAULT_FIELDS = (
    "source_lang",
    "target_lang",
    "workflow_mode",
    "parallel_count",
    "author",
    *(name for name, _ in DIALS),
    "prosody_target",
    "straggler",
    "max_cost",
)
OPTION_FIELDS = ("name", "budget", "offline", "force", "glossary", "glossary_mode")
TOO_LARGE = (
    f"refused: the upload is larger than {MAX_BODY_BYTES // 2**20} MB or has more than "
    f"{MAX_UPLOAD_FILES:,} files; send the batch in parts, or use `vpsweb batch` on the "
    "command line"
)


@dataclass
class BatchForm:
    """What was posted: text values, uploads by name, which one is the manifest,
    and what was wrong with the uploads themselves (sizes, names, counts)."""

    values: dict[str, str] = field(default_factory=dict)
    files: dict[str, bytes] = field(default_factory=dict)
    manifest: str | None = None
    problems: list[str] = field(default_factory=list)
    glossary_file: tuple[str, bytes] | None = None  # its name and bytes

    def defaults(self) -> dict[str, Any]:
        """The request fields given for every poem (empty fields: not given), the
        glossary among them (its problems said, by line, with the others)."""
        given: dict[str, Any] = {
            k: v for k in DEFAULT_FIELDS if (v := self.values.get(k, "").strip())
        }
        glossary = self.glossary()
        return given | ({"glossary": glossary} if glossary else {})

    def glossary(self) -> dict[str, Any] | None:
        """The glossary file (or the terms typed in) read with its mode; None if none."""
        name, text = "glossary", self.values.get("glossary", "")
        if self.glossary_file is not None and not text.strip():
            name, data = self.glossary_file
            languages = [self.values.get("source_lang", ""), self.values.get("target_lang", "")]
            try:
                text = decode(data, name, languages)[0]
            except InputFileError as exc:
                self.problems.append(f"glossary: {exc}")
                return None
        if not text.strip():
            return None
        mode = self.values.get("glossary_mode") or "flag"
        if mode not in GLOSSARY_MODES:
            self.problems.append(f"glossary_mode: expected flag or strict, got {mode!r}")
            return None
        try:
            found = parse_glossary(
                text, mode="strict" if mode == "strict" else "flag", name=name, fmt=format_of(name)
            )
        except RequestInvalid as exc:
            self.problems += exc.errors
            return None
        return found.model_dump()

    @property
    def offline(self) -> bool:
        return bool(self.values.get("offline"))

    @property
    def force(self) -> bool:
        return bool(self.values.get("force"))

    def budget(self) -> float | None:
        """The batch's budget, or None; a problem said when it is not a number."""
        text = self.values.get("budget", "").strip()
        if not text:
            return None
        try:
            return float(text)
        except ValueError:
            self.problems.append(f"budget: {text!r} is not a number")
            return None

    def name(self) -> str:
        given = " ".join(self.values.get("name", "").split())
        if given:
            return given[:200]
        if self.manifest:
            return PurePosixPath(self.manifest).stem
        count = len(self.files)
        return f"{count} poem{'' if count == 1 else 's'}"


async def post_of(request: web.Request) -> Any:
    """The posted form (cached: the CSRF guard read it first); 400 when malformed."""
    try:
        return await request.post()
    except (ValueError, AssertionError):
        raise web.HTTPBadRequest(text="malformed form data") from None


def collect(form: Any) -> BatchForm:
    """The form's values and uploads, each file read whole (the body is bounded);
    blocking (the uploads may be on disk): run it in a thread."""
    found = BatchForm()
    for name, value in form.items():
        if isinstance(value, web.FileField):
            if name in (POEM_FILES, MANIFEST):
                _upload(found, name, value)
            elif name == GLOSSARY_FILE:
                _glossary_upload(found, value)
        elif name in DEFAULT_FIELDS or name in OPTION_FIELDS:
            found.values[name] = str(value).replace("\r\n", "\n")
    poems = len(found.files) - (found.manifest is not None)
    if poems > MAX_UPLOAD_FILES:
        found.problems.append(
            f"{poems:,} poem files: the web page takes at most {MAX_UPLOAD_FILES:,} at once "
            "(send the batch in parts, or use `vpsweb batch`)"
        )
    if not found.files and not found.problems:
        found.problems.append("choose the poem files, or a manifest (and the files it names)")
    return found


def _upload(found: BatchForm, field_name: str, value: web.FileField) -> None:
    data = value.file.read()
    if not value.filename and not data:
        return  # a file input left empty
    name = upload_name(value.filename or "")
    if name in ("", ".", ".."):
        found.problems.append(f"an uploaded file has no usable name ({value.filename!r})")
        return
    if name in found.files:
        found.problems.append(f"{name}: two uploaded files have this name: rename one")
        return
    if field_name == MANIFEST:
        if found.manifest is not None:
            found.problems.append(f"{name}: one manifest at a time ({found.manifest} given)")
            return
        if PurePosixPath(name).suffix.lower() not in MANIFEST_KINDS:
            kinds = ", ".join(MANIFEST_KINDS)
            found.problems.append(f"{name}: a manifest is a {kinds} file")
            return
        if len(data) > MAX_MANIFEST_BYTES:
            found.problems.append(
                f"{name} is {len(data) / 2**20:,.1f} MB; a manifest sent from the web page "
                f"may be at most {MAX_MANIFEST_BYTES // 2**20} MB: split the batch"
            )
            return
        found.manifest = name
    found.files[name] = data


def _glossary_upload(found: BatchForm, value: web.FileField) -> None:
    data = value.file.read(MAX_GLOSSARY_BYTES + 1)
    if not value.filename and not data:
        return
    name = upload_name(value.filename or "") or "glossary"
    if len(data) > MAX_GLOSSARY_BYTES:
        found.problems.append(
            f"glossary: {name} is larger than {MAX_GLOSSARY_BYTES // 2**20} MB (is it the "
            "right file?)"
        )
        return
    found.glossary_file = (name, data)


def context(cfg: AppConfig, values: dict[str, str], problems: list[str]) -> dict[str, Any]:
    return {
        "values": {"source_lang": "en", "target_lang": "zh-CN", **values},
        "problems": problems,
        "sources": [(c, LANGUAGE_NAMES[c]) for c in SOURCE_CODES],
        "targets": [(c, language_name(c, target=True)) for c in TARGET_CODES],
        "modes": [m.value for m in WorkflowMode],
        "dials": DIALS,
        "max_n": cfg.pipeline.parallel_count.max,
        "max_files": MAX_UPLOAD_FILES,
        "max_body_mb": MAX_BODY_BYTES // 2**20,
        "manifest_kinds": ",".join(MANIFEST_KINDS),
    }
