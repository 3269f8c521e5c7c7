"""Read employee fact records (CSV, JSON, JSON Lines, XLSX) strictly into `FactRow`s.

One record is one employee in one month: the identity columns (`employee`, `period`, `role`,
optionally `name`, `team`, `hired`, `left`) and the declared facts. Reading is strict:
- every number is an exact `Decimal` written as plain digits (`-?[0-9]+(.[0-9]+)?`, `15%` in a
  ratio column); thousands separators, NaN, exponents, '+', non-ASCII digits are refused, and
  no float is ever produced (an Excel float goes through its shortest repr);
- an empty cell, a JSON null or a missing key means the fact is absent, never zero;
- the first problem stops the read with an `InputError` carrying one `E_FACTS` diagnostic at
  file:row:column, a message naming the column and the value, and a hint.

Each column's parser is chosen once per file from the header; the per-row loop only calls
them, so 600k records read in a few seconds.
"""

from __future__ import annotations

import csv
import io
import json
import math
import re
import zipfile
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import ROUND_HALF_EVEN, Context, Decimal
from pathlib import Path
from typing import Any, Final

from .diagnostics import Diagnostic, InputError, Location, Severity, did_you_mean

FACT_TYPES = ("money", "number", "ratio", "integer", "boolean", "date", "text", "list")
IDENTITY = ("employee", "period", "role", "name", "team", "hired", "left")
REQUIRED = ("employee", "period", "role")
CODE: Final = "E_FACTS"
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


# --------------------------------------------------------------------------------------------
# Cell parsers. A parser takes one cell and returns its value, or _ABSENT for an empty cell;
# a bad value raises _Bad, which the row loop turns into a diagnostic with its place.

_ABSENT: Final = object()
Parser = Callable[[Any], object]  # str cells (CSV) or any cell (XLSX, JSON)

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
                return _ABSENT
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
                return _ABSENT
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
                return _ABSENT
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
            return _ABSENT
        if match(text) is None:
            raise _number_problem(text, kind)
        return Decimal(text)
    return number


def _text_boolean(raw: str) -> object:
    text = raw.strip()
    if not text:
        return _ABSENT
    value = _BOOLEANS.get(text.lower())
    if value is None:
        raise _Bad("is not true or false", "write true/false, yes/no or 1/0")
    return value


def _text_date(raw: str) -> object:
    text = raw.strip()
    if not text:
        return _ABSENT
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
        return _ABSENT
    if _MONTH.fullmatch(text) is None or text.startswith("0000"):
        raise _Bad("is not a month", "write the month as YYYY-MM with two digits, e.g. 2025-07")
    return text


def _text_text(raw: str) -> object:
    return raw.strip() or _ABSENT


def _text_list(raw: str) -> object:
    text = raw.strip()
    if not text:
        return _ABSENT
    return tuple(item for item in (part.strip() for part in text.split(";")) if item)


def _text_parser(kind: str, places: int) -> Parser:
    if kind in ("money", "number", "ratio", "integer"):
        return _text_number(kind, places)
    return {"boolean": _text_boolean, "date": _text_date, "month": _text_month,
            "text": _text_text, "list": _text_list}[kind]


# Values that are not text: JSON numbers (Decimal), booleans, arrays and constants; Excel
# numbers (int, float), booleans, dates and times.

def _typed_number(kind: str, places: int) -> Callable[[object], object]:
    def number(value: object) -> object:
        if isinstance(value, bool):
            raise _Bad("is true/false, not a number", "write a number")
        if isinstance(value, int):
            return Decimal(value)
        if isinstance(value, float):
            if not math.isfinite(value):
                raise _Bad("is not a finite number", "leave the cell empty when it is unknown")
            exact = Decimal(repr(value))  # the shortest repr: what Excel shows, never binary noise
            if kind == "money":
                return exact.quantize(Decimal(1).scaleb(-places, _EXCEL_MONEY),
                                      context=_EXCEL_MONEY)
            return _decimal(exact, kind, places)
        if isinstance(value, Decimal):
            if _exponent(value) > 0:
                raise _Bad("is written with an exponent",
                           "write the number out in full (1200, not 1.2e3)")
            return _decimal(value, kind, places)
        if isinstance(value, _NonFinite):
            raise _Bad("is not a finite number", "leave the value out or null when unknown")
        raise _Bad("is not a number", "write a number")
    return number


