"""-o names the format when --format is not given: `-o results.csv` writes CSV."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from cli import format_for, main

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"


@pytest.mark.parametrize(("given", "output", "expected"), [
    (None, None, "text"),
    (None, "results.csv", "csv"),
    (None, "RESULTS.JSON", "json"),
    (None, "results.jsonl", "jsonl"),
    (None, "report.md", "text"),  # run has no markdown: a table, as without -o
    ("json", "results.csv", "json"),  # --format wins
    (None, "results", "text"),
])
def test_run_output_format_follows_the_file_extension(
        given: str | None, output: str | None, expected: str) -> None:
    path = Path(output) if output is not None else None
    assert format_for(given, path, ("text", "csv", "json", "jsonl")) == expected


def test_run_with_o_results_csv_writes_csv(tmp_path: Path) -> None:
    out = tmp_path / "results.csv"
    done = CliRunner().invoke(main, [
        "run", str(ROOT / "policies" / "2025-Q3"), "--data", str(EXAMPLES),
        "--period", "2025-Q3", "-o", str(out), "--no-ledger"])
    assert done.exit_code == 0, done.output
    header = out.read_text(encoding="utf-8").splitlines()[0]
    assert header.startswith("employee,name,role,team,period,months,policy,version")


def test_diff_with_o_report_json_writes_json(tmp_path: Path) -> None:
    out = tmp_path / "report.json"
    done = CliRunner().invoke(main, [
        "diff", str(ROOT / "policies" / "2025-Q3"), str(ROOT / "policies" / "2025-Q4"),
        "--data", str(EXAMPLES), "--period", "2025-Q3", "-o", str(out)])
    assert done.exit_code == 0, done.output
    assert json.loads(out.read_text(encoding="utf-8"))["employees"]
