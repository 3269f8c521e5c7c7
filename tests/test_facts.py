"""The fact reader: exact values, absence kept, and every malformed cell refused with its place."""

from __future__ import annotations

import csv
import io
import json
import re
import tempfile
import zipfile
from datetime import date, datetime
from decimal import Decimal, FloatOperation, localcontext
from pathlib import Path
from unittest import mock

import openpyxl  # type: ignore[import-untyped]
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.diagnostics import InputError
from engine.facts import FactRow, FactsRead, MonthPlan, plan_records, read_facts, scan_facts

TYPES = {
    "revenue": "money",
    "margin": "ratio",
    "deals": "integer",
    "score": "number",
    "remote": "boolean",
    "signed": "date",
    "note": "text",
    "tags": "list",
}
HEADER = "employee,period,role,revenue,margin,deals,score,remote,signed,note,tags"
# column:   1        2      3    4       5      6     7     8      9      10   11


def write(tmp_path: Path, name: str, text: str, encoding: str = "utf-8") -> Path:
    path = tmp_path / name
    path.write_bytes(text.encode(encoding))
    return path


def write_xlsx(tmp_path: Path, rows: list[list[object]], name: str = "facts.xlsx") -> Path:
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    for row in rows:
        sheet.append(row)
    path = tmp_path / name
    workbook.save(path)
    return path


def store_as_excel_does(path: Path, values: dict[str, str]) -> None:
    """Rewrite numbers in the first sheet: openpyxl writes floats with 16 digits ("%.16g"),
    Excel with up to 17, so 0.1 + 0.2 is stored as 0.30000000000000004."""
    with zipfile.ZipFile(path) as archive:
        parts = {name: archive.read(name) for name in archive.namelist()}
    sheet = parts["xl/worksheets/sheet1.xml"].decode()
    for written, stored in values.items():
        assert f"<v>{written}</v>" in sheet
        sheet = sheet.replace(f"<v>{written}</v>", f"<v>{stored}</v>")
    parts["xl/worksheets/sheet1.xml"] = sheet.encode()
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in parts.items():
            archive.writestr(name, data)


def refusal(path: Path, types: dict[str, str] = TYPES, *, encoding: str | None = None,
            places: int = 2) -> tuple[str, int, int, str]:
    with pytest.raises(InputError) as info:
        read_facts(path, types, encoding=encoding, places=places)
    [diagnostic] = info.value.diagnostics
    assert info.value.message == diagnostic.render()
    assert diagnostic.hint
    location = diagnostic.location
    return diagnostic.code, location.line, location.column, diagnostic.message


def csv_refusal(tmp_path: Path, row: str, header: str = HEADER) -> tuple[str, int, int, str]:
    return refusal(write(tmp_path, "facts.csv", f"{header}\n{row}\n"))


# --------------------------------------------------------------------------------------------
# Reading

def test_csv_rows_are_exact_in_file_order_and_empty_cells_are_absent(tmp_path: Path) -> None:
    path = write(tmp_path, "facts.csv",
                 "employee,period,role,name,team,hired,left,revenue,margin,deals,score,remote,"
                 "signed,note,tags,zeta,alpha\n"
                 "E2,2025-07,sales_rep,Li Lei,North,2024-03-01,,1200.50,15%,3,-0.25,yes,"
                 "2025-07-14, big deal ,a; b;;c,x,y\n"
                 " E1 ,2025-06,account_manager,,,,2025-12-31,0,0.125,3.00,7,FALSE,,,,,\n")
    result = read_facts(path, TYPES)
    assert result == FactsRead(
        rows=[
            FactRow("E2", "2025-07", "sales_rep", "Li Lei", "North", date(2024, 3, 1), None,
                    {"revenue": Decimal("1200.50"), "margin": Decimal("0.15"),
                     "deals": Decimal("3"), "score": Decimal("-0.25"), "remote": True,
                     "signed": date(2025, 7, 14), "note": "big deal", "tags": ("a", "b", "c")},
                    str(path), 2),
            FactRow("E1", "2025-06", "account_manager", None, None, None, date(2025, 12, 31),
                    {"revenue": Decimal("0"), "margin": Decimal("0.125"), "deals": Decimal("3"),
                     "score": Decimal("7"), "remote": False},
                    str(path), 3),
        ],
        unknown_columns=("alpha", "zeta"),
    )
    # a zero is a value, an empty cell is absent; the integer 3.00 is normalised to 3
    assert str(result.rows[1].values["deals"]) == "3"
    assert "signed" not in result.rows[1].values


def test_percentages_in_a_ratio_column_are_divided_by_100_exactly(tmp_path: Path) -> None:
    path = write(tmp_path, "facts.csv", "employee,period,role,margin\n"
                 "E1,2025-07,r,15%\nE2,2025-07,r,-2.5%\nE3,2025-07,r,100%\nE4,2025-07,r,0.15\n")
    values = [row.values["margin"] for row in read_facts(path, {"margin": "ratio"}).rows]
    assert values == [Decimal("0.15"), Decimal("-0.025"), Decimal("1"), Decimal("0.15")]