def _exponent(value: Decimal) -> int:
    exponent = value.as_tuple().exponent
    return exponent if isinstance(exponent, int) else 0  # 'n'/'N'/'F' never reach here


def _decimal(value: Decimal, kind: str, places: int) -> Decimal:
    """Checks of an exact number that did not come from text (JSON, Excel)."""
    if kind == "money":
        excess = -_exponent(value) - places
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
        if value is None:
            return _ABSENT
        if isinstance(value, str):
            return text_rule(value)
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


def _kind_label(kind: str) -> str:
    return _SHOWN_KIND.get(kind, kind)


def _show(value: object) -> str:
    if isinstance(value, str):
        text = value.strip()
        return repr(text if len(text) <= 60 else text[:57] + "...")
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, list):
        return json.dumps(value, default=str, ensure_ascii=False)[:60]
    if isinstance(value, dict):
        return "an object"
    return str(value)


def _error(source: str, row: int, column: int, message: str, hint: str) -> InputError:
    diag = Diagnostic(CODE, Severity.ERROR, Location(source, row, column), message, hint)
    return InputError(diag.render(), [diag])


def _cell_error(source: str, row: int, column: int, name: str, kind: str, value: object,
                bad: _Bad) -> InputError:
    label = _kind_label(kind)
    if bad.show_value:
        message = f"column '{name}' ({label}): {_show(value)} {bad.reason}"
    else:
        message = f"column '{name}' ({label}) {bad.reason}"
    return _error(source, row, column, message, bad.hint)


def _empty() -> _Bad:
    return _Bad("is empty", "every record needs an employee, a period (YYYY-MM) and a role",
                show_value=False)


