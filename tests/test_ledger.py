"""The ledger of runs: recording, listing, the hash chain, replay, and durability.

Most tests use a one-indicator policy on three employees; the replay tests also use the
shipped example, and the durability tests kill real `meritpay run` subprocesses.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from cli import main
from engine import InputError, ledger
from engine.diagnostics import EnvironmentFailure
from engine.report import render_json
from engine.run import RunInputs, load_policies, run

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
POLICIES = ROOT / "policies"
MERITPAY = Path(sys.executable).parent / "meritpay"

POLICY = """meritpay: 1
policy: p
version: "1"
effective: {from: 2025-01-01}
period: quarter
currency: CNY
facts:
  revenue: {type: money, label: Revenue}
  quota: {type: money, label: Quota}
indicators:
  attainment:
    kind: result
    label: Attainment
    value: revenue / quota
    score: {curve: linear, zero_at: 0, full_at: 1}
roles:
  rep: {label: Rep, weights: {attainment: 100%}}
rewards:
  bonus: {kind: amount, label: Bonus, amount: 1000 * total_score}
"""

# E1 meets quota, E2 reaches 80% (a bonus of 800.00), E3 half; every month of 2025-H2
FACTS = "employee,role,period,revenue,quota\n" + "".join(
    f"{employee},rep,2025-{month:02d},{revenue},100\n"
    for month in range(7, 13) for employee, revenue in (("E1", 100), ("E2", 80), ("E3", 50)))


@pytest.fixture()
def small(tmp_path: Path) -> Path:
    """A folder with p.yaml and facts.csv."""
    (tmp_path / "p.yaml").write_text(POLICY, encoding="utf-8")
    (tmp_path / "facts.csv").write_text(FACTS, encoding="utf-8")
    return tmp_path


def cli(*args: str | Path) -> Result:
    result = CliRunner().invoke(main, [str(a) for a in args])
    assert "Traceback" not in result.output + result.stderr
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result


def run_small(folder: Path, book: Path, period: str = "2025-Q3", *extra: str) -> Result:
    return cli("run", folder / "p.yaml", "--facts", folder / "facts.csv", "--period", period,
               "--format", "json", "--ledger", book, *extra)


def run_example(book: Path, *extra: str) -> Result:
    return cli("run", POLICIES, "--data", EXAMPLES, "--period", "2025-Q3", "--format", "json",
               "--ledger", book, *extra)


def codes(result: Result) -> list[str]:
    return [line.split(": ")[1] for line in result.stderr.splitlines()
            if line.count(": ") >= 2 and line.split(": ")[1].startswith("E_")]


def tamper(book: Path, sql: str, *params: Any) -> None:
    """Change the ledger behind meritpay's back: drop the triggers that refuse updates and
    deletes (as anyone with the file can), then run sql."""
    connection = sqlite3.connect(book)
    for (name,) in connection.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'"):
        connection.execute(f"DROP TRIGGER {name}")
    connection.execute(sql, params)
    connection.commit()
    connection.close()


def blob_of(book: Path, run_id: str, column: str = "results_sha256",
            table: str = "runs", where: str = "") -> tuple[str, bytes]:
    connection = sqlite3.connect(book)
    if table == "runs":
        key = connection.execute(f"SELECT {column} FROM runs WHERE run_id = ?",
                                 (run_id,)).fetchone()[0]
    else:
        key = connection.execute(
            f"SELECT t.sha256 FROM {table} t JOIN runs r ON r.seq = t.seq "
            f"WHERE r.run_id = ? {where}", (run_id,)).fetchone()[0]
    data = connection.execute("SELECT data FROM blobs WHERE sha256 = ?", (key,)).fetchone()[0]
    connection.close()
    return key, zlib.decompress(data)


def state(book: Path) -> tuple[bytes, int, list[str]]:
    """The ledger's bytes, modification time and the files beside it."""
    return book.read_bytes(), book.stat().st_mtime_ns, sorted(os.listdir(book.parent))


# --- where the ledger lives -------------------------------------------------------------------

def test_the_default_ledger_is_in_the_user_data_folder(tmp_path: Path) -> None:
    home = Path.home()
    assert ledger.default_path({}) == home / ".local/share/meritpay/ledger.sqlite3"
    assert ledger.default_path({"XDG_DATA_HOME": "/data"}) == \
        Path("/data/meritpay/ledger.sqlite3")
    # a relative XDG_DATA_HOME is invalid and ignored, as the XDG specification says
    assert ledger.default_path({"XDG_DATA_HOME": "data"}) == \
        home / ".local/share/meritpay/ledger.sqlite3"
    assert ledger.default_path({"XDG_DATA_HOME": "/data", "MERITPAY_LEDGER": "/x/l.db"}) == \
        Path("/x/l.db")


def test_run_records_in_the_ledger_the_environment_names(small: Path,
                                                           private_ledger: Path) -> None:
    result = cli("run", small / "p.yaml", "--facts", small / "facts.csv", "--period", "2025-Q3")
    assert result.exit_code == 0, result.stderr
    assert f"recorded run R000001 in {private_ledger}" in result.stderr
    assert [r.run_id for r in ledger.list_runs(private_ledger)] == ["R000001"]


# --- recording and listing --------------------------------------------------------------------