def test_money_keeps_its_exact_value_and_allows_trailing_zeros(tmp_path: Path) -> None:
    path = write(tmp_path, "facts.csv",
                 "employee,period,role,revenue\nE1,2025-07,r,100.500\nE2,2025-07,r,007\n")
    rows = read_facts(path, {"revenue": "money"}).rows
    assert [str(row.values["revenue"]) for row in rows] == ["100.500", "7"]


def test_money_places_follow_the_policy_rounding(tmp_path: Path) -> None:
    path = write(tmp_path, "facts.csv", "employee,period,role,revenue\nE1,2025-07,r,1.2345\n")
    assert read_facts(path, {"revenue": "money"}, places=4).rows[0].values == {
        "revenue": Decimal("1.2345")}
    code, line, column, message = refusal(path, {"revenue": "money"}, places=0)
    assert (code, line, column) == ("E_FACTS", 2, 4)
    assert "has more than 0 decimal place(s)" in message


def test_blank_rows_and_short_rows_are_read_as_empty(tmp_path: Path) -> None:
    path = write(tmp_path, "facts.csv", "employee,period,role,revenue,note\n"
                 "\nE1,2025-07,r\n,,,,\n  , ,,\nE2,2025-07,r,5\n")
    rows = read_facts(path, TYPES).rows
    assert [(row.employee, row.row, dict(row.values)) for row in rows] == [
        ("E1", 3, {}), ("E2", 6, {"revenue": Decimal("5")})]


def test_a_csv_record_spanning_lines_is_numbered_by_its_first_line(tmp_path: Path) -> None:
    path = write(tmp_path, "facts.csv",
                 'employee,period,role,note\nE1,2025-07,r,"two\nlines"\nE2,2025-07,r,x\n')
    rows = read_facts(path, TYPES).rows
    assert [(row.row, row.values["note"]) for row in rows] == [(2, "two\nlines"), (4, "x")]


def test_a_utf8_bom_is_ignored(tmp_path: Path) -> None:
    path = tmp_path / "facts.csv"
    path.write_bytes(b"\xef\xbb\xbfemployee,period,role,revenue\nE1,2025-07,r,10\n")
    result = read_facts(path, TYPES)
    assert [(row.employee, row.values) for row in result.rows] == [
        ("E1", {"revenue": Decimal("10")})]
    assert result.unknown_columns == ()


def test_gb18030_is_read_when_named(tmp_path: Path) -> None:
    text = "employee,period,role,name,team,note\n员工1,2025-07,销售代表,李雷,华东,大客户\n"
    path = write(tmp_path, "facts.csv", text, encoding="gb18030")
    [row] = read_facts(path, TYPES, encoding="gb18030").rows
    assert (row.employee, row.role, row.name, row.team, row.values) == (
        "员工1", "销售代表", "李雷", "华东", {"note": "大客户"})
    # read as UTF-8, the first non-ASCII byte (on line 2) is refused with its line
    code, line, column, message = refusal(path)
    assert (code, line, column) == ("E_FACTS", 2, 0)
    assert "is not valid UTF-8" in message


def test_an_unknown_encoding_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path, "facts.csv", "employee,period,role\nE1,2025-07,r\n")
    code, line, column, message = refusal(path, encoding="no-such-codec")
    assert (code, line, column) == ("E_FACTS", 0, 0)
    assert "'no-such-codec' is not a known text encoding" in message
    assert refusal(path, encoding="base64")[:3] == ("E_FACTS", 0, 0)  # not a text codec


def test_undecodable_bytes_are_refused_with_their_line(tmp_path: Path) -> None:
    path = tmp_path / "facts.csv"
    path.write_bytes(b"employee,period,role,note\nE1,2025-07,r,ok\nE2,2025-07,r,caf\xe9\n")
    code, line, column, message = refusal(path)
    assert (code, line, column) == ("E_FACTS", 3, 0)
    assert "byte 0xe9 on line 3 is not valid UTF-8" in message


JSON_RECORDS = [
    {"employee": "E1", "period": "2025-07", "role": "sales_rep", "team": "North",
     "revenue": 1200.50, "margin": "15%", "deals": 3, "remote": True, "tags": ["a", " b ", ""],
     "signed": "2025-07-14", "note": None, "extra": {"x": 1}},
    {"employee": 10023, "period": "2025-07", "role": "sales_rep", "hired": "2025-07-01",
     "revenue": "99.9", "score": -0.5, "remote": "no", "tags": "x;y", "aardvark": 1},
]
JSON_ROW_1 = {"revenue": Decimal("1200.5"), "margin": Decimal("0.15"), "deals": Decimal("3"),
              "remote": True, "tags": ("a", "b"), "signed": date(2025, 7, 14)}
JSON_ROW_2 = {"revenue": Decimal("99.9"), "score": Decimal("-0.5"), "remote": False,
              "tags": ("x", "y")}


