"""What is read is refused strictly, with its place: the schema forbids unknown keys in every
object and checks formats, its references never leave schemas/ (remote and file:// are
refused without a network or disk read), and facts in every format and every side table
refuse NaN, infinity, exponents, underscores, thousands separators and non-ASCII digits,
naming the file, row and column (the key, in JSON)."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from hostile_support import forbidden, watching
from referencing.exceptions import Unresolvable

from engine import InputError
from engine.facts import read_facts
from engine.load import load_document
from engine.ratings import read_ratings
from engine.schema import SCHEMA_DIR, schema_diagnostics, validator_for
from engine.tables import read_keyed_facts, read_lines, read_teams

ROOT = Path(__file__).resolve().parents[2]
SCHEMAS = {p.name: json.loads(p.read_text(encoding="utf-8")) for p in SCHEMA_DIR.glob("*.json")}


# --- references ---------------------------------------------------------------------------

@pytest.mark.parametrize("ref", [
    "https://example.com/schema.json", "http://169.254.169.254/latest/meta-data",
    "file:///etc/passwd", f"file://{SCHEMA_DIR / 'policy.schema.json'}", "other.json#/$defs/x",
    "../../etc/passwd",
])
def test_a_reference_outside_the_schema_is_refused_without_any_read(ref: str) -> None:
    validator = validator_for({"$schema": "https://json-schema.org/draft/2020-12/schema",
                               "$id": "https://meritpay.dev/schemas/t.json",
                               "properties": {"a": {"$ref": ref}}})
    with watching() as events, pytest.raises(Unresolvable):
        list(validator.iter_errors({"a": 1}))
    assert forbidden(events) == [] and not [e for e in events if e[0].startswith("socket")]


def test_the_shipped_schemas_only_refer_inside_themselves() -> None:
    for name, schema in SCHEMAS.items():
        refs = [node["$ref"] for _, node in walk(schema) if isinstance(node, dict)
                and "$ref" in node]
        assert all(ref.startswith("#/") for ref in refs), name


# --- unknown keys, everywhere ---------------------------------------------------------------

def walk(node: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[tuple[Any, ...], Any]]:
    yield path, node
    if isinstance(node, dict):
        for key, value in node.items():
            yield from walk(value, (*path, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from walk(value, (*path, index))


def _closed(node: dict[str, Any]) -> bool:
    extra = node.get("additionalProperties", node.get("unevaluatedProperties"))
    return extra is False or isinstance(extra, dict)


# Mappings whose keys are data, not schema keys: the rows of a test file's inline records
# have the columns a facts file would have (any declared fact; others are warned about as
# W_FACTS_UNKNOWN_COLUMNS, like a file's extra columns).
DATA_ROWS = {("policy-test.schema.json", ("$defs", "records", "anyOf", 1, "items"))}


@pytest.mark.parametrize("name", sorted(SCHEMAS))
def test_every_object_of_the_schema_forbids_unknown_keys(name: str) -> None:
    """Every object schema outside if/then/else branches closes itself: additionalProperties
    false, or a schema for the values of a map of names (facts, indicators, roles...).
    Branches only add constraints to keys their object lists; the test below proves that on
    every kind of mapping of the shipped files."""
    open_objects = []
    for path, node in walk(SCHEMAS[name]):
        if not isinstance(node, dict) or (name, path) in DATA_ROWS:
            continue
        in_branch = any(part in ("if", "then", "else", "not") for part in path)
        is_object = node.get("type") == "object" or "properties" in node
        if is_object and not in_branch and not _closed(node):
            open_objects.append("/".join(map(str, path)))
    assert open_objects == []


SCHEMA_WORDS = {key for schema in SCHEMAS.values() for path, node in walk(schema)
                if isinstance(node, dict) and path and path[-1] == "properties" for key in node}


def _mappings(data: Any) -> dict[tuple[Any, ...], tuple[Any, ...]]:
    """One path for each shape of mapping in data: names the schema does not know (facts,
    indicators, roles...) and list indices count as one. Inline records are data rows."""
    shapes: dict[tuple[Any, ...], tuple[Any, ...]] = {}
    rows = {"facts", "ratings", "teams", "team_facts", "company_facts", "lines"}
    for path, node in walk(data):
        if len(path) >= 4 and path[0] == "cases" and path[2] in rows:
            continue  # a record: its keys are columns
        if isinstance(node, dict):
            shape = tuple(p if p in SCHEMA_WORDS else "#" if isinstance(p, int) else "*"
                          for p in path)
            shapes.setdefault(shape, path)
    return shapes


DOCUMENTS = sorted([*(ROOT / "policies").rglob("*.yaml"), *(ROOT / "tests" / "cases").rglob(
    "*.yaml")])


@pytest.mark.parametrize("path", DOCUMENTS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_an_unknown_key_is_refused_in_every_kind_of_mapping_of_the_shipped_files(
        path: Path) -> None:
    document, problems = load_document(path.read_text(encoding="utf-8"), str(path))
    assert document is not None and problems == []
    schema = "policy-test.schema.json" if path.name.endswith(".test.yaml") \
        else "policy.schema.json"
    assert schema_diagnostics(document, schema) == []
    accepted = []
    for where in _mappings(document.data).values():
        data = copy.deepcopy(document.data)
        node = data
        for part in where:
            node = node[part]
        node["zz_not_a_key"] = {"x": 1}
        if not schema_diagnostics(replace(document, data=data), schema):
            accepted.append(where)
    assert accepted == []


# --- formats --------------------------------------------------------------------------------

POLICY = (ROOT / "tests" / "fixtures" / "valid" / "minimal.yaml").read_text(encoding="utf-8")


@pytest.mark.parametrize(("day", "valid"), [
    ("2025-02-30", False), ("2025-02-29", False), ("2025-13-01", False), ("2025-00-10", False),
    ("2025-1-1", False), ('"20250101"', False), ('"2025-01-01T00:00:00"', False),
    ("2024-02-29", True), ("2025-12-31", True),
])
def test_dates_are_checked_as_dates(day: str, valid: bool) -> None:
    text = POLICY.replace("from: 2025-01-01", f"from: {day}")
    document, problems = load_document(text, "p.yaml")
    assert document is not None and problems == []
    found = [(d.code, d.location.line) for d in schema_diagnostics(document)]
    assert found == ([] if valid else [("E_SCHEMA", 6)])


# --- facts: every format, every side table ----------------------------------------------------

BAD_NUMBERS = ["NaN", "nan", "Infinity", "-inf", "sNaN", "1e3", "1E-2", "1_000", "1,000",
               "1 000", "+5", "١٢", "１２", "٣.٥", "²", "0x10", ".5", "5.", "--1", "1.2.3"]


def _write_xlsx(path: Path, rows: list[list[object]]) -> None:
    openpyxl = pytest.importorskip("openpyxl")
    workbook = openpyxl.Workbook()
    for row in rows:
        workbook.active.append(row)
    workbook.save(path)


@pytest.mark.parametrize("value", BAD_NUMBERS)
@pytest.mark.parametrize("suffix", [".csv", ".json", ".jsonl", ".xlsx"])
def test_a_bad_number_is_refused_in_every_facts_format_at_its_place(
        tmp_path: Path, suffix: str, value: str) -> None:
    path = tmp_path / f"facts{suffix}"
    rows = [["employee", "period", "role", "revenue"], ["E1", "2025-07", "rep", "1.00"],
            ["E2", "2025-07", "rep", value]]
    if suffix == ".csv":
        path.write_text("".join(",".join(f'"{c}"' if "," in c else c for c in r) + "\n"
                                for r in rows), encoding="utf-8")
    elif suffix == ".xlsx":
        _write_xlsx(path, rows)
    else:
        records = [dict(zip(rows[0], r, strict=True)) for r in rows[1:]]
        text = json.dumps(records, ensure_ascii=False) if suffix == ".json" else "".join(
            json.dumps(r, ensure_ascii=False) + "\n" for r in records)
        path.write_text(text, encoding="utf-8")
    with pytest.raises(InputError) as caught:
        read_facts(path, {"revenue": "money"})
    diagnostic = caught.value.diagnostics[0]
    assert diagnostic.code == "E_FACTS" and diagnostic.location.file == str(path)
    if suffix in (".csv", ".xlsx"):  # row 3 of the file, column 4
        assert (diagnostic.location.line, diagnostic.location.column) == (3, 4)
    else:  # record 2 (JSON) or line 2 (JSON Lines), and the key
        assert diagnostic.location.line == 2 and "'revenue'" in diagnostic.message


@pytest.mark.parametrize("value", ["NaN", "Infinity", "1e3", '"1,000"'])
def test_a_bad_json_number_token_is_refused(tmp_path: Path, value: str) -> None:
    path = tmp_path / "facts.json"
    path.write_text('[{"employee": "E1", "period": "2025-07", "role": "rep", "revenue": '
                    + value + "}]", encoding="utf-8")
    with pytest.raises(InputError) as caught:
        read_facts(path, {"revenue": "money"})
    assert caught.value.diagnostics[0].code == "E_FACTS"
    assert caught.value.diagnostics[0].location.line == 1


@pytest.mark.parametrize("value", BAD_NUMBERS)
@pytest.mark.parametrize("table", ["ratings", "teams", "team_facts", "company_facts", "lines"])
def test_a_bad_number_is_refused_in_every_side_table_at_its_place(
        tmp_path: Path, table: str, value: str) -> None:
    path = tmp_path / f"{table}.csv"
    cell = f'"{value}"' if "," in value else value
    if table == "ratings":
        path.write_text(f"employee,period,group,rater,score\nE1,2025-Q3,boss,R1,4\n"
                        f"E1,2025-Q3,boss,R2,{cell}\n", encoding="utf-8")
        call = lambda: read_ratings(path, {"2025-Q3"}, {"boss": (1, 5)})  # noqa: E731
        code, column = "E_RATINGS", 5
    elif table == "teams":
        path.write_text(f"team,member,share\nT,E1,1\nT,E2,{cell}\n", encoding="utf-8")
        call = lambda: read_teams(path, {"2025-Q3"})  # noqa: E731
        code, column = "E_TEAMS", 3
    elif table == "lines":
        path.write_text(f"employee,period,fact,line_id,amount\nE1,2025-07,revenue,L1,1\n"
                        f"E1,2025-07,revenue,L2,{cell}\n", encoding="utf-8")
        call = lambda: read_lines(path, {"revenue"}, {"2025-07"})  # noqa: E731
        code, column = "E_LINES", 5
    else:
        key = "team," if table == "team_facts" else ""
        owner = "T," if table == "team_facts" else ""
        path.write_text(f"{key}period,profit\n{owner}2025-07,1\n{owner}2025-08,{cell}\n",
                        encoding="utf-8")
        call = lambda: read_keyed_facts(  # noqa: E731
            path, "team" if table == "team_facts" else None, {"profit": "money"})
        code, column = "E_FACTS", 3 if table == "team_facts" else 2
    with pytest.raises(InputError) as caught:
        call()
    diagnostic = caught.value.diagnostics[0]
    assert (diagnostic.code, diagnostic.location.file, diagnostic.location.line,
            diagnostic.location.column) == (code, str(path), 3, column)