def test_a_run_is_recorded_whole_and_listed(small: Path, tmp_path: Path) -> None:
    book = tmp_path / "ledger.sqlite3"
    first = run_small(small, book, "2025-Q3", "-o", tmp_path / "q3.json")
    assert first.exit_code == 0, first.stderr
    assert f"recorded run R000001 in {book}" in first.stderr
    second = run_small(small, book, "2025-Q4")
    assert f"recorded run R000002 in {book}" in second.stderr
    # the run id and the ledger never reach the results
    assert "R00000" not in second.stdout and str(book) not in second.stdout
    stored = ledger.stored_run(book, "R000001")
    summary = stored.summary
    assert (summary.period, summary.employees, summary.segments, summary.errors) == \
        ("2025-Q3", 3, 3, 0)
    assert summary.totals == (("CNY", "2300.00"),)  # 1000 + 800 + 500
    assert summary.command == ("meritpay", "run", str(small / "p.yaml"), "--facts",
                               str(small / "facts.csv"), "--period", "2025-Q3", "--format",
                               "json", "--ledger", str(book), "-o", str(tmp_path / "q3.json"))
    assert summary.options == ledger.RunOptions("2025-Q3")
    assert summary.engine_version == "0.1.0" and summary.user
    assert summary.created.endswith("Z") and summary.prev_hash == ledger.GENESIS
    [policy] = summary.policies
    assert (policy.policy, policy.version, policy.source, policy.employees) == \
        ("p", "1", str(small / "p.yaml"), 3)
    assert stored.policy_texts == (POLICY,)
    assert policy.sha256 == load_policies([small / "p.yaml"])[0].digest
    [item] = stored.inputs
    stored.write_input(item, tmp_path / "copy.csv")  # from the ledger, a chunk at a time
    assert (item.kind, item.name, (tmp_path / "copy.csv").read_bytes()) == \
        ("facts", str(small / "facts.csv"), FACTS.encode())
    assert stored.results == (tmp_path / "q3.json").read_bytes()  # canonical JSON, as written
    assert ledger.stored_run(book, "R000002").summary.prev_hash == summary.hash

    listing = cli("runs", "--ledger", book)
    assert listing.exit_code == 0
    lines = listing.stdout.splitlines()
    assert lines[0].split() == ["run", "time", "(UTC)", "user", "period", "employees", "total",
                                "pay", "policies"]
    assert lines[1].startswith("R000001") and "2025-Q3" in lines[1]
    assert "CNY 2,300.00" in lines[1] and lines[1].endswith("p@1")
    assert lines[2].startswith("R000002") and "2025-Q4" in lines[2]
    listed = json.loads(cli("runs", "--ledger", book, "--format", "json").stdout)
    assert [r["run"] for r in listed] == ["R000001", "R000002"]
    assert listed[0]["total_pay"] == {"CNY": "2300.00"}
    assert listed[0]["policies"][0]["sha256"] == policy.sha256
    assert listed[1]["prev_hash"] == listed[0]["hash"]


def test_runs_filter_by_policy_and_period(small: Path, tmp_path: Path) -> None:
    book = tmp_path / "ledger.sqlite3"
    run_small(small, book, "2025-Q3")
    run_small(small, book, "2025-Q4")

    def ids(*args: str) -> list[str]:
        result = cli("runs", "--ledger", book, "--format", "json", *args)
        assert result.exit_code == 0
        return [r["run"] for r in json.loads(result.stdout)]

    assert ids("--period", "2025-Q4") == ["R000002"]
    assert ids("--period", "2025-q3") == ["R000001"]
    assert ids("--policy", "p") == ["R000001", "R000002"]
    assert ids("--policy", "business-roles") == []


def test_output_is_the_same_with_and_without_the_ledger(small: Path, tmp_path: Path,
                                                       private_ledger: Path) -> None:
    recorded = run_small(small, tmp_path / "ledger.sqlite3")
    throwaway = cli("run", small / "p.yaml", "--facts", small / "facts.csv", "--period",
                    "2025-Q3", "--format", "json", "--no-ledger")
    assert throwaway.exit_code == 0
    assert recorded.stdout == throwaway.stdout
    assert "recorded run" not in throwaway.stderr
    assert not private_ledger.exists()


def test_no_ledger_and_ledger_together_are_a_usage_error(small: Path, tmp_path: Path) -> None:
    result = run_small(small, tmp_path / "l.sqlite3", "2025-Q3", "--no-ledger")
    assert result.exit_code == 2  # run_small gives --ledger
    assert "not both" in result.stderr


def test_git_commit_and_uncommitted_changes_are_recorded(small: Path, tmp_path: Path) -> None:
    if shutil.which("git") is None:
        pytest.skip("git is not installed")
    repo = tmp_path / "repo"
    repo.mkdir()
    shutil.copy(small / "p.yaml", repo / "p.yaml")

    def git(*args: str) -> str:
        return subprocess.run(["git", "-C", str(repo), "-c", "user.name=t", "-c",
                               "user.email=t@example.com", *args], check=True,
                              capture_output=True, text=True).stdout.strip()

    git("init", "-q")
    assert ledger.git_state(repo / "p.yaml") == (None, None)  # a repository with no commit
    git("add", "p.yaml")
    git("commit", "-q", "-m", "policy")
    head = git("rev-parse", "HEAD")
    book = tmp_path / "ledger.sqlite3"
    cli("run", repo / "p.yaml", "--facts", small / "facts.csv", "--period", "2025-Q3",
        "--ledger", book)
    with (repo / "p.yaml").open("a", encoding="utf-8") as stream:
        stream.write("# changed\n")
    cli("run", repo / "p.yaml", "--facts", small / "facts.csv", "--period", "2025-Q3",
        "--ledger", book)
    run_small(small, book)  # outside any repository
    policies = [r.policies[0] for r in ledger.list_runs(book)]
    assert [(p.git_commit, p.git_dirty) for p in policies] == [
        (head, False), (head, True), (None, None)]


