"""README.md cannot drift: its command reference is `--help` verbatim, its code table is CODES.

Regenerate the generated blocks with `MERITPAY_UPDATE_README=1 python -m pytest
tests/test_readme.py`; never edit them by hand.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import click
from click.testing import CliRunner

from cli import main
from engine import CODES

README = Path(__file__).resolve().parent.parent / "README.md"
BLOCK = re.compile(r"(<!-- generated:(?P<name>[\w-]+) -->\n)(?P<body>.*?)(<!-- /generated -->)",
                   re.S)


def command_names() -> list[str]:
    assert isinstance(main, click.Group)
    return sorted(main.commands)


def help_text(*args: str) -> str:
    result = CliRunner().invoke(main, [*args, "--help"], prog_name="meritpay")
    assert result.exit_code == 0, result.output
    return result.output


def generated(name: str) -> str:
    if name == "help":
        return "```text\n$ meritpay --help\n" + help_text() + "```\n"
    if name.startswith("help-"):
        command = name.removeprefix("help-")
        return f"```text\n$ meritpay {command} --help\n" + help_text(command) + "```\n"
    if name == "codes":
        rows = ["| code | severity | meaning |", "|---|---|---|"]
        for code, meaning in CODES.items():
            severity = "warning" if code.startswith("W_") else "error"
            rows.append(f"| `{code}` | {severity} | {meaning} |")
        return "\n".join(rows) + "\n"
    raise AssertionError(f"unknown generated block {name}")


def test_generated_blocks_are_current() -> None:
    text = README.read_text(encoding="utf-8")
    names = [m.group("name") for m in BLOCK.finditer(text)]
    expected = {"help", "codes"} | {f"help-{c}" for c in command_names()}
    assert expected <= set(names), f"README lacks blocks for {sorted(expected - set(names))}"

    def fill(match: re.Match[str]) -> str:
        return match.group(1) + generated(match.group("name")) + match.group(4)

    updated = BLOCK.sub(fill, text)
    if os.environ.get("MERITPAY_UPDATE_README"):
        README.write_text(updated, encoding="utf-8")
        return
    assert updated == text, "README is stale: run MERITPAY_UPDATE_README=1 pytest " \
        "tests/test_readme.py"


def test_every_command_and_code_is_documented() -> None:
    text = README.read_text(encoding="utf-8")
    for command in command_names():
        assert f"meritpay {command}" in text
    for code in CODES:
        assert f"`{code}`" in text


def test_readme_starts_with_the_two_commands_ci_runs() -> None:
    text = README.read_text(encoding="utf-8")
    blocks = re.findall(r"```sh\n(.*?)```", text, re.S)
    assert len(blocks) >= 2
    ci = (README.parent / ".ci" / "run").read_text(encoding="utf-8")
    test_command = blocks[1].strip()
    assert test_command.splitlines()[-1] in ci
