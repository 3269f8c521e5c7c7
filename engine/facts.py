"""Read employee fact records (CSV, JSON, JSON Lines, XLSX) strictly.

One record is one employee in one month: the identity columns (`employee`, `period`, `role`,
optionally `name`, `team`, `hired`, `left`) and the declared facts. Reading is strict:
- every number is an exact `Decimal` written as plain digits (`-?[0-9]+(.[0-9]+)?`, `15%` in a
  ratio column); thousands separators, NaN, exponents, '+', non-ASCII digits are refused, and
  no float is ever produced (an Excel float goes through its shortest repr);
- an empty cell, a JSON null or a missing key means the fact is absent, never zero;
- the first problem stops the read with an `InputError` carrying one `E_FACTS` diagnostic at
  file:row:column, a message naming the column and the value, and a hint.

Two ways in:
- `read_facts(path, types)` reads and checks every cell of every record into `FactRow`s;
- `scan_facts(path, types, plan)` is how a run reads: only what the run will use. A
  `MonthPlan` names the months evaluated (their records are read and checked in full and kept
  as compact `Record`s) and, when a policy looks back at earlier periods or years, the facts
  read in earlier months (kept per employee in a flat list, not one object per month). Of any
  other record only `employee`, `period` and `role` are checked (present, the period a real
  month) and that it is the employee's only record for its month: the cells of months a run
  does not read are not checked, so a run of 2025-Q3 does not stop on a typo in 2023's quota.

Each column's parser is chosen once per file from the header (with a small memory of the
values it has seen: periods, targets, flags and counts repeat); the per-row loop only calls
them, with the cyclic garbage collector paused. A CSV is decoded a megabyte at a time, never
held whole, and a line without quotes is split at its commas by the reader itself, only as far
as it reads (the csv module reads the others); one record per employee and month is checked
with a bitmask of months per employee.
"""

from __future__ import annotations

import codecs
import csv
import gc
import io
import json
import math
import os
import re
import stat
import zipfile
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from decimal import ROUND_HALF_EVEN, Context, Decimal
from pathlib import Path
from typing import IO, Any, Final, NamedTuple, NoReturn, Protocol, cast

from .diagnostics import Diagnostic, InputError, Location, Severity, did_you_mean

FACT_TYPES = ("money", "number", "ratio", "integer", "boolean", "date", "text", "list")
IDENTITY = ("employee", "period", "role", "name", "team", "hired", "left")
REQUIRED = ("employee", "period", "role")
CODE: Final = "E_FACTS"
MAX_DATA_BYTES: Final = 1024 ** 3  # a data file over 1 GiB is refused before it is read
SUFFIXES = (".csv", ".json", ".jsonl", ".xlsx")


@dataclass(frozen=True)
class FactRow:
    """One employee's record for one month, as read."""

    employee: str
    month: str  # "YYYY-MM", a real month
    role: str
    name: str | None
    team: str | None
    hired: date | None
    left: date | None
    # fact name -> Decimal | bool | str | date | tuple[str, ...]; only the facts present
    values: Mapping[str, object]
    source: str  # the file, as the caller named it
    row: int  # CSV/XLSX: row in the file (header = 1); JSON: record index (1-based); JSONL: line


@dataclass(frozen=True)
class FactsRead:
    rows: list[FactRow]  # in file order
    unknown_columns: tuple[str, ...]  # sorted; neither identity nor declared


@dataclass(frozen=True)
class MonthPlan:
    """What a run reads of a facts file.

    The records of `months` are read in full. With `history` (facts, possibly none), the
    records of every month before the first of `months` are read for those facts only (and
    their team with `history_team`): their month is kept even when they hold none of them."""

    months: frozenset[str]
    history: tuple[str, ...] | None = None
    history_team: bool = False

    @property
    def first(self) -> int:
        """The index (see month_index) of the first month read in full."""
        return min(map(month_index, self.months)) if self.months else 0


class Record(NamedTuple):
    """One employee's record of one month read in full (and checked), compactly: its facts
    are kept as read (`cells`: a CSV line without quotes, the row's cells, or a JSON object)
    and parsed again when asked for (FactsTable.facts), which takes a fraction of the memory
    of their values."""

    month: str
    role: str
    name: str | None
    team: str | None
    hired: date | None
    left: date | None
    row: int  # as FactRow.row
    cells: object


class EmployeeFacts:
    """One employee's records as a run keeps them.

    `records` are the months read in full, in file order. `history` holds the earlier months
    flat, in file order: for each, its month index, its team (with MonthPlan.history_team),
    then the value of each history fact (None when absent)."""

    __slots__ = ("base", "history", "mask", "records")

    def __init__(self, month: int) -> None:
        self.base = month  # the lowest month index seen; bit i of mask is month base + i
        self.mask = 1
        self.records: list[Record] = []
        self.history: list[object] = []


def _copy(values: object, wanted: frozenset[str] | None = None) -> dict[str, object]:
    return {name: value for name, value in cast(Mapping[str, object], values).items()
            if wanted is None or name in wanted}


Decode = Callable[[object, frozenset[str] | None], dict[str, object]]


@dataclass(frozen=True)
class FactsTable:
    """A facts file as a run reads it (scan_facts): each employee's records."""

    source: str
    plan: MonthPlan | None  # None: every month read in full
    columns: frozenset[str]  # every column (CSV, XLSX) or key (JSON) the file names
    employees: dict[str, EmployeeFacts]  # everyone with a record in any month
    # a record's cells (and the facts wanted, None: all) -> its facts present, with the
    # parsers that checked them
    decode: Decode = field(repr=False, compare=False, default=_copy)

    def unknown_columns(self, types: Mapping[str, str]) -> tuple[str, ...]:
        """The columns that are neither identity columns nor in `types`, sorted."""
        return tuple(sorted(self.columns - set(_IDENTITY_KIND) - set(types)))

    def facts(self, record: Record, wanted: frozenset[str] | None = None
              ) -> dict[str, object]:
        """The facts present in a record (fact -> value; only those `wanted`), in the file's
        order."""
        return self.decode(record.cells, wanted)


def month_index(month: str) -> int:
    """'2025-07' -> 2025 * 12 + 6: consecutive months have consecutive indexes."""
    return int(month[:4]) * 12 + int(month[5:7]) - 1


# --------------------------------------------------------------------------------------------
# Cell parsers. A parser takes one cell and returns its value, or None for an empty cell (no
# fact value is ever None); a bad value raises _Bad, which the row loop turns into a diagnostic
# with its place.

# A str cell (CSV) or any cell (XLSX, JSON) -> the column's value, or None when empty.
Parser = Callable[[Any], Any]

_PLAIN = re.compile(r"(-?)([0-9]+)(?:\.([0-9]+))?")
_DATE = re.compile(r"([0-9]{4})-([0-9]{2})-([0-9]{2})")
_MONTH = re.compile(r"([0-9]{4})-(0[1-9]|1[0-2])")
_EXPONENT = re.compile(r"[-+]?[0-9]*\.?[0-9]+[eE][-+]?[0-9]+")
_BOOLEANS = {"true": True, "false": False, "1": True, "0": False, "yes": True, "no": False}
# Wide enough to quantise any finite float (up to 1.8e308) to six places exactly.
_EXCEL_MONEY = Context(prec=400, rounding=ROUND_HALF_EVEN)