class _Rows:
    """Collects FactRows, refusing a second record for the same employee and month."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.rows: list[FactRow] = []
        self.seen: dict[tuple[str, str], int] = {}

    def add(self, row: FactRow, column: int) -> None:
        key = (row.employee, row.month)
        first = self.seen.setdefault(key, row.row)
        if first != row.row:
            raise _error(self.source, row.row, column,
                         f"employee '{row.employee}' has two records for {row.month} "
                         f"(rows {first} and {row.row})",
                         "keep one record per employee and month; add the values up in the "
                         "source if both are real")
        if row.hired is not None and row.left is not None and row.left < row.hired:
            raise _error(self.source, row.row, column,
                         f"employee '{row.employee}' left ({row.left.isoformat()}) before being "
                         f"hired ({row.hired.isoformat()})", "check the hired and left dates")
        self.rows.append(row)

    def done(self, unknown: Iterable[str]) -> FactsRead:
        if not self.rows:
            raise _error(self.source, 0, 0, "no records: the file holds no fact rows",
                         "give a header row (employee, period, role and the facts) and one row "
                         "per employee and month")
        return FactsRead(self.rows, tuple(sorted(unknown)))


def _check_types(types: Mapping[str, str], places: int) -> None:
    for name, kind in types.items():
        if kind not in FACT_TYPES:
            raise ValueError(f"fact {name!r} has unknown type {kind!r}; expected one of "
                             f"{', '.join(FACT_TYPES)}")
    if not 0 <= places <= 6:
        raise ValueError(f"places must be 0..6, not {places}")


# --------------------------------------------------------------------------------------------
# Tables: CSV and XLSX. A header row, then one record per row.

def _read_table(source: str, table: Iterator[tuple[int, Sequence[object]]],
                types: Mapping[str, str], make: Callable[[str], Parser]) -> FactsRead:
    first = next(table, None)
    if first is None:
        return _Rows(source).done(())
    _, header_cells = first
    header = [("" if cell is None else str(cell)).strip() for cell in header_cells]
    while header and not header[-1]:
        header.pop()
    if not header:
        return _Rows(source).done(())
    positions: dict[str, int] = {}
    for index, name in enumerate(header):
        if name and name in positions:
            raise _error(source, 1, index + 1,
                         f"column '{name}' appears twice in the header (columns "
                         f"{positions[name] + 1} and {index + 1})",
                         "rename or remove one of them")
        positions.setdefault(name, index)
    for name in REQUIRED:
        if name not in positions:
            hint = f"add a column '{name}'; the header must name employee, period and role"
            if len(header) == 1 and (";" in header[0] or "\t" in header[0]):
                hint = "separate the columns with commas (the header seems to use ';' or tabs)"
            raise _error(source, 1, 0,
                         f"the header has no column '{name}'{did_you_mean(name, header)}", hint)

    width = len(header)
    kinds = [_IDENTITY_KIND.get(name) or types.get(name) or "" for name in header]
    parsers = [make(kind) if kind else _blank_only for kind in kinds]
    # Identity columns (index or -1), then the declared facts as (index, name, parser).
    emp, per, rol = (positions[name] for name in REQUIRED)
    nam, tea, hir, lef = (positions.get(name, -1) for name in ("name", "team", "hired", "left"))
    p_emp, p_per, p_rol = parsers[emp], parsers[per], parsers[rol]
    facts = [(index, name, parsers[index]) for index, name in enumerate(header)
             if name in types and name not in _IDENTITY_KIND]
    named = {name for name in header if name}
    unknown = named - set(_IDENTITY_KIND) - set(types)
    # Unnamed columns must stay empty: a value there would be silently lost.
    blank_columns = [index for index, name in enumerate(header) if not name]

    rows: list[FactRow] = []
    seen: dict[tuple[str, str], int] = {}
    last, number, column, cells = 1, 1, 0, header_cells
    padding: tuple[object, ...] = ("",) * width
    try:
        for cells in table:
            number, last = last + 1, position.line_num  # the line a CSV record starts on
            if len(cells) != width:
                cells = _fit(cells, width, padding, source, number)
            column = emp
            employee = p_emp(cells[emp])
            if employee is None:
                if all(_blank(cell) for cell in cells):
                    continue
                raise _empty()
            column = per
            month = p_per(cells[per])
            if month is None:
                raise _empty()
            column = rol
            role = p_rol(cells[rol])
            if role is None:
                raise _empty()
            values: dict[str, object] = {}
            for column, name, parse in facts:
                cell = cells[column]
                if cell:
                    value = parse(cell)
                    if value is not None:
                        values[name] = value
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
                    if left is not None and hired is not None:
                        _check_dates(hired, left)
            elif lef >= 0:
                column = lef
                left = parsers[lef](cells[lef])
            for column in blank_columns:
                _blank_only(cells[column])
            first = seen.setdefault((employee, month), number)  # type: ignore[arg-type]
            if first != number:
                raise _duplicate(source, number, emp + 1, employee, month, first)
            rows.append(FactRow(employee, month, role, name_, team, hired, left,  # type: ignore[arg-type]
                                values, source, number))
    except _Bad as bad:
        name = header[column] or f"column {column + 1}"
        raise _cell_error(source, number, column + 1, name, kinds[column] or "unnamed",
                          cells[column], bad) from None
    except csv.Error as exc:
        raise _error(source, position.line_num, 0, f"CSV syntax: {exc}",
                     "check the quotes: a value with a quote, ',' or line break is written "
                     'in double quotes, with inner quotes doubled ("")') from None
    return _done(source, rows, unknown)


def _blank(cell: object) -> bool:
    return cell is None or (isinstance(cell, str) and not cell.strip())


def _blank_only(cell: object) -> object:
    if _blank(cell):
        return _ABSENT
    raise _Bad("is in a column without a name", "give the column a name in the header row, "
               "or remove the value")


def _fit(cells: Sequence[object], width: int, padding: tuple[object, ...], source: str,
         number: int) -> Sequence[object]:
    """A row cut or padded to the header's width; values beyond the header are an error."""
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


def _csv_rows(text: str, source: str) -> Iterator[tuple[int, Sequence[object]]]:
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    line = 0
    while True:
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            raise _error(source, reader.line_num, 0, f"CSV syntax: {exc}",
                         "check the quotes: a value with a quote, ',' or line break is written "
                         'in double quotes, with inner quotes doubled ("")') from None
        start, line = line + 1, reader.line_num
        yield start, cells


_XLSX_ERRORS: tuple[type[Exception], ...] = (
    zipfile.BadZipFile, KeyError, ValueError, TypeError, IndexError, SyntaxError, EOFError,
)


