"""The side tables of a run, read strictly from CSV: teams, team and company facts, and
transaction lines.

- teams: `team, member, share` and optionally `role_in_team`, `period` (a period label such
  as 2025-Q3, or a month; a row without a period holds for every period);
- team facts: `team, period` (YYYY-MM) and facts declared `scope: team`;
- company facts: `period` (YYYY-MM) and facts declared `scope: company`;
- lines: `employee, period, fact, line_id, amount`: deals making up a fact declared
  `source: lines`, credit notes as negative amounts.

Every problem names the file, row and column (E_TEAMS, E_FACTS or E_LINES), exit 2.
"""

from __future__ import annotations

import csv
import zipfile
from collections import defaultdict
from collections.abc import Callable, Container, Iterator, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any, NoReturn

from .diagnostics import Diagnostic, InputError, Location, Severity, did_you_mean
from .facts import CellError, cell_parser, check_size, open_lines, read_facts


@dataclass(frozen=True)
class Member:
    team: str
    member: str
    role_in_team: str
    share: Decimal
    row: int


@dataclass(frozen=True)
class Teams:
    source: str
    members: Mapping[str, tuple[Member, ...]]  # team -> members, sorted by member id
    team_of: Mapping[str, str]  # member -> team


def _error(code: str, path: Path, row: int, column: int, message: str, hint: str) -> InputError:
    diagnostic = Diagnostic(code, Severity.ERROR, Location(str(path), row, column), message, hint)
    return InputError(diagnostic.render(), [diagnostic])


class _Table:
    """A CSV file's header, then its rows one at a time (`rows()`), with strict cells. The file
    is read a chunk at a time, never whole."""

    def __init__(self, path: Path, code: str, required: Sequence[str],
                 encoding: str | None) -> None:
        self.path, self.code = path, code
        check_size(path)

        def refuse() -> NoReturn:  # the whole file read as before, for the same message
            try:
                path.read_text(encoding=encoding or "utf-8-sig")
            except (UnicodeDecodeError, LookupError) as exc:
                raise _error(code, path, 0, 0, f"cannot decode the file: {exc}",
                             "save it as UTF-8, or give --encoding") from None
            raise _error(code, path, 0, 0, "the file changed while it was read",
                         "read it again")

        try:
            lines = open_lines(path, encoding, refuse, strip_bom=False, universal=True)
        except FileNotFoundError:
            raise _error("E_FILE_UNREADABLE", path, 0, 0, "the file does not exist",
                         "check the path") from None
        except OSError as exc:
            raise _error("E_FILE_UNREADABLE", path, 0, 0, f"cannot read the file: "
                         f"{exc.strerror}", "check the path and its permissions") from None
        self.reader = csv.reader(lines, strict=True)
        first = self._next()
        if first is None:
            raise _error(code, path, 1, 0, "the file is empty", "the first row names the columns")
        self.header = [h.strip() for h in first[1]]
        self.columns = {name: index for index, name in reversed(list(enumerate(self.header)))}
        self.parsers: dict[tuple[str, int], Callable[[str], object]] = {}
        for column in required:
            if column not in self.header:
                raise _error(code, path, 1, 0, f"there is no '{column}' column",
                             "the columns needed are: " + ", ".join(required))
        self.width = len(self.header)

    def _next(self) -> tuple[int, list[str]] | None:
        """The next record and the line it starts on (a quoted value may span lines)."""
        number = self.reader.line_num + 1
        try:
            cells = next(self.reader, None)
        except csv.Error as exc:
            raise _error(self.code, self.path, self.reader.line_num, 0, f"CSV syntax: {exc}",
                         "check the quotes") from None
        return None if cells is None else (number, cells)

    def rows(self) -> Iterator[tuple[int, list[str]]]:
        """The rows after the header that hold anything, as (line, cells)."""
        reader = self.reader
        number = reader.line_num + 1  # a quoted value may span lines: the record's first
        try:
            for cells in reader:
                if any(map(str.strip, cells)):
                    yield number, cells
                number = reader.line_num + 1
        except csv.Error as exc:
            raise _error(self.code, self.path, reader.line_num, 0, f"CSV syntax: {exc}",
                         "check the quotes") from None

    def index(self, column: str) -> int:
        return self.header.index(column)

    def parser(self, column: str, kind: str, places: int = 2) -> Callable[[int, Sequence[str]],
                                                                            Any]:
        """The reader of one column's cells: (line, cells) -> value; a short row's missing
        cell is empty. Made once per column, called per row."""
        index = self.columns[column]
        parse = self.parsers.get((kind, places))
        if parse is None:
            parse = self.parsers[(kind, places)] = cell_parser(kind, places)
        code, path = self.code, self.path

        def read(number: int, cells: Sequence[str]) -> Any:
            try:
                return parse(cells[index] if index < len(cells) else "")
            except CellError as error:
                raise _error(code, path, number, index + 1,
                             f"column '{column}' ({kind}): {error.reason}", error.hint) from None
        return read

    def cell(self, number: int, cells: Sequence[str], column: str, kind: str,
             places: int = 2) -> Any:
        return self.parser(column, kind, places)(number, cells)

    def fail(self, number: int, column: str, message: str, hint: str) -> InputError:
        index = self.header.index(column) + 1 if column in self.header else 0
        return _error(self.code, self.path, number, index, message, hint)


