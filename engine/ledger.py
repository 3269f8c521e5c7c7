"""The ledger: every run recorded in an embedded SQLite database, tamper-evident and replayable.

    RunResult + the bytes of its input files -> one run in the ledger -> replay -> RunResult

Where it lives: `$MERITPAY_LEDGER`, else `$XDG_DATA_HOME/meritpay/ledger.sqlite3`, else
`~/.local/share/meritpay/ledger.sqlite3`: outside any policy repository, so pay data is never
committed by accident.

A run stores its id, UTC time, OS user, command line, period and options, the engine version;
each policy loaded (id, version, text, sha256, git commit and whether the file had uncommitted
changes); the bytes of every input file (with its name and sha256); the canonical JSON of the
results (`report.render_json`); the hash of the previous run and its own hash. Texts and files
are kept once each in `blobs`, zlib-compressed and keyed by the sha256 of their bytes.

Run ids are `R` and the run's sequence number in six digits or more (R000001, R000002...):
they sort in the order the runs were recorded, and a number is never given out twice
(AUTOINCREMENT), so a deleted run leaves a gap that `verify` reports.

The hash chain: a run's hash is the sha256 of the canonical JSON (sorted keys, no spaces) of
every stored field of the run, its policies and its inputs, the previous run's hash included
(64 zeros for the first run). Blob contents enter through their sha256, which `verify` checks
against the bytes. `verify` recomputes every hash and link and returns the chain head (the last
hash) for CI or git to record: a ledger rewritten and re-chained from some run on is otherwise
undetectable, but no longer holds a head recorded earlier.

Durability: a run is recorded in one transaction (BEGIN IMMEDIATE ... COMMIT), after all the
slow work (rendering, compressing, hashing, asking git), with `synchronous=FULL` and a rollback
journal (`journal_mode=DELETE`) rather than WAL, because
- after every commit the ledger is one self-contained file: a WAL ledger keeps committed runs in
  its `-wal` file until a checkpoint, so copying or archiving the main file alone loses them;
- reading commands (runs, replay, explain) open the file read-only and create nothing, which
  works on a read-only file or folder; a WAL reader needs a `-shm` file beside the ledger;
- WAL's gain, readers not blocking the writer, is irrelevant at one short write per run, and
  WAL does not work on network file systems.
A process killed mid-transaction leaves a hot journal; the next writer rolls it back, so a run
is recorded whole or not at all. Two runs at once queue on the write lock (`busy_timeout`).

Schema versions live in `PRAGMA user_version`; `PRAGMA application_id` marks the file as a
meritpay ledger. Opening for writing migrates an older ledger forward (MIGRATIONS, all steps in
one transaction); a newer one, or a file that is not a ledger, is refused and left untouched.
Reading opens read-only (`mode=ro`) and never changes the file.
"""

from __future__ import annotations

import difflib
import errno
import getpass
import hashlib
import io
import json
import os
import re
import sqlite3
import subprocess
import tempfile
import zlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path, PurePath
from typing import IO, Any

from .diagnostics import (
    Diagnostic,
    EnvironmentFailure,
    FindingsError,
    InputError,
    Location,
    MeritpayError,
    Severity,
)
from .fast import tracing
from .model import CompiledPolicy
from .report import render_json, render_json_chunks
from .run import RunInputs, RunResult, load_policies, run

APPLICATION_ID = 0x4D504C47  # "MPLG" in the SQLite header: this file is a meritpay ledger
GENESIS = "0" * 64  # the previous hash of the first run
HASH_VERSION = 1  # how a run's hash is computed; stored with each run
BUSY_TIMEOUT_MS = 30_000  # how long a run waits for another to finish recording
GIT_TIMEOUT_S = 10
INPUT_KINDS = ("facts", "ratings", "teams", "team_facts", "company_facts", "lines")
_SQLITE_HEADER = b"SQLite format 3\x00"
_RUN_ID = re.compile(r"R?0*(\d+)", re.IGNORECASE)


# --- where ------------------------------------------------------------------------------------

def default_path(environ: Mapping[str, str] | None = None) -> Path:
    """$MERITPAY_LEDGER, else $XDG_DATA_HOME/meritpay/ledger.sqlite3, else
    ~/.local/share/meritpay/ledger.sqlite3 (a relative XDG_DATA_HOME is ignored, as the XDG
    specification says)."""
    env = os.environ if environ is None else environ
    if env.get("MERITPAY_LEDGER"):
        return Path(env["MERITPAY_LEDGER"]).expanduser()
    data_home = env.get("XDG_DATA_HOME", "")
    if data_home and Path(data_home).is_absolute():
        base = Path(data_home)
    else:
        try:
            base = Path.home() / ".local" / "share"
        except RuntimeError:  # no HOME and no password entry
            raise InputError("cannot find a home folder for the ledger: set MERITPAY_LEDGER "
                             "or give --ledger PATH") from None
    return base / "meritpay" / "ledger.sqlite3"


# --- the schema and its migrations --------------------------------------------------------------

_V1 = (
    """CREATE TABLE blobs (
        sha256 TEXT PRIMARY KEY,       -- of the uncompressed bytes
        size INTEGER NOT NULL,         -- uncompressed
        data BLOB NOT NULL             -- zlib
    )""",
    """CREATE TABLE runs (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        run_id TEXT NOT NULL UNIQUE,   -- R000001
        created TEXT NOT NULL,         -- UTC, 2025-10-02T08:15:30.123456Z
        user TEXT NOT NULL,
        command TEXT NOT NULL,         -- JSON list of the arguments
        period TEXT NOT NULL,          -- the period's label, 2025-Q3
        options TEXT NOT NULL,         -- JSON: period as given, to_date, keep_going, encoding
        engine_version TEXT NOT NULL,
        employees INTEGER NOT NULL,    -- distinct employees with results
        segments INTEGER NOT NULL,     -- result rows (an employee changing role has two)
        errors INTEGER NOT NULL,       -- segments not evaluated (--keep-going)
        totals TEXT NOT NULL,          -- JSON {currency: total pay}
        results_sha256 TEXT NOT NULL REFERENCES blobs(sha256),
        hash_version INTEGER NOT NULL,
        prev_hash TEXT NOT NULL,
        hash TEXT NOT NULL UNIQUE
    )""",
    """CREATE TABLE run_policies (
        seq INTEGER NOT NULL REFERENCES runs(seq),
        position INTEGER NOT NULL,     -- the order the policies were loaded in
        policy TEXT NOT NULL,
        version TEXT NOT NULL,
        source TEXT NOT NULL,          -- the file as given
        sha256 TEXT NOT NULL REFERENCES blobs(sha256),  -- of the text, UTF-8
        git_commit TEXT,               -- HEAD of the file's repository; NULL outside git
        git_dirty INTEGER,             -- 1 when the file differs from that commit
        employees INTEGER NOT NULL,    -- segments evaluated under this policy
        PRIMARY KEY (seq, position)
    )""",
    """CREATE TABLE run_inputs (
        seq INTEGER NOT NULL REFERENCES runs(seq),
        kind TEXT NOT NULL,            -- facts, ratings, teams, team_facts, company_facts, lines
        name TEXT NOT NULL,            -- the file as given
        sha256 TEXT NOT NULL REFERENCES blobs(sha256),
        PRIMARY KEY (seq, kind)
    )""",
    *(f"""CREATE TRIGGER {table}_never_{action} BEFORE {action.upper()} ON {table}
          BEGIN SELECT RAISE(ABORT, 'recorded runs are never changed'); END"""
      for table in ("runs", "run_policies", "run_inputs", "blobs")
      for action in ("update", "delete")),
)


