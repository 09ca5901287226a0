"""SOURCE → batch entries: a directory of poem files or a manifest, validated whole.

A batch is checked completely before anything is enqueued, and refused with every
problem named by its place (``poems/li-bai.txt``, ``poems.csv row 4``, ``poems.yaml
line 14``): a translator fixing a 300-poem manifest should see all its mistakes at
once, not one per paid attempt. Values come in layers, the later winning: a poem file's
title from its name (directories only), the ``defaults`` argument (the command line's
options), the manifest's ``defaults:`` block, the entry's own fields.

* A directory: its ``*.txt``, ``*.text``, ``*.md`` and extension-less files, not its
  subdirectories (an output directory kept inside it is not read back as poems), in
  name order with numbers compared as numbers; each file read as ``translate`` reads
  one (UTF-8, else the encoding detected for the source language, or ``encoding``).
* A manifest: ``.yaml``/``.yml`` (a list of poems, or ``{defaults: {...}, poems:
  [...]}``; a poem may be just a file name), ``.jsonl``/``.ndjson`` (an object per
  line; blank and ``#`` lines skipped) or ``.csv`` (a header row, a poem per row,
  ``,`` ``;`` or tab separated, an empty cell giving nothing). Per poem ``file``
  (relative to the manifest) or ``text``, an optional ``name``, and any request field
  (``entry_fields`` lists the names and aliases).
"""

from __future__ import annotations

import codecs
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from vpsweb.batches import entry_fields as ef
from vpsweb.batches.manifest import MAX_ENTRIES, RawEntry, read_manifest, too_many
from vpsweb.batches.names import (
    Named,
    assign_names,
    duplicate_problems,
    name_problems,
    natural_key,
    title_from_stem,
)
from vpsweb.domain.languages import normalize_language
from vpsweb.domain.plan import format_errors
from vpsweb.domain.request import MAX_POEM_CHARS, TranslationRequest
from vpsweb.errors import InputFileError, RequestInvalid
from vpsweb.files.poems import read_text

# Files a directory source reads: what people save poems as. Hidden files (".name"),
# editor backups ("name~") and subdirectories are not read.
POEM_SUFFIXES = (".txt", ".text", ".md", "")
# The most a poem's file can hold: MAX_POEM_CHARS characters in UTF-32, and a BOM.
MAX_POEM_FILE_BYTES = MAX_POEM_CHARS * 4 + 4
_DEFAULTS = "defaults"  # the place of a value given by the ``defaults`` argument


class BatchEntry(BaseModel):
    """One poem of a batch: its validated request, and names for output and messages."""

    model_config = ConfigDict(frozen=True)

    name: str  # unique in the batch, a filesystem-safe slug, used for output files
    where: str  # "poems/li-bai.txt", "poems.csv row 4", "poems.jsonl line 7", ...
    request: TranslationRequest
    # The encoding the poem's file was read in ("utf-8", or the one detected); None for
    # a poem given as text. Worth saying when it is not UTF-8 (as `translate` does).
    encoding: str | None = None


def load_source(
    path: Path,
    defaults: Mapping[str, Any],
    *,
    max_parallel_count: int,
    encoding: str | None = None,
) -> list[BatchEntry]:
    """The batch's entries, in the source's order (a directory's files by name, numbers
    compared as numbers). ``defaults`` holds request fields (by any name a manifest
    accepts; None means not given) for what an entry leaves out; ``encoding`` is used
    for every poem file (detected per file when None). Raises RequestInvalid naming
    EVERY bad entry ("where: what"); nothing is returned unless all are valid."""
    reader = SourceReader(max_parallel_count, encoding)
    entries = reader.read(Path(path), defaults)
    if reader.problems:
        raise RequestInvalid(reader.problems)
    return entries


