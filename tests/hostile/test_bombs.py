"""Resource bombs, each run as its own `meritpay` process limited to 512 MiB of address space
(RLIMIT_AS) with a 10 s hang guard. Each must end by itself with its expected exit status and
code, never a traceback; the time and peak memory each took are printed in the test summary
(not asserted: they depend on the machine)."""

from __future__ import annotations

import os
import resource
import subprocess
import sys
import threading
import time
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
MINIMAL = (ROOT / "tests" / "fixtures" / "valid" / "minimal.yaml").read_text(encoding="utf-8")
LIMIT = 512 * 1024 * 1024
GUARD = 10.0
FACTS_HEAD = "employee,period,role,revenue\n"


def limited() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (LIMIT, LIMIT))


def policy_with_value(text: str) -> str:
    return MINIMAL.replace("value: revenue", f"value: {text}")


def sparse(path: Path, size: int) -> None:
    with open(path, "wb") as stream:
        stream.truncate(size)  # a hole: no disk used


def alias_bomb(folder: Path) -> None:
    lines = ['a: &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for index, name in enumerate("bcdefghi"):
        previous = "abcdefghi"[index]
        lines.append(f"{name}: &{name} [" + ", ".join([f"*{previous}"] * 9) + "]")
    (folder / "policy.yaml").write_text("\n".join(lines) + "\n", encoding="utf-8")


def deep_yaml(folder: Path) -> None:
    (folder / "policy.yaml").write_text("a: " + "[" * 200_000 + "]" * 200_000 + "\n",
                                        encoding="utf-8")


def wide_yaml(folder: Path) -> None:
    """4.9 MB of small mappings: just under the size limit, over the value budget."""
    item = "- {a: 1, b: 2, c: 3}\n"
    (folder / "policy.yaml").write_text("items:\n" + item * (4_900_000 // len(item)),
                                        encoding="utf-8")


def long_scalar(folder: Path) -> None:
    (folder / "policy.yaml").write_text("policy: " + "x" * 4_900_000 + "\n", encoding="utf-8")


def file_of_50_mb(folder: Path) -> None:
    (folder / "policy.yaml").write_text("# padding\n" * 5_000_000, encoding="utf-8")


def policy_sparse_2_gb(folder: Path) -> None:
    sparse(folder / "policy.yaml", 2 * 1024 ** 3)


def facts_sparse_2_gb(folder: Path) -> None:
    (folder / "policy.yaml").write_text(MINIMAL, encoding="utf-8")
    sparse(folder / "facts.csv", 2 * 1024 ** 3)


def facts_cell_of_50_mb(folder: Path) -> None:
    (folder / "policy.yaml").write_text(MINIMAL, encoding="utf-8")
    (folder / "facts.csv").write_text(FACTS_HEAD + "E1,2025-07,rep," + "9" * 50_000_000 + "\n",
                                      encoding="utf-8")


def facts_50_mb_of_rows(folder: Path) -> None:
    """50 MB of well-formed rows, none in the period: every row is read and checked."""
    (folder / "policy.yaml").write_text(MINIMAL, encoding="utf-8")
    row_months = [f"20{y:02d}-{m:02d}" for y in range(10, 25) for m in range(1, 13)]
    note = "n" * 400  # wide rows, as exports with descriptive columns are
    with open(folder / "facts.csv", "w", encoding="utf-8") as stream:
        stream.write("employee,period,role,revenue,note\n")
        size, number = 0, 0
        while size < 50_000_000:
            line = f"E{number // len(row_months):07d},{row_months[number % len(row_months)]}," \
                   f"rep,{number % 100000}.{number % 100:02d},{note}\n"
            stream.write(line)
            size += len(line)
            number += 1


def facts_json_nesting(folder: Path) -> None:
    (folder / "policy.yaml").write_text(MINIMAL, encoding="utf-8")
    (folder / "facts.json").write_text("[" * 1_000_000 + "]" * 1_000_000, encoding="utf-8")


def facts_xlsx_entity_bomb(folder: Path) -> None:
    """A workbook whose sheet XML defines entities that expand a billion times."""
    (folder / "policy.yaml").write_text(MINIMAL, encoding="utf-8")
    entities = '<!ENTITY a "aaaaaaaaaa">' + "".join(
        f'<!ENTITY {chr(98 + i)} "' + f"&{chr(97 + i)};" * 10 + '">' for i in range(8))
    sheet = ('<?xml version="1.0"?><!DOCTYPE worksheet [' + entities + ']>'
             '<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">'
             '<sheetData><row r="1"><c r="A1" t="inlineStr"><is><t>&i;</t></is></c></row>'
             '</sheetData></worksheet>')
    parts = {
        "[Content_Types].xml": (
            '<?xml version="1.0"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/'
            'content-types"><Default Extension="rels" ContentType="application/vnd.openxml'
            'formats-package.relationships+xml"/><Override PartName="/xl/workbook.xml" '
            'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.'
            'main+xml"/><Override PartName="/xl/worksheets/sheet1.xml" ContentType="applicati'
            'on/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/></Types>'),
        "_rels/.rels": (
            '<?xml version="1.0"?><Relationships xmlns="http://schemas.openxmlformats.org/'
            'package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.open'
            'xmlformats.org/officeDocument/2006/relationships/officeDocument" Target="xl/'
            'workbook.xml"/></Relationships>'),
        "xl/workbook.xml": (
            '<?xml version="1.0"?><workbook xmlns="http://schemas.openxmlformats.org/'
            'spreadsheetml/2006/main" xmlns:r="http://schemas.openxmlformats.org/officeDocument'
            '/2006/relationships"><sheets><sheet name="facts" sheetId="1" r:id="rId1"/>'
            '</sheets></workbook>'),
        "xl/_rels/workbook.xml.rels": (
            '<?xml version="1.0"?><Relationships xmlns="http://schemas.openxmlformats.org/'
            'package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.open'
            'xmlformats.org/officeDocument/2006/relationships/worksheet" Target="worksheets/'
            'sheet1.xml"/></Relationships>'),
        "xl/worksheets/sheet1.xml": sheet,
    }
    with zipfile.ZipFile(folder / "facts.xlsx", "w", zipfile.ZIP_DEFLATED) as archive:
        for name, text in parts.items():
            archive.writestr(name, text)


def policy_is_dev_zero(folder: Path) -> None:
    (folder / "policy.yaml").symlink_to("/dev/zero")


def facts_are_dev_zero(folder: Path) -> None:
    (folder / "policy.yaml").write_text(MINIMAL, encoding="utf-8")
    (folder / "facts.csv").symlink_to("/dev/zero")


def ledger_is_a_fifo(folder: Path) -> None:
    (folder / "policy.yaml").write_text(MINIMAL, encoding="utf-8")
    (folder / "facts.csv").write_text(FACTS_HEAD + "E1,2025-07,rep,1\n", encoding="utf-8")
    os.mkfifo(folder / "ledger.sqlite3")  # opening it to read would wait for a writer forever


def expression(text: str) -> Callable[[Path], None]:
    def build(folder: Path) -> None:
        (folder / "policy.yaml").write_text(policy_with_value(text), encoding="utf-8")
    return build


def evaluated(text: str) -> Callable[[Path], None]:
    def build(folder: Path) -> None:
        (folder / "policy.yaml").write_text(policy_with_value(text), encoding="utf-8")
        (folder / "facts.csv").write_text(FACTS_HEAD + "E1,2025-07,rep,3100\n", encoding="utf-8")
    return build


VALIDATE = ["validate", "policy.yaml"]
RUN = ["run", "policy.yaml", "--facts", "facts.csv", "--period", "2025-Q3", "--no-ledger"]
RUN_JSON = ["run", "policy.yaml", "--facts", "facts.json", "--period", "2025-Q3", "--no-ledger"]
RUN_XLSX = ["run", "policy.yaml", "--facts", "facts.xlsx", "--period", "2025-Q3", "--no-ledger"]

# (case, build the files, command, exit status, code it must name)
BOMBS: list[tuple[str, Callable[[Path], None], list[str], int, str]] = [
    ("yaml alias bomb", alias_bomb, VALIDATE, 1, "E_YAML_TOO_LARGE"),
    ("yaml nesting 200,000 deep", deep_yaml, VALIDATE, 1, "E_YAML_TOO_LARGE"),
    ("yaml 4.9 MB of small values", wide_yaml, VALIDATE, 1, "E_YAML_TOO_LARGE"),
    ("yaml scalar of 4.9 MB", long_scalar, VALIDATE, 1, "E_SCHEMA"),
    ("policy of 50 MB", file_of_50_mb, VALIDATE, 2, "E_FILE_TOO_LARGE"),
    ("policy of 2 GB (sparse)", policy_sparse_2_gb, VALIDATE, 2, "E_FILE_TOO_LARGE"),
    ("expression 4000000**4000000", expression('"4000000**4000000"'), VALIDATE, 1,
     "E_EXPR_TOO_COMPLEX"),
    ("expression 'a' * 10**9", expression("\"'a' * 10**9\""), VALIDATE, 1, "E_EXPR_TYPE"),
    ("expression nesting 1,999 deep", expression('"' + "-" * 1999 + 'revenue"'), VALIDATE,
     1, "E_EXPR_TOO_COMPLEX"),
    ("expression of 100,000 nines", expression('"' + "9" * 100_000 + '"'), VALIDATE, 1,
     "E_EXPR_TOO_COMPLEX"),
    ("power tower at run time", evaluated('"(((((revenue ** 10) ** 10) ** 10) ** 10) ** 10)'
                                          ' ** 10"'), RUN, 2, "E_EVAL_ARITHMETIC"),
    ("facts of 2 GB (sparse)", facts_sparse_2_gb, RUN, 2, "E_FILE_TOO_LARGE"),
    ("facts cell of 50 MB", facts_cell_of_50_mb, RUN, 2, "E_FACTS"),
    ("facts: 50 MB of rows", facts_50_mb_of_rows, RUN, 2, "E_FACTS"),
    ("facts json nested 1,000,000 deep", facts_json_nesting, RUN_JSON, 2, "E_FACTS"),
    ("facts xlsx entity bomb", facts_xlsx_entity_bomb, RUN_XLSX, 2, "E_FACTS"),
    ("policy linked to /dev/zero", policy_is_dev_zero, VALIDATE, 2, "E_FILE_UNREADABLE"),
    ("facts linked to /dev/zero", facts_are_dev_zero, RUN, 2, "E_FILE_UNREADABLE"),
    ("ledger that is a FIFO", ledger_is_a_fifo,
     ["run", "policy.yaml", "--facts", "facts.csv", "--period", "2025-Q3", "--ledger",
      "ledger.sqlite3"], 2, "E_LEDGER_NOT_A_LEDGER"),
]


def measured(args: list[str], folder: Path) -> tuple[int, str, float, int]:
    """Run meritpay in a child limited to LIMIT bytes of address space; kill it after GUARD
    seconds. Returns the exit status, stderr, seconds and the child's peak RSS (KiB)."""
    script = "import sys; from cli import main; sys.exit(main())"
    output = folder / "output.txt"  # stdout and stderr: validate reports on stdout
    with open(output, "wb") as written:
        started = time.monotonic()
        process = subprocess.Popen(
            [sys.executable, "-c", script, *args], cwd=folder, stdout=written,
            stderr=subprocess.STDOUT, preexec_fn=limited,
            env={**os.environ, "PYTHONPATH": str(ROOT)})
        guard = threading.Timer(GUARD, process.kill)
        guard.start()
        try:
            _, status, usage = os.wait4(process.pid, 0)
        finally:
            guard.cancel()
        seconds = time.monotonic() - started
    process.returncode = os.waitstatus_to_exitcode(status)  # reaped here, not by Popen
    return process.returncode, output.read_text(encoding="utf-8", errors="replace"), seconds, \
        usage.ru_maxrss


@pytest.mark.parametrize(("case", "build", "args", "code", "diagnostic"), BOMBS,
                         ids=[b[0] for b in BOMBS])
def test_a_resource_bomb_ends_cleanly_within_the_limits(
        tmp_path: Path, bomb_report: list[tuple[str, str, int, float, int]], case: str,
        build: Callable[[Path], None], args: list[str], code: int, diagnostic: str) -> None:
    build(tmp_path)
    status, stderr, seconds, peak = measured(args, tmp_path)
    bomb_report.append((case, args[0], status, seconds, peak))
    assert status != -9, f"{case}: killed by the {GUARD:.0f} s guard"
    assert "Traceback" not in stderr, stderr
    assert status == code, stderr
    assert diagnostic in stderr, stderr