def _migrate_to_v1(connection: sqlite3.Connection) -> None:
    for statement in _V1:
        connection.execute(statement)


# Each step takes the ledger from the version before it to its own; all steps run in one
# transaction. A step must keep every recorded run and its hash (add, never rewrite).
MIGRATIONS: dict[int, Callable[[sqlite3.Connection], None]] = {1: _migrate_to_v1}


def schema_version() -> int:
    """The ledger schema this meritpay writes."""
    return max(MIGRATIONS)


# --- errors -----------------------------------------------------------------------------------

def _diagnostic(code: str, path: Path, message: str, hint: str) -> list[Diagnostic]:
    return [Diagnostic(code, Severity.ERROR, Location(str(path)), message, hint)]


def not_a_ledger(path: Path, why: str) -> InputError:
    message = f"{path} is not a meritpay ledger ({why}); it was left untouched"
    return InputError(message, _diagnostic(
        "E_LEDGER_NOT_A_LEDGER", path, message,
        "give --ledger a new file name, or the path of a ledger meritpay wrote"))


def _failure(error: sqlite3.Error, path: Path, writing: bool) -> MeritpayError:
    """A SQLite error as one of ours, with a code where the cause is known."""
    name = getattr(error, "sqlite_errorname", None) or ""
    text = str(error)
    doing = "record the run in" if writing else "read"
    if name == "SQLITE_READONLY_ROLLBACK":
        message = (f"cannot read the ledger {path}: an interrupted run left a journal "
                   f"({path.name}-journal) that only a writer may roll back")
        return EnvironmentFailure(message, _diagnostic(
            "E_LEDGER_INTERRUPTED", path, message,
            "the next `meritpay run` rolls it back (the interrupted run was never recorded, "
            "the others are intact); then read again"))
    if name.startswith(("SQLITE_BUSY", "SQLITE_LOCKED")) or "locked" in text:
        message = (f"cannot {doing} the ledger {path}: another process kept it locked for "
                   f"{BUSY_TIMEOUT_MS // 1000} s")
        return EnvironmentFailure(message, _diagnostic(
            "E_LEDGER_BUSY", path, message,
            "try again when the other meritpay has finished; earlier runs are intact"))
    if name.startswith("SQLITE_READONLY") or "readonly" in text or (
            writing and (name.startswith("SQLITE_CANTOPEN") or "unable to open" in text)):
        message = f"cannot {doing} the ledger {path}: it or its folder is read-only ({text})"
        return EnvironmentFailure(message, _diagnostic(
            "E_LEDGER_READ_ONLY", path, message,
            "make the file and its folder writable, or give --ledger another path "
            "(--no-ledger for a throwaway run); earlier runs are intact"))
    if name == "SQLITE_FULL" or "disk is full" in text:
        message = f"cannot {doing} the ledger {path}: the disk is full"
        return EnvironmentFailure(message, _diagnostic(
            "E_LEDGER_DISK_FULL", path, message,
            "free some space and run again; nothing of this run was recorded, earlier runs "
            "are intact"))
    if name == "SQLITE_NOTADB" or "not a database" in text:
        return not_a_ledger(path, "not an SQLite database")
    if name.startswith("SQLITE_CORRUPT") or "malformed" in text:
        message = f"the ledger {path} is damaged: {text}"
        return EnvironmentFailure(message, _diagnostic(
            "E_LEDGER_CORRUPT", path, message,
            "restore it from a backup; `meritpay runs --verify` on the copy checks it"))
    return EnvironmentFailure(f"cannot {doing} the ledger {path}: {text}")


def _os_failure(error: OSError, path: Path, writing: bool) -> MeritpayError:
    if error.errno == errno.ENOSPC:
        return _failure(sqlite3.OperationalError("database or disk is full"), path, writing)
    if writing and error.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
        return _failure(sqlite3.OperationalError(
            f"attempt to write a readonly database: {error.strerror}"), path, writing)
    doing = "record the run in" if writing else "read"
    return EnvironmentFailure(f"cannot {doing} the ledger {path}: {error.strerror or error}")


@contextmanager
def _translated(path: Path, *, writing: bool) -> Iterator[None]:
    try:
        yield
    except sqlite3.Error as error:
        raise _failure(error, path, writing) from None
    except OSError as error:
        raise _os_failure(error, path, writing) from None


# --- opening ----------------------------------------------------------------------------------

def _connect(path: Path, *, read_only: bool) -> sqlite3.Connection:
    """The one place a connection is made (tests replace it to simulate failures)."""
    if read_only:
        return sqlite3.connect(path.resolve().as_uri() + "?mode=ro", uri=True,
                               isolation_level=None, timeout=BUSY_TIMEOUT_MS / 1000)
    return sqlite3.connect(str(path), isolation_level=None, timeout=BUSY_TIMEOUT_MS / 1000)