class _Bad(Exception):
    """A cell's value is wrong: `reason` follows the value in the message."""

    def __init__(self, reason: str, hint: str, *, show_value: bool = True) -> None:
        super().__init__(reason)
        self.reason, self.hint, self.show_value = reason, hint, show_value


class _NonFinite:
    """JSON's NaN / Infinity / -Infinity, kept so the cell that holds it can be named."""

    def __init__(self, text: str) -> None:
        self.text = text

    def __str__(self) -> str:
        return self.text


class _DuplicateKeys(dict[str, object]):
    """A JSON object in which some key appears twice (json would silently keep the last)."""

    duplicate: str = ""


def _number_problem(text: str, kind: str) -> _Bad:
    """Why `text` is not a plain number, with the most specific hint we can give."""
    lowered = text.lower().lstrip("+-")
    if lowered in ("nan", "inf", "infinity", "snan"):
        hint = "a fact must be a finite number; leave the cell empty when it is unknown"
    elif "," in text:
        hint = "remove the thousands separators (1200.50, not 1,200.50); '.' is the decimal point"
    elif _EXPONENT.fullmatch(text):
        hint = "write the number out in full, without an exponent (1200, not 1.2e3)"
    elif "_" in text:
        hint = "remove the underscores (1200, not 1_200)"
    elif text.startswith("+"):
        hint = "remove the leading '+'"
    elif any(c.isspace() for c in text):
        hint = "remove the spaces inside the number"
    elif any(c.isdigit() and not c.isascii() for c in text):
        hint = "use the ASCII digits 0-9 (not full-width or other scripts' digits)"
    elif text.endswith("%"):
        hint = "only a ratio may be written as a percentage; write 0.15 for 15%"
    elif text.startswith((".", "-.")) or text.endswith("."):
        hint = "write digits on both sides of the '.' (0.5, not .5)"
    elif kind == "ratio":
        hint = "write a plain decimal such as 0.15, or a percentage such as 15%"
    else:
        hint = "write a plain decimal such as 1200.50 (digits, an optional '-' and '.')"
    return _Bad("is not a number", hint)


def _too_many_places(places: int) -> _Bad:
    return _Bad(f"has more than {places} decimal place(s)",
                f"a money amount has at most {places} decimal place(s) (the policy's rounding);"
                " round it in the source")


def _not_whole() -> _Bad:
    return _Bad("is not a whole number", "an integer fact takes whole numbers such as 12")


def _text_number(kind: str, places: int) -> Callable[[str], object]:
    """Parser of numbers written as text (CSV, and strings in JSON and XLSX)."""
    match = _PLAIN.fullmatch

    if kind == "money":
        def money(raw: str) -> object:
            text = raw.strip()
            if not text:
                return None
            m = match(text)
            if m is None:
                raise _number_problem(text, kind)
            fraction = m[3]
            if fraction is not None and len(fraction) > places \
                    and len(fraction.rstrip("0")) > places:
                raise _too_many_places(places)
            return Decimal(text)
        return money

    if kind == "integer":
        def integer(raw: str) -> object:
            text = raw.strip()
            if not text:
                return None
            m = match(text)
            if m is None:
                raise _number_problem(text, kind)
            fraction = m[3]
            if fraction is None:
                return Decimal(text)
            if fraction.strip("0"):
                raise _not_whole()
            return Decimal(m[1] + m[2])
        return integer

    if kind == "ratio":
        def ratio(raw: str) -> object:
            text = raw.strip()
            if not text:
                return None
            if text[-1] == "%":
                if match(text[:-1]) is None:
                    raise _number_problem(text, kind)
                return Decimal(text[:-1] + "E-2")  # exact: 15% is 0.15
            if match(text) is None:
                raise _number_problem(text, kind)
            return Decimal(text)
        return ratio

    def number(raw: str) -> object:
        text = raw.strip()
        if not text:
            return None
        if match(text) is None:
            raise _number_problem(text, kind)
        return Decimal(text)
    return number


def _text_boolean(raw: str) -> object:
    text = raw.strip()
    if not text:
        return None
    value = _BOOLEANS.get(text.lower())
    if value is None:
        raise _Bad("is not true or false", "write true/false, yes/no or 1/0")
    return value


def _text_date(raw: str) -> object:
    text = raw.strip()
    if not text:
        return None
    m = _DATE.fullmatch(text)
    if m is None:
        raise _Bad("is not a date", "write the date as YYYY-MM-DD, e.g. 2025-07-31")
    try:
        return date(int(m[1]), int(m[2]), int(m[3]))
    except ValueError:
        raise _Bad("is not a real date", "check the day and the month") from None


def _text_month(raw: str) -> object:
    text = raw.strip()
    if not text:
        return None
    if _MONTH.fullmatch(text) is None or text.startswith("0000"):
        raise _Bad("is not a month", "write the month as YYYY-MM with two digits, e.g. 2025-07")
    return text


def _text_text(raw: str) -> object:
    return raw.strip() or None


def _text_list(raw: str) -> object:
    text = raw.strip()
    if not text:
        return None
    return tuple(item for item in (part.strip() for part in text.split(";")) if item)


def _text_parser(kind: str, places: int) -> Parser:
    """A fresh parser for one column of text cells, remembering the values it has seen."""
    if kind in ("money", "number", "ratio", "integer"):
        return _memo(_text_number(kind, places))
    if kind in ("text", "list"):
        return _text_text if kind == "text" else _text_list
    return _memo({"boolean": _text_boolean, "date": _text_date, "month": _text_month}[kind])


_MISS: Final = object()
_MEMO_SIZE = 4096


def _memo(parse: Callable[[str], object]) -> Callable[[str], object]:
    """`parse` with a bounded memory of its results: columns such as period, quota, flags and
    counts repeat a few values over many rows. The values are immutable, so sharing is safe;
    a refused cell is not remembered and raises again."""
    cache: dict[str, object] = {}
    get = cache.get

    def memo(raw: str) -> object:
        value = get(raw, _MISS)
        if value is _MISS:
            value = parse(raw)
            if len(cache) < _MEMO_SIZE:
                cache[raw] = value
        return value
    return memo


# Values that are not text: JSON numbers (Decimal), booleans, arrays and constants; Excel
# numbers (int, float), booleans, dates and times.

