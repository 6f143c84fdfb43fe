"""The rating core stays pure: no Django, importable and usable without settings or a database.

pyproject's banned-api table is where a lint rule would live; until it names this package, this
test is the guard (see shared/design/style.md: "a lint rule bans django imports there").
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "billing" / "rating"
ALLOWED_ROOTS = {
    "__future__", "bisect", "collections", "dataclasses", "datetime", "decimal", "enum",
    "types", "typing",
}  # fmt: skip


def imported_roots(path: Path) -> set[str]:
    roots = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            roots |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            roots.add(node.module.split(".")[0])
    return roots


def test_rating_modules_import_only_the_standard_library() -> None:
    modules = sorted(PACKAGE.glob("*.py"))
    assert modules, PACKAGE
    for module in modules:
        extra = imported_roots(module) - ALLOWED_ROOTS
        assert not extra, f"{module.name} imports {sorted(extra)}: the rating core is pure"


def test_importing_the_core_loads_no_django() -> None:
    # A fresh interpreter: this test process already has Django loaded by tests/conftest.py.
    code = (
        "import sys, billing.rating as r; "
        "assert r.rate_period and not any(m == 'django' or m.startswith('django.') "
        "for m in sys.modules), sorted(m for m in sys.modules if m.startswith('django'))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=PACKAGE.parents[1],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
