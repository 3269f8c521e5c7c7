"""The catalogue of bad inputs (catalogue.yaml): each case is files and a command line, run
in-process through click's test runner, with the exact exit status, diagnostic code and
location it must give, and never a traceback.

The catalogue is read with meritpay's own strict YAML loader (the users' format). A file's
text is a string, or a list of pieces where `{repeat: TEXT, times: N}` stands for TEXT
repeated N times. A policy is the catalogue's `base_policy` with `value`, `gate` and
`amount` (raw YAML fragments) put in and each `replace: [OLD, NEW]` pair applied, unless the
case gives `policy.yaml` itself; the facts are `base_facts` unless the case gives
`facts.csv`. `sqlite` files are built by running the listed SQL statements; `setup` command
lines run first (each must succeed), then `damage` overwrites every page of a file after the
first with seeded random bytes.
"""

from __future__ import annotations

import random
import re
import sqlite3
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from cli import main
from engine.load import load_document

CATALOGUE_PATH = Path(__file__).resolve().parent / "catalogue.yaml"
_DOCUMENT, _PROBLEMS = load_document(CATALOGUE_PATH.read_text(encoding="utf-8"),
                                     str(CATALOGUE_PATH))
assert _DOCUMENT is not None and not _PROBLEMS, _PROBLEMS
CATALOGUE: dict[str, Any] = _DOCUMENT.data
CASES: list[dict[str, Any]] = CATALOGUE["cases"]
AREAS = ("expression", "evaluation", "yaml", "schema", "facts", "cli", "ledger")
COMMANDS = {
    "validate": ["validate", "policy.yaml"],
    "run": ["run", "policy.yaml", "--facts", "facts.csv", "--period", "2025-Q3",
            "--no-ledger", "--format", "csv"],
}
DIAGNOSTIC = re.compile(r"^(?P<at>\S.*?(?::\d+){0,2}): (?P<code>[EW]_[A-Z_]+): ", re.MULTILINE)


def text_of(value: Any) -> str:
    if isinstance(value, str):
        return value
    pieces = []
    for piece in value:
        pieces.append(piece if isinstance(piece, str) else piece["repeat"] * int(piece["times"]))
    return "".join(pieces)


def policy_text(case: dict[str, Any]) -> str:
    text: str = CATALOGUE["base_policy"]
    for key in ("value", "gate", "amount"):
        fragment = text_of(case[key]).strip() if key in case else CATALOGUE["defaults"][key]
        text = text.replace(key.upper() + "_HERE", fragment)
    for old, new in case.get("replace", []):
        assert old in text, old
        text = text.replace(old, text_of(new), 1)
    return text


def materialise(case: dict[str, Any], folder: Path) -> None:
    files: dict[str, Any] = dict(case.get("files", {}))
    files.setdefault("policy.yaml", policy_text(case))
    files.setdefault("facts.csv", CATALOGUE["base_facts"])
    for name, content in files.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, dict) and "sqlite" in content:
            connection = sqlite3.connect(path)
            for statement in content["sqlite"]:
                connection.execute(statement)
            connection.commit()
            connection.close()
        elif isinstance(content, dict) and "bytes" in content:
            path.write_bytes(bytes.fromhex(content["bytes"]))
        else:
            path.write_bytes(text_of(content).encode(str(case.get("encoding", "utf-8")),
                                                     errors="surrogateescape"))


@pytest.mark.parametrize("case", CASES, ids=[c["id"] for c in CASES])
def test_bad_input_gives_its_exact_code_exit_status_and_location(
        case: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    materialise(case, tmp_path)
    monkeypatch.chdir(tmp_path)
    for setup in case.get("setup", []):
        done = CliRunner().invoke(main, [str(a) for a in setup])
        assert done.exit_code == 0, done.output
    if "damage" in case:
        damaged = tmp_path / str(case["damage"])
        data = bytearray(damaged.read_bytes())
        page = int.from_bytes(data[16:18], "big")
        data[page:] = random.Random(7).randbytes(len(data) - page)
        damaged.write_bytes(bytes(data))
    command = case.get("command", "validate")
    args = [str(a) for a in (COMMANDS[command] if isinstance(command, str) else command)]
    args += [str(a) for a in case.get("extra", [])]
    result = CliRunner().invoke(main, args)
    output = result.stdout + result.stderr
    assert "Traceback" not in output, output
    assert result.exception is None or isinstance(result.exception, SystemExit), \
        repr(result.exception)
    assert result.exit_code == int(case["exit"]), output
    found = [(m["code"], m["at"]) for m in DIAGNOSTIC.finditer(output)]
    errors = {code for code, _ in found if code.startswith("E_")}
    if "code" in case:
        assert errors == {case["code"]}, output
        assert (case["code"], case["at"]) in found, output
    else:  # a usage error: click's message, no diagnostic
        assert errors == set(), output
    if "message" in case:
        assert str(case["message"]) in output, output


def test_the_catalogue_covers_every_area_with_at_least_100_cases() -> None:
    ids = [c["id"] for c in CASES]
    assert len(ids) >= 100 and len(set(ids)) == len(ids)
    areas = Counter(str(c["area"]) for c in CASES)
    assert set(areas) == set(AREAS), areas
    assert all(c.get("why") for c in CASES), "every case says what it shows"
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    assert f"a catalogue of {len(CASES)} bad inputs" in readme
