"""Reading a batch manifest (YAML, JSONL or CSV) into raw entries, each with its place.

Parsing only: what the keys mean and whether the values make a valid request is
``sources``' business. Every entry and every key keeps the place a person would look
for it (``poems.yaml line 14``, ``poems.jsonl line 7``, ``poems.csv row 4``), so that
a refusal points at the line to fix; and a broken entry does not stop the others being
read, so that one refusal names every problem (a YAML syntax error is the exception:
nothing after it can be trusted).
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from vpsweb.batches import entry_fields
from vpsweb.domain.request import MAX_POEM_CHARS
from vpsweb.errors import InputFileError
from vpsweb.files.poems import decode

MANIFEST_KINDS = {
    ".yaml": "yaml",
    ".yml": "yaml",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".csv": "csv",
}
MAX_ENTRIES = 10_000
MAX_MANIFEST_BYTES = 64 * 1024 * 1024
# csv's own default field limit: above every text field of a request (a poem is at most
# 50,000 characters), so a larger cell is a mistake (a pasted file, a broken quote).
MAX_CELL_CHARS = 131_072
_DELIMITERS = (",", ";", "\t")  # Excel writes ";" where "," is the decimal comma

# YAML through libyaml when it is there: a 10 MB manifest parses in a fraction of a second.
_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


@dataclass
class RawEntry:
    """One poem's fields as written (keys not yet resolved), and where they are."""

    where: str  # "poems.yaml entry 3 (line 12)", "poems.jsonl line 7", "poems.csv row 4"
    values: dict[str, Any]
    places: dict[str, str] = field(default_factory=dict)  # key -> its own line, if known

    def at(self, key: str) -> str:
        return self.places.get(key, self.where)


@dataclass
class Manifest:
    """A parsed manifest: its entries, its ``defaults`` block (YAML), its CSV header,
    and what could not be read."""

    entries: list[RawEntry] = field(default_factory=list)
    defaults: RawEntry | None = None
    columns: list[str] | None = None  # CSV only: checked once, not once per row
    problems: list[str] = field(default_factory=list)


def read_manifest(source: Path, encoding: str | None = None) -> Manifest:
    """The manifest's entries, with every problem of the file as a whole (its kind, its
    size, its encoding, its CSV header, its number of poems) and of its syntax."""
    kind = MANIFEST_KINDS.get(source.suffix.lower())
    if kind is None:
        kinds = ", ".join(MANIFEST_KINDS)
        return Manifest(
            problems=[
                f"{source}: a batch source is a directory of poem files or a manifest "
                f"({kinds}); for a single poem use `vpsweb translate`"
            ]
        )
    text, problem = _manifest_text(source, encoding)
    if text is None:
        return Manifest(problems=[problem])
    return checked_manifest(text, str(source), kind)


def checked_manifest(text: str, name: str, kind: str) -> Manifest:
    """``read_manifest`` for a manifest's text (``kind``: a value of MANIFEST_KINDS;
    ``name``: how messages name it): parsed, its columns and its size checked."""
    found = parse_manifest(text, name, kind)
    allowed = entry_fields.allowed()
    unknown = [c for c in found.columns or [] if entry_fields.canonical(c) is None]
    for column in unknown:
        found.problems.append(f"{name} row 1: unknown column {column!r}; allowed: {allowed}")
    for entry in found.entries if unknown else []:  # said once above, not once per row
        entry.values = {k: v for k, v in entry.values.items() if k not in unknown}
    if not found.entries and not found.problems:
        found.problems.append(f"{name}: no poems in it")
    if len(found.entries) > MAX_ENTRIES:
        found.problems.append(too_many(name, len(found.entries), "poems"))
        found.entries = []
    return found


def too_many(name: str, count: int, what: str) -> str:
    return f"{name} has {count:,} {what}; a batch holds at most {MAX_ENTRIES:,}: split it"


def _manifest_text(source: Path, encoding: str | None) -> tuple[str | None, str]:
    """The manifest's text, or why not: UTF-8 when it is (the --encoding meant for poem
    files would misread it), else the --encoding, else detected."""
    try:
        size = source.stat().st_size
        if size > MAX_MANIFEST_BYTES:
            return None, (
                f"{source} is {size / 2**20:,.1f} MB; a manifest may be at most "
                f"{MAX_MANIFEST_BYTES // 2**20} MB: split the batch"
            )
        data = source.read_bytes()
    except OSError as exc:
        return None, f"cannot read {source}: {exc.strerror or exc}"
    return manifest_text(data, str(source), encoding)