def _typed_number(kind: str, places: int) -> Callable[[object], object]:
    cent = Decimal(1).scaleb(-places)

    def number(value: object) -> object:
        if type(value) is Decimal:  # JSON; finite, as parse_constant catches NaN and Infinity
            exponent = _exponent(value)
            if exponent > 0:
                raise _Bad("is written with an exponent",
                           "write the number out in full (1200, not 1.2e3)")
            return _decimal(value, exponent, kind, places) if exponent else value
        if isinstance(value, bool):
            raise _Bad("is true/false, not a number", "write a number")
        if isinstance(value, int):
            return Decimal(value)
        if isinstance(value, float):  # Excel
            if not math.isfinite(value):
                raise _Bad("is not a finite number", "leave the cell empty when it is unknown")
            exact = Decimal(repr(value))  # the shortest repr: what Excel shows, never binary noise
            if kind == "money":
                return exact.quantize(cent, context=_EXCEL_MONEY)  # 0.30000000000000004
            return _decimal(exact, _exponent(exact), kind, places)
        if isinstance(value, _NonFinite):
            raise _Bad("is not a finite number", "leave the value out or null when unknown")
        raise _Bad("is not a number", "write a number")
    return number


def _exponent(value: Decimal) -> int:
    exponent = value.as_tuple().exponent
    return exponent if isinstance(exponent, int) else 0  # 'n'/'N'/'F' never reach here


def _decimal(value: Decimal, exponent: int, kind: str, places: int) -> Decimal:
    """Checks of an exact number that did not come from text (JSON, Excel)."""
    if kind == "money":
        excess = -exponent - places
        if excess > 0 and any(value.as_tuple().digits[-excess:]):
            raise _too_many_places(places)
    elif kind == "integer":
        whole = value.to_integral_value(context=_EXCEL_MONEY)
        if whole != value:
            raise _not_whole()
        return whole
    return value


def _typed_boolean(value: object) -> object:
    if isinstance(value, bool):
        return value
    if isinstance(value, int | Decimal) and value in (0, 1):
        return value == 1
    raise _Bad("is not true or false", "write true or false")


def _typed_date(value: object) -> object:
    if isinstance(value, datetime):
        if value.time() != time(0):
            raise _Bad("has a time of day", "give the date only (format the cell as a date)")
        return value.date()
    if isinstance(value, date):
        return value
    raise _Bad("is not a date", "write the date as YYYY-MM-DD, e.g. 2025-07-31")


def _typed_month(value: object) -> object:
    if isinstance(value, date) and value.day == 1 and (
            not isinstance(value, datetime) or value.time() == time(0)):
        return f"{value.year:04d}-{value.month:02d}"  # Excel turns 2025-07 into 2025-07-01
    raise _Bad("is not a month", "write the month as text YYYY-MM, e.g. 2025-07")


def _typed_text(value: object) -> object:
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)  # an Excel id typed as a number
    if isinstance(value, Decimal) and value.as_tuple().exponent == 0:
        return str(value)
    raise _Bad("is not text", "write it as text (in Excel, format the column as Text)")


def _typed_list(value: object) -> object:
    if isinstance(value, list):
        items: list[str] = []
        for item in value:
            if not isinstance(item, str):
                raise _Bad("is not a list of strings", 'write a list such as ["a", "b"]')
            if item.strip():
                items.append(item.strip())
        return tuple(items)
    raise _Bad("is not a list", "write the items separated by ';' (a JSON array in JSON)")


def _any_parser(kind: str, places: int) -> Parser:
    """Parser of one cell of any type (XLSX and JSON): text goes through the text rules."""
    text_rule = _text_parser(kind, places)
    if kind in ("money", "number", "ratio", "integer"):
        other = _typed_number(kind, places)
    else:
        other = {"boolean": _typed_boolean, "date": _typed_date, "month": _typed_month,
                 "text": _typed_text, "list": _typed_list}[kind]

    def parse(value: object) -> object:
        if isinstance(value, str):
            return text_rule(value)
        if value is None:
            return None
        if isinstance(value, time | timedelta):
            raise _Bad("is a time, not a " + kind, "write the value as the column's type")
        return other(value)
    return parse


# --------------------------------------------------------------------------------------------
# Columns and rows.

# Each identity column's kind (as shown in messages and used to pick its parser).
_IDENTITY_KIND = {"employee": "text", "period": "month", "role": "text", "name": "text",
                  "team": "text", "hired": "date", "left": "date"}
_SHOWN_KIND = {"month": "YYYY-MM"}
_NEEDS = "every record needs an employee, a period (YYYY-MM) and a role"


def _show(value: object) -> str:
    if isinstance(value, str):
        text = value.strip()
        return repr(text if len(text) <= 60 else text[:57] + "...")
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, list):
        return "[" + ", ".join(_show(item) for item in value[:5]) + (", ...]" if value[5:] else "]")
    if isinstance(value, dict):
        return "an object"
    return str(value)


def _error(source: str, row: int, column: int, message: str, hint: str) -> InputError:
    diag = Diagnostic(CODE, Severity.ERROR, Location(source, row, column), message, hint)
    return InputError(diag.render(), [diag])


def _cell_error(source: str, row: int, column: int, name: str, kind: str, value: object,
                bad: _Bad) -> InputError:
    label = _SHOWN_KIND.get(kind, kind)
    if bad.show_value:
        message = f"column '{name}' ({label}): {_show(value)} {bad.reason}"
    else:
        message = f"column '{name}' ({label}) {bad.reason}"
    return _error(source, row, column, message, bad.hint)


def _empty() -> _Bad:
    return _Bad("is empty", _NEEDS, show_value=False)


def _check_dates(hired: object, left: object) -> None:
    if isinstance(hired, date) and isinstance(left, date) and left < hired:
        raise _Bad(f"is before the hired date {hired.isoformat()}",
                   "check the hired and left dates")


def _duplicate(source: str, number: int, column: int, employee: object, month: object,
               first: int) -> InputError:
    return _error(source, number, column,
                  f"employee '{employee}' has two records for {month} (rows {first} and "
                  f"{number})", "keep one record per employee and month")


class Complete(Protocol):
    """What a run does with an employee's entry once the employee's rows are all read (see
    scan_facts): it may evaluate them and drop the entry from `employees`. `completed` holds
    every employee it was given."""

    completed: set[str]

    def __call__(self, employee: str, employees: dict[str, EmployeeFacts], decode: Decode
                 ) -> None: ...


class NotGrouped(Exception):
    """The rows of an employee handed to Complete already began again: the file is not
    grouped by employee, and is to be read whole."""


class _Duplicate(Exception):
    """A second record for an employee and month. Only a bit per month is kept, so the row of
    the first is found by reading the file again up to it (_first_record)."""

    def __init__(self, number: int, column: int, employee: str, month: str) -> None:
        super().__init__(employee, month)
        self.number, self.column, self.employee, self.month = number, column, employee, month


def _no_records(source: str) -> InputError:
    return _error(source, 0, 0, "no records: the file holds no fact rows",
                  "give a header row (employee, period, role and the facts), then one row "
                  "per employee and month")


def _seen(employees: dict[str, EmployeeFacts], employee: str, index: int) -> EmployeeFacts | None:
    """The employee's entry with month `index` marked; None when it was marked already."""
    entry = employees.get(employee)
    if entry is None:
        entry = employees[employee] = EmployeeFacts(index)
        return entry
    offset = index - entry.base
    if offset < 0:
        entry.mask <<= -offset
        entry.base, offset = index, 0
    if entry.mask >> offset & 1:
        return None
    entry.mask |= 1 << offset
    return entry