def _check_header(path: Path) -> None:
    """Refuse, before SQLite touches it, a file that is not an SQLite database, or a database
    in WAL mode of another program (opening one creates -wal and -shm files beside it; a
    ledger is never in WAL mode)."""
    if path.is_dir():
        raise not_a_ledger(path, "it is a folder")
    if not path.exists():
        return
    if not path.is_file():  # a FIFO would block the read forever; a device takes no journal
        raise not_a_ledger(path, "a device or pipe, not a file")
    with path.open("rb") as stream:
        head = stream.read(100)
    if head and head[:len(_SQLITE_HEADER)] != _SQLITE_HEADER:
        raise not_a_ledger(path, "not an SQLite database")
    if len(head) == 100 and 2 in head[18:20] \
            and int.from_bytes(head[68:72], "big") != APPLICATION_ID:
        raise not_a_ledger(path, "an SQLite database of another program")


def _identify(connection: sqlite3.Connection, path: Path) -> int:
    """The ledger's schema version; 0 for an empty database (a new ledger)."""
    application = connection.execute("PRAGMA application_id").fetchone()[0]
    version = connection.execute("PRAGMA user_version").fetchone()[0]
    tables = connection.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]
    if application == APPLICATION_ID:
        if version > schema_version():
            message = (f"the ledger {path} has schema version {version}, newer than this "
                       f"meritpay's ({schema_version()}); it was left untouched")
            raise InputError(message, _diagnostic(
                "E_LEDGER_NEWER", path, message,
                "use the newer meritpay that wrote it, or give --ledger another path"))
        return int(version)
    if application == 0 and version == 0 and tables == 0:
        return 0
    raise not_a_ledger(path, "an SQLite database without meritpay's tables")


def _migrate(connection: sqlite3.Connection, path: Path) -> None:
    """Bring the ledger to schema_version() in one transaction (others may race us here)."""
    connection.execute("BEGIN IMMEDIATE")
    try:
        version = _identify(connection, path)  # again, under the write lock
        for step in range(version + 1, schema_version() + 1):
            MIGRATIONS[step](connection)
        if version < schema_version():
            connection.execute(f"PRAGMA application_id = {APPLICATION_ID}")
            connection.execute(f"PRAGMA user_version = {schema_version()}")
        connection.execute("COMMIT")
    except BaseException:
        connection.execute("ROLLBACK")
        raise


@contextmanager
def _writer(path: Path) -> Iterator[sqlite3.Connection]:
    """A connection that may write, to a ledger migrated to the current schema."""
    with _translated(path, writing=True):
        path.parent.mkdir(parents=True, exist_ok=True)
        _check_header(path)
        connection = _connect(path, read_only=False)
        try:
            connection.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            version = _identify(connection, path)
            # only now that the file is known to be ours (or empty) may anything change
            connection.execute("PRAGMA journal_mode = DELETE").fetchone()
            connection.execute("PRAGMA synchronous = FULL")
            if version < schema_version():
                _migrate(connection, path)
            yield connection
        finally:
            connection.close()  # an open transaction is rolled back


@contextmanager
def _reader(path: Path) -> Iterator[sqlite3.Connection | None]:
    """A read-only connection, or None when there is no ledger (or an empty one) yet."""
    if not path.exists():
        yield None
        return
    with _translated(path, writing=False):
        _check_header(path)
        connection = _connect(path, read_only=True)
        try:
            connection.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            version = _identify(connection, path)
            if version == 0:
                yield None
            elif version < schema_version():
                raise InputError(f"the ledger {path} has the older schema version {version}; "
                                 "the next `meritpay run` migrates it")
            else:
                yield connection
        finally:
            connection.close()


def preflight(path: Path) -> None:
    """Refuse early, before a long evaluation, a ledger that can never be written: a file that
    is not a ledger, or a newer one. Reads only; other problems (busy, read-only, an
    interrupted run's journal) are left for recording to report or repair."""
    if not path.exists():
        return
    with _translated(path, writing=False):
        _check_header(path)
        connection = _connect(path, read_only=True)
        try:
            _identify(connection, path)
        except sqlite3.Error as error:
            failure = _failure(error, path, False)
            if isinstance(failure, InputError):
                raise failure from None
        finally:
            connection.close()


# --- what a run stores --------------------------------------------------------------------------

@dataclass(frozen=True)
class InputFile:
    kind: str  # one of INPUT_KINDS
    name: str  # the path as given
    sha256: str  # of its bytes
    data: bytes | None = field(default=None, repr=False)  # a stored run's; else read from name


@dataclass(frozen=True)
class RunOptions:
    """What, besides the files, a replay needs to evaluate the run again."""

    period: str  # as given (2025-Q3, 2025-08-15); "" for a --to-date run
    to_date: str | None = None
    keep_going: bool = False
    encoding: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"period": self.period, "to_date": self.to_date, "keep_going": self.keep_going,
                "encoding": self.encoding}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> RunOptions:
        return cls(str(data.get("period", "")), data.get("to_date"),
                   bool(data.get("keep_going", False)), data.get("encoding"))


@dataclass(frozen=True)
class PolicyRecord:
    position: int
    policy: str
    version: str
    source: str
    sha256: str
    git_commit: str | None
    git_dirty: bool | None
    employees: int  # segments evaluated under it; 0 for a policy loaded but not used


@dataclass(frozen=True)
class RunSummary:
    run_id: str
    seq: int
    created: str
    user: str
    command: tuple[str, ...]
    period: str
    options: RunOptions
    engine_version: str
    employees: int
    segments: int
    errors: int
    totals: tuple[tuple[str, str], ...]  # (currency, total pay)
    policies: tuple[PolicyRecord, ...]
    prev_hash: str
    hash: str


@dataclass(frozen=True)
class Recorded:
    run_id: str
    path: Path
    hash: str


def snapshot(inputs: RunInputs) -> tuple[InputFile, ...]:
    """The sha256 of each of a run's input files, read before the run (record() stores their
    bytes, and checks that they did not change while it ran). A file is read a chunk at a
    time, never held whole."""
    files: list[InputFile] = []
    for kind in INPUT_KINDS:
        path = getattr(inputs, kind)
        if path is None:
            continue
        if not isinstance(path, Path):
            raise TypeError("the ledger records runs whose inputs are files")
        files.append(InputFile(kind, str(path), _pack(path, None)[1]))
    return tuple(files)


_CHUNK = 1 << 20


