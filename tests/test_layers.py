"""Imports go one way along the pipeline: a stage never imports a later one."""

from __future__ import annotations

import ast
from pathlib import Path

ENGINE = Path(__file__).resolve().parent.parent / "engine"

# Each module, and the earlier stages it may import.
ORDER = ["diagnostics", "model", "load", "schema", "expr", "validate", "compiler", "revisions",
         "facts", "tables", "ratings", "evaluate", "fast", "population", "coverage", "run", "cases",
         "report", "ledger", "diff", "diffreport", "casereport", "whynot", "explain",
         "explainreport"]


def imports_of(module: str) -> set[str]:
    tree = ast.parse((ENGINE / f"{module}.py").read_text(encoding="utf-8"))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level == 1 and node.module:
            found.add(node.module.split(".")[0])
    return found


def test_every_engine_module_has_a_place_in_the_pipeline() -> None:
    modules = {p.stem for p in ENGINE.glob("*.py")} - {"__init__"}
    assert modules <= set(ORDER), f"add {sorted(modules - set(ORDER))} to ORDER"


def test_stages_import_only_earlier_stages() -> None:
    for position, module in enumerate(ORDER):
        if not (ENGINE / f"{module}.py").exists():
            continue
        later = set(ORDER[position:])
        assert imports_of(module).isdisjoint(later), (
            f"engine/{module}.py imports a later stage: {sorted(imports_of(module) & later)}")


def test_engine_does_not_import_the_cli() -> None:
    for path in ENGINE.glob("*.py"):
        assert "import cli" not in path.read_text(encoding="utf-8")
        assert "from cli" not in path.read_text(encoding="utf-8")