def read_teams(path: Path, periods: set[str], *, encoding: str | None = None) -> Teams:
    """Memberships holding in the given period labels and months."""
    table = _Table(path, "E_TEAMS", ("team", "member", "share"), encoding)
    has_period = "period" in table.header
    members: dict[str, list[Member]] = defaultdict(list)
    team_of: dict[str, tuple[str, int]] = {}
    for number, cells in table.rows():
        if has_period:
            period = cells[table.index("period")].strip() if table.index("period") < len(
                cells) else ""
            if period and period not in periods:
                continue
        team = table.cell(number, cells, "team", "text")
        member = table.cell(number, cells, "member", "text")
        if not team or not member:
            raise table.fail(number, "team" if not team else "member", "the team and member "
                             "must both be given", "fill both cells")
        share = table.cell(number, cells, "share", "number")
        if share is None or share <= 0:
            raise table.fail(number, "share", f"{member}'s share in {team} is "
                             f"{share if share is not None else 'empty'}: shares must be above 0",
                             "give every member a positive share, or remove the row")
        role = table.cell(number, cells, "role_in_team", "text") \
            if "role_in_team" in table.header else ""
        if member in team_of:
            other, row = team_of[member]
            raise table.fail(number, "member", f"{member} is a member of {other} (row {row}) "
                             f"and again of {team}", "a person is in one team per period")
        team_of[member] = (team, number)
        members[team].append(Member(team, member, role or "", share, number))
    return Teams(str(path), {t: tuple(sorted(m, key=lambda x: x.member))
                             for t, m in sorted(members.items())},
                 {m: t for m, (t, _) in team_of.items()})


def read_keyed_facts(path: Path, key: str | None, types: Mapping[str, str], *,
                     encoding: str | None = None, places: int = 2,
                     months: set[str] | None = None
                     ) -> tuple[dict[tuple[str, str], dict[str, Any]], tuple[str, ...]]:
    """Monthly facts keyed by team (key='team') or for the company (key=None), of `months`
    (None: all); a row of another month is checked only for its key and period.

    Returns {(key value, month): {fact: value}} and the unknown columns.
    """
    required = (*([key] if key else []), "period")
    table = _Table(path, "E_FACTS", required, encoding)
    known = set(required)
    facts = [c for c in table.header if c in types]
    unknown = tuple(sorted(c for c in table.header if c not in known and c not in types and c))
    result: dict[tuple[str, str], dict[str, Any]] = {}
    rows_of: dict[tuple[str, str], int] = {}
    owner_of = table.parser(key, "text") if key else None
    month_of = table.parser("period", "month")
    parsers = [(fact, table.parser(fact, types[fact], places)) for fact in facts]
    for number, cells in table.rows():
        owner = owner_of(number, cells) if owner_of else ""
        month = month_of(number, cells)
        if (key and not owner) or month is None:
            raise table.fail(number, key if key and not owner else "period",
                             "every row needs " + (f"a {key} and " if key else "") +
                             "a period (YYYY-MM)", "fill the cell")
        if months is not None and month not in months:
            continue
        values = {}
        for fact, parse in parsers:
            value = parse(number, cells)
            if value is not None:
                values[fact] = value
        if (owner, month) in result:
            raise table.fail(number, "period", f"{owner + ' ' if owner else ''}{month} appears "
                             f"twice (first on row {rows_of[(owner, month)]})",
                             "keep one row per " + (f"{key} and " if key else "") + "month")
        result[(owner, month)] = values
        rows_of[(owner, month)] = number
    return result, unknown


