"""Supported languages: codes, names, and which may be source or target."""

from __future__ import annotations

LANGUAGE_NAMES: dict[str, str] = {"en": "English", "zh-CN": "Chinese", "pl": "Polish"}
SOURCE_CODES = ("en", "zh-CN", "pl")
TARGET_CODES = ("en", "zh-CN")
# As a target the script matters: a model told "Chinese" may answer in traditional
# characters. A source poem is read in whatever script it comes in.
TARGET_NAMES: dict[str, str] = {"zh-CN": "Simplified Chinese"}

_ALIASES: dict[str, str] = {
    **{code.lower(): code for code in LANGUAGE_NAMES},
    **{name.lower(): code for code, name in LANGUAGE_NAMES.items()},
    "zh": "zh-CN",
    "zh_cn": "zh-CN",
}


def normalize_language(value: str, *, role: str) -> str:
    """Map a code or English name to its code; reject what this role cannot be."""
    allowed = SOURCE_CODES if role == "source" else TARGET_CODES
    code = _ALIASES.get(value.strip().lower())
    if code is None or code not in allowed:
        choices = ", ".join(f"{c} ({LANGUAGE_NAMES[c]})" for c in allowed)
        raise ValueError(f"unsupported {role} language {value!r}; allowed: {choices}")
    return code


def language_name(code: str, *, target: bool = False) -> str:
    if target and code in TARGET_NAMES:
        return TARGET_NAMES[code]
    return LANGUAGE_NAMES[code]
