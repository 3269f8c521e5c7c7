"""The meritpay benchmark (issue 9): one command, one table.

    .venv/bin/python -m benchmarks.run --sizes 10k,100k [--repeat 3] [--workers 1] [--json]

For each size it generates (or reuses from benchmarks/.data/) a seeded synthetic population
with examples/generate.py and measures, each figure the median of --repeat runs:

- validate: `meritpay validate policies/` in a cold process;
- evaluate in-process: `engine.run.run` with trace off over everyone, 2025-Q3, all shipped
  policies (records/s), and the share of it spent evaluating employees;
- per record, business-roles: meritpay's evaluation (each role compiled into one function,
  engine/fast.py) against the baselines on the same records (hand-written Decimal
  function, simpleeval, zen-engine graph and compiled expressions), each first checked to
  give the same amounts to the cent for every record;
- end to end (subprocesses, CSV in, CSV out): `meritpay run policies/`, with and without
  the ledger, and `meritpay run business-roles.yaml` against the hand-written script on the
  business-roles employees (whose result CSV must be byte-identical);
- `meritpay diff policies/2025-Q3 policies/2025-Q4`, and `explain` of one employee (from the
  policies and facts, and from the ledger when the command can);
- `--workers` scaling when `meritpay run --help` offers it.

Peak memory is each subprocess's own maximum resident set (os.wait4), see measure.py.
1M employees needs --allow-1m (generation alone takes about 25 min and 12 GB of disk) and
runs meritpay alone.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from . import inprocess
from .data import ROOT, Dataset, dataset
from .measure import (
    CommandFailed,
    Measured,
    Row,
    Sample,
    rate_text,
    repeat,
    run_command,
    target_text,
)

POLICIES = "policies"
BUSINESS_POLICY = "policies/2025-Q3/business-roles.yaml"
PERIOD = "2025-Q3"
EXPLAINED = "E0001"
MILLION = 1_000_000
STEPS = ("validate", "inprocess", "records", "run", "ledger", "business", "diff", "explain",
         "workers")


@dataclass
class Report:
    machine: dict[str, Any]
    command: str
    rows: list[Row] = field(default_factory=list)
    generated: dict[int, float] = field(default_factory=dict)


def parse_size(text: str) -> int:
    text = text.strip().lower().replace("_", "")
    factor = 1
    if text.endswith("k"):
        factor, text = 1000, text[:-1]
    elif text.endswith("m"):
        factor, text = MILLION, text[:-1]
    return int(float(text) * factor)


def size_label(size: int) -> str:
    if size % MILLION == 0:
        return f"{size // MILLION}M"
    return f"{size // 1000}k" if size % 1000 == 0 else str(size)


def machine() -> dict[str, Any]:
    model = ""
    with open("/proc/cpuinfo", encoding="utf-8") as handle:
        for line in handle:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    memory = 0
    with open("/proc/meminfo", encoding="utf-8") as handle:
        for line in handle:
            if line.startswith("MemTotal:"):
                memory = int(line.split()[1]) * 1024
    return {"revision": revision(), "nproc": len(os.sched_getaffinity(0)), "cpu": model,
            "memory_gib": round(memory / 2**30, 1), "python": platform.python_version(),
            "platform": platform.platform(terse=True),
            "load_average_at_start": round(os.getloadavg()[0], 2)}


def revision() -> str:
    """The commit measured, and whether the tree had uncommitted changes."""
    done = subprocess.run(["git", "-C", str(ROOT), "describe", "--always", "--dirty"],
                          capture_output=True, text=True, check=False)
    return done.stdout.strip() or os.environ.get("MERITPAY_BENCH_REVISION", "unknown")


def meritpay_argv() -> list[str]:
    script = Path(sys.executable).parent / "meritpay"
    return [str(script)] if script.exists() else [sys.executable, "-c",
                                                  "import cli; cli.main()"]


def help_of(*command: str) -> str:
    done = subprocess.run([*meritpay_argv(), *command, "--help"], cwd=ROOT,
                          capture_output=True, text=True, check=False)
    return done.stdout


class Bench:
    def __init__(self, args: argparse.Namespace, report: Report, work: Path) -> None:
        self.args = args
        self.report = report
        self.work = work
        self.repeat = 1  # set per size
        # subprocesses run the engine of this tree, and never touch the user's ledger
        path = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p)
        # the generated files are large on purpose (1M: 8 GiB of facts): the 1 GiB guard of a
        # data file is lifted, as a user with such files would
        self.env = dict(os.environ, PYTHONPATH=path,
                        MERITPAY_LEDGER=str(work / "default-ledger.sqlite3"),
                        MERITPAY_MAX_DATA_BYTES=str(64 * 2**30))
        self.limit = int(args.memory_limit_gb * 2**30) if args.memory_limit_gb else 0
        self.has_workers: bool | None = None

    def log(self, message: str) -> None:
        if not self.args.quiet:
            print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)

    def wanted(self, step: str) -> bool:
        return step not in self.args.skip

    def command(self, argv: Sequence[str], stdout: Path | None = None,
                before: Callable[[], None] | None = None) -> Measured:
        def once() -> Sample:
            if before is not None:
                before()
            return run_command(argv, cwd=ROOT, env=self.env, stdout=stdout,
                               memory_limit=self.limit)
        return Measured(repeat(self.repeat, once))

    def add(self, row: Row) -> Row:
        self.report.rows.append(row)
        if self.args.json_output is not None:  # as it goes: a later failure loses nothing
            self.args.json_output.write_text(render_json(self.report), encoding="utf-8")
        return row

    def workers_option(self) -> list[str]:
        """--workers N for run and diff, when asked for and the engine has it."""
        if self.args.workers == 1:
            return []
        if self.has_workers is None:
            self.has_workers = "--workers" in help_of("run")
        return ["--workers", str(self.args.workers)] if self.has_workers else []

    def measure_command(self, size: int, figure: str, argv: Sequence[str],
                        stdout: Path | None = None, target: str = "",
                        before: Callable[[], None] | None = None) -> Row | None:
        self.log(f"{size_label(size)}: {figure}")
        try:
            measured = self.command(argv, stdout, before)
        except CommandFailed as failure:
            self.add(Row(size, figure, note="failed: " + _last(failure)))
            return None
        return self.add(Row(size, figure, measured.wall, measured.cpu, measured.peak_mb,
                            target=target))

    # ----------------------------------------------------------------------------------------
    def size(self, size: int) -> None:
        data = dataset(size, self.args.seed, self.args.cache)
        self.report.generated[size] = data.generate_seconds
        self.add(Row(size, "generate the population (examples/generate.py, once; cached)",
                     data.generate_seconds, records=size,
                     note=f"facts.csv {data.facts_bytes / 2**20:,.0f} MiB"
                          + ("; reused from the cache" if data.cached else "")
                          + f"; figures below: median of {self.repeat} run(s)"))
        baselines = size < MILLION and not self.args.no_baselines
        if self.wanted("validate"):
            row = self.measure_command(size, "validate policies/ (cold process)",
                                       [*meritpay_argv(), "validate", POLICIES])
            if row is not None and row.wall is not None:
                row.target = target_text(row.wall < 0.5, "< 0.5 s")
        if self.wanted("inprocess") and size < MILLION:
            self.in_process(size, data, baselines)
        run_row = None
        out = self.work / f"run-{size}.csv"
        if self.wanted("run"):
            run_row = self.measure_command(
                size, "meritpay run policies/ (CSV in, CSV out, --no-ledger)",
                [*meritpay_argv(), "run", POLICIES, "--data", str(data.folder), "--period",
                 PERIOD, "--format", "csv", "-o", str(out), "--no-ledger",
                 *self.workers_option()])
            if run_row is not None and run_row.peak_mb is not None:
                run_row.target = target_text(run_row.peak_mb < 500, "peak < 500 MB")
                run_row.records = _rows(out)
                run_row.rate = rate_text(run_row.records, run_row.wall)
        ledger = self.work / f"ledger-{size}.sqlite3"
        if self.wanted("ledger"):
            row = self.measure_command(
                size, "meritpay run policies/ (CSV out, recorded in a fresh ledger)",
                [*meritpay_argv(), "run", POLICIES, "--data", str(data.folder), "--period",
                 PERIOD, "--format", "csv", "-o", str(out), "--ledger", str(ledger)],
                before=lambda: ledger.unlink(missing_ok=True))
            if row is not None and run_row is not None and run_row.wall and row.wall:
                row.ratios["run --no-ledger"] = row.wall / run_row.wall
        if self.wanted("business"):
            self.business(size, data, baselines)
        if self.wanted("diff"):
            row = self.measure_command(
                size, "meritpay diff policies/2025-Q3 policies/2025-Q4",
                [*meritpay_argv(), "diff", f"{POLICIES}/2025-Q3", f"{POLICIES}/2025-Q4",
                 "--data", str(data.folder), "--period", PERIOD, "-o",
                 str(self.work / f"diff-{size}.txt"), *self.workers_option()])
            if row is not None and row.wall is not None:
                met = [row.peak_mb is not None and row.peak_mb < 1024]
                if run_row is not None and run_row.wall:
                    row.ratios["one run"] = row.wall / run_row.wall
                    met.append(row.ratios["one run"] <= 2.5)
                row.target = target_text(all(met), "<= 2.5x one run, peak < 1 GB")
        if self.wanted("explain"):
            self.measure_command(
                size, f"meritpay explain {EXPLAINED} policies/ (evaluates everyone, traces one)",
                [*meritpay_argv(), "explain", EXPLAINED, POLICIES, "--data", str(data.folder),
                 "--period", PERIOD, "-o", str(self.work / f"explain-{size}.txt")])
            if self.wanted("ledger") and ledger.exists() and "--run" in help_of("explain"):
                self.measure_command(
                    size, f"meritpay explain {EXPLAINED} (the latest run in the ledger)",
                    [*meritpay_argv(), "explain", EXPLAINED, "--ledger", str(ledger), "-o",
                     str(self.work / f"explain-ledger-{size}.txt")])
        if self.wanted("workers"):
            self.workers(size, data, run_row)

    def in_process(self, size: int, data: Dataset, baselines: bool) -> None:
        """The in-process figures, measured in a child process of their own: its peak memory
        is then the in-process step's, and this process stays small for the commands."""
        self.log(f"{size_label(size)}: evaluate in-process (engine.run.run)"
                 + (" and per record" if self.wanted("records") else ""))
        out = self.work / f"inprocess-{size}.json"
        argv = [sys.executable, "-m", "benchmarks.inprocess", str(data.folder), "--size",
                str(size), "--period", PERIOD, "--repeat", str(self.repeat), "--out", str(out)]
        if not baselines:
            argv.append("--no-baselines")
        if not self.wanted("records"):
            argv.append("--no-records")
        try:
            sample = run_command(argv, cwd=ROOT, env=self.env, memory_limit=self.limit)
        except CommandFailed as failure:
            if inprocess.MISMATCH in str(failure):
                raise inprocess.BaselineMismatch(str(failure)) from None
            self.add(Row(size, "evaluate in-process", note="failed: " + _last(failure)))
            return
        rows = [Row(**row) for row in json.loads(out.read_text(encoding="utf-8"))]
        rows[0].peak_mb = sample.peak_mb
        rows[0].note += "; peak: the whole in-process step, baselines included"
        for row in rows:
            self.add(row)
        if self.args.profile is not None:
            profile = self.args.profile.with_name(f"{self.args.profile.name}-{size_label(size)}")
            self.log(f"{size_label(size)}: one more run() under cProfile -> {profile}")
            try:
                run_command([*argv, "--profile", str(profile)], cwd=ROOT, env=self.env,
                            memory_limit=self.limit)
            except CommandFailed as failure:
                self.log(f"the profile run failed: {_last(failure)}")

    def business(self, size: int, data: Dataset, baselines: bool) -> None:
        ours = self.work / f"business-{size}.meritpay.csv"
        row = self.measure_command(
            size, "meritpay run business-roles.yaml on its employees (CSV in, CSV out)",
            [*meritpay_argv(), "run", BUSINESS_POLICY, "--data", str(data.business),
             "--period", PERIOD, "--format", "csv", "-o", str(ours), "--no-ledger"])
        if row is None or not baselines:
            return
        row.records = _rows(ours)
        row.rate = rate_text(row.records, row.wall)
        theirs = self.work / f"business-{size}.handwritten.csv"
        script = self.measure_command(
            size, "hand-written script, business-roles (same CSV in, same CSV out)",
            [sys.executable, "-m", "benchmarks.handwritten", str(data.business), str(theirs)])
        if script is None:
            return
        same_bytes(ours, theirs)
        script.records = row.records
        script.rate = rate_text(script.records, script.wall)
        script.note = "output byte-identical to meritpay's"
        if row.wall and script.wall:
            row.ratios["hand-written script"] = row.wall / script.wall
            row.target = target_text(row.ratios["hand-written script"] <= 2, "<= 2x the script")

    def workers(self, size: int, data: Dataset, run_row: Row | None) -> None:
        if "--workers" not in help_of("run"):
            self.add(Row(size, "meritpay run --workers 1 / 2",
                         note="workers: not available (meritpay run has no --workers yet)"))
            return
        walls = {}
        for count in (1, 2):
            row = self.measure_command(
                size, f"meritpay run policies/ --workers {count}",
                [*meritpay_argv(), "run", POLICIES, "--data", str(data.folder), "--period",
                 PERIOD, "--format", "csv", "-o", str(self.work / f"workers-{count}.csv"),
                 "--no-ledger", "--workers", str(count)])
            if row is not None and row.wall:
                walls[count] = row
        if 1 in walls and 2 in walls and walls[2].wall:
            walls[2].ratios["--workers 1"] = walls[2].wall / (walls[1].wall or 1)
            same_bytes(self.work / "workers-1.csv", self.work / "workers-2.csv")
            walls[2].note = "output byte-identical to --workers 1"