def _check_types(types: Mapping[str, str], places: int) -> None:
    for name, kind in types.items():
        if kind not in FACT_TYPES:
            raise ValueError(f"fact {name!r} has unknown type {kind!r}; expected one of "
                             f"{', '.join(FACT_TYPES)}")
    if not 0 <= places <= 6:
        raise ValueError(f"places must be 0..6, not {places}")


# How a JSON record is read, chosen by its month.
_SKIP, _FULL, _HISTORY = 0, 1, 2
Ordered = list[tuple[str, Record]] | None  # read_facts: every record in file order


# --------------------------------------------------------------------------------------------
# Tables: CSV and XLSX. A header row, then one record per row.

class _Position(Protocol):
    """Where the table's reader is: the csv reader itself, or a counter of XLSX rows."""

    @property
    def line_num(self) -> int: ...


class _Counter:
    line_num = 0


def _header(source: str, cells: Sequence[object]) -> list[str]:
    header = [("" if cell is None else str(cell)).strip() for cell in cells]
    while header and not header[-1]:
        header.pop()
    positions: dict[str, int] = {}
    for index, name in enumerate(header):
        if name in positions:
            raise _error(source, 1, index + 1,
                         f"column '{name}' appears twice in the header (columns "
                         f"{positions[name] + 1} and {index + 1})", "rename or remove one")
        if name:
            positions[name] = index
    for name in REQUIRED if header else ():
        if name not in positions:
            hint = f"add a column '{name}'; the header must name employee, period and role"
            if len(header) == 1 and (";" in header[0] or "\t" in header[0]):
                hint = "separate the columns with commas (the header seems to use ';' or tabs)"
            raise _error(source, 1, 0,
                         f"the header has no column '{name}'{did_you_mean(name, header)}", hint)
    return header


def _read_table(source: str, table: Iterator[Sequence[object] | str], position: _Position,
                types: Mapping[str, str], make: Callable[[str], Parser],
                plan: MonthPlan | None, ordered: Ordered, complete: Complete | None = None
                ) -> FactsTable:
    """The records of a table (CSV or XLSX rows) as `plan` says (None: every month in full).
    A CSV line without quotes comes as the line itself (_CsvRecords), split only as far as
    needed: a row of a month not read, only up to its identity columns. Raises _Duplicate at
    a second record for an employee and month."""
    cells: Sequence[object] = ()
    header: list[str] = []
    kinds: list[str] = []
    number, column = 1, 0
    try:
        header_cells = next(table, None)
        if isinstance(header_cells, str):
            header_cells = _split(header_cells)
        header = [] if header_cells is None else _header(source, header_cells)
        if not header:
            raise _no_records(source)
        width = len(header)
        kinds = [_IDENTITY_KIND.get(name) or types.get(name) or "" for name in header]
        parsers: list[Parser] = [make(kind) if kind else _blank_only for kind in kinds]
        emp, per, rol = (header.index(name) for name in REQUIRED)
        nam, tea, hir, lef = (header.index(name) if name in header else -1
                              for name in ("name", "team", "hired", "left"))
        p_emp, p_per, p_rol = parsers[emp], parsers[per], parsers[rol]
        # The declared facts as (column index, name, parser), and the unnamed columns, which
        # must stay empty (a value there would be silently lost).
        facts = [(index, name, parsers[index]) for index, name in enumerate(header)
                 if name in types and name not in _IDENTITY_KIND]
        unnamed = [index for index, name in enumerate(header) if not name]
        full = None if plan is None else plan.months
        # In earlier months, the history facts in the plan's order (None where no column).
        columns = {name: (index, name, parse) for index, name, parse in facts}
        history = None if plan is None or plan.history is None else \
            [columns.get(name, (0, name, _absent)) for name in plan.history]
        team_too = plan is not None and plan.history_team  # kept in each history entry
        first = plan.first if plan is not None else 0
        # A line is first split as far as the identity columns and the history facts reach.
        reach = max(emp, per, rol, *(c for c, _, _ in history or ()),
                    tea if team_too else 0) + 1
        periods: dict[object, tuple[str, int]] = {}  # a period cell -> its month and index
        strings: dict[str, str] = {}  # one string for each role, name and team
        employees: dict[str, EmployeeFacts] = {}
        padding: tuple[object, ...] = ("",) * width
        chosen: dict[frozenset[str] | None, list[tuple[int, str, Parser]]] = {None: facts}

        def decode(kept: object, wanted: frozenset[str] | None = None) -> dict[str, object]:
            row = kept.split(",") if isinstance(kept, str) else cast(Sequence[object], kept)
            columns = chosen.get(wanted)
            if columns is None:
                columns = chosen[wanted] = [fact for fact in facts
                                            if wanted and fact[1] in wanted]
            values = {}
            for column, name, parse in columns:
                cell = row[column]
                if cell != "":
                    value = parse(cell)
                    if value is not None:
                        values[name] = value
            return values

        current: str | None = None  # with `complete`: the employee whose rows are being read
        last = position.line_num
        for item in table:
            number, last = last + 1, position.line_num  # the line a CSV record starts on
            line = None
            if isinstance(item, str):
                line = item.rstrip("\r\n")
                if line.count(",") == width - 1:
                    cells = line.split(",", reach)
                else:
                    cells, line = _fit(line.split(","), width, padding, source, number), None
            else:
                cells = item if len(item) == width else _fit(item, width, padding, source,
                                                              number)
            column = emp
            cell = cells[emp]
            employee = (cell.strip() or None) if type(cell) is str else p_emp(cell)
            if employee is None:
                if line is not None:
                    cells = line.split(",")
                if all(_blank(cell) for cell in cells):
                    continue
                raise _empty()
            if complete is not None and employee != current:
                if current is not None and current in employees:
                    complete(current, employees, decode)
                if employee in complete.completed:
                    raise NotGrouped(employee)
                current = employee
            column = per
            cell = cells[per]
            known = periods.get(cell)
            if known is None:
                month = p_per(cell)
                if month is None:
                    raise _empty()
                known = (month, month_index(month))
                if len(periods) < _MEMO_SIZE:
                    periods[cell] = known
            month, index = known
            column = rol
            cell = cells[rol]
            role = (cell.strip() or None) if type(cell) is str else p_rol(cell)
            if role is None:
                raise _empty()
            if full is not None and month not in full and (history is None or index >= first):
                # not read: only one record per employee and month is checked (inline: most
                # rows of a file are here)
                entry = employees.get(employee)
                if entry is None:
                    employees[employee] = EmployeeFacts(index)
                    continue
                offset = index - entry.base
                if offset < 0:
                    entry.mask <<= -offset
                    entry.base, offset = index, 0
                if entry.mask >> offset & 1:
                    raise _Duplicate(number, emp + 1, employee, month)
                entry.mask |= 1 << offset
                continue
            if full is None or month in full:
                if line is not None:
                    cells = line.split(",")
                for column, _name, parse in facts:  # checked now, kept as read (Record)
                    if cells[column] != "":  # most cells of a wide file are empty
                        parse(cells[column])
                name_ = team = hired = left = None
                if nam >= 0:
                    column = nam
                    name_ = parsers[nam](cells[nam])
                if tea >= 0:
                    column = tea
                    team = parsers[tea](cells[tea])
                if hir >= 0:
                    column = hir
                    hired = parsers[hir](cells[hir])
                if lef >= 0:
                    column = lef
                    left = parsers[lef](cells[lef])
                    _check_dates(hired, left)
                for column in unnamed:
                    _blank_only(cells[column])
                found = _seen(employees, employee, index)
                if found is None:
                    raise _Duplicate(number, emp + 1, employee, month)
                if type(team) is str:
                    team = strings.setdefault(team, team)
                if type(name_) is str:
                    name_ = strings.setdefault(name_, name_)
                record = Record(month, strings.setdefault(role, role), name_, team, hired, left,
                                number, tuple(cells) if line is None else line)
                found.records.append(record)
                if ordered is not None:
                    ordered.append((employee, record))
            else:  # an earlier month, read for the history facts
                assert history is not None
                values = []
                for column, _name, parse in history:
                    values.append(parse(cells[column]))
                team = None
                if team_too and tea >= 0:
                    column = tea
                    team = parsers[tea](cells[tea])
                    if type(team) is str:
                        team = strings.setdefault(team, team)
                found = _seen(employees, employee, index)
                if found is None:
                    raise _Duplicate(number, emp + 1, employee, month)
                found.history.append(index)
                if team_too:
                    found.history.append(team)
                found.history += values
    except _Bad as bad:
        name = header[column] or f"column {column + 1}"
        raise _cell_error(source, number, column + 1, name, kinds[column] or "unnamed",
                          cells[column], bad) from None
    except csv.Error as exc:
        raise _error(source, position.line_num, 0, f"CSV syntax: {exc}",
                     "check the quotes: a value with a quote, ',' or line break is written "
                     'in double quotes, with inner quotes doubled ("")') from None
    if complete is not None and current is not None and current in employees:
        complete(current, employees, decode)
    elif not employees:
        raise _no_records(source)
    return FactsTable(source, plan, frozenset(name for name in header if name), employees,
                      decode)


