"""The same run gives the same bytes: shuffled input rows, another PYTHONHASHSEED, another TZ
and every locale `locale -a` lists, each run as its own `meritpay` process. And a lint of
engine/ that forbids what would make output depend on the machine: the locale module, the 'n'
format, a locale flag in % formatting, locale-dependent strftime directives, and naive clock
reads (datetime.now() without a zone, date.today(), time.localtime...)."""

from __future__ import annotations

import ast
import csv
import io
import os
import random
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
ENGINE = ROOT / "engine"
EXAMPLES = ROOT / "examples"
MERITPAY = ROOT / ".venv" / "bin" / "meritpay"
DATA = ("facts.csv", "ratings.csv", "teams.csv", "team_facts.csv", "company_facts.csv",
        "lines.csv")


def locales() -> list[str]:
    try:
        listed = subprocess.run(["locale", "-a"], capture_output=True, text=True, check=True,
                                timeout=10).stdout.split()
    except (OSError, subprocess.SubprocessError):
        listed = []
    return sorted(set(listed) | {"C"})


def copy_data(target: Path, seed: int | None) -> None:
    """The example files into target/data, rows shuffled (header kept first) when seeded."""
    folder = target / "data"
    folder.mkdir(parents=True)
    rng = random.Random(seed)
    for name in DATA:
        if seed is None:
            shutil.copy(EXAMPLES / name, folder / name)
            continue
        rows = list(csv.reader(io.StringIO((EXAMPLES / name).read_text(encoding="utf-8"),
                                           newline="")))
        body = rows[1:]
        rng.shuffle(body)
        with open(folder / name, "w", encoding="utf-8", newline="") as stream:
            csv.writer(stream, lineterminator="\n").writerows([rows[0], *body])


def meritpay(folder: Path, args: list[str], env: dict[str, str]) -> bytes:
    command = [str(MERITPAY)] if MERITPAY.exists() else [
        sys.executable, "-c", "import sys; from cli import main; sys.exit(main())"]
    clean = {k: v for k, v in os.environ.items()
             if not k.startswith(("LC_", "LANG", "TZ", "PYTHONHASHSEED"))}
    done = subprocess.run([*command, *args, "-o", "out"], cwd=folder, env={**clean, **env},
                          capture_output=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr.decode(errors="replace")
    return (folder / "out").read_bytes()


RUN = ["run", str(ROOT / "policies" / "2025-Q3"), "--data", "data", "--period", "2025-Q3",
       "--format", "csv", "--no-ledger"]
DIFF = ["diff", str(ROOT / "policies" / "2025-Q3"), str(ROOT / "policies" / "2025-Q4"),
        "--data", "data", "--period", "2025-Q3", "--format", "json", "--by", "grade,location"]


def variants() -> list[tuple[str, int | None, dict[str, str]]]:
    """(name, shuffle seed, environment): the baseline, then every change at once, then each
    locale with shuffled rows, its own hash seed and an odd time zone."""
    found = [("baseline", None, {"PYTHONHASHSEED": "0", "TZ": "UTC0", "LC_ALL": "C.UTF-8",
                                 "LANG": "C.UTF-8"})]
    zones = ["<+1345>-13:45", "<-0330>+3:30", "Asia/Kolkata", "America/St_Johns"]
    for index, name in enumerate(locales()):
        found.append((f"locale {name}", 100 + index, {
            "PYTHONHASHSEED": str(7919 * (index + 1)), "TZ": zones[index % len(zones)],
            "LC_ALL": name, "LANG": name}))
    return found


def test_a_run_gives_the_same_bytes_whatever_the_row_order_hash_seed_zone_and_locale(
        tmp_path: Path) -> None:
    outputs: dict[str, bytes] = {}
    for name, seed, env in variants():
        folder = tmp_path / re.sub(r"\W", "_", name)
        copy_data(folder, seed)
        outputs[name] = meritpay(folder, RUN, env)
    baseline = outputs.pop("baseline")
    assert baseline.count(b"\n") > 200
    assert {name: out == baseline for name, out in outputs.items()} == dict.fromkeys(outputs,
                                                                                       True)


def test_a_diff_gives_the_same_bytes_with_shuffled_rows_hash_seed_zone_and_locale(
        tmp_path: Path) -> None:
    chosen = variants()
    chosen = [chosen[0], chosen[-1]]  # the baseline, and one with everything changed
    outputs = []
    for name, seed, env in chosen:
        folder = tmp_path / re.sub(r"\W", "_", name)
        copy_data(folder, seed)
        outputs.append(meritpay(folder, DIFF, env))
    assert outputs[0] == outputs[1]
    assert b'"employees"' in outputs[0]


# --- the lint: nothing in engine/ formats by locale or reads the local clock ----------------

_SAFE_STRFTIME = set("YmdHMSfjzZ%")  # numeric directives: the same in every locale
_N_FORMAT = re.compile(r"\{[^{}]*:[^{}]*n\}")


def _offences(tree: ast.AST) -> list[tuple[int, str]]:
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        line = getattr(node, "lineno", 0)
        if isinstance(node, ast.Import | ast.ImportFrom):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) \
                else [node.module or ""]
            if any(n.split(".")[0] == "locale" for n in names):
                found.append((line, "imports locale"))
        elif isinstance(node, ast.FormattedValue) and isinstance(node.format_spec,
                                                                  ast.JoinedStr):
            spec = "".join(v.value for v in node.format_spec.values
                           if isinstance(v, ast.Constant) and isinstance(v.value, str))
            if spec.endswith("n"):
                found.append((line, f"f-string format '{spec}' uses the locale"))
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            if _N_FORMAT.search(node.value):
                found.append((line, "str.format 'n' uses the locale"))
        elif isinstance(node, ast.BinOp) and isinstance(node.op, ast.Mod) and isinstance(
                node.left, ast.Constant) and isinstance(node.left.value, str) \
                and "%'" in node.left.value:
            found.append((line, "a % format with the locale's grouping flag"))
        elif isinstance(node, ast.Call):
            found += _call_offences(node, line)
    return found