def same_bytes(ours: Path, theirs: Path) -> None:
    a, b = ours.read_bytes(), theirs.read_bytes()
    if a == b:
        return
    for number, (left, right) in enumerate(zip(a.splitlines(), b.splitlines(), strict=False),
                                           start=1):
        if left != right:
            raise inprocess.BaselineMismatch(
                f"{theirs} differs from {ours} at line {number}:\n  {left!r}\n  {right!r}")
    raise inprocess.BaselineMismatch(f"{theirs} and {ours} differ in length")


def _last(failure: Exception) -> str:
    lines = str(failure).strip().splitlines()
    return (lines[0][:160] + " ... " + lines[-1][:200]) if len(lines) > 1 else lines[0][:300]


def _rows(path: Path) -> int:
    with path.open(encoding="utf-8") as handle:
        return max(0, sum(1 for _ in handle) - 1)


# --------------------------------------------------------------------------------------------
# Rendering

def _seconds(value: float | None) -> str:
    if value is None:
        return ""
    if value < 1:
        return f"{value:.2f} s"
    return f"{value:.1f} s" if value < 100 else f"{value:,.0f} s"


def _ratios(ratios: dict[str, float]) -> str:
    return "; ".join(f"{value:.2f}x {name}" for name, value in ratios.items())