def poem_files(directory: Path) -> tuple[list[Path], list[str]]:
    """The poem files a directory source reads, in order, and the names it skips
    (hidden files and editor backups not counted): OSError if it cannot be listed."""
    read, skipped = [], []
    with os.scandir(directory) as found:
        for item in found:
            if item.name.startswith(".") or item.name.endswith("~"):
                continue
            if item.is_file() and Path(item.name).suffix.lower() in POEM_SUFFIXES:
                read.append(directory / item.name)
            else:
                skipped.append(item.name + ("/" if item.is_dir() else ""))
    return sorted(read, key=lambda p: natural_key(p.name)), sorted(skipped, key=natural_key)


@dataclass
class _Layer:
    """Values by canonical field name, each with the place it was given."""

    values: dict[str, Any] = field(default_factory=dict)
    places: dict[str, str] = field(default_factory=dict)
    names: dict[str, str] = field(default_factory=dict)  # the key as written
    refused: set[str] = field(default_factory=set)  # given, but already said to be wrong

    def merged(self, *over: _Layer) -> _Layer:
        out = _Layer(dict(self.values), dict(self.places))
        for layer in over:
            out.values |= layer.values
            out.places |= layer.places
        return out


@dataclass
class _Valid:
    """An entry that passed validation, before its name is chosen."""

    named: Named
    request: TranslationRequest
    encoding: str | None