def _xlsx_rows(rows: Iterable[Sequence[object]], source: str
               ) -> Iterator[tuple[int, Sequence[object]]]:
    iterator = iter(rows)
    number = 0
    while True:
        try:
            cells = next(iterator)
        except StopIteration:
            return
        except _XLSX_ERRORS as exc:
            raise _error(source, number + 1, 0, f"cannot read the workbook: {exc}",
                         "open and save it again in Excel, or export it as CSV") from None
        number += 1
        yield number, cells


def _read_xlsx(path: Path, source: str, types: Mapping[str, str], places: int) -> FactsRead:
    import openpyxl  # type: ignore[import-untyped]  # no stubs in openpyxl; imported on demand
    from openpyxl.utils.exceptions import InvalidFileException  # type: ignore[import-untyped]

    try:
        workbook = openpyxl.load_workbook(path, read_only=True, data_only=True)
    except OSError as exc:
        raise _unreadable(source, exc) from None
    except (*_XLSX_ERRORS, InvalidFileException) as exc:
        raise _error(source, 0, 0, f"not a readable .xlsx workbook: {exc}",
                     "open and save it again in Excel, or export it as CSV") from None
    try:
        if not workbook.worksheets:
            return _Rows(source).done(())
        sheet = workbook.worksheets[0]
        sheet.reset_dimensions()  # the stored size is often wrong; read every row there is
        table = _xlsx_rows(sheet.iter_rows(values_only=True), source)
        return _read_table(source, table, types, lambda kind: _any_parser(kind, places))
    finally:
        workbook.close()


# --------------------------------------------------------------------------------------------
# Records: JSON (a list of objects, or {"records": [...]}) and JSON Lines.

def _json_object(pairs: list[tuple[str, object]]) -> dict[str, object]:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        marked = _DuplicateKeys(obj)
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                marked.duplicate = key
                break
            seen.add(key)
        return marked
    return obj


_DECODER = json.JSONDecoder(parse_float=Decimal, parse_int=Decimal, parse_constant=_NonFinite,
                            object_pairs_hook=_json_object)


def _decode_json(text: str, source: str, line: int) -> object:
    try:
        return _DECODER.decode(text)
    except json.JSONDecodeError as exc:
        raise _error(source, line + exc.lineno - 1, exc.colno, f"JSON syntax: {exc.msg}",
                     "fix the JSON (a missing comma or quote?)") from None
    except RecursionError:
        raise _error(source, line, 0, "JSON nests too deeply",
                     "a record is a flat object of column names to values") from None


def _json_records(text: str, source: str) -> Iterator[tuple[int, object]]:
    data = _decode_json(text, source, 1)
    if isinstance(data, dict):
        if isinstance(data, _DuplicateKeys):
            raise _error(source, 0, 0, f"key '{data.duplicate}' appears twice at the top level",
                         "keep one of them")
        extra = sorted(set(data) - {"records"})
        if "records" not in data or extra:
            raise _error(source, 0, 0, "a JSON facts file is a list of records or "
                         f"{{\"records\": [...]}}, not an object with keys {sorted(data)}",
                         'put the records in a list under "records" and nothing else')
        data = data["records"]
    if not isinstance(data, list):
        raise _error(source, 0, 0, "a JSON facts file is a list of records or "
                     '{"records": [...]}', "put one object per employee and month in a list")
    return enumerate(data, 1)


def _jsonl_records(text: str, source: str) -> Iterator[tuple[int, object]]:
    for number, line in enumerate(text.split("\n"), 1):
        if line.strip():
            yield number, _decode_json(line, source, number)


