"""Policy files at a git revision (`main:policies/sales.yaml`), copied into a scratch folder so
that they load like any file; and the policy files changed since a base revision.

Git is run as a subprocess with fixed arguments; a revision or path that does not exist is
bad input (exit 2).
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from .diagnostics import EnvironmentFailure, InputError


def _git(*args: str, cwd: Path) -> str:
    try:
        completed = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True,
                                   check=False, timeout=60)
    except FileNotFoundError:
        raise EnvironmentFailure("git is not installed; it is needed to read a revision") \
            from None
    except subprocess.TimeoutExpired:
        raise EnvironmentFailure(f"git {' '.join(args)} did not answer in 60 s") from None
    if completed.returncode != 0:
        reason = completed.stderr.strip().splitlines()[-1] if completed.stderr.strip() else ""
        raise InputError(f"git {' '.join(args)}: {reason or 'failed'}")
    return completed.stdout


def is_revision_spec(spec: str) -> bool:
    """'REV:PATH' that is not an existing file name (and not a Windows drive)."""
    return ":" in spec and not Path(spec).exists() and len(spec.split(":", 1)[0]) > 1


def checkout(spec: str, scratch: Path, cwd: Path, *, from_top: bool = False) -> Path:
    """Copy the file or folder REV:PATH into scratch; return the copy's path. PATH is relative
    to cwd, or to the repository root with from_top."""
    revision, _, path = spec.partition(":")
    path = path.strip("/") or "."
    top = Path(_git("rev-parse", "--show-toplevel", cwd=cwd).strip())
    prefix = "" if from_top else _git("rev-parse", "--show-prefix", cwd=cwd).strip()
    full = str(Path(prefix) / path) if prefix else path
    try:
        kind = _git("cat-file", "-t", f"{revision}:{full}", cwd=top).strip()
    except InputError:
        raise InputError(f"'{spec}': there is no '{path}' at revision '{revision}' (check both "
                         "with git log and git ls-tree)") from None
    target = scratch / revision.replace("/", "_") / full
    if kind == "blob":
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(_blob(revision, full, top))
        return target
    names = _git("ls-tree", "-r", "--name-only", revision, "--", full, cwd=top).splitlines()
    for name in names:
        if name.endswith((".yaml", ".yml")):
            destination = scratch / revision.replace("/", "_") / name
            destination.parent.mkdir(parents=True, exist_ok=True)
            destination.write_bytes(_blob(revision, name, top))
    return target


def _blob(revision: str, path: str, top: Path) -> bytes:
    completed = subprocess.run(["git", "show", f"{revision}:{path}"], cwd=top,
                               capture_output=True, check=False, timeout=60)
    if completed.returncode != 0:
        raise InputError(f"cannot read {revision}:{path}")
    return completed.stdout


def changed_policies(base: str, cwd: Path) -> list[tuple[str | None, Path | None]]:
    """Policy files changed since `base`: (path at base or None if added, current path or
    None if deleted), paths relative to the repository root."""
    top = Path(_git("rev-parse", "--show-toplevel", cwd=cwd).strip())
    _git("rev-parse", "--verify", f"{base}^{{commit}}", cwd=top)
    lines = _git("diff", "--name-status", "--no-renames", base, "--", "*.yaml", "*.yml",
                 cwd=top).splitlines()
    found: list[tuple[str | None, Path | None]] = []
    for line in lines:
        status, _, name = line.partition("\t")
        if name.endswith((".test.yaml", ".test.yml")):
            continue
        old = None if status.startswith("A") else name
        new = None if status.startswith("D") else top / name
        found.append((old, new))
    return found