def _split(line: str) -> list[str]:
    """The cells of a CSV line without quotes."""
    return line.rstrip("\r\n").split(",")


class _CsvRecords:
    """The records of a CSV file, counting its lines (`line_num`, as csv.reader's). A line
    without a quote is handed on as the line itself (its cells are what splitting it at each
    ',' gives, and the reader splits only what it reads); any other record is read by the csv
    module (a quoted value may hold ',', quotes and line breaks, and span lines)."""

    def __init__(self, lines: Iterator[str]) -> None:
        self.lines = lines
        self.line_num = 0
        self.pending: list[str] = []
        self.reader = csv.reader(self._feed(), strict=True)
        self.limit = csv.field_size_limit()  # a longer line goes to csv, which refuses it

    def _feed(self) -> Iterator[str]:
        while True:
            if self.pending:
                yield self.pending.pop()
                continue
            line = next(self.lines, None)
            if line is None:
                return
            self.line_num += 1
            yield line

    def __iter__(self) -> _CsvRecords:
        return self

    def __next__(self) -> str | list[str]:
        line = next(self.lines)
        if '"' not in line and len(line) <= self.limit:
            self.line_num += 1
            return line
        self.pending.append(line)
        self.line_num += 1
        return next(self.reader)


def _absent(cell: object) -> None:
    return None


def _first_record(table: Iterator[Sequence[object] | str], position: _Position,
                  make: Callable[[str], Parser], employee: str, month: str) -> int:
    """The row of the first record of `employee` for `month`, reading the table again (every
    row up to the duplicate was read without a problem the first time)."""
    first = next(table, ())
    header = _header("", _split(first) if isinstance(first, str) else first)
    width = len(header)
    emp, per = header.index("employee"), header.index("period")
    p_emp, p_per = make("text"), make("month")
    padding: tuple[object, ...] = ("",) * width
    last = position.line_num
    for item in table:
        number, last = last + 1, position.line_num
        cells = _split(item) if isinstance(item, str) else item
        if len(cells) != width:
            cells = _fit(cells, width, padding, "", number)
        if p_emp(cells[emp]) == employee and p_per(cells[per]) == month:
            return number
    return 0


def _blank(cell: object) -> bool:
    return cell is None or (isinstance(cell, str) and not cell.strip())


def _blank_only(cell: object) -> object:
    if _blank(cell):
        return None
    raise _Bad("is in a column without a name", "name the column in the header row, or "
               "remove the value")


def _fit(cells: Sequence[object], width: int, padding: tuple[object, ...], source: str,
         number: int) -> Sequence[object]:
    """A row padded or cut to the header's width; a value beyond the header is an error."""
    if len(cells) < width:
        return (*cells, *padding[len(cells):])
    for index in range(width, len(cells)):
        if not _blank(cells[index]):
            raise _error(source, number, index + 1,
                         f"row {number} has more cells than the header ({len(cells)} > {width}):"
                         f" {_show(cells[index])} in column {index + 1} has no column name",
                         "remove the extra cells, or name the column in the header (a value "
                         "with a ',' in it must be in double quotes)")
    return cells[:width]


_XLSX_ERRORS: tuple[type[Exception], ...] = (
    zipfile.BadZipFile, KeyError, ValueError, TypeError, IndexError, SyntaxError, EOFError,
)


def _xlsx_rows(rows: Iterable[Sequence[object]], source: str, counter: _Counter
               ) -> Iterator[Sequence[object]]:
    """The sheet's rows, counted; a broken workbook becomes an InputError at its row."""
    iterator = iter(rows)
    while True:
        try:
            cells = next(iterator)
        except StopIteration:
            return
        except _XLSX_ERRORS as exc:
            raise _error(source, counter.line_num + 1, 0, f"cannot read the workbook: {exc}",
                         "open and save it again in Excel, or export it as CSV") from None
        counter.line_num += 1
        yield cells


def _read_xlsx(path: Path, source: str, types: Mapping[str, str], places: int,
               plan: MonthPlan | None, ordered: Ordered, complete: Complete | None = None
               ) -> FactsTable:
    check_size(path, source)

    def make(kind: str) -> Parser:
        return _any_parser(kind, places)

    with _sheet_rows(path, source) as (table, counter):
        try:
            return _read_table(source, table, counter, types, make, plan, ordered, complete)
        except _Duplicate as found:
            duplicate = found
    with _sheet_rows(path, source) as (table, counter):
        first = _first_record(table, counter, make, duplicate.employee, duplicate.month)
    raise _duplicate(source, duplicate.number, duplicate.column, duplicate.employee,
                     duplicate.month, first)


