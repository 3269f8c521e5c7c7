"""No partial writes: a run is recorded in one transaction with synchronous=FULL, and runs
killed (SIGKILL) at 20 seeded moments leave the old output or the whole new one, and the
ledger holds the earlier run and at most one whole new run, passing integrity_check.

tests/test_ledger.py kills 2,000-employee runs at a few moments inside and just after the
recording transaction; this test spreads 20 seeded moments over a whole run of the shipped
example (reading, evaluating, recording, writing the output) and also checks the output file.
"""

from __future__ import annotations

import contextlib
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from cli import main
from engine import ledger

ROOT = Path(__file__).resolve().parents[2]
MERITPAY = ROOT / ".venv" / "bin" / "meritpay"
SEED = 8
KILLS = 20
ARGS = ["run", str(ROOT / "policies" / "2025-Q3"), "--data", str(ROOT / "examples"),
        "--period", "2025-Q3", "--format", "csv"]


def test_a_run_is_recorded_in_one_transaction_with_synchronous_full(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    book = tmp_path / "ledger.sqlite3"
    runner = CliRunner()
    small = ["run", str(ROOT / "tests" / "fixtures" / "valid" / "minimal.yaml"), "--facts",
             str(tmp_path / "facts.csv"), "--period", "2025-Q3", "--ledger", str(book)]
    (tmp_path / "facts.csv").write_text("employee,period,role,revenue\nE1,2025-07,rep,5\n",
                                        encoding="utf-8")
    assert runner.invoke(main, small).exit_code == 0  # the ledger exists, at its schema
    statements: list[str] = []
    connect = ledger._connect

    def traced(path: Path, *, read_only: bool) -> sqlite3.Connection:
        connection = connect(path, read_only=read_only)
        if not read_only:
            connection.set_trace_callback(lambda sql: statements.append(" ".join(sql.split())))
        return connection

    monkeypatch.setattr(ledger, "_connect", traced)
    assert runner.invoke(main, small).exit_code == 0
    writes = [s for s in statements if s.split()[0] in ("INSERT", "UPDATE", "DELETE")]
    begins = [i for i, s in enumerate(statements) if s.startswith("BEGIN")]
    commits = [i for i, s in enumerate(statements) if s == "COMMIT"]
    assert len(begins) == 1 and len(commits) == 1, statements
    assert statements[begins[0]] == "BEGIN IMMEDIATE"
    assert all(begins[0] < statements.index(w) < commits[0] for w in writes) and writes
    assert "PRAGMA synchronous = FULL" in statements[:begins[0]]
    assert "PRAGMA journal_mode = DELETE" in statements[:begins[0]]


def _start(folder: Path) -> subprocess.Popen[bytes]:
    command = [str(MERITPAY)] if MERITPAY.exists() else [
        sys.executable, "-c", "import sys; from cli import main; sys.exit(main())"]
    return subprocess.Popen([*command, *ARGS, "-o", str(folder / "out.csv"), "--ledger",
                             str(folder / "ledger.sqlite3")], cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def _check(folder: Path, reference: bytes, earlier: Any) -> str:
    """What a killed run left; fails on a partial output or a partial run."""
    book = folder / "ledger.sqlite3"
    connection = sqlite3.connect(book)  # a writer: rolls back a hot journal, as a run does
    try:
        assert connection.execute("PRAGMA integrity_check").fetchall() == [("ok",)], folder
    finally:
        connection.close()
    checked = ledger.verify(book)
    assert checked.ok, (folder, checked.problems)
    runs = ledger.list_runs(book)
    assert runs[0] == earlier and len(runs) in (1, 2), folder
    if len(runs) == 2:  # a whole run: every employee
        assert runs[1].employees == earlier.employees, folder
    output = folder / "out.csv"
    if output.exists():
        assert output.read_bytes() == reference, f"{output} is partial"
        assert len(runs) == 2, "the output is written only after the run is recorded"
    leftovers = {p.name for p in folder.iterdir()} - {"out.csv", "ledger.sqlite3",
                                                       "ledger.sqlite3-journal"}
    assert all(n.startswith(".out.csv.") and n.endswith(".tmp") for n in leftovers), leftovers
    if output.exists():
        return "whole output"
    return "recorded, no output yet" if len(runs) == 2 else "nothing yet"


def test_runs_killed_at_20_seeded_moments_leave_no_partial_output_or_run(tmp_path: Path) -> None:
    # two whole runs at once, as the killed ones run: how long one takes here and now
    seeds = [tmp_path / "seed", tmp_path / "seed-twin"]
    started = time.monotonic()
    for folder in seeds:
        folder.mkdir()
    calibration = [_start(folder) for folder in seeds]
    assert [process.wait(timeout=120) for process in calibration] == [0, 0]
    whole = time.monotonic() - started
    seed = seeds[0]
    reference = (seed / "out.csv").read_bytes()
    assert (seeds[1] / "out.csv").read_bytes() == reference
    (seed / "out.csv").unlink()
    earlier = ledger.list_runs(seed / "ledger.sqlite3")[0]
    rng = random.Random(SEED)
    # spread over the whole run, more of them late (recording and writing come last)
    delays = sorted(whole * rng.uniform(0.05, 1.1) ** 0.5 for _ in range(KILLS))
    outcomes: dict[str, int] = {}
    for first in range(0, KILLS, 2):  # two at a time: the machine may have two cores
        running = []
        for index in range(first, min(first + 2, KILLS)):
            folder = tmp_path / f"kill{index:02d}"
            folder.mkdir()
            (folder / "ledger.sqlite3").write_bytes((seed / "ledger.sqlite3").read_bytes())
            running.append((folder, _start(folder), time.monotonic(), delays[index]))
        for folder, process, began, delay in running:
            remaining = began + delay - time.monotonic()
            if remaining > 0:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    process.wait(timeout=remaining)
            if process.poll() is None:
                process.send_signal(signal.SIGKILL)
            process.wait()
            outcome = _check(folder, reference, earlier)
            outcomes[outcome] = outcomes.get(outcome, 0) + 1
    print(f"\n{KILLS} runs killed over {whole:.1f} s (seed {SEED}): {outcomes}")
    assert sum(outcomes.values()) == KILLS
    assert outcomes.get("nothing yet", 0) > 0  # some were killed before recording


def test_a_killed_write_leaves_the_old_output_whole(tmp_path: Path) -> None:
    """A process killed while write_atomically writes: the old file is untouched."""
    target = tmp_path / "out.csv"
    target.write_text("old\n", encoding="utf-8")
    script = ("import os, signal, sys\n"
              "from pathlib import Path\n"
              "from engine import report\n"
              "real = os.replace\n"
              "def killed(*a, **k):\n"
              "    os.kill(os.getpid(), signal.SIGKILL)\n"
              "report.os.replace = killed\n"
              "report.write_atomically(Path(sys.argv[1]), 'new\\n' * 100000)\n")
    done = subprocess.run([sys.executable, "-c", script, str(target)], cwd=ROOT,
                          env={**os.environ, "PYTHONPATH": str(ROOT)}, check=False)
    assert done.returncode == -signal.SIGKILL
    assert target.read_text(encoding="utf-8") == "old\n"