class Through:
    """Every month up to and including `last` (YYYY-MM): the months of a run that looks back
    at earlier periods or years."""

    def __init__(self, last: str) -> None:
        self.last = last

    def __contains__(self, month: object) -> bool:
        return isinstance(month, str) and month <= self.last


def read_lines(path: Path, facts: set[str], months: Container[str | None], *,
               encoding: str | None = None, places: int = 2
               ) -> dict[tuple[str, str, str], Decimal]:
    """Sum of line amounts by (employee, month, fact), for the given months (a set, or
    `Through(month)`: every month up to it). A line of another month is checked only for its
    period: a run does not read it. A line id used twice is found
    by a hash of each id, not the ids themselves: when one comes again, the file is read again
    for where, if anywhere, the same id was."""
    table = _Table(path, "E_LINES", ("employee", "period", "fact", "line_id", "amount"),
                   encoding)
    kinds = {"period": "month", "fact": "text", "line_id": "text", "amount": "money",
             "employee": "text"}
    at = {column: table.columns[column] for column in kinds}
    i_period, i_fact, i_line, i_amount, i_employee = (at[column] for column in kinds)
    parse: list[Callable[[str], Any]] = [cell_parser(kind, places) for kind in ("month", "money")]
    p_month, p_money = parse
    width = max(at.values()) + 1
    sums: dict[tuple[str, str, str], Decimal] = {}
    seen: set[int] = set()
    strings: dict[str, str] = {}  # one string per employee and fact, however many lines
    month_of: dict[str, Any] = {}  # a period cell -> its month (None when empty)
    zero = Decimal(0)
    column = "period"
    number = 0
    try:
        for number, cells in table.rows():
            if len(cells) < width:
                cells = cells + [""] * (width - len(cells))
            column = "period"
            raw = cells[i_period]
            if raw in month_of:
                month = month_of[raw]
            else:
                month = p_month(raw)
                if len(month_of) < 4096:
                    month_of[raw] = month
            if month not in months:
                continue
            column = "fact"
            fact = cells[i_fact].strip() or None  # (a text cell: p_text inline)
            if fact not in facts:
                raise table.fail(number, "fact", f"'{fact}' is not a fact declared `source: "
                                 f"lines`{did_you_mean(str(fact), facts)}",
                                 "lines may make up: " + ", ".join(sorted(facts)))
            column = "line_id"
            line_id = cells[i_line].strip()
            if not line_id:
                raise table.fail(number, "line_id", "a line needs an id",
                                 "fill the line_id cell")
            digest = hash(line_id)
            if digest in seen:
                first = _first_line(path, encoding, months, line_id)
                if first and first < number:
                    raise table.fail(number, "line_id", f"line {line_id} appears twice (first "
                                     f"on row {first})", "each line once; a credit note is a "
                                     "new line with a negative amount")
            seen.add(digest)
            column = "amount"
            amount = p_money(cells[i_amount])
            column = "employee"
            employee = cells[i_employee].strip()
            if amount is None or not employee:
                raise table.fail(number, "amount" if amount is None else "employee",
                                 "a line needs an employee and an amount", "fill the cell")
            key = (strings.setdefault(employee, employee), month,
                   strings.setdefault(fact, fact))
            sums[key] = sums.get(key, zero) + amount
    except CellError as error:
        raise _error(table.code, path, number, at[column] + 1,
                     f"column '{column}' ({kinds[column]}): {error.reason}",
                     error.hint) from None
    return sums


def _first_line(path: Path, encoding: str | None, months: Container[str | None],
                line_id: str) -> int:
    """The row of the first line of `months` with `line_id` (every row before the one read
    twice was read without a problem the first time), 0 when none."""
    table = _Table(path, "E_LINES", ("period", "line_id"), encoding)
    period_of, line_id_of = table.parser("period", "month"), table.parser("line_id", "text")
    return next((number for number, cells in table.rows()
                 if period_of(number, cells) in months and line_id_of(number, cells) == line_id),
                0)