@contextmanager
def _sheet_rows(path: Path, source: str) -> Iterator[tuple[Iterator[Sequence[object]],
                                                            _Counter]]:
    """The rows of the workbook's first sheet (none when it has no sheet), counted."""
    import openpyxl  # type: ignore[import-untyped]  # openpyxl has no type hints
    from openpyxl.utils.exceptions import InvalidFileException  # type: ignore[import-untyped]

    try:
        workbook = openpyxl.load_workbook(path, read_only=True, data_only=True)
    except OSError as exc:
        raise _unreadable(source, exc) from None
    except (*_XLSX_ERRORS, InvalidFileException) as exc:
        raise _error(source, 0, 0, f"not a readable .xlsx workbook: {exc}",
                     "open and save it again in Excel, or export it as CSV") from None
    try:
        counter = _Counter()
        if not workbook.worksheets:
            yield iter(()), counter
            return
        sheet = workbook.worksheets[0]
        sheet.reset_dimensions()  # the stored size is often wrong: read every row there is
        yield _xlsx_rows(sheet.iter_rows(values_only=True), source, counter), counter
    finally:
        workbook.close()


# --------------------------------------------------------------------------------------------
# Records: JSON (a list of objects, or {"records": [...]}) and JSON Lines.

def _json_object(pairs: list[tuple[str, object]]) -> dict[str, object]:
    obj = dict(pairs)
    if len(obj) == len(pairs):
        return obj
    marked = _DuplicateKeys(obj)
    seen: set[str] = set()
    for key, _ in pairs:
        if key in seen:
            marked.duplicate = key
            break
        seen.add(key)
    return marked


_DECODER = json.JSONDecoder(parse_float=Decimal, parse_int=Decimal, parse_constant=_NonFinite,
                            object_pairs_hook=_json_object)
_SHAPE = 'a JSON facts file is a list of records, or {"records": [...]}'


def _decode_json(text: str, source: str, line: int) -> object:
    try:
        return _DECODER.decode(text)
    except json.JSONDecodeError as exc:
        raise _error(source, line + exc.lineno - 1, exc.colno, f"JSON syntax: {exc.msg}",
                     "fix the JSON (a missing comma, quote or bracket?)") from None
    except RecursionError:
        raise _error(source, line, 0, "the JSON nests too deeply",
                     "a record is a flat object of column names to values") from None


def _json_records(text: str, source: str) -> Iterator[tuple[int, object]]:
    data = _decode_json(text, source, 1)
    if isinstance(data, dict):
        if isinstance(data, _DuplicateKeys):
            raise _error(source, 0, 0, f"key '{data.duplicate}' appears twice at the top level",
                         "keep one of them")
        if set(data) != {"records"}:
            raise _error(source, 0, 0, f"{_SHAPE}, not an object with keys {sorted(data)}",
                         'put the records in a list under "records", and nothing else')
        data = data["records"]
    if not isinstance(data, list):
        raise _error(source, 0, 0, _SHAPE, "put one object per employee and month in a list")
    return enumerate(data, 1)


def _jsonl_records(text: str, source: str) -> Iterator[tuple[int, object]]:
    for number, line in enumerate(text.split("\n"), 1):
        if line.strip():
            yield number, _decode_json(line, source, number)


def _read_records(source: str, records: Iterator[tuple[int, object]],
                  types: Mapping[str, str], places: int, plan: MonthPlan | None = None,
                  ordered: Ordered = None) -> FactsTable:
    kinds = {**types, **_IDENTITY_KIND}  # an identity column is never a fact
    # Each fact's parser of strings (most JSON values), and of any value.
    facts = {name: (_text_parser(kind, places), _any_parser(kind, places))
             for name, kind in types.items() if name not in _IDENTITY_KIND}
    p_text, p_month, p_date = (_any_parser(kind, places) for kind in ("text", "month", "date"))
    full = None if plan is None else plan.months
    history = None if plan is None or plan.history is None else \
        {name: facts[name] for name in plan.history if name in facts}
    history_names = () if plan is None or plan.history is None else plan.history
    team_too = plan is not None and plan.history_team
    first = plan.first if plan is not None else 0
    employees: dict[str, EmployeeFacts] = {}
    columns: set[str] = set()
    number, key, record = 0, "", {}
    try:
        for number, item in records:
            if type(item) is not dict:
                raise _not_a_record(source, number, item)
            record = item
            get = record.get
            # (text inline: the common case, and this loop runs once per record)
            key = "employee"
            cell = get(key)
            employee = (cell.strip() or None) if type(cell) is str else p_text(cell)
            if employee is None:
                raise _missing(source, number, record, key)
            key = "period"
            month = p_month(get(key))
            if month is None:
                raise _missing(source, number, record, key)
            key = "role"
            cell = get(key)
            role = (cell.strip() or None) if type(cell) is str else p_text(cell)
            if role is None:
                raise _missing(source, number, record, key)
            columns.update(record)
            index = month_index(month)
            how = _FULL if full is None or month in full else \
                _HISTORY if history is not None and index < first else _SKIP
            if how == _FULL:
                key = "name"
                cell = get(key)
                name_ = (cell.strip() or None) if type(cell) is str else p_text(cell)
                key = "team"
                cell = get(key)
                team = (cell.strip() or None) if type(cell) is str else p_text(cell)
                key = "hired"
                cell = get(key)
                hired = None if cell is None else p_date(cell)
                key = "left"
                cell = get(key)
                if cell is not None:
                    left = p_date(cell)
                    _check_dates(hired, left)
                else:
                    left = None
                for key, cell in record.items():  # checked now, kept as read (Record)
                    pair = facts.get(key)
                    if pair is not None:
                        pair[0](cell) if type(cell) is str else pair[1](cell)
            elif how == _HISTORY:
                assert history is not None
                found: dict[str, object] = {}
                for key, cell in record.items():
                    pair = history.get(key)
                    if pair is not None:
                        found[key] = pair[0](cell) if type(cell) is str else pair[1](cell)
                key = "team"
                cell = get(key)
                team = ((cell.strip() or None) if type(cell) is str else p_text(cell)) \
                    if team_too else None
            entry = _seen(employees, employee, index)
            if entry is None:
                raise _Duplicate(number, 0, employee, month)
            if how == _FULL:
                row = Record(month, role, name_, team, hired, left, number, record)
                entry.records.append(row)
                if ordered is not None:
                    ordered.append((employee, row))
            elif how == _HISTORY:
                assert history is not None
                entry.history.append(index)
                if team_too:
                    entry.history.append(team)
                entry.history += [found.get(name) for name in history_names]
    except _Bad as bad:
        raise _cell_error(source, number, 0, key, kinds[key], record.get(key), bad) from None
    if not employees:
        raise _no_records(source)

    def decode(kept: object, wanted: frozenset[str] | None = None) -> dict[str, object]:
        values = {}
        for key, cell in cast(dict[str, object], kept).items():
            pair = facts.get(key)
            if pair is not None and (wanted is None or key in wanted):
                value = pair[0](cell) if type(cell) is str else pair[1](cell)
                if value is not None:
                    values[key] = value
        return values

    return FactsTable(source, plan, frozenset(columns), employees, decode)