def render_text(report: Report) -> str:
    m = report.machine
    lines = [
        f"meritpay benchmark: `{report.command}` at {m['revision']}",
        f"machine: {m['nproc']} CPUs ({m['cpu']}), {m['memory_gib']} GiB, Python "
        f"{m['python']}, {m['platform']}; load average {m['load_average_at_start']} at start, "
        f"{m.get('load_average_at_end', '?')} at end",
        "times are medians of the repeats; ratio = this time / the named time (above 1: "
        "slower); peak = the subprocess's maximum resident set",
        "",
        "| size | figure | wall | CPU | peak | records | rate | ratios | issue 9 target | note |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in report.rows:
        lines.append("| " + " | ".join([
            size_label(row.size), row.figure, _seconds(row.wall), _seconds(row.cpu),
            f"{row.peak_mb:,.0f} MB" if row.peak_mb is not None else "",
            f"{row.records:,}" if row.records else "", row.rate, _ratios(row.ratios),
            row.target, row.note]) + " |")
    return "\n".join(lines) + "\n"


def render_json(report: Report) -> str:
    return json.dumps({"machine": report.machine, "command": report.command,
                       "rows": [asdict(r) for r in report.rows]}, indent=2) + "\n"


# --------------------------------------------------------------------------------------------

def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m benchmarks.run", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sizes", default="10k,100k",
                   help="population sizes, e.g. 2k,10k,100k (1m needs --allow-1m)")
    p.add_argument("--repeat", default="3",
                   help="runs per figure, the median is shown; one number, or one per size "
                        "(--sizes 10k,100k --repeat 3,1)")
    p.add_argument("--workers", type=int, default=1,
                   help="pass --workers N to meritpay run and diff when the engine has it; "
                        "the scaling row always runs 1 and 2")
    p.add_argument("--seed", type=int, default=20250930)
    p.add_argument("--json", action="store_true", help="print JSON instead of the table")
    p.add_argument("--output", type=Path, help="also write what is printed here")
    p.add_argument("--json-output", type=Path, help="also write the JSON here")
    p.add_argument("--allow-1m", action="store_true",
                   help="allow 1M employees (about 25 min to generate; meritpay alone)")
    p.add_argument("--no-baselines", action="store_true", help="measure meritpay alone")
    p.add_argument("--skip", default="", help="steps to leave out: " + ",".join(STEPS))
    p.add_argument("--cache", type=Path, default=Path(__file__).resolve().parent / ".data",
                   help="where generated populations are kept (default benchmarks/.data)")
    p.add_argument("--memory-limit-gb", type=float, default=16,
                   help="address-space limit of each subprocess, so a runaway one fails "
                        "instead of exhausting the machine (0: none)")
    p.add_argument("--profile", type=Path, metavar="FILE",
                   help="also profile one more in-process run() per size with cProfile, in a "
                        "process of its own (not timed): FILE-10k gets the pstats data, "
                        "FILE-10k.txt the top 15 functions by cumulative and by own time")
    p.add_argument("--quiet", action="store_true", help="no progress on stderr")
    return p


