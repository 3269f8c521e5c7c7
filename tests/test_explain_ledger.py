"""`meritpay explain` of a recorded run: from the ledger alone, the same as explaining afresh."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

import engine.ledger
from cli import main

ROOT = Path(__file__).resolve().parent.parent


def cli(*args: object) -> Any:
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


@pytest.fixture
def recorded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(ROOT)
    ledger = tmp_path / "ledger.sqlite3"
    result = cli("run", "policies/", "--data", "examples/", "--period", "2025-Q3",
                 "--ledger", ledger, "-o", tmp_path / "out.csv", "--format", "csv")
    assert result.exit_code == 0, result.output
    return ledger


def test_a_recorded_run_explains_like_a_fresh_evaluation(recorded: Path) -> None:
    from_ledger = cli("explain", "E0024", "--ledger", recorded, "--format", "json")
    fresh = cli("explain", "E0024", "policies/", "--data", "examples/", "--period", "2025-Q3",
                "--format", "json")
    assert from_ledger.exit_code == fresh.exit_code == 0
    assert from_ledger.stdout == fresh.stdout
    by_id = cli("explain", "E0024", "--ledger", recorded, "--run", "R000001", "--format", "json")
    assert by_id.stdout == fresh.stdout


def test_an_unknown_run_and_an_empty_ledger_are_bad_input(recorded: Path,
                                                          tmp_path: Path) -> None:
    unknown = cli("explain", "E0024", "--ledger", recorded, "--run", "R000009")
    assert unknown.exit_code == 2 and "E_UNKNOWN_RUN" in unknown.output
    empty = cli("explain", "E0024", "--ledger", tmp_path / "none.sqlite3")
    assert empty.exit_code == 2 and "holds no run yet" in empty.output


def test_facts_with_a_recorded_run_are_a_usage_error(recorded: Path) -> None:
    mixed = cli("explain", "E0024", "--ledger", recorded, "--period", "2025-Q3")
    assert mixed.exit_code == 2


def test_a_recomputed_run_that_differs_is_not_explained(recorded: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    original = engine.ledger.evaluate_stored

    def shifted(stored: Any, *, trace: bool = False, traced: str | None = None) -> Any:
        result, policies = original(stored, trace=trace, traced=traced)
        first = result.results[0]
        moved = replace(first, total_pay=first.total_pay + Decimal("0.01"))
        return replace(result, results=(moved, *result.results[1:])), policies

    monkeypatch.setattr(engine.ledger, "evaluate_stored", shifted)
    refused = cli("explain", "E0024", "--ledger", recorded)
    assert refused.exit_code == 1
    assert "E_REPLAY_DIFFERS" in refused.output
