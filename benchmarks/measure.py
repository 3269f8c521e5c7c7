"""Measuring: wall and CPU time, and the peak memory of one child process.

Every command is started by a small launcher process (`python -m benchmarks.measure`), which
times it and takes its resource usage from `os.wait4(pid)`: `ru_maxrss` of exactly that
child, in KiB on Linux. Two traps this avoids:

- differencing `getrusage(RUSAGE_CHILDREN).ru_maxrss` does not work: it is the maximum over
  every child ever waited for, so a small process run after a big one shows no change;
- a child's `ru_maxrss` also counts the memory it was forked from: at exec Linux keeps the
  high-water mark of the address space being replaced, which after fork (or vfork) is the
  parent's. Forked from the benchmark itself, which holds a whole evaluated population after
  the in-process step, every command would seem to need as much. Forked from the launcher,
  the floor is the launcher's own 10-15 MB, below any real command's peak.
"""

from __future__ import annotations

import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Sample:
    wall: float  # seconds
    cpu: float  # user + system seconds
    peak_mb: float | None = None  # a child process's maximum resident set, MiB


@dataclass(frozen=True)
class Measured:
    """The samples of one figure over the repeats; the median is what the table shows."""

    samples: tuple[Sample, ...]
    records: int = 0  # records evaluated per sample, for a rate
    notes: tuple[str, ...] = field(default=())

    @property
    def wall(self) -> float:
        return statistics.median(s.wall for s in self.samples)

    @property
    def cpu(self) -> float:
        return statistics.median(s.cpu for s in self.samples)

    @property
    def peak_mb(self) -> float | None:
        peaks = [s.peak_mb for s in self.samples if s.peak_mb is not None]
        return max(peaks) if peaks else None

    @property
    def per_second(self) -> float | None:
        return self.records / self.wall if self.records and self.wall > 0 else None

    @property
    def per_record_us(self) -> float | None:
        return self.wall / self.records * 1e6 if self.records else None


@dataclass
class Row:
    size: int
    figure: str
    wall: float | None = None  # median seconds; per record: microseconds in `rate`
    cpu: float | None = None
    peak_mb: float | None = None
    records: int = 0
    rate: str = ""
    ratios: dict[str, float] = field(default_factory=dict)  # meritpay time / baseline time
    target: str = ""
    note: str = ""


def rate_text(records: int, wall: float | None) -> str:
    return f"{records / wall:,.0f} records/s" if records and wall else ""


def target_text(met: bool, text: str) -> str:
    return f"{text}: {'met' if met else 'MISSED'}"


class CommandFailed(RuntimeError):
    pass


def run_command(argv: Sequence[str], *, cwd: Path, env: dict[str, str] | None = None,
                stdout: Path | None = None, memory_limit: int = 0) -> Sample:
    """Run argv to completion through the launcher: its wall time, CPU time and peak
    resident memory. With memory_limit (bytes) its address space is capped, so a runaway
    fails alone instead of exhausting the machine."""
    launcher = [sys.executable, "-m", "benchmarks.measure", "--memory-limit", str(memory_limit)]
    if stdout is not None:
        launcher += ["--stdout", str(stdout)]
    root = Path(__file__).resolve().parent.parent
    done = subprocess.run([*launcher, "--", *argv], cwd=cwd, capture_output=True, text=True,
                          check=False, env=dict(env or os.environ, PYTHONPATH=os.pathsep.join(
                              p for p in (str(root), (env or os.environ).get("PYTHONPATH", ""))
                              if p)))
    if done.returncode != 0 or not done.stdout.strip():
        raise CommandFailed(f"launcher failed ({done.returncode}): {done.stderr[-3000:]}")
    report = json.loads(done.stdout)
    if report["returncode"] != 0:
        raise CommandFailed(f"{' '.join(argv)} exited {report['returncode']}:\n"
                            f"{report['stderr']}")
    return Sample(report["wall"], report["cpu"], report["peak_kib"] / 1024)


def launch(argv: Sequence[str], stdout: Path | None, memory_limit: int) -> dict[str, Any]:
    """Run argv as a child of this (small) process; what run_command reports."""

    def limit() -> None:
        if memory_limit:
            resource.setrlimit(resource.RLIMIT_AS, (memory_limit, memory_limit))

    out = stdout.open("wb") if stdout is not None else open(os.devnull, "wb")  # noqa: SIM115
    with out, tempfile.TemporaryFile() as errors:
        started = time.perf_counter()
        process = subprocess.Popen(list(argv), stdout=out, stderr=errors,
                                   preexec_fn=limit if memory_limit else None)
        _, status, usage = os.wait4(process.pid, 0)
        wall = time.perf_counter() - started
        process.returncode = os.waitstatus_to_exitcode(status)
        errors.seek(0)
        tail = errors.read()[-3000:].decode(errors="replace")
    return {"returncode": process.returncode, "wall": wall,
            "cpu": usage.ru_utime + usage.ru_stime, "peak_kib": usage.ru_maxrss,
            "stderr": tail}


def main(args: Sequence[str]) -> None:
    """python -m benchmarks.measure [--memory-limit BYTES] [--stdout FILE] -- ARGV..."""
    split = list(args).index("--")
    options, argv = list(args[:split]), list(args[split + 1:])
    memory_limit, stdout = 0, None
    while options:
        option, value = options.pop(0), options.pop(0)
        if option == "--memory-limit":
            memory_limit = int(value)
        elif option == "--stdout":
            stdout = Path(value)
    print(json.dumps(launch(argv, stdout, memory_limit)))


def repeat(times: int, function: Callable[[], Sample]) -> tuple[Sample, ...]:
    return tuple(function() for _ in range(times))


if __name__ == "__main__":
    main(sys.argv[1:])
