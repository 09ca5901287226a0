"""A glossary from the text of a YAML or CSV file, every mistake named by its line.

YAML: a mapping ``source: target`` or ``source: {target: ..., note: ...}``, or a list
of ``{source, target, note}``. CSV: a header ``source,target`` (and optionally
``note``), then one term a row (``,``, ``;`` or a tab between cells, as spreadsheets
save them). Every problem of the file is reported at once, each with its line (a
CSV row's number is its line, the header being row 1), so that a glossary is fixed in
one pass, and nothing is submitted while any remains. Scalars are read as written: a
YAML ``no`` or ``1.0`` is the text, not a boolean or a number.
"""

from __future__ import annotations

import csv
import io
from typing import Any, Literal

import yaml
from pydantic import ValidationError

from vpsweb.domain.glossary import Glossary, GlossaryMode, GlossaryTerm, normalised
from vpsweb.errors import RequestInvalid

GlossaryFormat = Literal["yaml", "csv"]
_FIELDS = ("source", "target", "note")
_Entry = tuple[str, dict[str, str]]  # (where: "line 3" / "row 3", the term's fields)


def sniff(text: str) -> GlossaryFormat:
    """CSV if the first line that says anything is a ``source,target`` header."""
    for line in text.lstrip("\ufeff").splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            cells = [c.strip().strip('"').lower() for c in _split_header(line)]
            return "csv" if cells[:2] == ["source", "target"] else "yaml"
    return "yaml"


def _split_header(line: str) -> list[str]:
    for sep in (",", ";", "\t"):
        if sep in line:
            return line.split(sep)
    return [line]


def parse_glossary(
    text: str,
    *,
    mode: GlossaryMode = "flag",
    name: str = "glossary",
    fmt: GlossaryFormat | None = None,
) -> Glossary:
    """The glossary in ``text`` (``fmt``: sniffed when None); RequestInvalid naming
    every problem as ``{name}: line N: ...`` (``row N`` for CSV)."""
    text = text.lstrip("\ufeff")
    fmt = fmt or sniff(text)
    problems: list[str] = []
    entries = _csv_entries(text, problems) if fmt == "csv" else _yaml_entries(text, problems)
    terms = _terms(entries, problems)
    if not problems and not terms:
        problems.append("no terms: give at least one source term and its translation")
    if not problems:
        try:
            return Glossary(terms=terms, mode=mode)
        except ValidationError as exc:
            problems += [_said(e) for e in exc.errors()]
    problems.sort(key=_number)  # in the file's order (a sort is stable)
    raise RequestInvalid([f"{name}: {p}" for p in problems])


def _number(problem: str) -> int:
    """A problem's line (or row) number; 0 for the file's as a whole."""
    head = problem.split(":", 1)[0].split()
    return int(head[1]) if len(head) == 2 and head[1].isdigit() else 0


def _said(err: Any) -> str:
    where = ".".join(str(p) for p in err["loc"])
    message = str(err["msg"]).removeprefix("Value error, ")
    return f"{where}: {message}" if where else message


def _terms(entries: list[_Entry], problems: list[str]) -> list[GlossaryTerm]:
    terms: list[GlossaryTerm] = []
    first: dict[str, str] = {}
    for where, fields in entries:
        try:
            term = GlossaryTerm(**fields)
        except ValidationError as exc:
            problems += [f"{where}: {_said(e)}" for e in exc.errors()]
            continue
        key = normalised(term.source)
        if key in first:
            problems.append(f"{where}: {term.source!r} is already given on {first[key]}")
            continue
        first[key] = where
        terms.append(term)
    return terms


# --- YAML ------------------------------------------------------------------------------


def _line(node: yaml.Node) -> str:
    return f"line {node.start_mark.line + 1}"


def _scalar(node: yaml.Node) -> str | None:
    """A scalar's text as written (None for a missing value or a collection)."""
    if not isinstance(node, yaml.ScalarNode) or node.tag == "tag:yaml.org,2002:null":
        return None
    return str(node.value)