def json_text(value: object) -> str:
    return json.dumps(value, ensure_ascii=False)


@pytest.mark.parametrize("document", [JSON_RECORDS, {"records": JSON_RECORDS}])
def test_json_lists_and_records_objects(tmp_path: Path, document: object) -> None:
    path = write(tmp_path, "facts.json", json_text(document))
    result = read_facts(path, TYPES)
    assert [(r.employee, r.team, r.hired, r.values, r.row) for r in result.rows] == [
        ("E1", "North", None, JSON_ROW_1, 1),
        ("10023", None, date(2025, 7, 1), JSON_ROW_2, 2),
    ]
    assert result.unknown_columns == ("aardvark", "extra")


def test_json_lines_are_numbered_by_line(tmp_path: Path) -> None:
    text = "\n".join([json_text(JSON_RECORDS[0]), "", json_text(JSON_RECORDS[1]), ""])
    result = read_facts(write(tmp_path, "facts.jsonl", text), TYPES)
    assert [(r.employee, r.values, r.row) for r in result.rows] == [
        ("E1", JSON_ROW_1, 1), ("10023", JSON_ROW_2, 3)]
    assert result.unknown_columns == ("aardvark", "extra")


def test_xlsx_floats_are_read_through_their_shortest_repr(tmp_path: Path) -> None:
    path = write_xlsx(tmp_path, [
        ["employee", "period", "role", "hired", "revenue", "margin", "score", "deals", "remote",
         "signed", "note", "tags", "unknown"],
        [10023, "2025-07", "sales_rep", datetime(2024, 3, 1), 0.1 + 0.2, 0.1 + 0.2, 1e16, 4.0,
         True, datetime(2025, 7, 14), "note", "a;b", 1],  # 0.3 until stored as Excel does
        ["E2", datetime(2025, 8, 1), "sales_rep", None, 1200, "15%", "2.5", None, "yes",
         "2025-08-02", None, None, None],
        [None, None, None, None, None, None, None, None, None, None, None, None, None],
    ])
    store_as_excel_does(path, {"0.3": "0.30000000000000004"})
    result = read_facts(path, TYPES)
    first, second = result.rows
    assert (first.employee, first.month, first.hired, first.row) == (
        "10023", "2025-07", date(2024, 3, 1), 2)
    assert first.values == {
        "revenue": Decimal("0.30"), "margin": Decimal("0.30000000000000004"),
        "score": Decimal("1E+16"), "deals": Decimal("4"), "remote": True,
        "signed": date(2025, 7, 14), "note": "note", "tags": ("a", "b")}
    assert str(first.values["revenue"]) == "0.30"
    assert (second.employee, second.month, second.row) == ("E2", "2025-08", 3)
    assert second.values == {"revenue": Decimal("1200"), "margin": Decimal("0.15"),
                             "score": Decimal("2.5"), "remote": True,
                             "signed": date(2025, 8, 2)}
    assert result.unknown_columns == ("unknown",)


def test_unknown_columns_are_reported_once_sorted(tmp_path: Path) -> None:
    path = write(tmp_path, "facts.csv", "zz,employee,period,Revenue,role,aa,mm\n"
                 "1,E1,2025-07,2,r,3,4\nx,E2,2025-07,y,r,z,w\n")
    assert read_facts(path, TYPES).unknown_columns == ("Revenue", "aa", "mm", "zz")


def test_reading_makes_no_float(tmp_path: Path) -> None:
    csv_path = write(tmp_path, "facts.csv", f"{HEADER}\nE1,2025-07,r,1.10,15%,2,0.5,1,"
                     "2025-07-01,n,a;b\n")
    json_path = write(tmp_path, "facts.json", json_text(JSON_RECORDS))
    xlsx_path = write_xlsx(tmp_path, [["employee", "period", "role", "revenue", "margin"],
                                      ["E1", "2025-07", "r", 0.1 + 0.2, 0.155]])
    store_as_excel_does(xlsx_path, {"0.3": "0.30000000000000004"})
    with localcontext() as ctx:
        ctx.traps[FloatOperation] = True
        results = [read_facts(path, TYPES) for path in (csv_path, json_path, xlsx_path)]
        # comparing a float to a Decimal would raise here
        values = [value for result in results for row in result.rows
                  for value in row.values.values()]
        assert Decimal("0.30") in values
    assert values and not any(isinstance(value, float) for value in values)
    assert {type(value) for value in values} <= {Decimal, bool, str, date, tuple}


# --------------------------------------------------------------------------------------------
# Refusals

