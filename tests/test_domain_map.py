"""README.md points every bullet of shared/domain.md at a line of a shipped policy."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import pytest

CHECKOUT = Path(__file__).resolve().parents[1]
DOMAIN = Path(__file__).resolve().parents[2] / "shared" / "domain.md"
DOMAIN_MAP = CHECKOUT / "README.md"
HEADER = ["domain.md", "where", "shows"]
FIRST_CELL = re.compile(r'§(\d+) "')


def map_rows() -> list[list[str]]:
    """Rows of the README table headed `| domain.md | where | shows |`, header excluded."""
    rows: list[list[str]] = []
    inside = False
    for line in DOMAIN_MAP.read_text(encoding="utf-8").splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if cells == HEADER:
            inside = True
            continue
        if not inside:
            continue
        if not line.startswith("|"):
            break
        if not all(set(cell) <= set("-: ") for cell in cells):
            rows.append(cells)
    return rows


def domain_bullets() -> Counter[int]:
    """How many bullets (lines starting with '- ') each section '## 1.' to '## 8.' has."""
    if not DOMAIN.is_file():
        pytest.skip("shared/domain.md not beside the checkout")
    counts: Counter[int] = Counter()
    section = None
    for line in DOMAIN.read_text(encoding="utf-8").splitlines():
        if line.startswith("## "):
            match = re.match(r"## (\d+)\.", line)
            section = int(match.group(1)) if match and 1 <= int(match.group(1)) <= 8 else None
        elif section is not None and line.startswith("- "):
            counts[section] += 1
    return counts


ROWS = map_rows()


def test_the_map_has_a_table_of_three_columns() -> None:
    assert ROWS, "no table rows found in README.md"
    for row in ROWS:
        assert len(row) == 3, f"expected 3 cells, got {len(row)}: {row}"


@pytest.mark.parametrize("row", ROWS, ids=[row[1] for row in ROWS])
def test_each_row_names_a_section_and_quotes_the_bullet(row: list[str]) -> None:
    assert FIRST_CELL.match(row[0]), f'first cell must start with §N "quote": {row[0]}'


@pytest.mark.parametrize("row", ROWS, ids=[row[1] for row in ROWS])
def test_each_row_points_at_a_line_that_shows_the_text(row: list[str]) -> None:
    _, where, shows = row
    path_text, _, line_text = where.rpartition(":")
    path = CHECKOUT / path_text
    assert path.is_file(), f"{path_text} does not exist"
    lines = path.read_text(encoding="utf-8").splitlines()
    number = int(line_text)
    assert 1 <= number <= len(lines), f"{path_text} has no line {number}"
    assert shows in lines[number - 1], (
        f"{where} does not contain {shows!r}; the line is {lines[number - 1]!r}"
    )


def test_every_domain_bullet_has_a_row() -> None:
    bullets = domain_bullets()
    assert bullets, "found no bullets under '## 1.' to '## 8.' in shared/domain.md"
    rows_per_section = Counter(
        int(match.group(1)) for row in ROWS if (match := FIRST_CELL.match(row[0]))
    )
    for section, count in sorted(bullets.items()):
        assert rows_per_section[section] >= count, (
            f"§{section} has {count} bullets but only {rows_per_section[section]} rows in "
            "README.md"
        )