def main(argv: Sequence[str] | None = None) -> Report:
    args = parser().parse_args(argv)
    sizes = [parse_size(s) for s in args.sizes.split(",") if s.strip()]
    if any(s >= MILLION for s in sizes) and not args.allow_1m:
        parser().error("1M employees needs --allow-1m (generation alone takes long)")
    if any(s < 200 for s in sizes):
        parser().error("the generator needs at least 200 employees")
    args.skip = {s.strip() for s in args.skip.split(",") if s.strip()}
    unknown = args.skip - set(STEPS)
    if unknown:
        parser().error(f"unknown steps {sorted(unknown)}: choose from {', '.join(STEPS)}")
    report = Report(machine(), "python -m benchmarks.run " + " ".join(
        argv if argv is not None else sys.argv[1:]))
    repeats = [int(r) for r in str(args.repeat).split(",")]
    if len(repeats) == 1:
        repeats *= len(sizes)
    if len(repeats) != len(sizes) or min(repeats) < 1:
        parser().error("--repeat takes one count, or one per size, each at least 1")
    with tempfile.TemporaryDirectory(prefix="meritpay-bench-") as work:
        bench = Bench(args, report, Path(work))
        try:
            for size, times in zip(sizes, repeats, strict=True):
                bench.repeat = times
                bench.size(size)
        except inprocess.BaselineMismatch:
            sys.stdout.write(render_text(report))  # what was measured before the stop
            raise
    report.machine["load_average_at_end"] = round(os.getloadavg()[0], 2)
    report.machine["harness_peak_mb"] = round(
        resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    text = render_json(report) if args.json else render_text(report)
    if args.output is not None:
        args.output.write_text(text, encoding="utf-8")
    if args.json_output is not None:
        args.json_output.write_text(render_json(report), encoding="utf-8")
    sys.stdout.write(text)
    return report


if __name__ == "__main__":
    try:
        main()
    except inprocess.BaselineMismatch as mismatch:
        print(f"benchmark stopped: {mismatch}", file=sys.stderr)
        sys.exit(1)