def _pack(path: Path, into: IO[bytes] | None) -> tuple[int, str]:
    """The size and sha256 of a file's bytes, read a chunk at a time; with `into`, the bytes
    are written there zlib-compressed as they are read."""
    digest = hashlib.sha256()
    size = 0
    packer = zlib.compressobj(6)

    def spill(data: bytes) -> None:
        if into is not None:
            try:
                into.write(data)
            except OSError as error:  # the temporary folder is full
                raise EnvironmentFailure(f"cannot write a temporary copy of {path} for the "
                                         f"ledger: {error.strerror or error}") from None

    try:
        with path.open("rb") as stream:
            while chunk := stream.read(_CHUNK):
                digest.update(chunk)
                size += len(chunk)
                if into is not None:
                    spill(packer.compress(chunk))
    except OSError as error:
        raise InputError(f"cannot read {path}: {error.strerror}", [Diagnostic(
            "E_FILE_UNREADABLE", Severity.ERROR, Location(str(path)),
            f"cannot read the file: {error.strerror}", "check the path and its permissions")]
        ) from None
    spill(packer.flush())
    return size, digest.hexdigest()


def git_state(path: Path) -> tuple[str | None, bool | None]:
    """(HEAD commit, whether the file differs from it) when the file is in a git repository;
    (None, None) without git or outside a repository. Never fails."""
    directory = str(path.resolve().parent)
    env = {k: v for k, v in os.environ.items()
           if k not in ("GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE")}
    env.update(GIT_OPTIONAL_LOCKS="0", LC_ALL="C")  # status must not write the index

    def git(*args: str) -> str | None:
        try:
            done = subprocess.run(["git", "-C", directory, *args], capture_output=True,
                                  text=True, timeout=GIT_TIMEOUT_S, env=env, check=False)
        except (OSError, subprocess.SubprocessError, UnicodeDecodeError):
            return None
        return done.stdout if done.returncode == 0 else None

    head = git("rev-parse", "HEAD")
    if head is None or not re.fullmatch(r"[0-9a-f]{40,64}", head.strip()):
        return None, None
    # --ignored: an ignored file is not in the commit either
    status = git("status", "--porcelain", "--ignored", "--", path.name)
    return head.strip(), None if status is None else bool(status.strip())


def _os_user() -> str:
    try:
        return getpass.getuser()
    except (OSError, KeyError):
        return str(os.getuid()) if hasattr(os, "getuid") else "unknown"


def _canonical(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(",", ":"))


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def run_id_of(seq: int) -> str:
    return f"R{seq:06d}"


# The columns of `runs` that enter the hash (all of them but the hash itself).
_HASHED = ("seq", "run_id", "created", "user", "command", "period", "options",
           "engine_version", "employees", "segments", "errors", "totals", "results_sha256",
           "hash_version", "prev_hash")
_POLICY_COLUMNS = ("position", "policy", "version", "source", "sha256", "git_commit",
                   "git_dirty", "employees")
_INPUT_COLUMNS = ("kind", "name", "sha256")


def run_hash(run_row: Mapping[str, Any], policies: Sequence[Sequence[Any]],
             inputs: Sequence[Sequence[Any]]) -> str:
    """sha256 of every stored field of a run in a fixed canonical form (HASH_VERSION 1)."""
    document = {
        "format": "meritpay-ledger-run",
        "run": {name: run_row[name] for name in _HASHED},
        "policies": [dict(zip(_POLICY_COLUMNS, row, strict=True))
                     for row in sorted(policies, key=lambda r: int(r[0]))],
        "inputs": [dict(zip(_INPUT_COLUMNS, row, strict=True))
                   for row in sorted(inputs, key=lambda r: str(r[0]))],
    }
    return _digest(_canonical(document).encode("utf-8"))


def record(path: Path, result: RunResult, inputs: Sequence[InputFile], options: RunOptions, *,
           command: Sequence[str]) -> Recorded:
    """Record a run in one transaction; returns its id and hash.

    EnvironmentFailure (exit 3) when the ledger is busy, read-only or the disk is full;
    InputError (exit 2) when the path is not a ledger, a newer one, or an input file changed
    while the run read it. Nothing is recorded then, and earlier runs are intact.
    """
    with ExitStack() as stack:
        # each input file compressed into a temporary file as it is read again: its bytes are
        # never held whole, and a file that changed since the snapshot is caught here
        packed = []
        for item in inputs:
            spool = stack.enter_context(tempfile.TemporaryFile(prefix="meritpay-ledger-"))
            size, digest = _pack(Path(item.name), spool)
            if digest != item.sha256:
                raise InputError(f"{item.name} changed while meritpay was reading it; nothing "
                                 "was written or recorded: run again")
            packed.append((item.sha256, size, spool))
        return _record(path, result, inputs, packed, options, command)


def _results_blob(result: RunResult, ready: dict[str, tuple[int, bytes]]) -> str:
    """The results' JSON (report.render_json) compressed as it is rendered: its key."""
    digest = hashlib.sha256()
    packer = zlib.compressobj(6)
    size, parts = 0, []
    for chunk in render_json_chunks(result):
        data = chunk.encode("utf-8")
        digest.update(data)
        size += len(data)
        parts.append(packer.compress(data))
    parts.append(packer.flush())
    key = digest.hexdigest()
    ready[key] = (size, b"".join(parts))
    return key