def test_an_input_changed_during_the_run_is_not_recorded(small: Path, tmp_path: Path) -> None:
    inputs = RunInputs(facts=small / "facts.csv")
    files = ledger.snapshot(inputs)
    result = run(load_policies([small / "p.yaml"]), inputs, "2025-Q3")
    (small / "facts.csv").write_text(FACTS.replace(",80,", ",90,"), encoding="utf-8")
    book = tmp_path / "ledger.sqlite3"
    with pytest.raises(InputError, match="changed while meritpay was reading it"):
        ledger.record(book, result, files, ledger.RunOptions("2025-Q3"), command=["x"])
    assert ledger.list_runs(book) == []


# --- the hash chain -----------------------------------------------------------------------------

def test_input_files_go_in_and_out_of_the_ledger_a_chunk_at_a_time(
        small: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Files are hashed, compressed into the blob, checked and copied back out in chunks
    (here of 7 bytes, so the facts take dozens): the bytes come back whole, the run verifies,
    and a replay from them gives the recorded results."""
    monkeypatch.setattr(ledger, "_CHUNK", 7)
    book = tmp_path / "ledger.sqlite3"
    assert run_small(small, book).exit_code == 0
    stored = ledger.stored_run(book, "R000001")
    assert stored.problems == () and len(FACTS) > 40 * 7
    [item] = stored.inputs
    assert item.sha256 == hashlib.sha256(FACTS.encode()).hexdigest()
    stored.write_input(item, tmp_path / "copy.csv")
    assert (tmp_path / "copy.csv").read_bytes() == FACTS.encode()
    assert ledger.verify(book).ok
    assert ledger.replay(book, "R000001").identical


def test_a_full_temporary_folder_is_an_environment_failure_and_records_nothing(
        small: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import errno
    import io
    import tempfile

    class Full(io.BytesIO):
        def write(self, data: object) -> int:
            raise OSError(errno.ENOSPC, "No space left on device")

    inputs = RunInputs(facts=small / "facts.csv")
    files = ledger.snapshot(inputs)
    result = run(load_policies([small / "p.yaml"]), inputs, "2025-Q3")
    monkeypatch.setattr(tempfile, "TemporaryFile", lambda **_: Full())
    book = tmp_path / "ledger.sqlite3"
    with pytest.raises(EnvironmentFailure, match="No space left on device") as caught:
        ledger.record(book, result, files, ledger.RunOptions("2025-Q3"), command=["x"])
    assert caught.value.exit_code == 3 and "facts.csv" in str(caught.value)
    assert ledger.list_runs(book) == []


def test_verify_prints_the_chain_head(small: Path, tmp_path: Path) -> None:
    book = tmp_path / "ledger.sqlite3"
    empty = cli("runs", "--verify", "--ledger", book)
    assert (empty.exit_code, empty.stdout) == (0, ledger.GENESIS + "\n")
    for period in ("2025-Q3", "2025-Q4", "2025-Q3"):
        run_small(small, book, period)
    result = cli("runs", "--verify", "--ledger", book)
    assert result.exit_code == 0, result.stderr
    last = ledger.list_runs(book)[-1]
    assert result.stdout == last.hash + "\n"
    assert "3 run(s)" in result.stderr and "intact" in result.stderr
    report = json.loads(cli("runs", "--verify", "--format", "json", "--ledger", book).stdout)
    assert report == {"ledger": str(book), "runs": 3, "ok": True, "head": last.hash,
                      "head_run": "R000003", "problems": []}


def test_an_edited_result_is_found_naming_the_run(small: Path, tmp_path: Path) -> None:
    book = tmp_path / "ledger.sqlite3"
    for period in ("2025-Q3", "2025-Q4", "2025-Q3"):
        run_small(small, book, period)
    key, results = blob_of(book, "R000002")  # Q4: its results are stored for R000002 alone
    edited = results.replace(b'"total_pay": "800.00"', b'"total_pay": "8000.00"')
    assert edited != results
    tamper(book, "UPDATE blobs SET data = ? WHERE sha256 = ?", zlib.compress(edited), key)
    result = cli("runs", "--verify", "--ledger", book)
    assert result.exit_code == 1
    assert result.stdout == ""  # no head to record from a broken chain
    assert set(codes(result)) == {"E_LEDGER_TAMPERED"}
    assert "run R000002 was changed after it was recorded: its results are changed" \
        in result.stderr
    assert "R000001" not in result.stderr and "R000003" not in result.stderr


def test_an_edited_field_is_found(small: Path, tmp_path: Path) -> None:
    book = tmp_path / "ledger.sqlite3"
    run_small(small, book)
    run_small(small, book, "2025-Q4")
    tamper(book, "UPDATE runs SET user = 'someone else' WHERE run_id = 'R000001'")
    result = cli("runs", "--verify", "--ledger", book)
    assert result.exit_code == 1
    assert "run R000001 was changed after it was recorded: its stored fields do not match " \
        "its hash" in result.stderr
    # re-hashing the edited run is not enough: the next run's link no longer holds
    row = sqlite3.connect(book).execute("SELECT * FROM runs WHERE seq = 1")
    names = [d[0] for d in row.description]
    fields = dict(zip(names, row.fetchone(), strict=True))
    stored = ledger.stored_run(book, "R000001")
    policies = [[p.position, p.policy, p.version, p.source, p.sha256, p.git_commit,
                 None if p.git_dirty is None else int(p.git_dirty), p.employees]
                for p in stored.summary.policies]
    inputs = [[i.kind, i.name, i.sha256] for i in stored.inputs]
    tamper(book, "UPDATE runs SET hash = ? WHERE seq = 1",
           ledger.run_hash(fields, policies, inputs))
    result = cli("runs", "--verify", "--ledger", book)
    assert result.exit_code == 1
    assert "run R000002 does not link to the run before it (R000001)" in result.stderr


def test_a_deleted_run_is_found(small: Path, tmp_path: Path) -> None:
    book = tmp_path / "ledger.sqlite3"
    for period in ("2025-Q3", "2025-Q4", "2025-Q3", "2025-Q4"):
        run_small(small, book, period)
    head = cli("runs", "--verify", "--ledger", book).stdout.strip()
    for table in ("run_inputs", "run_policies", "runs"):
        tamper(book, f"DELETE FROM {table} WHERE seq = 2")
    middle = cli("runs", "--verify", "--ledger", book)
    assert middle.exit_code == 1
    assert "run R000002 is missing: deleted after it was recorded" in middle.stderr
    assert "run R000003 does not link to the run before it (R000001)" in middle.stderr
    # the last run: the ids given out, and the head recorded earlier, both show it
    for table in ("run_inputs", "run_policies", "runs"):
        tamper(book, f"DELETE FROM {table} WHERE seq = 4")
    last = cli("runs", "--verify", "--ledger", book, "--head", head)
    assert last.exit_code == 1
    assert "run R000004 is missing: deleted after it was recorded (the ledger gave out ids " \
        "up to R000004)" in last.stderr
    assert f"the chain head recorded earlier, {head}, is not in the ledger" in last.stderr


def test_a_head_recorded_earlier_holds_while_runs_are_added(small: Path, tmp_path: Path) -> None:
    book = tmp_path / "ledger.sqlite3"
    run_small(small, book)
    head = cli("runs", "--verify", "--ledger", book).stdout.strip()
    run_small(small, book, "2025-Q4")
    assert cli("runs", "--verify", "--ledger", book, "--head", head).exit_code == 0
    stranger = cli("runs", "--verify", "--ledger", book, "--head", "ab" * 32)
    assert stranger.exit_code == 1 and "is not in the ledger" in stranger.stderr
    assert cli("runs", "--verify", "--ledger", book, "--head", "xyz").exit_code == 2
    assert cli("runs", "--ledger", book, "--head", head).exit_code == 2  # needs --verify


def test_recorded_runs_cannot_be_changed_through_sqlite_by_accident(small: Path,
                                                                    tmp_path: Path) -> None:
    book = tmp_path / "ledger.sqlite3"
    run_small(small, book)
    connection = sqlite3.connect(book)
    for sql in ("UPDATE runs SET user = 'x'", "DELETE FROM runs", "DELETE FROM blobs",
                "UPDATE run_inputs SET name = 'x'", "DELETE FROM run_policies"):
        with pytest.raises(sqlite3.IntegrityError, match="never changed"):
            connection.execute(sql)
    connection.close()


# --- replay -----------------------------------------------------------------------------------

def test_replay_of_the_shipped_example_is_identical(tmp_path: Path) -> None:
    book = tmp_path / "ledger.sqlite3"
    assert run_example(book).exit_code == 0
    result = cli("replay", "R000001", "--ledger", book)
    assert result.exit_code == 0, result.stdout + result.stderr
    assert result.stdout == "R000001: identical: the replay gives the recorded results byte " \
                            "for byte (201 employee segment(s))\n"
    assert cli("replay", "1", "--ledger", book).exit_code == 0  # 1 means R000001


def test_replay_needs_no_original_file(small: Path, tmp_path: Path) -> None:
    book = tmp_path / "ledger.sqlite3"
    run_small(small, book, "2025-Q3", "--keep-going")
    (small / "p.yaml").unlink()
    (small / "facts.csv").unlink()
    assert cli("replay", "R000001", "--ledger", book).exit_code == 0


def test_replay_of_errors_and_a_to_date_run_is_identical(small: Path, tmp_path: Path) -> None:
    """Errors name files: the replay turns its scratch paths back into the recorded names."""
    (small / "facts.csv").write_text(FACTS + "E4,rep,2025-07,10,0\n", encoding="utf-8")
    book = tmp_path / "ledger.sqlite3"
    kept = run_small(small, book, "2025-Q3", "--keep-going")
    assert kept.exit_code == 0 and "E_EVAL_DIVIDE_BY_ZERO" in kept.stdout
    cli("run", small / "p.yaml", "--facts", small / "facts.csv", "--to-date", "2025-08",
        "--keep-going", "--format", "json", "--ledger", book)
    for run_id in ("R000001", "R000002"):
        result = cli("replay", run_id, "--ledger", book)
        assert result.exit_code == 0, result.stdout


def test_replay_after_tampering_with_stored_inputs_names_employees_and_amounts(
        small: Path, tmp_path: Path) -> None:
    book = tmp_path / "ledger.sqlite3"
    run_small(small, book)
    key, facts = blob_of(book, "R000001", table="run_inputs", where="AND t.kind = 'facts'")
    edited = facts.replace(b"E2,rep,2025-07,80,100", b"E2,rep,2025-07,110,100")
    assert edited != facts
    tamper(book, "UPDATE blobs SET data = ? WHERE sha256 = ?", zlib.compress(edited), key)
    result = cli("replay", "R000001", "--ledger", book)
    assert result.exit_code == 1
    assert codes(result) == ["E_LEDGER_TAMPERED"]
    assert "its facts file" in result.stderr and "is changed" in result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "R000001: the results differ from those recorded:"
    # 240 of 300 is 80%; 270 of 300 is 90%
    assert "  E2 (rep, 2025-07..2025-09): total_pay 800.00 -> 900.00" in lines
    assert "  E2 (rep, 2025-07..2025-09): rewards.bonus.amount 800.00 -> 900.00" in lines
    assert "  E2 (rep, 2025-07..2025-09): total_score 0.8000 -> 0.9000" in lines
    assert not any("E1" in line or "E3" in line for line in lines)


def test_replay_says_when_the_stored_policy_no_longer_loads(small: Path, tmp_path: Path) -> None:
    book = tmp_path / "ledger.sqlite3"
    run_small(small, book)
    key, text = blob_of(book, "R000001", table="run_policies")
    tamper(book, "UPDATE blobs SET data = ? WHERE sha256 = ?",
           zlib.compress(text.replace(b"revenue / quota", b"revenue / quotta")), key)
    result = cli("replay", "R000001", "--ledger", book)
    assert result.exit_code == 1
    assert "the replay failed" in result.stdout and "E_EXPR_UNKNOWN_NAME" in result.stdout
    assert str(small / "p.yaml") in result.stdout  # the recorded name, not a scratch path


def test_load_run_recomputes_the_recorded_results_with_the_trace(tmp_path: Path) -> None:
    book = tmp_path / "ledger.sqlite3"
    run_example(book)
    result, policies = ledger.load_run(book, "R000001")
    assert render_json(result).encode("utf-8") == ledger.stored_run(book, "R000001").results
    assert all(r.trace for r in result.results)
    assert [p.source for p in policies] == \
        [p.source for p in ledger.stored_run(book, "R000001").summary.policies]
    assert all(p.source.startswith(str(POLICIES)) for p in policies)
    assert ledger.latest_run_id(book) == "R000001"


def test_load_run_refuses_a_changed_run(small: Path, tmp_path: Path) -> None:
    book = tmp_path / "ledger.sqlite3"
    run_small(small, book)
    tamper(book, "UPDATE runs SET period = '2025-Q4'")
    with pytest.raises(ledger.FindingsError) as caught:
        ledger.load_run(book, "R000001")
    assert [d.code for d in caught.value.diagnostics] == ["E_LEDGER_TAMPERED"]


def test_an_unknown_run_id_is_exit_2_with_the_nearest_ids(small: Path, tmp_path: Path) -> None:
    book = tmp_path / "ledger.sqlite3"
    missing = cli("replay", "R000001", "--ledger", book)
    assert missing.exit_code == 2 and codes(missing) == ["E_UNKNOWN_RUN"]
    assert "holds no runs" in missing.stderr
    for period in ("2025-Q3", "2025-Q4", "2025-Q3", "2025-Q4"):
        run_small(small, book, period)
    result = cli("replay", "R000009", "--ledger", book)
    assert result.exit_code == 2 and codes(result) == ["E_UNKNOWN_RUN"]
    assert "no run R000009 in the ledger" in result.stderr
    assert "(it holds R000001 to R000004); nearest: R000002, R000003, R000004" in result.stderr
    other = cli("replay", "RUN-3", "--ledger", book)
    assert other.exit_code == 2 and "nearest:" in other.stderr


def test_reading_commands_never_change_the_ledger(small: Path, tmp_path: Path) -> None:
    book = tmp_path / "ledger" / "ledger.sqlite3"
    run_small(small, book)
    run_small(small, book, "2025-Q4")
    before = state(book)
    time.sleep(0.01)
    for args in (["runs"], ["runs", "--format", "json"], ["runs", "--verify"],
                 ["replay", "R000002"], ["replay", "R000007"]):
        cli(*args, "--ledger", book)
    assert state(book) == before
    assert ledger.load_run(book, "R000001")
    assert state(book) == before
    # nor do they create one
    absent = tmp_path / "none" / "ledger.sqlite3"
    assert cli("runs", "--ledger", absent).exit_code == 0
    assert not absent.parent.exists()


# --- files that are not ledgers, and versions ----------------------------------------------------

def not_ledgers(tmp_path: Path) -> Iterator[Path]:
    noise = tmp_path / "noise.sqlite3"
    noise.write_bytes(random.Random(5).randbytes(8192))
    yield noise
    for mode in ("delete", "wal"):
        other = tmp_path / f"other-{mode}.sqlite3"
        connection = sqlite3.connect(other)
        connection.execute(f"PRAGMA journal_mode = {mode}")
        connection.execute("CREATE TABLE notes (text TEXT)")
        connection.execute("INSERT INTO notes VALUES ('mine')")
        connection.commit()
        connection.close()
        yield other
    folder = tmp_path / "folder.sqlite3"
    folder.mkdir()
    yield folder


def test_a_file_that_is_not_a_ledger_is_refused_untouched(small: Path, tmp_path: Path) -> None:
    folder = tmp_path / "files"
    folder.mkdir()
    for path in not_ledgers(folder):
        before = path.read_bytes() if path.is_file() else None
        beside = sorted(os.listdir(path.parent))
        out = tmp_path / "out.json"
        result = run_small(small, path, "2025-Q3", "-o", out)
        assert result.exit_code == 2, (path, result.stderr)
        assert codes(result) == ["E_LEDGER_NOT_A_LEDGER"], path
        assert "left untouched" in result.stderr
        assert not out.exists()  # refused before the evaluation, nothing written
        for args in (["runs"], ["runs", "--verify"], ["replay", "R000001"]):
            read = cli(*args, "--ledger", path)
            assert read.exit_code == 2 and codes(read) == ["E_LEDGER_NOT_A_LEDGER"], path
        if before is not None:
            assert path.read_bytes() == before
        assert sorted(os.listdir(path.parent)) == beside  # no -journal, -wal or -shm left


def test_a_newer_ledger_is_refused_untouched(small: Path, tmp_path: Path) -> None:
    book = tmp_path / "ledger.sqlite3"
    run_small(small, book)
    connection = sqlite3.connect(book)
    connection.execute("PRAGMA user_version = 999")
    connection.close()
    before = book.read_bytes()
    for result in (run_small(small, book, "2025-Q4"), cli("runs", "--ledger", book),
                   cli("replay", "R000001", "--ledger", book)):
        assert result.exit_code == 2
        assert codes(result) == ["E_LEDGER_NEWER"]
        assert "schema version 999, newer than this meritpay's (1)" in result.stderr
    assert book.read_bytes() == before


def test_an_empty_file_becomes_a_ledger(small: Path, tmp_path: Path) -> None:
    book = tmp_path / "ledger.sqlite3"
    book.write_bytes(b"")
    assert cli("runs", "--ledger", book).exit_code == 0
    assert run_small(small, book).exit_code == 0
    connection = sqlite3.connect(book)
    assert connection.execute("PRAGMA user_version").fetchone()[0] == ledger.schema_version()
    assert connection.execute("PRAGMA application_id").fetchone()[0] == ledger.APPLICATION_ID
    assert connection.execute("PRAGMA journal_mode").fetchone()[0] == "delete"


def test_an_older_ledger_is_migrated_forward(small: Path, tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    book = tmp_path / "ledger.sqlite3"
    run_small(small, book)  # written at schema 1
    head = ledger.verify(book).head

    def to_v2(connection: sqlite3.Connection) -> None:
        connection.execute("CREATE TABLE run_notes (seq INTEGER REFERENCES runs(seq), "
                           "note TEXT NOT NULL)")

    monkeypatch.setitem(ledger.MIGRATIONS, 2, to_v2)
    # reading never migrates
    stale = cli("runs", "--ledger", book)
    assert stale.exit_code == 2 and "older schema version 1" in stale.stderr
    assert run_small(small, book, "2025-Q4").exit_code == 0  # writing does
    connection = sqlite3.connect(book)
    assert connection.execute("PRAGMA user_version").fetchone()[0] == 2
    assert connection.execute("SELECT count(*) FROM run_notes").fetchone()[0] == 0
    connection.close()
    checked = ledger.verify(book, head=head)
    assert checked.ok and checked.runs == 2


def test_a_failing_migration_leaves_the_ledger_untouched(small: Path, tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    book = tmp_path / "ledger.sqlite3"
    run_small(small, book)
    before = book.read_bytes()

    def broken(connection: sqlite3.Connection) -> None:
        connection.execute("CREATE TABLE half_done (x)")
        raise RuntimeError("the step failed halfway")

    monkeypatch.setitem(ledger.MIGRATIONS, 2, broken)
    inputs = RunInputs(facts=small / "facts.csv")
    result = run(load_policies([small / "p.yaml"]), inputs, "2025-Q4")
    with pytest.raises(RuntimeError, match="halfway"):
        ledger.record(book, result, ledger.snapshot(inputs), ledger.RunOptions("2025-Q4"),
                      command=["x"])
    assert book.read_bytes() == before


# --- when the ledger cannot be written -----------------------------------------------------------

def assert_earlier_runs_intact(book: Path, runs: int) -> None:
    checked = ledger.verify(book)
    assert checked.ok and checked.runs == runs


def test_a_busy_ledger_fails_with_exit_3_and_keeps_earlier_runs(
        small: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    book = tmp_path / "ledger.sqlite3"
    run_small(small, book)
    monkeypatch.setattr(ledger, "BUSY_TIMEOUT_MS", 200)
    holder = sqlite3.connect(book, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")  # another process in the middle of recording
    try:
        started = time.monotonic()
        result = run_small(small, book, "2025-Q4")
        assert time.monotonic() - started >= 0.2  # it waited before giving up
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert result.exit_code == 3
    assert codes(result) == ["E_LEDGER_BUSY"]
    assert "another process kept it locked" in result.stderr
    assert result.stdout == ""  # recorded before any output: nothing written either
    assert_earlier_runs_intact(book, 1)


def test_a_read_only_ledger_fails_with_exit_3_and_keeps_earlier_runs(
        small: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """chmod does not stop root, so this opens the writer's connection read-only (mode=ro):
    SQLite's own SQLITE_READONLY, whoever runs the test."""
    book = tmp_path / "ledger.sqlite3"
    run_small(small, book)
    before = book.read_bytes()
    connect = ledger._connect
    monkeypatch.setattr(ledger, "_connect",
                        lambda path, *, read_only: connect(path, read_only=True))
    result = run_small(small, book, "2025-Q4")
    assert result.exit_code == 3
    assert codes(result) == ["E_LEDGER_READ_ONLY"]
    assert "read-only" in result.stderr
    assert book.read_bytes() == before
    monkeypatch.undo()
    assert_earlier_runs_intact(book, 1)


@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0,
                    reason="running as root, whom chmod does not stop; the read-only case is "
                           "covered by test_a_read_only_ledger_fails_with_exit_3_and_keeps_"
                           "earlier_runs")
