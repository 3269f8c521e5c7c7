"""The hostile-input tests: their helpers' folder on the path, and a summary of the time and
memory each resource bomb took (reported, never asserted)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))  # hostile_support

BOMBS: list[tuple[str, str, int, float, int]] = []  # case, command, exit, seconds, peak KiB


@pytest.fixture
def bomb_report() -> list[tuple[str, str, int, float, int]]:
    return BOMBS


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not BOMBS:
        return
    write = terminalreporter.write_line
    terminalreporter.section("resource bombs (512 MiB address space, 10 s guard)")
    write(f"{'case':34} {'command':9} {'exit':>4} {'seconds':>8} {'peak RSS MiB':>13}")
    for case, command, code, seconds, peak in BOMBS:
        write(f"{case:34} {command:9} {code:>4} {seconds:>8.2f} {peak / 1024:>13.1f}")
