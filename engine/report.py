"""Render a RunResult as text, CSV, JSON or JSON Lines, and write files atomically.

Every format is deterministic: employees sorted by id and months, names sorted where the
policy gives no order, numbers written from Decimals (money to the policy's places, scores to
SCORE_PLACES), no times, run ids or paths. The same inputs give the same bytes.
"""

from __future__ import annotations

import csv
import io
import json
import os
import tempfile
from collections.abc import Iterable, Iterator
from decimal import ROUND_HALF_EVEN, Decimal
from pathlib import Path
from typing import Any

from .diagnostics import EnvironmentFailure, InputError
from .evaluate import EmployeeResult
from .run import RunResult

SCORE_PLACES = 4
FORMATS = ("text", "csv", "json", "jsonl")


def score_text(value: Decimal | None) -> str:
    if value is None:
        return ""
    rounded = value.quantize(Decimal(1).scaleb(-SCORE_PLACES), rounding=ROUND_HALF_EVEN)
    return str(rounded.copy_abs() if rounded.is_zero() else rounded)  # never -0.0000


def amount_text(value: Decimal | None) -> str:
    return "" if value is None else str(value)


def reward_columns(run: RunResult) -> list[str]:
    """Money reward names in policy order, each once."""
    names: list[str] = []
    for policy in run.policies:
        for reward in policy.rewards:
            if reward.is_money and reward.name not in names:
                names.append(reward.name)
    return names


def outcomes(result: EmployeeResult) -> list[str]:
    return [r.name for r in result.rewards if r.granted]


def employee_json(result: EmployeeResult) -> dict[str, Any]:
    return {
        "employee": result.employee,
        "name": result.name,
        "role": result.role,
        "team": result.team,
        "months": list(result.months),
        "policy": result.policy,
        "version": result.version,
        "currency": result.currency,
        "proration": score_text(result.proration),
        "total_score": score_text(result.total_score),
        "rank_in_role": result.rank,
        "percentile_in_role": score_text(result.percentile),
        "tier": result.tier,
        "multiplier": str(result.multiplier),
        "indicators": {
            i.name: {"status": i.status, "value": score_text(i.value),
                     "score": score_text(i.score), "weight": score_text(i.weight),
                     "contribution": score_text(i.contribution)}
            for i in result.indicators},
        "gates": {name: passed for name, passed in result.gates},
        "rewards": {r.name: {"kind": r.kind, "amount": amount_text(r.amount), "status": r.status}
                    for r in result.rewards if r.amount is not None},
        "outcomes": {r.name: {"kind": r.kind, "granted": bool(r.granted), "status": r.status}
                     for r in result.rewards if r.amount is None},
        "total_pay": amount_text(result.total_pay),
    }


def render_json(run: RunResult) -> str:
    return "".join(render_json_chunks(run))


def render_json_chunks(run: RunResult, employees: int = 1000) -> Iterator[str]:
    """The JSON of a run (an object of period, months, months_in_period, employees, errors
    and notes, indented by 2), `employees` employees at a time: the text json.dumps gives of
    the whole, without building it whole."""
    def member(key: str, value: object) -> str:
        return f"  {json.dumps(key)}: " + _indented(value, "  ")

    yield "{\n" + ",\n".join((
        member("period", run.period.label), member("months", list(run.period.months)),
        member("months_in_period", len(run.period.all_months)))) + ",\n"
    if not run.results:
        yield '  "employees": [],\n'
    else:
        yield '  "employees": [\n'
        for start in range(0, len(run.results), employees):
            yield ",\n".join("    " + _indented(employee_json(r), "    ")
                              for r in run.results[start:start + employees])
            yield ",\n" if start + employees < len(run.results) else "\n  ],\n"
    yield ",\n".join((
        member("errors", [d.to_json() for d in run.errors]),
        member("notes", [{"rule": n.rule, "group": n.group, "message": n.message}
                         for n in run.notes]))) + "\n}\n"


def _indented(value: object, margin: str) -> str:
    """json.dumps(value, indent=2) as it reads nested `margin` deep (JSON text holds no line
    break but between its tokens)."""
    return json.dumps(value, ensure_ascii=False, indent=2).replace("\n", "\n" + margin)


def render_jsonl(run: RunResult) -> str:
    return "".join(jsonl_lines(run))


def jsonl_lines(run: RunResult) -> Iterator[str]:
    """The JSON Lines of a run, one at a time."""
    for result in run.results:
        yield json.dumps({"period": run.period.label, **employee_json(result)},
                         ensure_ascii=False) + "\n"
    for error in run.errors:
        yield json.dumps({"period": run.period.label, "error": error.to_json()},
                         ensure_ascii=False) + "\n"