def _yaml_entries(text: str, problems: list[str]) -> list[_Entry]:
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}: " if mark is not None else ""
        problems.append(f"{where}not valid YAML ({getattr(exc, 'problem', None) or exc})")
        return []
    if root is None:
        return []
    if isinstance(root, yaml.MappingNode):
        return [e for k, v in root.value if (e := _pair(k, v, problems)) is not None]
    if isinstance(root, yaml.SequenceNode):
        return [e for item in root.value if (e := _item(item, problems)) is not None]
    problems.append(
        f"{_line(root)}: expected a mapping (source: target) or a list of {{source, target, note}}"
    )
    return []


def _fields(
    node: yaml.MappingNode, allowed: tuple[str, ...], problems: list[str]
) -> dict[str, str] | None:
    fields: dict[str, str] = {}
    bad = False
    for k, v in node.value:
        key = _scalar(k)
        if key not in allowed:
            problems.append(f"{_line(k)}: unknown field {key!r}; expected {', '.join(allowed)}")
            bad = True
        elif (value := _scalar(v)) is None:
            problems.append(f"{_line(k)}: {key} has no text")
            bad = True
        else:
            fields[key] = value
    return None if bad else fields


def _pair(k: yaml.Node, v: yaml.Node, problems: list[str]) -> _Entry | None:
    source = _scalar(k)
    if source is None:
        problems.append(f"{_line(k)}: a source term must be text")
        return None
    if isinstance(v, yaml.MappingNode):
        fields = _fields(v, ("target", "note"), problems)
        if fields is None:
            return None
        if "target" not in fields:
            problems.append(f"{_line(k)}: {source!r} has no target")
            return None
        return _line(k), {"source": source, **fields}
    target = _scalar(v)
    if target is None:
        problems.append(f"{_line(k)}: {source!r} has no target")
        return None
    return _line(k), {"source": source, "target": target}


def _item(node: yaml.Node, problems: list[str]) -> _Entry | None:
    if not isinstance(node, yaml.MappingNode):
        problems.append(f"{_line(node)}: expected {{source, target, note}}")
        return None
    fields = _fields(node, _FIELDS, problems)
    if fields is None:
        return None
    missing = [f for f in ("source", "target") if f not in fields]
    if missing:
        problems.append(f"{_line(node)}: no {' and no '.join(missing)}")
        return None
    return _line(node), fields


# --- CSV -------------------------------------------------------------------------------


def _dialect(header: str) -> str:
    return next((sep for sep in (",", ";", "\t") if sep in header), ",")


def _csv_entries(text: str, problems: list[str]) -> list[_Entry]:
    lines = text.splitlines()
    header_at = next((i for i, line in enumerate(lines) if line.strip()), None)
    if header_at is None:
        return []
    reader = csv.reader(io.StringIO(text), delimiter=_dialect(lines[header_at]))
    rows = [(reader.line_num, row) for row in reader]
    (at, header), body = rows[header_at], rows[header_at + 1 :]
    columns = [c.strip().lower() for c in header]
    unknown = [c for c in columns if c not in _FIELDS]
    if unknown or columns[:2] != ["source", "target"] or len(set(columns)) < len(columns):
        problems.append(
            f"row {at}: the header must be source,target or source,target,note "
            f"(got {','.join(header)})"
        )
        return []
    entries: list[_Entry] = []
    for line, row in body:
        if not any(cell.strip() for cell in row):
            continue
        if len(row) > len(columns):
            problems.append(f"row {line}: {len(row)} cells for {len(columns)} columns")
            continue
        fields = {c: v for c, v in zip(columns, row, strict=False) if v.strip() or c != "note"}
        missing = [f for f in ("source", "target") if not fields.get(f, "").strip()]
        if missing:
            problems.append(f"row {line}: no {' and no '.join(missing)}")
            continue
        entries.append((f"row {line}", fields))
    return entries