def _first_record_of(records: Iterator[tuple[int, object]], employee: str, month: str) -> int:
    """The number of the first record of `employee` for `month` (records up to the duplicate
    were all read without a problem the first time)."""
    p_text, p_month = _any_parser("text", 2), _any_parser("month", 2)
    for number, item in records:
        if isinstance(item, dict) and p_text(item.get("employee")) == employee \
                and p_month(item.get("period")) == month:
            return number
    return 0


def _not_a_record(source: str, number: int, item: object) -> InputError:
    if isinstance(item, _DuplicateKeys):
        return _error(source, number, 0, f"record {number}: key '{item.duplicate}' appears twice",
                      "keep one of them (JSON readers silently keep the last)")
    what = ("a list" if isinstance(item, list) else "a string" if isinstance(item, str)
            else "null" if item is None else f"the value {_show(item)}")
    return _error(source, number, 0, f"record {number} is {what}, not an object",
                  'write each record as an object such as {"employee": "E1", '
                  '"period": "2025-07", "role": "sales_rep"}')


def _missing(source: str, number: int, record: Mapping[str, object], key: str) -> InputError:
    if key in record:
        return _cell_error(source, number, 0, key, _IDENTITY_KIND[key], None, _empty())
    return _error(source, number, 0, f"record {number} has no '{key}'"
                  f"{did_you_mean(key, record)}", _NEEDS)


# --------------------------------------------------------------------------------------------
# The entry points.

def read_facts(path: Path, types: Mapping[str, str], *, encoding: str | None = None,
               places: int = 2) -> FactsRead:
    """Read and check every fact record of `path` (.csv, .json, .jsonl or .xlsx).

    `types` maps each declared fact to its type (one of FACT_TYPES); columns that are neither
    identity columns nor declared are skipped and listed in `unknown_columns`. `encoding`
    names the codec of a text file (default UTF-8, a BOM allowed); `places` is the number of
    decimal places a money amount may have. Raises InputError (E_FACTS) at the first problem;
    ValueError for an unknown type in `types` (a caller's bug).
    """
    _check_types(types, places)
    ordered: list[tuple[str, Record]] = []
    with _bulk():
        table = _read(path, types, encoding, places, None, ordered)
    return FactsRead([FactRow(employee, r.month, r.role, r.name, r.team, r.hired, r.left,
                              table.facts(r), table.source, r.row) for employee, r in ordered],
                     table.unknown_columns(types))


def scan_facts(path: Path, types: Mapping[str, str], plan: MonthPlan, *,
               encoding: str | None = None, places: int = 2,
               complete: Complete | None = None) -> FactsTable:
    """Read what a run uses of the fact records of `path`, as `plan` says (see the module's
    docstring); the arguments and errors are those of read_facts, for the cells read.

    With `complete` (CSV and XLSX; JSON ignores it), each employee's entry is handed to it as
    soon as the rows of another employee begin, and the last one's at the end: in a file
    whose rows are grouped by employee (as exports are), the employee's rows are then all
    read, and the run evaluates them and drops them while the rest is read. An employee whose
    rows begin again after that raises NotGrouped: read the file again without `complete`.
    Only what `complete` leaves in `employees` is in the table returned."""
    _check_types(types, places)
    with _bulk():
        return _read(path, types, encoding, places, plan, None, complete)


def plan_records(read: FactsRead, plan: MonthPlan) -> FactsTable:
    """Records read by read_facts or read_records (every cell checked already), kept as
    scan_facts would keep them under `plan`."""
    employees: dict[str, EmployeeFacts] = {}
    history = plan.history
    first = plan.first
    for row in read.rows:
        index = month_index(row.month)
        entry = _seen(employees, row.employee, index)
        assert entry is not None  # read_facts refuses a second record for a month
        if row.month in plan.months:
            entry.records.append(Record(row.month, row.role, row.name, row.team, row.hired,
                                        row.left, row.row, row.values))
        elif history is not None and index < first:
            entry.history.append(index)
            if plan.history_team:
                entry.history.append(row.team)
            entry.history += [row.values.get(name) for name in history]
    source = read.rows[0].source if read.rows else ""
    columns = frozenset(read.unknown_columns) | {name for row in read.rows for name in row.values}
    return FactsTable(source, plan, columns, employees, _copy)