def _read_records(source: str, records: Iterator[tuple[int, object]],
                  types: Mapping[str, str], places: int) -> FactsRead:
    kinds = {**types, **_IDENTITY_KIND}  # an identity column is never a fact
    parsers = {name: _any_parser(kind, places) for name, kind in kinds.items()}
    identity = set(_IDENTITY_KIND)
    facts = {name: parsers[name] for name in types if name not in identity}
    p_text, p_month, p_date = parsers["employee"], parsers["period"], parsers["hired"]
    collected = _Rows(source)
    unknown: set[str] = set()
    number, key, record = 0, "", None
    try:
        for number, record in records:
            if type(record) is not dict:
                if isinstance(record, _DuplicateKeys):
                    raise _error(source, number, 0,
                                 f"record {number}: key '{record.duplicate}' appears twice",
                                 "keep one of them; JSON readers silently keep the last")
                raise _error(source, number, 0, f"record {number} is {_json_kind(record)}, "
                             "not an object", "write each record as an object such as "
                             '{"employee": "E1", "period": "2025-07", "role": "sales_rep"}')
            key = "employee"
            employee = p_text(record.get("employee"))
            if employee is _ABSENT:
                raise _missing_key(source, number, "employee")
            key = "period"
            month = p_month(record.get("period"))
            if month is _ABSENT:
                raise _missing_key(source, number, "period")
            key = "role"
            role = p_text(record.get("role"))
            if role is _ABSENT:
                raise _missing_key(source, number, "role")
            key = "name"
            name_ = p_text(record.get("name"))
            key = "team"
            team = p_text(record.get("team"))
            key = "hired"
            hired = p_date(record.get("hired"))
            key = "left"
            left = p_date(record.get("left"))
            values: dict[str, object] = {}
            for key, value in record.items():
                parse = facts.get(key)
                if parse is not None:
                    parsed = parse(value)
                    if parsed is not _ABSENT:
                        values[key] = parsed
                elif key not in identity:
                    unknown.add(key)
            collected.add(FactRow(
                employee, month, role,  # type: ignore[arg-type]  # parsers of text kinds
                None if name_ is _ABSENT else name_,  # type: ignore[arg-type]
                None if team is _ABSENT else team,  # type: ignore[arg-type]
                None if hired is _ABSENT else hired,  # type: ignore[arg-type]
                None if left is _ABSENT else left,  # type: ignore[arg-type]
                values, source, number), 0)
    except _Bad as bad:
        assert isinstance(record, dict)
        raise _cell_error(source, number, 0, key, kinds[key], record.get(key), bad) from None
    return collected.done(unknown)


def _missing_key(source: str, number: int, key: str) -> InputError:
    return _error(source, number, 0, f"record {number} has no '{key}'",
                  "every record needs an employee, a period (YYYY-MM) and a role")


def _json_kind(value: object) -> str:
    if isinstance(value, list):
        return "a list"
    if isinstance(value, str):
        return "a string"
    if value is None:
        return "null"
    return f"the value {_show(value)}"


# --------------------------------------------------------------------------------------------
# The entry point.

def read_facts(path: Path, types: Mapping[str, str], *, encoding: str | None = None,
               places: int = 2) -> FactsRead:
    """Read the fact records of `path` (.csv, .json, .jsonl or .xlsx).

    `types` maps each declared fact to its type (one of FACT_TYPES); columns that are neither
    identity columns nor declared are skipped and listed in `unknown_columns`. `encoding`
    names the text files' codec (default UTF-8, a BOM allowed); `places` is the number of
    decimal places a money amount may have. Raises InputError (E_FACTS) at the first problem.
    """
    _check_types(types, places)
    source = str(path)
    suffix = path.suffix.lower()
    if suffix not in SUFFIXES:
        raise _error(source, 0, 0, f"cannot read facts from a '{path.suffix}' file",
                     "give a .csv, .json, .jsonl or .xlsx file")
    if suffix == ".xlsx":
        return _read_xlsx(path, source, types, places)
    text = _read_text(path, source, encoding)
    if suffix == ".csv":
        return _read_table(source, _csv_rows(text, source), types,
                           lambda kind: _text_parser(kind, places))
    records = _json_records(text, source) if suffix == ".json" else _jsonl_records(text, source)
    return _read_records(source, records, types, places)


def _unreadable(source: str, exc: OSError) -> InputError:
    diag = Diagnostic("E_FILE_UNREADABLE", Severity.ERROR, Location(source),
                      f"cannot read the file: {exc.strerror or exc}",
                      "check the path and its permissions")
    return InputError(diag.render(), [diag])


def _read_text(path: Path, source: str, encoding: str | None) -> str:
    codec, shown = (encoding, encoding) if encoding else ("utf-8-sig", "UTF-8")
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
    return text[1:] if text.startswith("\ufeff") else text