def _call_offences(node: ast.Call, line: int) -> list[tuple[int, str]]:
    func = node.func
    name = func.attr if isinstance(func, ast.Attribute) else func.id \
        if isinstance(func, ast.Name) else ""
    owner = func.value.id if isinstance(func, ast.Attribute) and isinstance(
        func.value, ast.Name) else ""
    if name == "format" and isinstance(func, ast.Name) and len(node.args) == 2 and isinstance(
            node.args[1], ast.Constant) and str(node.args[1].value).endswith("n"):
        return [(line, "format(x, 'n') uses the locale")]
    if name == "strftime":
        spec = node.args[0] if node.args else None
        if not (isinstance(spec, ast.Constant) and isinstance(spec.value, str)):
            return [(line, "strftime with a format that is not a constant")]
        directives = set(re.findall(r"%(.)", spec.value))
        if directives - _SAFE_STRFTIME:
            return [(line, f"strftime directives {sorted(directives - _SAFE_STRFTIME)} "
                     "depend on the locale")]
    if owner == "time" and name in ("strftime", "localtime", "ctime", "asctime", "mktime"):
        return [(line, f"time.{name} reads the local zone or locale")]
    if name == "now" and not node.args and not node.keywords:
        return [(line, "datetime.now() without a zone reads the local clock")]
    if name == "today" and owner in ("date", "datetime"):
        return [(line, f"{owner}.today() reads the local clock")]
    if name in ("fromtimestamp", "utcnow", "utcfromtimestamp") and len(node.args) < 2 \
            and not node.keywords:
        return [(line, f"{name}() without a zone")]
    return []


def test_the_engine_never_formats_by_locale_or_reads_the_local_clock() -> None:
    found = {}
    for path in sorted(ENGINE.glob("*.py")):
        offences = _offences(ast.parse(path.read_text(encoding="utf-8")))
        if offences:
            found[path.name] = offences
    assert found == {}


@pytest.mark.parametrize(("code", "offence"), [
    ("import locale", "imports locale"),
    ("from locale import format_string", "imports locale"),
    ("x = f'{total:n}'", "uses the locale"),
    ("x = format(total, 'n')", "uses the locale"),
    ("x = '{:,n}'.format(total)", "uses the locale"),
    ("x = \"%'d\" % total", "grouping flag"),
    ("x = when.strftime('%d %b %Y')", "depend on the locale"),
    ("x = time.strftime('%Y')", "reads the local zone"),
    ("x = datetime.now()", "without a zone"),
    ("x = date.today()", "reads the local clock"),
    ("x = datetime.fromtimestamp(t)", "without a zone"),
])
def test_the_lint_finds_each_kind_of_offence(code: str, offence: str) -> None:
    assert any(offence in message for _, message in _offences(ast.parse(code)))


def test_the_lint_allows_what_is_the_same_everywhere() -> None:
    allowed = ("x = datetime.now(UTC).strftime('%Y-%m-%dT%H:%M:%S.%fZ')\n"
               "y = f'{total:,.2f}'\nz = format(v, 'f')\n")
    assert _offences(ast.parse(allowed)) == []