def manifest_text(data: bytes, source: str, encoding: str | None) -> tuple[str | None, str]:
    """A manifest's bytes as text, or why not (as ``_manifest_text``)."""
    try:
        return data.decode("utf-8-sig"), ""
    except UnicodeDecodeError:
        pass
    if not encoding:
        try:
            return decode(data, str(source))[0], ""
        except InputFileError as exc:
            return None, str(exc)
    try:
        return data.decode(encoding), ""
    except UnicodeDecodeError as exc:
        return None, f"{source} is not valid {encoding} (byte {exc.start}): save it as UTF-8"


def parse_manifest(text: str, name: str, kind: str) -> Manifest:
    """``kind`` is a value of MANIFEST_KINDS; ``name`` is how the file is named in
    messages."""
    if kind == "yaml":
        return _yaml(text, name)
    if kind == "jsonl":
        return _jsonl(text, name)
    return _csv(text, name)


# --- YAML --------------------------------------------------------------------------


def _line(node: yaml.Node) -> int:
    return int(node.start_mark.line) + 1


def _yaml(text: str, name: str) -> Manifest:
    found = Manifest()
    loader = _Loader(text)
    try:
        root = loader.get_single_node()
        poems, defaults = _yaml_layout(root, name, found)
        if defaults is not None:
            found.defaults = _yaml_mapping(loader, defaults, f"{name} defaults", name, found)
        for i, node in enumerate(poems, 1):
            where = f"{name} entry {i} (line {_line(node)})"
            if isinstance(node, yaml.ScalarNode) and node.tag.endswith(":str"):
                found.entries.append(RawEntry(where, {"file": node.value}))
            elif isinstance(node, yaml.MappingNode):
                found.entries.append(_yaml_mapping(loader, node, where, name, found))
            else:
                found.problems.append(
                    f"{where}: expected the poem's fields (file or text, title, ...) "
                    "as a mapping, or a file name"
                )
    except yaml.YAMLError as exc:
        found.problems.append(_yaml_error(exc, name))
    finally:
        loader.dispose()
    return found


def _yaml_layout(
    root: yaml.Node | None, name: str, found: Manifest
) -> tuple[list[yaml.Node], yaml.MappingNode | None]:
    """The poems' nodes and the defaults' node: a list of poems, or a mapping
    ``{defaults: {...}, poems: [...]}``."""
    if root is None:
        return [], None
    if isinstance(root, yaml.SequenceNode):
        return list(root.value), None
    shape = "a list of poems, or a mapping with `poems:` (a list) and optional `defaults:`"
    if not isinstance(root, yaml.MappingNode):
        found.problems.append(f"{name} line {_line(root)}: expected {shape}")
        return [], None
    parts: dict[str, yaml.Node] = {}
    for key, value in root.value:
        if key.value not in ("poems", "defaults"):
            found.problems.append(f"{name} line {_line(key)}: unknown key {key.value!r}; {shape}")
        else:
            parts[key.value] = value
    poems, defaults = parts.get("poems"), parts.get("defaults")
    if not isinstance(poems, yaml.SequenceNode):
        at = _line(poems) if poems is not None else _line(root)
        found.problems.append(f"{name} line {at}: expected {shape}")
        poems = None
    if defaults is not None and not isinstance(defaults, yaml.MappingNode):
        found.problems.append(f"{name} line {_line(defaults)}: defaults must be a mapping")
        defaults = None
    block = defaults if isinstance(defaults, yaml.MappingNode) else None
    return (list(poems.value) if poems is not None else []), block


def _yaml_mapping(
    loader: Any, node: yaml.MappingNode, where: str, name: str, found: Manifest
) -> RawEntry:
    entry = RawEntry(where, {})
    for key_node, value_node in node.value:
        place = f"{name} line {_line(key_node)}"
        key = loader.construct_object(key_node, deep=True)
        if not isinstance(key, str):
            found.problems.append(f"{place}: key {key!r} is not a field name")
            continue
        if key in entry.values:
            found.problems.append(f"{place}: {key!r} given twice (also {entry.places[key]})")
            continue
        entry.values[key] = loader.construct_object(value_node, deep=True)
        entry.places[key] = place
    return entry