class SourceReader:
    """One load: the problems found so far, each said once, and the files read.
    ``vpsweb.batches.uploads`` reads the web page's uploads with it, overriding where
    files come from (``poem_path``, ``read_file``) and handing ``entries`` its own."""

    def __init__(self, max_parallel_count: int, encoding: str | None) -> None:
        self.context = {"max_parallel_count": max_parallel_count}
        self.encoding = encoding
        self._problems: dict[str, None] = {}  # ordered, each said once
        self._missing: dict[str, list[str]] = {}  # required field -> entries without it
        self._texts: dict[Path, str | None] = {}  # background/few-shots files, read once
        if encoding:
            try:
                codecs.lookup(encoding)
            except LookupError:
                self.problem(f"--encoding {encoding}: no such encoding")

    @property
    def problems(self) -> list[str]:
        return list(self._problems)

    def problem(self, line: str) -> None:
        self._problems[line] = None

    def read(self, source: Path, defaults: Mapping[str, Any]) -> list[BatchEntry]:
        if self._problems:
            return []
        given = self.layer(RawEntry(_DEFAULTS, dict(defaults)), Path(), entry=False)
        if source.is_dir():
            raws, base, stems = self.directory(source)
            given_by_source = _Layer()
        elif source.is_file():
            manifest, base = read_manifest(source, self.encoding), source.parent
            for line in manifest.problems:
                self.problem(line)
            raws, stems = manifest.entries, False
            block = manifest.defaults or RawEntry(f"{source} defaults", {})
            given_by_source = self.layer(block, base, entry=False)
        else:
            self.problem(f"{source}: no such file or directory")
            return []
        return self.entries(raws, base, stems, given, given_by_source)

    def entries(
        self, raws: list[RawEntry], base: Path, stems: bool, *layers: _Layer
    ) -> list[BatchEntry]:
        """The raw entries validated (``layers``: the defaults under each entry's own
        fields) and named; [] when any problem was found."""
        if self._problems and not raws:
            return []
        valid = [self.entry(raw, base, stems, *layers) for raw in raws]
        self.say_missing(len(raws))
        passed = [v for v in valid if v is not None]
        for line in name_problems([v.named for v in passed]):
            self.problem(line)
        for line in duplicate_problems([(v.named.where, v.request) for v in passed]):
            self.problem(line)
        if self._problems:
            return []
        names = assign_names([v.named for v in passed])
        return [
            BatchEntry(name=name, where=v.named.where, request=v.request, encoding=v.encoding)
            for name, v in zip(names, passed, strict=True)
        ]

    # --- sources ------------------------------------------------------------------

    def directory(self, source: Path) -> tuple[list[RawEntry], Path, bool]:
        try:
            files, skipped = poem_files(source)
        except OSError as exc:
            self.problem(f"{source}: cannot list it: {exc.strerror or exc}")
            return [], source, True
        if not files:
            kinds = ", ".join(f"*{s}" for s in POEM_SUFFIXES if s) + " or no extension"
            shown = ", ".join(skipped[:5]) + (
                f" and {len(skipped) - 5} more" if skipped[5:] else ""
            )
            self.problem(
                f"{source}: no poem files ({kinds}) in it"
                + (f"; not read: {shown}" if skipped else "")
            )
        elif len(files) > MAX_ENTRIES:
            self.problem(too_many(str(source), len(files), "poem files"))
            return [], source, True
        return [RawEntry(str(p), {ef.FILE: p.name}) for p in files], source, True

    # --- one entry ----------------------------------------------------------------

    def layer(self, raw: RawEntry, base: Path, *, entry: bool) -> _Layer:
        """The entry's fields by canonical name, converted, with texts kept in files
        read; each problem said with the key's place."""
        out = _Layer()
        for key, value in raw.values.items():
            if str(key).strip().lower() != "strategy":
                self.put(out, raw, key, str(key), value, base, entry=entry)
            elif isinstance(value, Mapping):
                for dial, setting in value.items():
                    self.put(out, raw, key, f"strategy.{dial}", setting, base, entry=entry)
            elif value is not None:
                dials = ", ".join(ef.DIALS)
                self.problem(f"{raw.at(key)}: strategy must be a mapping of dials ({dials})")
        return out

    def put(
        self,
        out: _Layer,
        raw: RawEntry,
        key: str,
        name: str,
        value: Any,
        base: Path,
        *,
        entry: bool,
    ) -> None:
        place, canonical = raw.at(key), ef.canonical(name)
        if canonical is None:
            self.problem(f"{place}: unknown key {name!r}; allowed: {ef.allowed()}")
            return
        if value is None:
            return
        if not entry and canonical in (ef.FILE, ef.TEXT, ef.NAME):
            self.problem(f"{place}: {canonical} is given per poem, not as a default")
            return
        try:
            value = ef.convert(canonical, value)
        except ValueError as exc:
            self.problem(f"{place}: {canonical}: {exc}")
            out.refused.add(canonical)
            return
        if canonical in ef.FILE_FIELDS and isinstance(value, str):
            canonical, value = ef.FILE_FIELDS[canonical], self.text_file(base / value, place)
        if canonical in out.values:
            self.problem(f"{place}: {canonical} given twice ({out.names[canonical]!r}, {name!r})")
            return
        out.values[canonical], out.places[canonical], out.names[canonical] = value, place, name

    def text_file(self, path: Path, place: str) -> str | None:
        if path not in self._texts:
            self._texts[path] = None
            try:
                self._texts[path] = self.read_file(path, None)[0]
            except InputFileError as exc:
                self.problem(_at(place, str(exc)))
        return self._texts[path]

    def poem_path(self, base: Path, file: str) -> Path:
        """Where an entry's ``file`` is: relative to the manifest, ``~`` expanded."""
        return base / Path(file).expanduser()

    def read_file(self, path: Path, language: str | None) -> tuple[str, str]:
        try:
            size = path.stat().st_size if path.is_file() else 0
        except OSError:
            size = 0  # read_text says why it cannot be read
        if size > MAX_POEM_FILE_BYTES:
            raise InputFileError(
                f"{path} is {size:,} bytes: more than a poem of {MAX_POEM_CHARS:,} "
                "characters can be (is it the right file?)"
            )
        return read_text(str(path), encoding=self.encoding, language=language)

    def entry(self, raw: RawEntry, base: Path, stems: bool, *layers: _Layer) -> _Valid | None:
        """The entry validated, or None with its problems said: all of them, so a poem
        whose file is missing still has its other fields checked."""
        before = len(self._problems)
        own = self.layer(raw, base, entry=True)
        lowest = _Layer()
        if stems:  # a directory's file: its title from its name, unless one is given
            stem = Path(raw.where).stem
            lowest = _Layer({"title": title_from_stem(stem)}, {"title": raw.where})
        values = lowest.merged(*layers, own)
        poem, encoding = self.poem(raw, own, base, values)
        request = self.validate(raw, values, poem)
        if request is None or len(self._problems) > before:
            return None
        named = own.values.get(ef.NAME)
        given = (str(named), own.places[ef.NAME]) if named is not None else None
        # An untitled poem goes by its first line, as anthologies index them.
        first_line = next((line for line in request.poem.splitlines() if line.strip()), "")
        hint = request.title or first_line
        if ef.FILE in own.values:
            hint = Path(str(own.values[ef.FILE])).stem
        return _Valid(Named(raw.where, given, hint), request, encoding)

    def poem(
        self, raw: RawEntry, own: _Layer, base: Path, values: _Layer
    ) -> tuple[str | None, str | None]:
        file, text = own.values.get(ef.FILE), own.values.get(ef.TEXT)
        if own.refused & {ef.FILE, ef.TEXT}:
            return None, None
        if (file is None) == (text is None):
            which = "both" if file is not None else "neither"
            self.problem(f"{raw.where}: give the poem as file or text ({which} given)")
            return None, None
        if text is not None:
            return text, None
        try:
            language = normalize_language(str(values.values.get("source_lang", "")), role="source")
        except ValueError:
            language = None
        try:
            return self.read_file(self.poem_path(base, str(file)), language)
        except InputFileError as exc:
            self.problem(_at(own.places[ef.FILE], str(exc)))
            return None, None

    def validate(
        self, raw: RawEntry, values: _Layer, poem: str | None
    ) -> TranslationRequest | None:
        """The request, or None with each error said at the place its value came from
        (without a poem, the other fields are still checked)."""
        data: dict[str, Any] = {"poem": "-" if poem is None else poem}
        for name, value in values.values.items():
            if name in ef.DIALS:
                data.setdefault("strategy", {})[name] = value
            elif name in ef.TOP_LEVEL:
                data[name] = value
        try:
            return TranslationRequest.model_validate(data, context=self.context)
        except ValidationError as exc:
            for error, line in zip(exc.errors(), format_errors(exc), strict=True):
                if poem is not None or error["loc"][:1] != ("poem",):
                    self.say_error(raw, values, error["loc"], error["type"], line)
            return None

    def say_error(
        self, raw: RawEntry, values: _Layer, loc: tuple[Any, ...], kind: str, line: str
    ) -> None:
        name = str(loc[1] if loc[:1] == ("strategy",) and len(loc) > 1 else (loc or ("",))[0])
        if kind == "missing":
            self._missing.setdefault(name, []).append(raw.where)
            return
        if name == "poem":
            name = ef.FILE if ef.FILE in values.places else ef.TEXT
        place = values.places.get(name, raw.where)
        if not loc:  # the request as a whole: today, the two languages being the same
            same = {values.places.get("source_lang"), values.places.get("target_lang")}
            place = next(iter(same)) or raw.where if len(same) == 1 else raw.where
        self.problem(f"{place}: {line}")

    def say_missing(self, count: int) -> None:
        """A required field no poem gives is said once, not once per poem."""
        for name, wheres in self._missing.items():
            option = "--" + name.replace("_", "-")
            if len(wheres) == count > 1:
                self.problem(f"no poem gives {name}: give it for all ({option}) or per poem")
                continue
            for where in wheres:
                self.problem(f"{where}: {name} is required ({option} gives it for all)")


def _at(place: str, message: str) -> str:
    """``place: message``, unless the message already starts with the place (a poem
    file's own errors name the file)."""
    if message.startswith((place, f"cannot read {place}")):
        return message
    return f"{place}: {message}"