@contextmanager
def _bulk() -> Iterator[None]:
    """Pause the cyclic garbage collector while reading: hundreds of thousands of new rows
    (none of them cyclic) would otherwise trigger it thousands of times, a fifth of the time."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _read(path: Path, types: Mapping[str, str], encoding: str | None, places: int,
          plan: MonthPlan | None, ordered: Ordered, complete: Complete | None = None
          ) -> FactsTable:
    source = str(path)
    suffix = path.suffix.lower()
    if suffix not in SUFFIXES:
        raise _error(source, 0, 0, f"cannot read facts from a '{path.suffix}' file",
                     "give a .csv, .json, .jsonl or .xlsx file")
    if suffix == ".xlsx":
        return _read_xlsx(path, source, types, places, plan, ordered, complete)
    if suffix == ".csv":
        return _read_csv(path, source, types, encoding, places, plan, ordered, complete)
    text = _read_text(path, source, encoding)

    def records() -> Iterator[tuple[int, object]]:
        return _json_records(text, source) if suffix == ".json" else \
            _jsonl_records(text, source)

    try:
        return _read_records(source, records(), types, places, plan, ordered)
    except _Duplicate as duplicate:
        first = _first_record_of(records(), duplicate.employee, duplicate.month)
        raise _duplicate(source, duplicate.number, 0, duplicate.employee, duplicate.month,
                         first) from None


def _read_csv(path: Path, source: str, types: Mapping[str, str], encoding: str | None,
              places: int, plan: MonthPlan | None, ordered: Ordered,
              complete: Complete | None = None) -> FactsTable:
    def make(kind: str) -> Parser:
        return _text_parser(kind, places)

    def refuse() -> NoReturn:
        _read_text(path, source, encoding)  # the whole file, to say where the problem is
        raise _error(source, 0, 0, "the file changed while it was read", "read it again")

    check_size(path, source)
    try:
        records = _CsvRecords(open_lines(path, encoding, refuse))
        try:
            return _read_table(source, records, records, types, make, plan, ordered,
                               complete)
        except _Duplicate as duplicate:
            again = _CsvRecords(open_lines(path, encoding, refuse))
            first = _first_record(again, again, make, duplicate.employee, duplicate.month)
            raise _duplicate(source, duplicate.number, duplicate.column, duplicate.employee,
                             duplicate.month, first) from None
    except OSError as exc:
        raise _unreadable(source, exc) from None


_CHUNK = 1 << 20  # bytes decoded at a time


def open_lines(path: Path, encoding: str | None, refuse: Callable[[], NoReturn], *,
               strip_bom: bool = True, universal: bool = False) -> Iterator[str]:
    """The lines of a text file with their endings, one at a time, as the csv module wants
    them, decoded _CHUNK bytes at a time: a file is never held whole (io.StringIO copies its
    text at four bytes a character; a 50 MB file took 600 MB).

    The codec is `encoding`, default UTF-8 with an optional BOM (stripped; with strip_bom also
    in other codecs); with `universal`, every line ending is read as '\\n' (as Path.read_text
    reads). The file is opened at once (OSError); when its codec is unknown or a byte cannot be
    decoded, `refuse()` is called to read the whole file the old way and raise the error that
    names the place."""
    codec = encoding or "utf-8-sig"
    handle = path.open("rb")
    try:
        io.TextIOWrapper(io.BytesIO(), encoding=codec)  # LookupError: not a text codec (base64)
        decoder = codecs.getincrementaldecoder(codec)()
    except LookupError:
        handle.close()
        refuse()
    return _decoded_lines(handle, decoder, refuse, strip_bom, universal)


def _decoded_lines(handle: IO[bytes], decoder: codecs.IncrementalDecoder,
                   refuse: Callable[[], NoReturn], strip_bom: bool,
                   universal: bool) -> Iterator[str]:
    with handle:
        carry, start = "", strip_bom
        while True:
            chunk = handle.read(_CHUNK)
            try:
                text = decoder.decode(chunk, final=not chunk)
            except UnicodeDecodeError:
                refuse()
            if start and text:
                start = False
                if text[0] == "\ufeff":  # a BOM, also in gb18030 or utf-16
                    text = text[1:]
            text = carry + text if carry else text
            if not chunk:
                cut = len(text)
            else:
                cut = text.rfind("\n") + 1  # a line ending split between chunks stays in carry
                carry = text[cut:]
            if cut:
                lines = text[:cut]
                if universal:
                    lines = lines.replace("\r\n", "\n").replace("\r", "\n")
                yield from io.StringIO(lines, newline="")
            if not chunk:
                return


def _unreadable(source: str, exc: OSError) -> InputError:
    diag = Diagnostic("E_FILE_UNREADABLE", Severity.ERROR, Location(source),
                      f"cannot read the file: {exc.strerror or exc}",
                      "check the path and its permissions")
    return InputError(diag.render(), [diag])


def check_size(path: Path, source: str | None = None) -> None:
    """Refuse a data file over MAX_DATA_BYTES before reading it (E_FILE_TOO_LARGE); a file
    that cannot be read at all is left to the reader, which says why."""
    try:
        status = path.stat()
    except OSError:
        return
    size = status.st_size
    if stat.S_ISFIFO(status.st_mode) or stat.S_ISCHR(status.st_mode) \
            or stat.S_ISBLK(status.st_mode) or stat.S_ISSOCK(status.st_mode):
        diag = Diagnostic("E_FILE_UNREADABLE", Severity.ERROR, Location(source or str(path)),
                          "it is a device or pipe, not a file (a read could block, or never "
                          "end)", "give a regular file")
        raise InputError(diag.render(), [diag])
    limit = data_limit()
    if size > limit:
        diag = Diagnostic("E_FILE_TOO_LARGE", Severity.ERROR, Location(source or str(path)),
                          f"the file is {size:,} bytes, over the {limit:,} byte limit of a "
                          "data file", "check it is the right file; for a file this large on "
                          f"purpose set {LIMIT_VARIABLE} (bytes) above its size")
        raise InputError(diag.render(), [diag])


LIMIT_VARIABLE: Final = "MERITPAY_MAX_DATA_BYTES"


def data_limit() -> int:
    """The largest data file read: MAX_DATA_BYTES, or $MERITPAY_MAX_DATA_BYTES when set (a
    whole company's facts over years can be larger on purpose; the files are read a chunk at
    a time, so memory follows the employees, not the file's size)."""
    text = os.environ.get(LIMIT_VARIABLE, "").strip()
    if not text:
        return MAX_DATA_BYTES
    if not text.isascii() or not text.isdigit():
        diag = Diagnostic("E_FILE_TOO_LARGE", Severity.ERROR, Location(LIMIT_VARIABLE),
                          f"{LIMIT_VARIABLE}={text[:40]!r} is not a number of bytes",
                          f"write a whole number of bytes, e.g. {16 * 1024 ** 3} for 16 GiB")
        raise InputError(diag.render(), [diag])
    return int(text)


def _read_text(path: Path, source: str, encoding: str | None) -> str:
    codec, shown = (encoding, encoding) if encoding else ("utf-8-sig", "UTF-8")
    check_size(path, source)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise _unreadable(source, exc) from None
    try:
        text = raw.decode(codec)
    except LookupError:
        raise _error(source, 0, 0, f"'{encoding}' is not a known text encoding",
                     "name a Python codec such as utf-8, gb18030, cp1252 or utf-16") from None
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].decode(codec, errors="replace").count("\n") + 1
        raise _error(source, line, 0,
                     f"byte 0x{raw[exc.start]:02x} on line {line} is not valid {shown}",
                     "save the file as UTF-8, or give its encoding (e.g. gb18030)") from None
    return text[1:] if text.startswith("\ufeff") else text  # a BOM, also in gb18030 or utf-8


# --------------------------------------------------------------------------------------------
# Cell parsing for the side tables (teams, team and company facts, transaction lines).

class CellError(ValueError):
    """A cell's value is wrong for its column: why, and what to do."""

    def __init__(self, reason: str, hint: str) -> None:
        super().__init__(reason)
        self.reason, self.hint = reason, hint


def cell_parser(kind: str, places: int = 2) -> Callable[[str], object]:
    """A strict parser of one text cell of `kind` (a fact type, 'month' or 'date'): returns
    the value, or None for an empty cell; raises CellError."""
    parse = _text_parser(kind, places)

    def parse_cell(raw: str) -> object:
        try:
            value = parse(raw)
        except _Bad as bad:
            shown = f"{_show(raw)} {bad.reason}" if bad.show_value else bad.reason
            raise CellError(shown, bad.hint) from None
        return value

    return parse_cell


def read_records(records: Sequence[object], types: Mapping[str, str], source: str, *,
                 places: int = 2) -> FactsRead:
    """Fact records already in memory (e.g. inline in a test file), read as strictly as a
    JSON file's. Whole numbers may be ints."""
    converted = [{k: (Decimal(v) if type(v) is int else v) for k, v in r.items()}
                 if isinstance(r, dict) else r for r in records]
    _check_types(types, places)
    ordered: list[tuple[str, Record]] = []
    try:
        table = _read_records(source, iter(enumerate(converted, 1)), types, places, None,
                              ordered)
    except _Duplicate as duplicate:
        first = _first_record_of(iter(enumerate(converted, 1)), duplicate.employee,
                                 duplicate.month)
        raise _duplicate(source, duplicate.number, 0, duplicate.employee, duplicate.month,
                         first) from None
    return FactsRead([FactRow(employee, r.month, r.role, r.name, r.team, r.hired, r.left,
                              table.facts(r), source, r.row) for employee, r in ordered],
                     table.unknown_columns(types))
