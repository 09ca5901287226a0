"""A strict reader of the Prometheus text exposition format."""

from __future__ import annotations

import re

SAMPLE = re.compile(
    r'^(?P<name>[a-zA-Z_:][a-zA-Z0-9_:]*)\{(?P<labels>(?:[a-zA-Z_]\w*="(?:[^"\\\n]|\\[\\"n])*",?)*)\}'
    r" (?P<value>-?[0-9.e+-]+)$"
)
UNESCAPE = {"\\\\": "\\", '\\"': '"', "\\n": "\n"}
LABEL = re.compile(r'([a-zA-Z_]\w*)="((?:[^"\\\n]|\\[\\"n])*)"')


def parse_exposition(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """A strict little reader of the text format: HELP then TYPE before each family's
    samples, every sample of a declared family, label values unescaped."""
    declared: dict[str, str] = {}
    samples: dict[tuple[str, frozenset[tuple[str, str]]], float] = {}
    pending_help: str | None = None
    assert text.endswith("\n")
    for line in text.splitlines():
        if line.startswith("# HELP "):
            pending_help = line.split()[2]
        elif line.startswith("# TYPE "):
            _, _, name, kind = line.split()
            assert name == pending_help and kind in ("counter", "summary", "gauge"), line
            declared[name] = kind
        else:
            m = SAMPLE.match(line)
            assert m, line
            name = m["name"]
            family = re.sub(r"_(sum|count)$", "", name) if declared.get(name) is None else name
            assert family in declared, line
            labels = frozenset(
                (k, re.sub(r'\\[\\"n]', lambda e: UNESCAPE[e.group()], v))
                for k, v in LABEL.findall(m["labels"])
            )
            samples[(name, labels)] = float(m["value"])
    return samples
