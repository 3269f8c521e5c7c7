"""Read 360-degree ratings: a long CSV, one rating a row.

Columns: employee, period (a period label such as 2025-Q3, or a month), group, rater, score,
and optionally dimension, source, comment. Scores are plain decimals on the policy's scale.
Every problem names the file, row and column, and nothing is guessed.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any, NoReturn

from .diagnostics import Diagnostic, InputError, Location, Severity, did_you_mean
from .facts import check_size, open_lines

REQUIRED = ("employee", "period", "group", "rater", "score")
OPTIONAL = ("dimension", "source", "comment")
_NUMBER = re.compile(r"-?[0-9]+(\.[0-9]+)?")


@dataclass(frozen=True)
class Ratings:
    """Scores by employee, then rater group, for one period."""

    by_employee: dict[str, Mapping[str, tuple[Decimal, ...]]]
    rows: int


def _problem(path: Path, row: int, column: int, message: str, hint: str) -> InputError:
    diagnostic = Diagnostic("E_RATINGS", Severity.ERROR, Location(str(path), row, column),
                            message, hint)
    return InputError(diagnostic.render(), [diagnostic])


def read_ratings(path: Path, period_labels: set[str], groups: Mapping[str, tuple[Decimal, Decimal]],
                 *, encoding: str | None = None) -> Ratings:
    """Ratings of the given periods; `groups` maps each known group to its (min, max) scale.
    The file is read a chunk at a time; ratings of other periods are skipped unchecked."""
    check_size(path)
    reader = _open(path, encoding)
    try:
        return _read(path, reader, period_labels, groups,
                     lambda key, until: _first(_open(path, encoding), period_labels, key))
    except csv.Error as error:
        raise _problem(path, reader.line_num, 0, f"CSV syntax: {error}",
                       "check the quotes: a value with a quote, ',' or line break is written "
                       'in double quotes, with inner quotes doubled ("")') from None


def _open(path: Path, encoding: str | None) -> Any:
    """A csv reader of the file, read a chunk at a time."""
    def refuse() -> NoReturn:  # the whole file read as before, for the same message
        try:
            path.read_text(encoding=encoding or "utf-8-sig")
        except (OSError, UnicodeDecodeError, LookupError) as error:
            raise _problem(path, 0, 0, f"cannot read the ratings file: {error}",
                           "check the path and the encoding") from None
        raise _problem(path, 0, 0, "the file changed while it was read", "read it again")

    try:
        lines = open_lines(path, encoding, refuse, strip_bom=False, universal=True)
    except OSError as error:
        raise _problem(path, 0, 0, f"cannot read the ratings file: {error}",
                       "check the path and the encoding") from None
    return csv.reader(lines, strict=True)


Key = tuple[str, str, str, str, str]  # employee, period, group, rater, dimension


def _rows(reader: Any, header: list[str], period_labels: set[str]
          ) -> Iterator[tuple[int, list[str], Key]]:
    """The line, cells and key of each rating of the periods read."""
    at = {name: header.index(name) for name in REQUIRED}
    dimension = header.index("dimension") if "dimension" in header else None
    width = len(header)
    while True:
        number = reader.line_num + 1  # a quoted value may span lines: the record's first line
        cells = next(reader, None)
        if cells is None:
            return
        if not any(map(str.strip, cells)):
            continue
        if len(cells) < width:
            cells = cells + [""] * (width - len(cells))
        period = cells[at["period"]].strip()
        if period not in period_labels:
            continue
        yield number, cells, (cells[at["employee"]].strip(), period,
                              cells[at["group"]].strip(), cells[at["rater"]].strip(),
                              cells[dimension].strip() if dimension is not None else "")


def _header(path: Path, reader: Any) -> list[str]:
    header = next(reader, None)
    if not header:
        raise _problem(path, 1, 1, "the ratings file is empty", "the first row names the columns")
    header = [h.strip() for h in header]
    for column in REQUIRED:
        if column not in header:
            raise _problem(path, 1, 1, f"the ratings file has no '{column}' column",
                           "columns: " + ", ".join(REQUIRED + OPTIONAL))
    return header


def _first(reader: Any, period_labels: set[str], key: Key) -> int:
    """The line of the first rating with `key` (every line before the one read twice was read
    without a problem the first time), 0 when none."""
    header = [h.strip() for h in next(reader)]
    return next((number for number, _, found in _rows(reader, header, period_labels)
                 if found == key), 0)


def _read(path: Path, reader: Any, period_labels: set[str],
          groups: Mapping[str, tuple[Decimal, Decimal]], first: Callable[[Key, int], int]
          ) -> Ratings:
    """The rows of an open CSV reader; each named by the line its record starts on. A rater
    rating twice is found by a hash of each rating's key, not the keys themselves: when one
    comes again, `first` reads the file again for where, if anywhere, the same key was."""
    header = _header(path, reader)
    at = {name: header.index(name) for name in REQUIRED}
    scores: dict[str, dict[str, list[Decimal]]] = {}
    seen: set[int] = set()
    scores_of: dict[str, Decimal] = {}
    names = {group: group for group in groups}  # one string per group, however many rows
    count = 0
    for number, cells, key in _rows(reader, header, period_labels):
        employee, _, group, rater, _ = key
        raw = cells[at["score"]].strip()
        if group not in groups:
            raise _problem(path, number, at["group"] + 1,
                           f"rater group '{group}' is not a group of any 360 review in the "
                           f"policies{did_you_mean(group, groups)}",
                           "groups: " + ", ".join(sorted(groups)))
        score = scores_of.get(raw)  # scores repeat: one Decimal for each text
        if score is None:
            if not _NUMBER.fullmatch(raw):
                raise _problem(path, number, at["score"] + 1, f"score '{raw}' is not a number",
                               "write a plain decimal such as 4 or 3.5")
            score = scores_of[raw] = Decimal(raw)
        low, high = groups[group]
        if not low <= score <= high:
            raise _problem(path, number, at["score"] + 1,
                           f"score {raw} is outside the scale {low}..{high}",
                           "check the rating, or the scale declared in the policy")
        digest = hash(key)
        if digest in seen:
            earlier = first(key, number)
            if earlier and earlier < number:
                raise _problem(path, number, at["rater"] + 1,
                               f"rater '{rater}' rated {employee} twice in group '{group}' "
                               f"(first on row {earlier})", "keep one rating per rater")
        seen.add(digest)
        by_group = scores.get(employee)
        if by_group is None:
            by_group = scores[employee] = {}
        by_group.setdefault(names[group], []).append(score)
        count += 1
    frozen: dict[str, Mapping[str, tuple[Decimal, ...]]] = {}
    for employee in list(scores):  # one employee at a time: never two copies of them all
        frozen[employee] = {g: tuple(v) for g, v in scores.pop(employee).items()}
    return Ratings(frozen, count)
