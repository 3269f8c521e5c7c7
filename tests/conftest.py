"""Shared test setup."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(autouse=True)
def private_ledger(tmp_path_factory: pytest.TempPathFactory,
                   monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test records runs in a ledger of its own, never in the user's data folder.

    A folder apart from tmp_path, so tests that list tmp_path do not see it; XDG_DATA_HOME
    too, for a test that clears MERITPAY_LEDGER to reach the default path. Subprocesses
    inherit both.
    """
    folder = tmp_path_factory.mktemp("ledger")
    monkeypatch.setenv("MERITPAY_LEDGER", str(folder / "ledger.sqlite3"))
    monkeypatch.setenv("XDG_DATA_HOME", str(folder / "xdg"))
    return folder / "ledger.sqlite3"