def _yaml_error(exc: yaml.YAMLError, name: str) -> str:
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    where = f"{name} line {mark.line + 1}" if mark is not None else name
    said = " ".join(
        str(part) for part in (getattr(exc, "context", None), getattr(exc, "problem", None)) if part
    )
    return f"{where}: not valid YAML: {said or exc}"


# --- JSONL -------------------------------------------------------------------------


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    seen: dict[str, Any] = {}
    for key, value in pairs:
        if key in seen:
            raise ValueError(f"key {key!r} given twice")
        seen[key] = value
    return seen


def _jsonl(text: str, name: str) -> Manifest:
    found = Manifest()
    # Split on newlines only: str.splitlines() would also split inside a JSON string
    # holding U+2028, which JSON allows unescaped.
    for number, line in enumerate(text.split("\n"), 1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        where = f"{name} line {number}"
        try:
            value = json.loads(stripped, object_pairs_hook=_unique_keys)
        except json.JSONDecodeError as exc:
            found.problems.append(f"{where}: not valid JSON: {exc.msg} (column {exc.colno})")
            continue
        except ValueError as exc:
            found.problems.append(f"{where}: {exc}")
            continue
        if not isinstance(value, dict):
            found.problems.append(f"{where}: expected one JSON object per line, got {value!r:.40}")
            continue
        found.entries.append(RawEntry(where, value))
    return found


# --- CSV ---------------------------------------------------------------------------


@contextlib.contextmanager
def _field_limit(limit: int) -> Iterator[None]:
    """csv's field limit is process-wide: raise it for this read only. Cells are read
    whole and their size checked here, so that an oversized cell is named with its
    row and column and the rows after it are still read (csv's own error would leave
    the reader inside a quoted cell, reading the rest of it as rows)."""
    before = csv.field_size_limit(limit)
    try:
        yield
    finally:
        csv.field_size_limit(before)


def _delimiter(text: str) -> str:
    header = text.split("\n", 1)[0]
    return next((d for d in _DELIMITERS if d in header), ",")


def _csv(text: str, name: str) -> Manifest:
    found = Manifest()
    rows: list[list[str]] = []
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=_delimiter(text), strict=True)
    with _field_limit(max(len(text), MAX_CELL_CHARS)):
        try:
            rows.extend(reader)
        except csv.Error as exc:  # the reader cannot resync: the rows after it are unknown
            found.problems.append(
                f"{name} row {len(rows) + 1}: not valid CSV: {exc} (is a quote left open, "
                'or a quoted cell followed by more text? a quote inside a cell is written "")'
            )
    if not rows:
        return found
    header = [cell.strip().lower() for cell in rows[0]]
    found.columns = [c for c in header if c]
    for column in {c for c in found.columns if found.columns.count(c) > 1}:
        found.problems.append(f"{name} row 1: column {column!r} appears more than once")
    for number, row in enumerate(rows[1:], 2):
        if any(cell.strip() for cell in row):
            entry = _csv_row(row, header, f"{name} row {number}", found)
            if entry is not None:
                found.entries.append(entry)
    return found


def _csv_row(row: list[str], header: list[str], where: str, found: Manifest) -> RawEntry | None:
    problems = []
    extra = [cell for cell in row[len(header) :] if cell.strip()]
    if extra:
        problems.append(f"{where}: {len(row)} cells, but the header has {len(header)} columns")
    values: dict[str, Any] = {}
    for column, cell in zip(header, row, strict=False):
        if len(cell) > MAX_CELL_CHARS:
            label = f"column {column!r}" if column else "a column with no name"
            problems.append(
                f"{where}: the cell in {label} has {len(cell):,} characters; a cell holds at "
                f"most {MAX_CELL_CHARS:,} (a poem at most {MAX_POEM_CHARS:,}): is a quote "
                "left open?"
            )
        elif not column and cell.strip():
            problems.append(f"{where}: a value ({cell.strip():.20}) in a column with no name")
        elif column and cell.strip():  # an empty cell gives nothing: defaults fill it
            values[column] = cell
    found.problems += problems
    return None if problems else RawEntry(where, values)