@pytest.mark.parametrize(
    ("cell", "column", "text"),
    [
        # numbers: money (column 4)
        ('"1,2OO",,,,,,,', 4, "column 'revenue' (money): '1,2OO' is not a number"),
        ('"1,200",,,,,,,', 4, "column 'revenue' (money): '1,200' is not a number"),
        ("NaN,,,,,,,", 4, "'NaN' is not a number"),
        ("nan,,,,,,,", 4, "'nan' is not a number"),
        ("Infinity,,,,,,,", 4, "'Infinity' is not a number"),
        ("-inf,,,,,,,", 4, "'-inf' is not a number"),
        ("1_000,,,,,,,", 4, "'1_000' is not a number"),
        ("+5,,,,,,,", 4, "'+5' is not a number"),
        ("1 000,,,,,,,", 4, "'1 000' is not a number"),
        ("١٢٣,,,,,,,", 4, "'١٢٣' is not a number"),
        ("１２,,,,,,,", 4, "'１２' is not a number"),
        ("1e3,,,,,,,", 4, "'1e3' is not a number"),
        ("1.5E-2,,,,,,,", 4, "'1.5E-2' is not a number"),
        (".5,,,,,,,", 4, "'.5' is not a number"),
        ("5.,,,,,,,", 4, "'5.' is not a number"),
        ("0x10,,,,,,,", 4, "'0x10' is not a number"),
        ("¥100,,,,,,,", 4, "'¥100' is not a number"),
        ("12%,,,,,,,", 4, "'12%' is not a number"),
        ("100.005,,,,,,,", 4, "'100.005' has more than 2 decimal place(s)"),
        # ratio (5), integer (6), number (7)
        (",15 %,,,,,,", 5, "column 'margin' (ratio): '15 %' is not a number"),
        (",1e-2%,,,,,,", 5, "'1e-2%' is not a number"),
        (",%,,,,,,", 5, "'%' is not a number"),
        (",,2.5,,,,,", 6, "column 'deals' (integer): '2.5' is not a whole number"),
        (",,-,,,,,", 6, "'-' is not a number"),
        (",,,1.2.3,,,,", 7, "column 'score' (number): '1.2.3' is not a number"),
        # boolean (8), date (9)
        (",,,,maybe,,,", 8, "column 'remote' (boolean): 'maybe' is not true or false"),
        (",,,,,2025-02-30,,", 9, "column 'signed' (date): '2025-02-30' is not a real date"),
        (",,,,,2025/02/01,,", 9, "'2025/02/01' is not a date"),
        (",,,,,20250201,,", 9, "'20250201' is not a date"),
    ],
)
def test_malformed_cells_are_refused_with_their_place(tmp_path: Path, cell: str, column: int,
                                                      text: str) -> None:
    code, line, col, message = csv_refusal(tmp_path, f"E1,2025-07,r,{cell}")
    assert (code, line, col) == ("E_FACTS", 2, column)
    assert text in message


def test_the_rendered_message_names_file_row_column_and_value(tmp_path: Path) -> None:
    path = write(tmp_path, "facts.csv", f'{HEADER}\nE1,2025-07,r,1\nE2,2025-07,r,"1,2OO"\n')
    with pytest.raises(InputError) as info:
        read_facts(path, TYPES)
    first, hint = info.value.message.splitlines()
    assert first == f"{path}:3:4: E_FACTS: column 'revenue' (money): '1,2OO' is not a number"
    assert hint == ("    hint: remove the thousands separators (1200.50, not 1,200.50); '.' is "
                    "the decimal point")


@pytest.mark.parametrize(
    ("row", "column", "text"),
    [
        ("E1,2025-13,r", 2, "column 'period' (YYYY-MM): '2025-13' is not a month"),
        ("E1,2025-7,r", 2, "'2025-7' is not a month"),
        ("E1,July 2025,r", 2, "'July 2025' is not a month"),
        ("E1,0000-01,r", 2, "'0000-01' is not a month"),
        ("E1,,r", 2, "column 'period' (YYYY-MM) is empty"),
        (",2025-07,r", 1, "column 'employee' (text) is empty"),
        ("E1,2025-07,", 3, "column 'role' (text) is empty"),
        ("E1,2025-07,r,2025-02-30,", 4, "column 'hired' (date): '2025-02-30' is not a real date"),
        ("E1,2025-07,r,2025-03-01,2025-02-01", 5,
         "column 'left' (date): '2025-02-01' is before the hired date 2025-03-01"),
        ("E1,2025-07,r,,,surprise", 6, "'surprise' in column 6 has no column name"),
    ],
)
def test_identity_columns_are_checked(tmp_path: Path, row: str, column: int, text: str) -> None:
    code, line, col, message = csv_refusal(tmp_path, row, header="employee,period,role,hired,left")
    assert (code, line, col) == ("E_FACTS", 2, column)
    assert text in message


@pytest.mark.parametrize(
    ("header", "column", "text"),
    [
        ("employee,role,revenue", 0, "the header has no column 'period'"),
        ("Employee,period,role", 0, "the header has no column 'employee' (did you mean "
                                    "'Employee'?)"),
        ("employee;period;role", 0, "the header has no column 'employee'"),
        ("employee,period,role,revenue,revenue", 5,
         "column 'revenue' appears twice in the header (columns 4 and 5)"),
        ("employee,period,role,period", 4, "column 'period' appears twice"),
    ],
)
def test_header_problems_are_refused_at_row_1(tmp_path: Path, header: str, column: int,
                                              text: str) -> None:
    code, line, col, message = csv_refusal(tmp_path, "E1,2025-07,r,1,2", header=header)
    assert (code, line, col) == ("E_FACTS", 1, column)
    assert text in message