def read_columns(path: Path, columns: Sequence[str], months: set[str], *,
                 encoding: str | None = None) -> dict[str, dict[str, str]]:
    """Descriptive columns of the facts (grade, location...) by employee: the value on the
    employee's last row in the months given. For breaking a comparison down by group.

    A file this lenient reading cannot make sense of is read by the strict facts reader,
    which names the file, row and column of the first problem (InputError)."""
    try:
        return _read_columns(path, columns, months, encoding)
    except InputError:
        raise
    except (OSError, ValueError, LookupError, TypeError, AttributeError, IndexError,
            zipfile.BadZipFile, SyntaxError, EOFError) as error:
        read_facts(path, {}, encoding=encoding)  # raises, saying where
        raise InputError(f"{path}: cannot read the columns to break the results down by: "
                         f"{error}") from None


def _read_columns(path: Path, columns: Sequence[str], months: set[str],
                  encoding: str | None) -> dict[str, dict[str, str]]:
    records: list[Mapping[str, Any]]
    check_size(path)
    suffix = path.suffix.lower()
    if suffix == ".xlsx":
        import openpyxl  # type: ignore[import-untyped]  # no type hints; imported on demand

        workbook = openpyxl.load_workbook(path, read_only=True, data_only=True)
        try:
            rows = list(workbook.worksheets[0].iter_rows(values_only=True))
        finally:
            workbook.close()
        header = [str(h).strip() if h is not None else "" for h in rows[0]] if rows else []
        records = [dict(zip(header, row, strict=False)) for row in rows[1:]]
    elif suffix in (".json", ".jsonl"):
        import json

        text = path.read_text(encoding=encoding or "utf-8-sig")
        if suffix == ".jsonl":
            records = [json.loads(line) for line in text.splitlines() if line.strip()]
        else:
            data = json.loads(text)
            records = data["records"] if isinstance(data, dict) else data
    else:
        return _csv_columns(path, columns, months, encoding)
    header_names = set(records[0]) if records else set()
    for column in columns:
        if column not in header_names:
            raise InputError(f"{path}: there is no column '{column}' to break the results "
                             f"down by{did_you_mean(column, header_names)}")
    found: dict[str, tuple[str, dict[str, str]]] = {}
    for record in records:
        month = str(record.get("period", "")).strip()[:7]
        employee = str(record.get("employee", "")).strip()
        if month not in months or not employee:
            continue
        if employee not in found or month >= found[employee][0]:
            found[employee] = (month, {c: _text(record.get(c)) for c in columns})
    return {employee: values for employee, (_, values) in found.items()}


def _csv_columns(path: Path, columns: Sequence[str], months: set[str],
                 encoding: str | None) -> dict[str, dict[str, str]]:
    """_read_columns of a CSV file, row by row: only the rows of `months` are kept."""
    table = _Table(path, "E_FACTS", ("employee", "period"), encoding)
    header_names: set[str] | None = None
    # a dict of the row keeps the last of two columns of one name
    at_period, at_employee = (max(i for i, name in enumerate(table.header) if name == column)
                              for column in ("period", "employee"))
    found: dict[str, tuple[str, dict[str, str]]] = {}
    for _, cells in table.rows():
        if header_names is None:  # the names the first row has cells for
            header_names = set(table.header[:len(cells)])
            for column in columns:
                if column not in header_names:
                    raise InputError(f"{path}: there is no column '{column}' to break the "
                                     f"results down by{did_you_mean(column, header_names)}")
        month = (cells[at_period] if at_period < len(cells) else "").strip()[:7]
        employee = (cells[at_employee] if at_employee < len(cells) else "").strip()
        if month not in months or not employee:
            continue
        if employee not in found or month >= found[employee][0]:
            record = dict(zip(table.header, cells, strict=False))
            found[employee] = (month, {c: _text(record.get(c)) for c in columns})
    if header_names is None:
        for column in columns:
            raise InputError(f"{path}: there is no column '{column}' to break the results "
                             f"down by{did_you_mean(column, set())}")
    return {employee: values for employee, (_, values) in found.items()}


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()
