"""The benchmark harness (issue 9) at 2,000 employees, as a smoke test: it completes, and every
baseline computes what meritpay computes (the harness stops with exit 1 otherwise). No test
here asserts a time: they depend on the machine and its load.

To stay well under a minute the run leaves out the ledger, diff, explain and workers steps
(their commands have their own tests); validate, the in-process run, the per-record
baselines, `meritpay run` and the hand-written end-to-end script all run.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))  # benchmarks/ is not installed, it lives beside the tests

from benchmarks.inprocess import BaselineMismatch, check  # noqa: E402
from benchmarks.records import Payout, Record  # noqa: E402

PER_RECORD = "per record, business-roles: "


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    cache = tmp_path_factory.mktemp("benchmark-data")
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.run", "--sizes", "2k", "--repeat", "1", "--json",
         "--quiet", "--cache", str(cache), "--skip", "ledger,diff,explain,workers"],
        cwd=ROOT, capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, done.stderr[-4000:]
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def figures(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {row["figure"]: row for row in report["rows"]}


def test_the_harness_completes_at_2k_with_every_step_asked_for(
        report: dict[str, Any]) -> None:
    rows = figures(report)
    assert not [r for r in report["rows"] if r["note"].startswith("failed")]
    for start in ("generate the population", "validate policies/", "evaluate in-process",
                  PER_RECORD + "meritpay (compiled per role)", "meritpay run policies/",
                  "meritpay run business-roles.yaml", "hand-written script"):
        found = [name for name in rows if name.startswith(start)]
        assert found, f"no row starting {start!r} in {sorted(rows)}"
        assert rows[found[0]]["wall"] is not None
    assert {row["size"] for row in report["rows"]} == {2000}
    assert report["machine"]["nproc"] >= 1


def test_the_in_process_run_evaluates_everyone(report: dict[str, Any]) -> None:
    row = next(r for r in report["rows"] if r["figure"].startswith("evaluate in-process"))
    assert row["records"] == 2001  # E0016 changes role inside 2025-Q3: two segments


def test_the_hand_written_and_simpleeval_baselines_agree_with_meritpay(
        report: dict[str, Any]) -> None:
    # a row exists only once its baseline gave every amount of every record to the cent
    rows = figures(report)
    for name in ("hand-written Python (Decimal)", "simpleeval, parsed once"):
        assert rows[PER_RECORD + name]["records"] == \
            rows[PER_RECORD + "meritpay (compiled per role)"]["records"] > 1000
    assert set(rows[PER_RECORD + "meritpay (compiled per role)"]["ratios"]) >= {
        "hand-written Python (Decimal)", "simpleeval, parsed once"}


def test_the_hand_written_script_writes_meritpays_result_csv_byte_for_byte(
        report: dict[str, Any]) -> None:
    rows = figures(report)
    script = next(r for name, r in rows.items() if name.startswith("hand-written script"))
    assert script["note"] == "output byte-identical to meritpay's"
    ours = next(r for name, r in rows.items() if name.startswith("meritpay run business"))
    assert script["records"] == ours["records"] > 1000
    assert "hand-written script" in ours["ratios"]


def test_the_zen_baselines_agree_with_meritpay(report: dict[str, Any]) -> None:
    pytest.importorskip("zen", reason="zen-engine is an optional benchmark dependency and is "
                                      "not installed here: pip install -e '.[bench]'")
    rows = figures(report)
    for name in ("zen expressions", "zen decision graph"):
        assert rows[PER_RECORD + name]["records"] == \
            rows[PER_RECORD + "meritpay (compiled per role)"]["records"]


def test_a_baseline_that_pays_one_cent_more_stops_the_benchmark() -> None:
    record = Record("E1", "", "account_manager", ("2025-07",), {}, (), (), {}, Decimal(1))
    meritpay = Payout(Decimal("0.9"), "meets", {"base_pay": Decimal("100.00")}, ())
    off = Payout(Decimal("0.9"), "meets", {"base_pay": Decimal("100.01")}, ())
    assert check("same", lambda r: meritpay, [record], [meritpay], score_exact=True) == 1
    with pytest.raises(BaselineMismatch, match=re.escape("base_pay 100.00 != 100.01")):
        check("off", lambda r: off, [record], [meritpay], score_exact=True)