def test_a_value_in_an_unnamed_column_is_refused(tmp_path: Path) -> None:
    code, line, column, message = csv_refusal(tmp_path, "E1,2025-07,x,r",
                                              header="employee,period,,role")
    assert (code, line, column) == ("E_FACTS", 2, 3)
    assert "column 'column 3' (unnamed): 'x' is in a column without a name" in message


def test_a_row_with_more_cells_than_the_header_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path, "facts.csv",
                 "employee,period,role,revenue\nE1,2025-07,r,1\nE2,2025-07,r,1,200\n")
    code, line, column, message = refusal(path)
    assert (code, line, column) == ("E_FACTS", 3, 5)
    assert "row 3 has more cells than the header (5 > 4): '200' in column 5" in message


def test_two_records_for_one_employee_and_month_are_refused(tmp_path: Path) -> None:
    path = write(tmp_path, "facts.csv", "role,employee,period\nr,E1,2025-07\nr,E1,2025-08\n"
                 "r,E2,2025-07\nq,E1,2025-07\n")
    code, line, column, message = refusal(path)
    assert (code, line, column) == ("E_FACTS", 5, 2)
    assert "employee 'E1' has two records for 2025-07 (rows 2 and 5)" in message


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("empty.csv", ""),
        ("blank.csv", "\n\n"),
        ("header.csv", "employee,period,role\n"),
        ("blank_rows.csv", "employee,period,role\n,,\n\n"),
        ("empty.json", "[]"),
        ("records.json", '{"records": []}'),
        ("empty.jsonl", "\n\n"),
    ],
)
def test_a_file_without_records_is_refused(tmp_path: Path, name: str, text: str) -> None:
    code, line, column, message = refusal(write(tmp_path, name, text))
    assert (code, line, column) == ("E_FACTS", 0, 0)
    assert "no records" in message


def test_an_xlsx_without_records_is_refused(tmp_path: Path) -> None:
    path = write_xlsx(tmp_path, [["employee", "period", "role"]])
    assert refusal(path)[:3] == ("E_FACTS", 0, 0)


def test_a_csv_quoting_error_is_refused_with_its_line(tmp_path: Path) -> None:
    path = write(tmp_path, "facts.csv", 'employee,period,role,note\nE1,2025-07,r,"a"b\n')
    code, line, column, message = refusal(path)
    assert (code, line, column) == ("E_FACTS", 2, 0)
    assert message.startswith("CSV syntax:")


@pytest.mark.parametrize(
    ("record", "text"),
    [
        ('"revenue": NaN', "column 'revenue' (money): NaN is not a finite number"),
        ('"revenue": -Infinity', "-Infinity is not a finite number"),
        ('"revenue": 1e3', "column 'revenue' (money): 1E+3 is written with an exponent"),
        ('"revenue": 1.005', "column 'revenue' (money): 1.005 has more than 2 decimal place"),
        ('"revenue": "1,200"', "column 'revenue' (money): '1,200' is not a number"),
        ('"revenue": true', "true is true/false, not a number"),
        ('"revenue": [1]', "[1] is not a number"),
        ('"deals": 2.5', "column 'deals' (integer): 2.5 is not a whole number"),
        ('"remote": 2', "column 'remote' (boolean): 2 is not true or false"),
        ('"signed": 20250701', "column 'signed' (date): 20250701 is not a date"),
        ('"tags": [1, 2]', "column 'tags' (list): [1, 2] is not a list of strings"),
        ('"note": {"a": 1}', "column 'note' (text): an object is not text"),
        ('"note": 1.5', "column 'note' (text): 1.5 is not text"),
        ('"period": "2025-13"', "column 'period' (YYYY-MM): '2025-13' is not a month"),
        ('"period": null', "column 'period' (YYYY-MM) is empty"),
        ('"role": ""', "column 'role' (text) is empty"),
        ('"revenue": 1, "revenue": 2', "record 2: key 'revenue' appears twice"),
    ],
)
def test_malformed_json_values_are_refused_with_their_record(tmp_path: Path, record: str,
                                                             text: str) -> None:
    first = '{"employee": "E0", "period": "2025-07", "role": "r"}'
    fields = [record]
    for key, value in (("role", "r"), ("period", "2025-07"), ("employee", "E1")):
        if f'"{key}"' not in record:
            fields.insert(0, f'"{key}": "{value}"')
    second = "{" + ", ".join(fields) + "}"
    code, line, column, message = refusal(write(tmp_path, "facts.json", f"[{first},{second}]"))
    assert (code, line, column) == ("E_FACTS", 2, 0)
    assert text in message


