"""The tests' own layout: shared code lives in tests/helpers, never in a test module.

A test module that imports another runs that module's import-time code (and, under
pytest, may collect its tests twice); fixtures belong in conftest files and everything
else they share in tests/helpers.
"""

from __future__ import annotations

import ast
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]


def _modules() -> list[Path]:
    return sorted(p for p in TESTS.rglob("*.py") if "helpers" not in p.relative_to(TESTS).parts)


def _imported(tree: ast.Module) -> set[str]:
    names = set()
    for node in ast.walk(tree):  # inside functions too
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = "." * node.level + (node.module or "")
            names.add(base)
            sep = "." if node.module else ""
            names.update(f"{base}{sep}{alias.name}" for alias in node.names)
    return names


def _is_test_code(name: str) -> bool:
    """A test module, a conftest or any other non-helper module under tests/."""
    if name.startswith("."):
        return True  # relative imports only reach other test modules
    parts = name.split(".")
    return parts[0] == "tests" and len(parts) > 1 and parts[1] != "helpers"


def test_no_test_module_imports_another_test_module() -> None:
    offenders = []
    for path in _modules():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for name in sorted(_imported(tree)):
            # "from tests.helpers import x" yields "tests.helpers" and "tests.helpers.x".
            if _is_test_code(name) and not (name == "tests" or name.startswith("tests.helpers")):
                offenders.append(f"{path.relative_to(TESTS.parent)} imports {name}")
    assert offenders == [], "move what is shared to tests/helpers:\n" + "\n".join(offenders)


def test_helpers_import_no_test_module() -> None:
    offenders = []
    for path in sorted((TESTS / "helpers").rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        offenders += [
            f"{path.relative_to(TESTS.parent)} imports {name}"
            for name in sorted(_imported(tree))
            if _is_test_code(name)
        ]
    assert offenders == [], "\n".join(offenders)


def test_poem_is_defined_only_in_tests_helpers() -> None:
    offenders = []
    for path in _modules():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            targets = []
            if isinstance(node, ast.Assign):
                targets = node.targets
            elif isinstance(node, (ast.AnnAssign, ast.AugAssign)):
                targets = [node.target]
            if any(isinstance(t, ast.Name) and t.id == "POEM" for t in targets):
                offenders.append(f"{path.relative_to(TESTS.parent)}:{node.lineno}")
    assert offenders == [], "import POEM from tests/helpers/poems.py:\n" + "\n".join(offenders)


def test_the_layout_checks_see_the_modules_they_check() -> None:
    found = {p.relative_to(TESTS).as_posix() for p in _modules()}
    expected = {
        "conftest.py",
        "unit/test_test_layout.py",
        "integration/orchestrator/test_faults.py",
    }
    assert expected <= found
    assert "helpers/poems.py" not in found
    assert _is_test_code("tests.integration.test_cli") and _is_test_code("tests.conftest")
    assert not _is_test_code("tests.helpers.cli") and not _is_test_code("vpsweb.cli")


def test_test_folders_mirror_the_source_packages() -> None:
    """tests/unit/<package>/ and tests/integration/<package>/ are named after vpsweb's
    packages (the tests of ``vpsweb.web`` in ``web/``); project-wide tests (the
    architecture, the deploy files, the layout itself) stay at the top of their suite."""
    src = Path(__import__("vpsweb").__file__).parent
    packages = {p.parent.name for p in src.glob("*/*.py")}
    strays = []
    for suite in ("unit", "integration"):
        for folder in sorted(p for p in (TESTS / suite).iterdir() if p.is_dir()):
            if folder.name != "__pycache__" and folder.name not in packages:
                strays.append(f"tests/{suite}/{folder.name}")
    assert strays == [], f"not a vpsweb package: {strays}"
    assert (TESTS / "unit" / "storage" / "contract").is_dir()
