"""`meritpay validate` imports only what validating needs: the spreadsheet reader, the
templates, the terminal UI, the ledger's database and the later stages of the pipeline are
imported where they are used. Checked in a fresh interpreter; nothing here is timed."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

# The stages validating needs; every other module of engine/ belongs to a later stage.
VALIDATING = {"__init__", "diagnostics", "expr", "load", "model", "schema", "validate"}
# Imported only by the commands that use them (run, explain, diff, test, the ledger).
NOT_FOR_VALIDATE = [
    "openpyxl", "jinja2", "rich", "sqlite3", "_sqlite3", "multiprocessing", "concurrent.futures",
    "csv", "xml.etree.ElementTree", "simpleeval",
    *sorted(f"engine.{path.stem}" for path in (ROOT / "engine").glob("*.py")
            if path.stem not in VALIDATING),
]

SCRIPT = """
import json, sys
from click.testing import CliRunner
import cli
outcome = CliRunner().invoke(cli.main, sys.argv[1:])
print(json.dumps({"exit": outcome.exit_code, "modules": sorted(sys.modules)}))
"""


@pytest.mark.parametrize("args", [
    ["validate", "policies"],
    ["validate", "--format", "json", "policies/2025-Q3"],
    ["validate", "tests/fixtures/invalid/tab_indented.yaml",  # read by the reference parser
     "tests/fixtures/invalid/unknown_key_misspelt.yaml",
     "tests/fixtures/invalid/weights_sum_to_95.yaml"],
])
def test_validate_imports_nothing_it_does_not_use(args: list[str]) -> None:
    done = subprocess.run([sys.executable, "-c", SCRIPT, *args], cwd=ROOT, capture_output=True,
                          text=True, check=True)
    outcome = json.loads(done.stdout.splitlines()[-1])
    assert outcome["exit"] in (0, 1)
    assert [name for name in NOT_FOR_VALIDATE if name in outcome["modules"]] == []