@pytest.mark.parametrize(
    ("text", "location", "message"),
    [
        ('[{"employee": "E1"', (1, 19), "JSON syntax:"),
        ('[\n{"employee": "E1", "period": "2025-07", "role": "r"},\n1]', (2, 0),
         "record 2 is the value 1, not an object"),
        ('[{"period": "2025-07", "role": "r", "Employee": "E1"}]', (1, 0),
         "record 1 has no 'employee' (did you mean 'Employee'?)"),
        ('{"rows": []}', (0, 0), "not an object with keys ['rows']"),
        ('{"records": [], "meta": 1}', (0, 0), "not an object with keys ['meta', 'records']"),
        ('"facts"', (0, 0), 'a list of records, or {"records": [...]}'),
        ('{"records": 1, "records": []}', (0, 0), "key 'records' appears twice"),
    ],
)
def test_malformed_json_documents_are_refused(tmp_path: Path, text: str,
                                              location: tuple[int, int], message: str) -> None:
    code, line, column, found = refusal(write(tmp_path, "facts.json", text))
    assert (code, line, column) == ("E_FACTS", *location)
    assert message in found


def test_json_duplicate_employee_month_names_both_records(tmp_path: Path) -> None:
    record = {"employee": "E1", "period": "2025-07", "role": "r"}
    path = write(tmp_path, "facts.jsonl", "\n".join(json_text(record) for _ in range(3)))
    code, line, column, message = refusal(path)
    assert (code, line, column) == ("E_FACTS", 2, 0)
    assert "employee 'E1' has two records for 2025-07 (rows 1 and 2)" in message


def test_jsonl_syntax_errors_name_their_line(tmp_path: Path) -> None:
    path = write(tmp_path, "facts.jsonl",
                 '{"employee": "E1", "period": "2025-07", "role": "r"}\n\n{"employee": }\n')
    code, line, column, message = refusal(path)
    assert (code, line, column) == ("E_FACTS", 3, 14)
    assert message.startswith("JSON syntax: Expecting value")


def test_malformed_xlsx_cells_are_refused_with_their_place(tmp_path: Path) -> None:
    header: list[object] = ["employee", "period", "role", "revenue", "signed"]
    cases: list[tuple[list[object], int, str]] = [
        (["E1", "2025-07", "r", "1,200", None], 4, "column 'revenue' (money): '1,200' is not"),
        (["E1", "2025-07", "r", True, None], 4, "true is true/false, not a number"),
        (["E1", "2025-07", "r", None, datetime(2025, 7, 1, 9, 30)], 5, "has a time of day"),
        (["E1", datetime(2025, 7, 15), "r", None, None], 2, "2025-07-15T00:00:00 is not a month"),
        (["E1", "2025-07", 1.5, None, None], 3, "column 'role' (text): 1.5 is not text"),
        (["E1", "2025-07", "r", None, None, "x"], 6, "'x' in column 6 has no column name"),
    ]
    for index, (row, column, text) in enumerate(cases):
        path = write_xlsx(tmp_path, [header, ["E0", "2025-07", "r", 1, None], row],
                          name=f"case{index}.xlsx")
        code, line, col, message = refusal(path)
        assert (code, line, col) == ("E_FACTS", 3, column), message
        assert text in message


def test_an_infinite_excel_number_is_refused(tmp_path: Path) -> None:
    path = write_xlsx(tmp_path, [["employee", "period", "role", "revenue"],
                                 ["E1", "2025-07", "r", 12345.5]])
    store_as_excel_does(path, {"12345.5": "1e999"})  # overflows to inf when read
    code, line, column, message = refusal(path)
    assert (code, line, column) == ("E_FACTS", 2, 4)
    assert "column 'revenue' (money): inf is not a finite number" in message


def test_a_broken_workbook_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path, "facts.xlsx", "not a zip file")
    code, line, column, message = refusal(path)
    assert (code, line, column) == ("E_FACTS", 0, 0)
    assert "not a readable .xlsx workbook" in message


def test_other_file_kinds_and_missing_files_are_refused(tmp_path: Path) -> None:
    path = write(tmp_path, "facts.xls", "employee,period,role\n")
    code, line, column, message = refusal(path)
    assert (code, line, column) == ("E_FACTS", 0, 0)
    assert "cannot read facts from a '.xls' file" in message
    assert refusal(tmp_path / "missing.csv")[:3] == ("E_FILE_UNREADABLE", 0, 0)


def test_an_unknown_fact_type_is_a_callers_bug(tmp_path: Path) -> None:
    path = write(tmp_path, "facts.csv", "employee,period,role\nE1,2025-07,r\n")
    with pytest.raises(ValueError, match="unknown type 'float'"):
        read_facts(path, {"x": "float"})


# --------------------------------------------------------------------------------------------
# What a run reads (scan_facts): the months it evaluates in full, the facts it looks back at in
# earlier months, and of every other row only its identity and that it is the only one.

RUN_HEADER = "employee,period,role,name,hired,revenue,quota,note"
Q3 = MonthPlan(frozenset({"2025-07", "2025-08", "2025-09"}))


