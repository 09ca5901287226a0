"""A batch sent from the web page: uploaded files held in memory, never a server path.

``load_source`` reads a directory or a manifest on the disk, and a manifest's ``file:``
may name any path (``/etc/passwd``, ``../../secrets``, ``~/x``): right for a person's
own command line, wrong for a web page, whose visitor must not make the server read
its files. So the web page's uploads are read here instead, with the same validation
and the same messages, from a mapping of uploaded file names to their bytes: a
manifest's ``file``, ``background_file`` and ``few_shots_file`` can only name one of
those files (by its name, or by a relative path whose last part is its name, as a
manifest written for a directory says ``poems/li-bai.txt``); anything else is refused
as not uploaded, and nothing is looked up on the disk, so no path can escape.

Every uploaded file must be used: a poem file the manifest does not name is refused,
not silently left out of the batch.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path, PurePosixPath
from typing import Any

from vpsweb.batches import entry_fields as ef
from vpsweb.batches.manifest import (
    MANIFEST_KINDS,
    MAX_ENTRIES,
    RawEntry,
    checked_manifest,
    manifest_text,
    too_many,
)
from vpsweb.batches.names import natural_key
from vpsweb.batches.sources import (
    MAX_POEM_FILE_BYTES,
    POEM_SUFFIXES,
    BatchEntry,
    SourceReader,
)
from vpsweb.domain.request import MAX_POEM_CHARS
from vpsweb.errors import InputFileError, RequestInvalid
from vpsweb.files.poems import decode

FORM_PLACE = "the form's defaults"  # where a value given by ``defaults`` is said to be


def upload_name(filename: str) -> str:
    """The name an uploaded file goes by: its last path part (some browsers send a
    whole client path, ``C:\\Users\\me\\poem.txt``), without surrounding spaces."""
    return filename.replace("\\", "/").rsplit("/", 1)[-1].strip()


def load_uploads(
    files: Mapping[str, bytes],
    defaults: Mapping[str, Any],
    *,
    manifest: str | None = None,
    max_parallel_count: int,
) -> list[BatchEntry]:
    """The batch's entries from uploaded ``files`` (name -> bytes; the names as
    ``upload_name`` gives them). With ``manifest`` (one of the names), the manifest's
    poems, whose files are the other uploads; without, each file is a poem, as a
    directory's files are. RequestInvalid names EVERY problem, as ``load_source``."""
    reader = _UploadReader(files, max_parallel_count)
    entries = reader.load(defaults, manifest)
    if reader.problems:
        raise RequestInvalid(reader.problems)
    return entries


class _UploadReader(SourceReader):
    """``SourceReader`` over uploads: a file is found among them or refused."""

    def __init__(self, files: Mapping[str, bytes], max_parallel_count: int) -> None:
        super().__init__(max_parallel_count, None)
        self.files = files
        self.used: set[str] = set()
        self.manifest_name = ""

    def load(self, defaults: Mapping[str, Any], manifest: str | None) -> list[BatchEntry]:
        given = self.layer(RawEntry(FORM_PLACE, dict(defaults)), Path(), entry=False)
        if manifest is None:
            return self.entries(self.poem_entries(), Path(), True, given)
        self.manifest_name = manifest
        raws, block = self.manifest(manifest)
        if not raws:
            return []
        by_manifest = self.layer(block or RawEntry(f"{manifest} defaults", {}), Path(), entry=False)
        entries = self.entries(raws, Path(), False, given, by_manifest)
        for name in sorted(set(self.files) - self.used - {manifest}, key=natural_key):
            self.problem(f"{name}: uploaded, but {manifest} does not name it: leave it out")
        return [] if self.problems else entries

    def poem_entries(self) -> list[RawEntry]:
        names = sorted(self.files, key=natural_key)
        if not names:
            self.problem("no poem files: choose poem files, or a manifest")
        if len(names) > MAX_ENTRIES:
            self.problem(too_many("the upload", len(names), "poem files"))
            return []
        kinds = ", ".join(f"*{s}" for s in POEM_SUFFIXES if s)
        raws = []
        for name in names:
            if PurePosixPath(name).suffix.lower() in POEM_SUFFIXES:
                raws.append(RawEntry(name, {ef.FILE: name}))
            else:
                self.problem(f"{name}: not a poem file (plain text: {kinds} or no extension)")
        return raws

    def manifest(self, name: str) -> tuple[list[RawEntry], RawEntry | None]:
        kind = MANIFEST_KINDS.get(PurePosixPath(name).suffix.lower())
        if kind is None:
            self.problem(f"{name}: a manifest is {', '.join(MANIFEST_KINDS)}")
            return [], None
        text, problem = manifest_text(self.files[name], name, None)
        if text is None:
            self.problem(problem)
            return [], None
        found = checked_manifest(text, name, kind)
        for line in found.problems:
            self.problem(line)
        return found.entries, found.defaults

    # --- where files come from ----------------------------------------------------

    def poem_path(self, base: Path, file: str) -> Path:
        return Path(file)  # as written: no ``~`` expanded, no directory joined

    def read_file(self, path: Path, language: str | None) -> tuple[str, str]:
        name = self.uploaded(path.as_posix())
        data = self.files[name]
        if len(data) > MAX_POEM_FILE_BYTES:
            raise InputFileError(
                f"{name} is {len(data):,} bytes: more than a poem of {MAX_POEM_CHARS:,} "
                "characters can be (is it the right file?)"
            )
        self.used.add(name)
        return decode(data, name, language)

    def uploaded(self, written: str) -> str:
        """The uploaded file a manifest's file name means; InputFileError otherwise."""
        parts = PurePosixPath(written.replace("\\", "/")).parts
        if not parts or written.startswith(("/", "\\", "~")) or ".." in parts or ":" in parts[0]:
            raise InputFileError(
                f"{written}: a manifest sent from the web page names files uploaded with it, "
                "not paths on the server: upload the file and give its name"
            )
        poems = set(self.files) - {self.manifest_name}
        if written in poems:
            return written
        if parts[-1] in poems:
            return parts[-1]
        shown = sorted(poems, key=natural_key)
        listed = ", ".join(shown[:5]) + (f" and {len(shown) - 5} more" if shown[5:] else "")
        raise InputFileError(
            f"{written}: no uploaded file of that name: choose it with the manifest"
            + (f" (uploaded: {listed})" if listed else "")
        )