def csv_rows(run: RunResult) -> Iterator[list[str]]:
    rewards = reward_columns(run)
    yield ["employee", "name", "role", "team", "period", "months", "policy", "version",
           "currency", "total_score", "rank_in_role", "percentile_in_role", "tier", *rewards,
           "total_pay", "outcomes", "error"]
    for result in run.results:
        amounts = {r.name: r.amount for r in result.rewards}
        yield [result.employee, result.name, result.role, result.team, run.period.label,
               f"{result.months[0]}..{result.months[-1]}", result.policy, result.version,
               result.currency, score_text(result.total_score), str(result.rank),
               score_text(result.percentile), result.tier,
               *[amount_text(amounts.get(name)) for name in rewards],
               amount_text(result.total_pay), ";".join(outcomes(result)), ""]
    for error in run.errors:
        yield ["", "", "", "", run.period.label, "", "", "", "", "", "", "", "",
               *["" for _ in rewards], "", "", error.render().replace("\n", " ")]


def render_csv(run: RunResult) -> str:
    return "".join(csv_chunks(run))


def csv_chunks(run: RunResult, rows: int = 2000) -> Iterator[str]:
    """The CSV, `rows` rows at a time (a large run is written without its whole text)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    for number, row in enumerate(csv_rows(run), 1):
        writer.writerow(row)
        if number % rows == 0:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue()


def render_text(run: RunResult, width: int = 100) -> str:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"meritpay run {run.period.title}: {len(run.results)} employee "
                  "segment(s)", title_justify="left")
    for column, justify in (("employee", "left"), ("name", "left"), ("role", "left"),
                            ("score", "right"), ("tier", "left"), ("pay", "right"),
                            ("outcomes", "left")):
        table.add_column(column, justify=justify)  # type: ignore[arg-type]
    for result in run.results:
        table.add_row(result.employee, result.name, result.role, score_text(result.total_score),
                      result.tier, f"{result.total_pay:,}", ", ".join(outcomes(result)))
    buffer = io.StringIO()
    console = Console(file=buffer, width=width, color_system=None, force_terminal=False,
                      legacy_windows=False)
    console.print(table)
    totals: dict[str, Decimal] = {}
    for result in run.results:
        totals[result.currency] = totals.get(result.currency, Decimal(0)) + result.total_pay
    summary = ", ".join(f"{currency} {total:,}" for currency, total in sorted(totals.items()))
    lines = [f"total pay: {summary}"]
    lines += [f"note: {note.rule} ({note.group}): {note.message}" for note in run.notes]
    lines += [f"error: {error.render()}" for error in run.errors]
    return buffer.getvalue() + "".join(line + "\n" for line in lines)


def render(run: RunResult, output_format: str) -> str:
    return "".join(render_chunks(run, output_format))


def render_chunks(run: RunResult, output_format: str) -> Iterator[str]:
    """The rendering in pieces that join to it: CSV a few thousand rows at a time, JSON a
    thousand employees, JSON Lines a line; text whole."""
    if output_format == "csv":
        return csv_chunks(run)
    if output_format == "json":
        return render_json_chunks(run)
    if output_format == "jsonl":
        return jsonl_lines(run)
    return iter((render_text(run),))


def write_atomically(path: Path, text: str | Iterable[str]) -> None:
    """Write to a temporary file beside path, fsync, rename, then fsync the folder (so the
    rename itself survives a crash): all or nothing. `text` may come in pieces (written as
    they come). A special file such as /dev/null or a terminal is written to directly
    (nothing to rename); a full disk is an EnvironmentFailure.
    """
    pieces = (text,) if isinstance(text, str) else text
    if path.absolute().parts[1:2] in (("dev",), ("proc",)) or (
            path.exists() and not path.is_file() and not path.is_dir()):
        _write_special(path, pieces)
        return
    path = path.resolve()  # a symlink keeps pointing at the file; its target is replaced
    directory = path.parent
    if path.is_dir():
        raise InputError(f"cannot write {path}: it is a folder; name a file")
    try:
        handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp",
                                             dir=directory)
    except (FileNotFoundError, NotADirectoryError):
        raise InputError(f"cannot write {path}: the folder {directory} does not exist") from None
    except OSError as error:
        raise EnvironmentFailure(f"cannot write in {directory}: {error.strerror}") from None
    try:
        with os.fdopen(handle, "w", encoding="utf-8", newline="") as stream:
            for piece in pieces:
                stream.write(piece)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temporary, path)
    except OSError as error:
        Path(temporary).unlink(missing_ok=True)
        raise EnvironmentFailure(f"cannot write {path}: {error.strerror or error}") from None
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    _fsync_directory(directory)


def _fsync_directory(directory: Path) -> None:
    """Make a rename in `directory` durable. Where a folder cannot be opened or synced
    (some platforms and file systems), the rename is as durable as the system makes it."""
    try:
        handle = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(handle)
    except OSError:
        pass
    finally:
        os.close(handle)


def _write_special(path: Path, pieces: Iterable[str]) -> None:
    """Write to a device or pipe (-o /dev/stdout, a FIFO): no temporary file to rename."""
    try:
        with open(path, "a", encoding="utf-8", newline="") as stream:  # no truncation
            for piece in pieces:
                stream.write(piece)
            stream.flush()
    except OSError as error:
        raise EnvironmentFailure(f"cannot write {path}: {error.strerror or error}") from None