def scan_refusal(path: Path, plan: MonthPlan = Q3,
                 types: dict[str, str] | None = None) -> tuple[str, int, int, str]:
    with pytest.raises(InputError) as info:
        scan_facts(path, types or {"revenue": "money", "quota": "money", "note": "text"}, plan)
    [diagnostic] = info.value.diagnostics
    return diagnostic.code, diagnostic.location.line, diagnostic.location.column, \
        diagnostic.message


def scan(path: Path, plan: MonthPlan = Q3) -> dict[str, object]:
    table = scan_facts(path, {"revenue": "money", "quota": "money", "note": "text"}, plan)
    return {employee: ([(r.month, table.facts(r)) for r in entry.records], entry.history)
            for employee, entry in table.employees.items()}


def test_a_run_does_not_check_the_cells_of_months_it_does_not_read(tmp_path: Path) -> None:
    path = write(tmp_path, "facts.csv", f"{RUN_HEADER}\n"
                 "E1,2023-01,rep,Ann,someday,1.234,lots,x\n"  # a typo in 2023: not read
                 "E1,2025-07,rep,Ann,2020-01-01,10,20,\n"
                 "E1,2025-12,rep,Ann,never,1e3,,\n")  # after the period: not read either
    assert scan(path) == {"E1": ([("2025-07", {"revenue": Decimal(10),
                                               "quota": Decimal(20)})], [])}
    # read whole, every cell is checked
    assert refusal(path, {"revenue": "money", "quota": "money"})[:3] == ("E_FACTS", 2, 6)


@pytest.mark.parametrize(("row", "column", "message"), [
    (",2023-01,rep", 1, "column 'employee' (text) is empty"),
    ("E1,2023-13,rep", 2, "column 'period' (YYYY-MM): '2023-13' is not a month"),
    ("E1,,rep", 2, "column 'period' (YYYY-MM) is empty"),
    ("E1,2023-01,", 3, "column 'role' (text) is empty"),
])
def test_a_run_checks_the_identity_of_every_row(tmp_path: Path, row: str, column: int,
                                                message: str) -> None:
    path = write(tmp_path, "facts.csv", f"{RUN_HEADER}\nE1,2025-07,rep,,,1,1,\n{row}\n")
    code, line, found_column, found = scan_refusal(path)
    assert (code, line, found_column) == ("E_FACTS", 3, column)
    assert message in found


def test_a_second_record_in_a_month_no_run_reads_is_refused_naming_both_rows(
        tmp_path: Path) -> None:
    # months out of order, the first before the employee's earliest: the check still holds
    path = write(tmp_path, "facts.csv", f"{RUN_HEADER}\n"
                 "E1,2025-07,rep,,,1,1,\nE2,2024-05,rep,,,,,\nE1,2023-02,rep,,,,,\n"
                 "E1,2022-01,rep,,,,,\nE1,2024-11,rep,,,,,\nE1,2023-02,rep,,,,,\n")
    code, line, column, message = scan_refusal(path)
    assert (code, line, column) == ("E_FACTS", 7, 1)
    assert "employee 'E1' has two records for 2023-02 (rows 4 and 7)" in message


def test_a_second_record_in_a_json_file_names_both_records(tmp_path: Path) -> None:
    records = [{"employee": "E1", "period": month, "role": "r"}
               for month in ("2025-07", "2023-03", "2024-01", "2023-03")]
    path = write(tmp_path, "facts.jsonl", "\n".join(json_text(r) for r in records))
    code, line, column, message = scan_refusal(path)
    assert (code, line, column) == ("E_FACTS", 4, 0)
    assert "employee 'E1' has two records for 2023-03 (rows 2 and 4)" in message


def test_a_second_record_in_a_workbook_names_both_rows(tmp_path: Path) -> None:
    path = write_xlsx(tmp_path, [["employee", "period", "role"], ["E1", "2023-03", "r"],
                                 ["E1", "2025-07", "r"], ["E1", "2023-03", "r"]])
    code, line, column, message = scan_refusal(path)
    assert (code, line, column) == ("E_FACTS", 4, 1)
    assert "employee 'E1' has two records for 2023-03 (rows 2 and 4)" in message


def test_earlier_months_are_read_for_the_facts_a_policy_looks_back_at(tmp_path: Path) -> None:
    plan = MonthPlan(Q3.months, ("quota", "absent"), history_team=True)
    text = (f"{RUN_HEADER},team\nE1,2025-07,rep,,,1,2,,T1\n"
            "E1,2024-02,rep,,bad date,not money,30,,T2\nE1,2023-12,rep,,,,,,\n")
    path = write(tmp_path, "facts.csv", text)
    # revenue is not looked back at: its typo in 2024 does not stop the run; quota's would
    assert scan(path, plan)["E1"] == ([("2025-07", {"revenue": Decimal(1), "quota": Decimal(2)})],
                                      [2024 * 12 + 1, "T2", Decimal(30), None,
                                       2023 * 12 + 11, None, None, None])
    path = write(tmp_path, "facts.csv", text.replace(",30,", ",3O,"))
    code, line, column, message = scan_refusal(path, plan)
    assert (code, line, column) == ("E_FACTS", 3, 7)
    assert "column 'quota' (money): '3O' is not a number" in message