def _record(path: Path, result: RunResult, inputs: Sequence[InputFile],
            packed: Sequence[tuple[str, int, IO[bytes]]], options: RunOptions,
            command: Sequence[str]) -> Recorded:
    from . import __version__

    blobs: dict[str, bytes] = {}

    def blob(data: bytes) -> str:
        key = _digest(data)
        blobs[key] = data
        return key

    ready: dict[str, tuple[int, bytes]] = {}  # compressed already: the results
    results_sha256 = _results_blob(result, ready)
    used: dict[tuple[str, str], int] = {}
    for employee in result.results:
        key = (employee.policy, employee.version)
        used[key] = used.get(key, 0) + 1
    policies = []
    for position, policy in enumerate(result.policies):
        commit, dirty = git_state(Path(policy.source))
        policies.append((position, policy.policy, policy.version, policy.source,
                         blob(policy.text.encode("utf-8")), commit,
                         None if dirty is None else int(dirty),
                         used.get((policy.policy, policy.version), 0)))
    input_rows = [(item.kind, item.name, item.sha256) for item in inputs]
    totals: dict[str, Decimal] = {}
    for employee in result.results:
        totals[employee.currency] = totals.get(employee.currency, Decimal(0)) + employee.total_pay
    fields: dict[str, Any] = {
        "user": _os_user(),
        "command": _canonical(list(command)),
        "period": result.period.label,
        "options": _canonical(options.to_json()),
        "engine_version": __version__,
        "employees": len({r.employee for r in result.results}),
        "segments": len(result.results),
        "errors": len(result.errors),
        "totals": _canonical({c: str(t) for c, t in sorted(totals.items())}),
        "results_sha256": results_sha256,
        "hash_version": HASH_VERSION,
    }
    compressed = {key: (len(data), zlib.compress(data, 6)) for key, data in blobs.items()}
    compressed.update(ready)

    with _writer(path) as connection, _translated(path, writing=True):
        connection.execute("BEGIN IMMEDIATE")
        last = connection.execute(
            "SELECT seq, hash FROM runs ORDER BY seq DESC LIMIT 1").fetchone()
        allocated = connection.execute(
            "SELECT seq FROM sqlite_sequence WHERE name = 'runs'").fetchone()
        seq = max(last[0] if last else 0, allocated[0] if allocated else 0) + 1
        fields.update(seq=seq, run_id=run_id_of(seq), prev_hash=last[1] if last else GENESIS,
                      created=datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"))
        fields["hash"] = run_hash(fields, policies, input_rows)
        connection.executemany(
            "INSERT OR IGNORE INTO blobs (sha256, size, data) VALUES (?, ?, ?)",
            [(key, size, data) for key, (size, data) in sorted(compressed.items())])
        for digest, size, spool in packed:  # written into the blob a chunk at a time
            inserted = connection.execute(
                "INSERT OR IGNORE INTO blobs (sha256, size, data) VALUES (?, ?, zeroblob(?))",
                (digest, size, spool.tell()))
            if inserted.rowcount == 1 and inserted.lastrowid is not None:
                spool.seek(0)
                with connection.blobopen("blobs", "data", inserted.lastrowid) as target:
                    while chunk := spool.read(_CHUNK):
                        target.write(chunk)
        names = (*_HASHED, "hash")
        connection.execute(
            f"INSERT INTO runs ({', '.join(names)}) VALUES ({', '.join('?' for _ in names)})",
            [fields[name] for name in names])
        connection.executemany(
            "INSERT INTO run_policies (seq, position, policy, version, source, sha256, "
            "git_commit, git_dirty, employees) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [(seq, *row) for row in policies])
        connection.executemany(
            "INSERT INTO run_inputs (seq, kind, name, sha256) VALUES (?, ?, ?, ?)",
            [(seq, *row) for row in input_rows])
        connection.execute("COMMIT")
    return Recorded(fields["run_id"], path, fields["hash"])


# --- reading ----------------------------------------------------------------------------------

def _rows(connection: sqlite3.Connection, sql: str, *args: Any) -> list[dict[str, Any]]:
    cursor = connection.execute(sql, args)
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def _summary(row: Mapping[str, Any], policies: Sequence[Mapping[str, Any]]) -> RunSummary:
    def loads(text: Any, default: Any) -> Any:
        try:
            return json.loads(text)
        except (TypeError, ValueError):
            return default

    totals = loads(row["totals"], {})
    options = loads(row["options"], {})
    return RunSummary(
        run_id=row["run_id"], seq=row["seq"], created=row["created"], user=row["user"],
        command=tuple(str(a) for a in loads(row["command"], [])), period=row["period"],
        options=RunOptions.from_json(options if isinstance(options, dict) else {}),
        engine_version=row["engine_version"], employees=row["employees"],
        segments=row["segments"], errors=row["errors"],
        totals=tuple(sorted((str(k), str(v)) for k, v in totals.items()))
        if isinstance(totals, dict) else (),
        policies=tuple(PolicyRecord(
            p["position"], p["policy"], p["version"], p["source"], p["sha256"],
            p["git_commit"], None if p["git_dirty"] is None else bool(p["git_dirty"]),
            p["employees"]) for p in sorted(policies, key=lambda p: int(p["position"]))),
        prev_hash=row["prev_hash"], hash=row["hash"])


def _summaries(connection: sqlite3.Connection) -> list[RunSummary]:
    runs = _rows(connection, "SELECT * FROM runs ORDER BY seq")
    by_run: dict[int, list[dict[str, Any]]] = {}
    for policy in _rows(connection, "SELECT * FROM run_policies"):
        by_run.setdefault(policy["seq"], []).append(policy)
    return [_summary(row, by_run.get(row["seq"], [])) for row in runs]


def list_runs(path: Path, *, policy: str | None = None,
              period: str | None = None) -> list[RunSummary]:
    """Every recorded run, oldest first; with policy, the runs that evaluated someone under
    that policy id; with period, the runs of that period (its label, e.g. 2025-Q3)."""
    with _reader(path) as connection, _translated(path, writing=False):
        found = [] if connection is None else _summaries(connection)
    if policy is not None:
        found = [r for r in found if any(p.policy == policy and p.employees
                                         for p in r.policies)]
    if period is not None:
        found = [r for r in found if r.period.upper() == period.upper()]
    return found


def latest_run_id(path: Path) -> str | None:
    with _reader(path) as connection, _translated(path, writing=False):
        if connection is None:
            return None
        row = connection.execute("SELECT run_id FROM runs ORDER BY seq DESC LIMIT 1").fetchone()
    return None if row is None else str(row[0])


# --- verifying --------------------------------------------------------------------------------

@dataclass(frozen=True)
class Verification:
    path: Path
    runs: int
    head: str  # the last run's hash (GENESIS for an empty ledger)
    head_run: str | None
    problems: tuple[Diagnostic, ...]  # E_LEDGER_TAMPERED, one per finding

    @property
    def ok(self) -> bool:
        return not self.problems


class _Blobs:
    """Blob contents, read and decompressed a chunk at a time (a blob of a large run's facts
    is never held whole), each checked against its key once."""

    def __init__(self, connection: sqlite3.Connection) -> None:
        self.connection = connection
        self.verdicts: dict[str, str | None] = {}  # key -> what is wrong (None: intact)

    def verdict(self, key: str) -> str | None:
        """What is wrong with a blob: missing, not readable, changed; None when intact."""
        if key not in self.verdicts:
            self.verdicts[key] = self.copy(key, None)
        return self.verdicts[key]

    def get(self, key: str) -> tuple[bytes | None, str | None]:
        """The bytes (None when missing or unreadable), and what is wrong with them."""
        buffer = io.BytesIO()
        problem = self.copy(key, buffer)
        self.verdicts[key] = problem
        return (None if problem in ("missing", "not readable") else buffer.getvalue()), problem

    def copy(self, key: str, into: IO[bytes] | None) -> str | None:
        """Decompress the blob into `into` (when given) a chunk at a time, checking it on the
        way: what is wrong with it, as verdict()."""
        row = self.connection.execute(
            "SELECT rowid, size FROM blobs WHERE sha256 = ?", (key,)).fetchone()
        if row is None:
            return "missing"
        digest, size = hashlib.sha256(), 0
        unpacker = zlib.decompressobj()
        try:
            with self.connection.blobopen("blobs", "data", row[0], readonly=True) as blob:
                while not unpacker.eof and (chunk := blob.read(_CHUNK)):
                    data = unpacker.decompress(chunk)
                    digest.update(data)
                    size += len(data)
                    if into is not None:
                        into.write(data)
        except (zlib.error, sqlite3.Error):  # not zlib; not a blob (say, text put there)
            return "not readable"
        if not unpacker.eof:  # cut short
            return "not readable"
        return None if digest.hexdigest() == key and size == row[1] else "changed"


def _check(row: Mapping[str, Any], policies: Sequence[Mapping[str, Any]],
           inputs: Sequence[Mapping[str, Any]], blobs: _Blobs) -> list[str]:
    """What is wrong with one stored run, judged by itself and its blobs."""
    problems = []
    for what, key in [("results", row["results_sha256"]),
                      *((f"text of policy {p['policy']} {p['version']}", p["sha256"])
                        for p in policies),
                      *((f"{i['kind']} file {i['name']}", i["sha256"]) for i in inputs)]:
        problem = blobs.verdict(str(key))
        if problem is not None:
            problems.append(f"its {what} {'are' if what == 'results' else 'is'} {problem}")
    if row["hash_version"] != HASH_VERSION:
        problems.append(f"it declares hash version {row['hash_version']}")
    else:
        recomputed = run_hash(row, [[p[c] for c in _POLICY_COLUMNS] for p in policies],
                              [[i[c] for c in _INPUT_COLUMNS] for i in inputs])
        if recomputed != row["hash"]:
            problems.append("its stored fields do not match its hash")
    if row["run_id"] != run_id_of(row["seq"]):
        problems.append(f"its id does not match its sequence number {row['seq']}")
    return problems


def _children(connection: sqlite3.Connection, table: str) -> dict[int, list[dict[str, Any]]]:
    found: dict[int, list[dict[str, Any]]] = {}
    for row in _rows(connection, f"SELECT * FROM {table}"):
        found.setdefault(row["seq"], []).append(row)
    return found


def verify(path: Path, *, head: str | None = None) -> Verification:
    """Recompute every run's hash and link; report edited, deleted or inserted runs, and,
    given the head recorded earlier, whether the chain still holds it."""
    problems: list[Diagnostic] = []

    def tampered(message: str) -> None:
        problems.append(Diagnostic(
            "E_LEDGER_TAMPERED", Severity.ERROR, Location(str(path)), message,
            "compare with a backup; the chain head recorded in CI or git shows which copy "
            "is right"))

    last_hash, last_run, count = GENESIS, None, 0
    hashes: set[str] = set()
    with _reader(path) as connection, _translated(path, writing=False):
        if connection is not None:
            policies = _children(connection, "run_policies")
            inputs = _children(connection, "run_inputs")
            blobs = _Blobs(connection)
            expected_seq = 1
            for row in _rows(connection, "SELECT * FROM runs ORDER BY seq"):
                seq, run_id = row["seq"], row["run_id"]
                count += 1
                if seq > expected_seq:
                    gone = run_id_of(expected_seq) if seq == expected_seq + 1 else \
                        f"{run_id_of(expected_seq)} to {run_id_of(seq - 1)}"
                    tampered(f"run {gone} is missing: deleted after it was recorded")
                if row["prev_hash"] != last_hash:
                    tampered(f"run {run_id} does not link to the run before it "
                             f"({last_run or 'the start of the ledger'}): a run between them "
                             "was deleted, inserted or changed")
                for problem in _check(row, policies.get(seq, []), inputs.get(seq, []), blobs):
                    tampered(f"run {run_id} was changed after it was recorded: {problem}")
                last_hash, last_run, expected_seq = row["hash"], run_id, seq + 1
                hashes.add(row["hash"])
            allocated = connection.execute(
                "SELECT seq FROM sqlite_sequence WHERE name = 'runs'").fetchone()
            if allocated and allocated[0] >= expected_seq:
                gone = run_id_of(expected_seq) if allocated[0] == expected_seq else \
                    f"{run_id_of(expected_seq)} to {run_id_of(allocated[0])}"
                tampered(f"run {gone} is missing: deleted after it was recorded (the ledger "
                         f"gave out ids up to {run_id_of(allocated[0])})")
            orphans = set(policies) | set(inputs)
            orphans -= {r[0] for r in connection.execute("SELECT seq FROM runs")}
            if orphans:
                tampered("policies or inputs of runs no longer recorded remain: "
                         + ", ".join(run_id_of(s) for s in sorted(orphans)))
    if head is not None and head != GENESIS and head not in hashes:
        tampered(f"the chain head recorded earlier, {head}, is not in the ledger: runs were "
                 "deleted, or the ledger was rewritten from some run on")
    return Verification(path, count, last_hash, last_run, tuple(problems))


# --- one run: load, evaluate again, compare ------------------------------------------------------

@dataclass(frozen=True)
class StoredRun:
    summary: RunSummary
    policy_texts: tuple[str, ...]  # by position
    inputs: tuple[InputFile, ...]
    results: bytes | None  # the canonical JSON as stored; None when missing or unreadable
    problems: tuple[str, ...]  # why the run does not match its hash; () when intact
    ledger: Path | None = None  # where the input files' bytes are (see write_input)

    def write_input(self, item: InputFile, target: Path) -> None:
        """An input file's bytes as stored, changed or not (a replay shows what a change
        does), copied from the ledger a chunk at a time; none when missing or unreadable."""
        with target.open("wb") as stream:
            if item.data is not None or self.ledger is None:
                stream.write(item.data or b"")
                return
            with _reader(self.ledger) as connection:
                problem = None if connection is None else _Blobs(connection).copy(
                    item.sha256, stream)
            if connection is None or problem in ("missing", "not readable"):
                stream.seek(0)
                stream.truncate()


def normalise_run_id(text: str) -> str:
    """R000042, r42 and 42 all mean R000042."""
    match = _RUN_ID.fullmatch(text.strip())
    return run_id_of(int(match.group(1))) if match else text.strip()


def unknown_run(path: Path, run_id: str, known: Sequence[str]) -> InputError:
    if not known:
        message = f"no run {run_id}: the ledger {path} holds no runs"
    else:
        match = _RUN_ID.fullmatch(run_id)
        if match:
            wanted = int(match.group(1))

            def distance(known_id: str) -> int:
                found = _RUN_ID.fullmatch(known_id)
                return abs(int(found.group(1)) - wanted) if found else 10**9

            near = sorted(known, key=lambda k: (distance(k), k))[:3]
        else:
            near = difflib.get_close_matches(run_id, known, n=3, cutoff=0.5) or list(known[-3:])
        message = (f"no run {run_id} in the ledger {path} (it holds {known[0]} to "
                   f"{known[-1]}); nearest: {', '.join(sorted(near))}")
    return InputError(message, _diagnostic("E_UNKNOWN_RUN", path, message,
                                           "`meritpay runs` lists the recorded runs"))


def stored_run(path: Path, run_id: str) -> StoredRun:
    """Everything recorded about one run. InputError (E_UNKNOWN_RUN) when there is no such run.
    """
    run_id = normalise_run_id(run_id)
    with _reader(path) as connection, _translated(path, writing=False):
        if connection is None:
            raise unknown_run(path, run_id, [])
        rows = _rows(connection, "SELECT * FROM runs WHERE run_id = ?", run_id)
        if not rows:
            known = [r[0] for r in connection.execute("SELECT run_id FROM runs ORDER BY seq")]
            raise unknown_run(path, run_id, known)
        row = rows[0]
        policies = _rows(connection, "SELECT * FROM run_policies WHERE seq = ? ORDER BY position",
                         row["seq"])
        inputs = _rows(connection, "SELECT * FROM run_inputs WHERE seq = ? ORDER BY kind",
                       row["seq"])
        blobs = _Blobs(connection)
        problems = _check(row, policies, inputs, blobs)
        # the contents as stored, changed or not: a replay shows what a change does
        texts = [(blobs.get(p["sha256"])[0] or b"").decode("utf-8", errors="replace")
                 for p in policies]
        files = [InputFile(i["kind"], i["name"], i["sha256"]) for i in inputs]  # see inputs()
        results = blobs.get(row["results_sha256"])[0]
    return StoredRun(_summary(row, policies), tuple(texts), tuple(files), results,
                     tuple(problems), path)


def _safe_name(name: str, fallback: str) -> str:
    base = PurePath(name.replace("\\", "/")).name
    return base if base not in ("", ".", "..") else fallback


def _back(text: str, names: Mapping[str, str]) -> str:
    """The scratch paths of a replay in text turned back into the recorded names."""
    for scratch, name in names.items():
        text = text.replace(scratch, name)
    return text


def _renamed(diagnostics: Sequence[Diagnostic], names: Mapping[str, str]
             ) -> tuple[Diagnostic, ...]:
    return tuple(replace(d, location=replace(d.location, file=_back(d.location.file, names)),
                         message=_back(d.message, names), hint=_back(d.hint, names))
                 for d in diagnostics)


def evaluate_stored(stored: StoredRun, *, trace: bool = False, traced: str | None = None
                    ) -> tuple[RunResult, list[CompiledPolicy]]:
    """Evaluate a stored run again from its stored policies and files only: they are written
    to a scratch folder under their recorded names, and every path in the results is turned
    back into the name recorded."""
    summary = stored.summary
    names: dict[str, str] = {}
    with tempfile.TemporaryDirectory(prefix="meritpay-replay-") as scratch:
        root = Path(scratch)
        policy_paths = []
        for stored_policy, text in zip(summary.policies, stored.policy_texts, strict=True):
            # one folder per position keeps the order the policies were loaded in
            target = root / "policies" / f"{stored_policy.position:04d}" / _safe_name(
                stored_policy.source, "policy.yaml")
            target.parent.mkdir(parents=True)
            target.write_bytes(text.encode("utf-8"))
            policy_paths.append(target)
            names[str(target)] = stored_policy.source
        files: dict[str, Path] = {}
        for item in stored.inputs:
            target = root / "inputs" / item.kind / _safe_name(item.name, item.kind + ".csv")
            target.parent.mkdir(parents=True)
            stored.write_input(item, target)
            files[item.kind] = target
            names[str(target)] = item.name
        if "facts" not in files:
            raise FindingsError(f"run {summary.run_id} has no facts file recorded")
        names = dict(sorted(names.items(), key=lambda kv: -len(kv[0])))  # longest first
        try:
            policies = [replace(p, source=names.get(p.source, p.source))
                        for p in load_policies(policy_paths)]
            options = summary.options
            result = run(policies, RunInputs(
                facts=files["facts"], ratings=files.get("ratings"), teams=files.get("teams"),
                team_facts=files.get("team_facts"), company_facts=files.get("company_facts"),
                lines=files.get("lines"), encoding=options.encoding),
                options.period, keep_going=options.keep_going, trace=trace,
                to_date=options.to_date,
                evaluator=tracing({traced}) if traced is not None else None)
        except MeritpayError as error:
            error.diagnostics = list(_renamed(error.diagnostics, names))
            error.message = _back(error.message, names)
            raise
    return replace(result, errors=_renamed(result.errors, names),
                   warnings=_renamed(result.warnings, names)), policies


def load_run(path: Path, run_id: str, employee: str | None = None
             ) -> tuple[RunResult, list[CompiledPolicy]]:
    """A recorded run evaluated again from its stored inputs, with the trace (for explain):
    everyone's, or only `employee`'s. FindingsError (E_LEDGER_TAMPERED) when the stored run
    does not match its hash."""
    stored = stored_run(path, run_id)
    if stored.problems or stored.results is None:
        raise _tampered_run(path, stored)
    result, policies = evaluate_stored(stored, trace=employee is None, traced=employee)
    if not _renders_as(result, stored.results):
        # the trace is recomputed, so it must belong to exactly the results recorded
        raise FindingsError(
            f"run {run_id}: evaluating it again does not give the recorded results",
            _diagnostic("E_REPLAY_DIFFERS", path,
                        f"run {run_id}: evaluating it again does not give the recorded "
                        "results, so its derivations cannot be shown",
                        f"see what differs with: meritpay replay {run_id}"))
    return result, policies


def _renders_as(result: RunResult, recorded: bytes | None) -> bool:
    """Whether the results' JSON is `recorded`, byte for byte (compared as it is rendered)."""
    if recorded is None:
        return False
    at = 0
    for chunk in render_json_chunks(result):
        data = chunk.encode("utf-8")
        if recorded[at:at + len(data)] != data:
            return False
        at += len(data)
    return at == len(recorded)


def _tampered_run(path: Path, stored: StoredRun) -> FindingsError:
    reasons = "; ".join(stored.problems) or "its results are missing"
    message = f"run {stored.summary.run_id} was changed after it was recorded: {reasons}"
    return FindingsError(message, _diagnostic(
        "E_LEDGER_TAMPERED", path, message, "`meritpay runs --verify` checks the whole ledger"))


@dataclass(frozen=True)
class Replay:
    run_id: str
    identical: bool  # the replayed canonical JSON equals the recorded bytes
    problems: tuple[Diagnostic, ...]  # E_LEDGER_TAMPERED: the stored run does not match its hash
    differences: tuple[str, ...]  # employee: field old -> new; or why the replay failed
    recorded_engine: str
    segments: int


def replay(path: Path, run_id: str) -> Replay:
    """Evaluate a recorded run again from its stored inputs and compare the canonical JSON with
    the recorded bytes."""
    stored = stored_run(path, run_id)
    summary = stored.summary
    differences: list[str] = []
    try:
        result, _ = evaluate_stored(stored)
        replayed: bytes | None = render_json(result).encode("utf-8")
    except MeritpayError as error:
        replayed = None
        shown = [d.render() for d in error.diagnostics[:5]] or [error.message]
        differences.append("the replay failed: " + "; ".join(shown))
    if stored.results is None:
        differences.append("the recorded results are missing or damaged")
    elif replayed is not None and replayed != stored.results:
        differences.extend(compare_results(stored.results, replayed) or [
            "the bytes differ, though no value does (formatting)"])
    identical = replayed is not None and stored.results is not None \
        and replayed == stored.results
    problems = tuple(_tampered_run(path, stored).diagnostics) if stored.problems else ()
    return Replay(summary.run_id, identical, problems, tuple(differences),
                  summary.engine_version, summary.segments)


def _who(employee: Mapping[str, Any]) -> str:
    months = employee.get("months") or [""]
    span = months[0] if len(months) == 1 else f"{months[0]}..{months[-1]}"
    return f"{employee.get('employee')} ({employee.get('role')}, {span})"


def _flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(value, dict):
        flat: dict[str, Any] = {}
        for key, item in value.items():
            flat.update(_flatten(item, f"{prefix}.{key}" if prefix else str(key)))
        return flat
    return {prefix: value}


def _shown(value: Any) -> str:
    if value is None:
        return "absent"
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def _field_order(path: str) -> tuple[int, str]:
    if path == "total_pay":
        return 0, path
    if path.startswith("rewards."):
        return 1, path
    return 2, path


def compare_results(recorded: bytes, replayed: bytes) -> list[str]:
    """What differs between two canonical JSON results: per employee segment, each field that
    changed (total pay first, then reward amounts), then errors and notes."""
    try:
        old, new = json.loads(recorded), json.loads(replayed)
    except ValueError:
        return ["the recorded results are not valid JSON"]
    if not isinstance(old, dict) or not isinstance(new, dict):
        return ["the recorded results are not a results document"]
    lines = [f"{key}: {_shown(old.get(key))} -> {_shown(new.get(key))}"
             for key in ("period", "months", "months_in_period") if old.get(key) != new.get(key)]
    before = {_who(e): e for e in old.get("employees", [])}
    after = {_who(e): e for e in new.get("employees", [])}
    for who in sorted(before.keys() | after.keys()):
        if who not in after:
            lines.append(f"{who}: only in the recorded run "
                         f"(total_pay {before[who].get('total_pay')})")
        elif who not in before:
            lines.append(f"{who}: only in the replay (total_pay {after[who].get('total_pay')})")
        else:
            a, b = _flatten(before[who]), _flatten(after[who])
            for path in sorted(a.keys() | b.keys(), key=_field_order):
                if a.get(path) != b.get(path):
                    lines.append(f"{who}: {path} {_shown(a.get(path))} -> {_shown(b.get(path))}")
    for key in ("errors", "notes"):
        x, y = old.get(key) or [], new.get(key) or []
        if x != y:
            lines.append(f"{key}: {len(x)} recorded, {len(y)} replayed, and they differ")
    return lines


# --- rendering ------------------------------------------------------------------------------------

def _policies_used(summary: RunSummary) -> list[str]:
    return [f"{p.policy}@{p.version}" for p in summary.policies if p.employees]


def runs_json(summaries: Sequence[RunSummary]) -> str:
    return json.dumps([{
        "run": s.run_id,
        "time": s.created,
        "user": s.user,
        "command": list(s.command),
        "period": s.period,
        "options": s.options.to_json(),
        "engine_version": s.engine_version,
        "policies": [{"policy": p.policy, "version": p.version, "source": p.source,
                      "sha256": p.sha256, "git_commit": p.git_commit, "git_dirty": p.git_dirty,
                      "employees": p.employees} for p in s.policies],
        "employees": s.employees,
        "segments": s.segments,
        "errors": s.errors,
        "total_pay": dict(s.totals),
        "prev_hash": s.prev_hash,
        "hash": s.hash,
    } for s in summaries], ensure_ascii=False, indent=2) + "\n"


def runs_text(summaries: Sequence[RunSummary]) -> str:
    header = ("run", "time (UTC)", "user", "period", "employees", "total pay", "policies")
    rows = [header]
    for s in summaries:
        pay = ", ".join(f"{currency} {Decimal(total):,}" for currency, total in s.totals)
        rows.append((s.run_id, s.created[:19].replace("T", " "), s.user, s.period,
                     str(s.employees), pay or "-", ", ".join(_policies_used(s)) or "-"))
    widths = [max(len(r[i]) for r in rows) for i in range(len(header) - 1)]
    lines = []
    for row in rows:
        cells = [cell.rjust(w) if i in (4, 5) else cell.ljust(w)
                 for i, (cell, w) in enumerate(zip(row, widths, strict=False))]
        lines.append("  ".join([*cells, row[-1]]).rstrip())
    return "\n".join(lines) + "\n"


def verification_json(verification: Verification) -> str:
    return json.dumps({
        "ledger": str(verification.path),
        "runs": verification.runs,
        "ok": verification.ok,
        "head": verification.head,
        "head_run": verification.head_run,
        "problems": [d.to_json() for d in verification.problems],
    }, ensure_ascii=False, indent=2) + "\n"