def test_a_read_only_file_and_folder_fail_with_exit_3(small: Path, tmp_path: Path) -> None:
    book = tmp_path / "ro" / "ledger.sqlite3"
    run_small(small, book)
    before = book.read_bytes()
    book.chmod(0o444)
    book.parent.chmod(0o555)
    try:
        result = run_small(small, book, "2025-Q4")
        assert result.exit_code == 3 and codes(result) == ["E_LEDGER_READ_ONLY"]
        assert cli("runs", "--verify", "--ledger", book).exit_code == 0  # reading still works
    finally:
        book.parent.chmod(0o755)
        book.chmod(0o644)
    assert book.read_bytes() == before
    fresh = tmp_path / "ro2"
    fresh.mkdir(mode=0o555)
    try:
        result = run_small(small, fresh / "ledger.sqlite3")
        assert result.exit_code == 3 and codes(result) == ["E_LEDGER_READ_ONLY"]
    finally:
        fresh.chmod(0o755)


def test_a_full_disk_fails_with_exit_3_and_keeps_earlier_runs(
        small: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """SQLite's own SQLITE_FULL: the writer's connection may not grow the file by a page."""
    book = tmp_path / "ledger.sqlite3"
    run_small(small, book)
    connect = ledger._connect

    def full(path: Path, *, read_only: bool) -> sqlite3.Connection:
        connection = connect(path, read_only=read_only)
        pages = connection.execute("PRAGMA page_count").fetchone()[0]
        connection.execute(f"PRAGMA max_page_count = {pages}")
        return connection

    monkeypatch.setattr(ledger, "_connect", full)
    result = run_example(book)  # new files and results: new pages
    assert result.exit_code == 3
    assert codes(result) == ["E_LEDGER_DISK_FULL"]
    assert "the disk is full" in result.stderr and result.stdout == ""
    monkeypatch.undo()
    assert_earlier_runs_intact(book, 1)


def test_no_space_for_the_ledger_folder_is_exit_3(small: Path, tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    def no_space(self: Path, *args: Any, **kwargs: Any) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(Path, "mkdir", no_space)
    result = run_small(small, tmp_path / "new" / "ledger.sqlite3")
    assert result.exit_code == 3 and codes(result) == ["E_LEDGER_DISK_FULL"]


def test_a_damaged_ledger_file_is_exit_3(small: Path, tmp_path: Path) -> None:
    book = tmp_path / "ledger.sqlite3"
    for period in ("2025-Q3", "2025-Q4"):
        run_small(small, book, period)
    data = bytearray(book.read_bytes())
    page = int.from_bytes(data[16:18], "big")
    data[page:] = random.Random(7).randbytes(len(data) - page)  # every page after the first
    book.write_bytes(bytes(data))
    for args in (["runs"], ["runs", "--verify"], ["replay", "R000001"]):
        result = cli(*args, "--ledger", book)
        assert result.exit_code == 3, (args, result.stderr)
        assert codes(result) == ["E_LEDGER_CORRUPT"]


# --- durability: killed runs, runs at once ------------------------------------------------------

def meritpay(*args: str | Path, book: Path) -> subprocess.Popen[bytes]:
    command = [str(MERITPAY)] if MERITPAY.exists() else [
        sys.executable, "-c", "import sys; from cli import main; sys.exit(main())"]
    return subprocess.Popen([*command, *map(str, args)], cwd=ROOT,
                            env={**os.environ, "MERITPAY_LEDGER": str(book)},
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def test_reading_after_an_interrupted_run_says_so_until_the_next_run(small: Path,
                                                                       tmp_path: Path) -> None:
    book = tmp_path / "ledger.sqlite3"
    run_small(small, book)
    # a writer killed mid-transaction, after SQLite spilled pages to the file: a hot journal
    script = (
        "import os, signal, sqlite3, sys\n"
        "c = sqlite3.connect(sys.argv[1], isolation_level=None)\n"
        "c.execute('PRAGMA cache_size = 10')\n"
        "c.execute('BEGIN IMMEDIATE')\n"
        "for i in range(40):\n"
        "    c.execute('INSERT INTO blobs VALUES (?, 1, randomblob(100000))', (str(i),))\n"
        "os.kill(os.getpid(), signal.SIGKILL)\n")
    killed = subprocess.run([sys.executable, "-c", script, str(book)], check=False)
    assert killed.returncode == -signal.SIGKILL
    assert Path(f"{book}-journal").exists()
    read = cli("runs", "--ledger", book)
    assert read.exit_code == 3 and codes(read) == ["E_LEDGER_INTERRUPTED"]
    assert Path(f"{book}-journal").exists()  # reading did not roll it back
    assert run_small(small, book, "2025-Q4").exit_code == 0  # the next run does
    assert not Path(f"{book}-journal").exists()
    assert_earlier_runs_intact(book, 2)


@pytest.fixture(scope="module")
def big_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    spec = importlib.util.spec_from_file_location("examples_generate", EXAMPLES / "generate.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    folder = tmp_path_factory.mktemp("big")
    module.generate(folder, employees=2000)
    return folder


def test_a_run_killed_halfway_leaves_no_partial_run(big_data: Path, tmp_path: Path) -> None:
    """Runs on 2,000 employees are killed (SIGKILL) at fixed delays, and when the ledger's
    journal appears (inside the recording transaction) or just after. After each the ledger
    holds the earlier run and at most one whole new run, and passes integrity_check."""
    seed = tmp_path / "seed.sqlite3"
    assert run_example(seed).exit_code == 0  # an earlier run, which must survive
    args = ("run", POLICIES, "--data", big_data, "--period", "2025-Q3", "--format", "csv",
            "-o", os.devnull)
    # (name, kill so many seconds after the start, or (None) after the journal appears)
    plans: list[tuple[str, float | None, float]] = [
        ("at-1s", 1.0, 0), ("at-3s", 3.0, 0),
        ("journal", None, 0), ("journal+5ms", None, 0.005)]
    outcomes: dict[str, str] = {}
    for batch in (plans[:2], plans[2:]):  # two at a time: the machine may have two cores
        running = {}
        for name, delay, after in batch:
            book = tmp_path / name / "ledger.sqlite3"
            book.parent.mkdir()
            shutil.copy(seed, book)
            running[name] = (meritpay(*args, book=book), delay, after, time.monotonic())
        seen: dict[str, float] = {}
        while running:
            for name, (process, delay, after, began) in list(running.items()):
                journal = tmp_path / name / "ledger.sqlite3-journal"
                now = time.monotonic()
                if delay is None and name not in seen and journal.exists():
                    seen[name] = now
                due = now - began >= delay if delay is not None else \
                    name in seen and now - seen[name] >= after
                if process.poll() is not None:
                    outcomes[name] = "finished"
                elif due:
                    hot = journal.exists()
                    process.send_signal(signal.SIGKILL)
                    process.wait()
                    if not hot:
                        outcomes[name] = "killed"
                    elif journal.exists():  # a hot journal: the transaction was open
                        outcomes[name] = "killed in the transaction"
                    else:
                        outcomes[name] = "killed as it committed"
                else:
                    continue
                if process.stderr:
                    process.stderr.close()
                del running[name]
            time.sleep(0.0005)

    earlier = ledger.list_runs(seed)[0]
    for name, _, _ in plans:
        book = tmp_path / name / "ledger.sqlite3"
        connection = sqlite3.connect(book)  # a writer: rolls back a hot journal, as a run does
        assert connection.execute("PRAGMA integrity_check").fetchall() == [("ok",)], name
        connection.close()
        checked = ledger.verify(book)
        assert checked.ok, (name, checked.problems)
        runs = ledger.list_runs(book)
        assert runs[0] == earlier, name
        # a hot journal is rolled back; killed just after its commit, a run is whole
        want = {"finished": {2}, "killed in the transaction": {1}}.get(outcomes[name], {1, 2})
        assert len(runs) in want, (name, outcomes[name])
        if len(runs) == 2:  # a whole run: every employee, every blob (verify read them all)
            assert runs[1].employees == 2000, name
    assert outcomes["at-1s"] == "killed", outcomes  # killed while evaluating
    # the journal was seen, and killing then left no partial run
    assert "killed in the transaction" in outcomes.values(), outcomes


def test_two_runs_at_once_both_land(tmp_path: Path) -> None:
    book = tmp_path / "new" / "ledger.sqlite3"  # neither finds a ledger: both create it
    args = ("run", POLICIES, "--data", EXAMPLES, "--period", "2025-Q3", "-o", os.devnull)
    first, second = meritpay(*args, book=book), meritpay(*args, book=book)
    for process in (first, second):
        assert process.wait(timeout=120) == 0, process.stderr.read() if process.stderr else ""
        if process.stderr:
            process.stderr.close()
    runs = ledger.list_runs(book)
    assert [r.run_id for r in runs] == ["R000001", "R000002"]
    assert ledger.verify(book).ok