def test_records_read_already_are_kept_as_a_run_reads_them(tmp_path: Path) -> None:
    plan = MonthPlan(Q3.months, ("quota",))
    path = write(tmp_path, "facts.csv", f"{RUN_HEADER}\nE1,2025-07,rep,Ann,,1,2,\n"
                 "E1,2024-02,rep,,,5,30,\nE1,2025-10,rep,,,5,30,\n")
    types = {"revenue": "money", "quota": "money"}
    read = read_facts(path, types)
    planned, scanned = plan_records(read, plan), scan_facts(path, types, plan)
    for table in (planned, scanned):
        [entry] = table.employees.values()
        assert [r._replace(cells=None) for r in entry.records] == [
            r._replace(cells=None) for r in scanned.employees["E1"].records]
        assert table.facts(entry.records[0]) == {"revenue": Decimal(1), "quota": Decimal(2)}
        assert entry.history == [2024 * 12 + 1, Decimal(30)]
        assert table.unknown_columns(types) == read.unknown_columns == ("note",)


# --------------------------------------------------------------------------------------------
# Properties

def read_both_ways(path: Path) -> list[object]:
    """read_facts and scan_facts of a CSV, each as rows or the refusal's place and message."""
    types = {"note": "text", "deals": "integer"}
    plan = MonthPlan(frozenset({"2025-07"}), ("deals",))
    outcomes: list[object] = []
    def scanned() -> list[object]:
        table = scan_facts(path, types, plan)
        return [(e, [(r._replace(cells=None), table.facts(r)) for r in f.records], f.history)
                for e, f in table.employees.items()]

    for read in (lambda: read_facts(path, types).rows, scanned):
        try:
            outcomes.append(read())
        except InputError as error:
            outcomes.append([(d.location.line, d.location.column, d.message)
                             for d in error.diagnostics])
    return outcomes


CELLS = st.text(alphabet="E1 ,\"\r\n2025-07", max_size=8)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.lists(CELLS | st.sampled_from(["E1", "E2", "2025-07", "2024-12", "r", "3"]),
                         max_size=7), max_size=6),
       st.sampled_from(["\n", "\r\n", "\r"]), st.booleans())
def test_a_line_without_quotes_reads_as_the_csv_module_reads_it(
        rows: list[list[str]], ending: str, raw: bool) -> None:
    """Lines without a quote are split at ',' by the reader itself, and only as far as it
    needs: what is read, and every refusal, is what reading every line with csv gives."""
    if raw:  # written as is: quotes and line breaks may break the file
        body = ending.join(",".join(row) for row in rows)
    else:
        text = io.StringIO()
        csv.writer(text, lineterminator=ending).writerows(rows)
        body = text.getvalue()
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "facts.csv"
        path.write_text(f"employee,period,role,note,deals{ending}{body}", encoding="utf-8",
                        newline="")
        fast = read_both_ways(path)
        with mock.patch.object(csv, "field_size_limit", lambda: -1):  # every line to csv
            assert read_both_ways(path) == fast


PLAIN = re.compile(r"-?[0-9]+(\.[0-9]+)?")


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=12) | st.from_regex(r"\A-?[0-9]{1,6}(\.[0-9]{1,4})?\Z"))
def test_any_text_in_a_money_cell_is_its_exact_value_or_refused(text: str) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "facts.json"  # JSON carries any text to the cell unchanged
        path.write_text(json.dumps([{"employee": "E1", "period": "2025-07", "role": "r",
                                     "revenue": text}]), encoding="utf-8")
        try:
            rows = read_facts(path, {"revenue": "money"}).rows
        except InputError as error:
            assert [d.code for d in error.diagnostics] == ["E_FACTS"]
            return
    stripped = text.strip()
    value = rows[0].values.get("revenue")
    if not stripped:
        assert value is None
        return
    assert PLAIN.fullmatch(stripped)
    assert isinstance(value, Decimal) and value == Decimal(stripped)
    fraction = stripped.partition(".")[2].rstrip("0")
    assert len(fraction) <= 2


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=st.characters(exclude_categories=["Cs"], exclude_characters="\x00"),
               max_size=12))
def test_any_text_in_a_csv_money_cell_never_crashes(text: str) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "facts.csv"
        cell = '"' + text.replace('"', '""') + '"'
        path.write_text(f"employee,period,role,revenue\nE1,2025-07,r,{cell}\n",
                        encoding="utf-8", newline="")
        try:
            rows = read_facts(path, {"revenue": "money"}).rows
        except InputError:
            return
    value = rows[0].values.get("revenue")
    assert value is None or value == Decimal(text.strip())
