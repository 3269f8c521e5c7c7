"""meritpay in-process: `engine.run.run` over a whole population, and the per-record comparison
of meritpay's evaluation (`engine.fast.evaluate`: each role compiled into one function) with
the baselines on the same business-roles records, and with `evaluate_employee` (the traced
evaluator that defines the semantics) run with its trace off.

The benchmark runs this as a child process of its own (so the peak memory of the step is
measured, and the benchmark itself stays small):

    python -m benchmarks.inprocess DATA_DIR --size N --period 2025-Q3 --repeat 3 --out F.json

It writes the rows of the table as JSON. When a baseline computes something else than
meritpay it prints MISMATCH and exits 1.
"""

from __future__ import annotations

import decimal
import gc
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .measure import Measured, Row, Sample, rate_text, target_text
from .records import Payout, Record, differences

BUSINESS = "business-roles"
MISMATCH = "BASELINE MISMATCH"
OURS = "meritpay (compiled per role)"
DEFINITION = "meritpay evaluate_employee (the traced path, trace off)"
HAND = "hand-written Python (Decimal)"
ZEN = ("zen expressions", "zen decision graph")
Contender = tuple[str, Callable[[Any], Any], Sequence[Any]]


@dataclass(frozen=True)
class Captured:
    """One business-roles evaluation from inside a run: meritpay's input and result."""

    policy: Any  # engine.model.CompiledPolicy
    item: Any  # engine.evaluate.EmployeeInput
    result: Any  # engine.evaluate.EmployeeResult (before the population stage)


@dataclass(frozen=True)
class RunSample:
    sample: Sample
    records: int  # employee segments in the result
    evaluating: float  # seconds spent evaluating employees (engine.run.evaluate_employee)


def inputs_for(folder: Path) -> Any:
    from engine.run import RunInputs

    def given(name: str) -> Path | None:
        path = folder / name
        return path if path.exists() else None

    return RunInputs(facts=folder / "facts.csv", ratings=given("ratings.csv"),
                     teams=given("teams.csv"), team_facts=given("team_facts.csv"),
                     company_facts=given("company_facts.csv"), lines=given("lines.csv"))


@contextmanager
def _watching(capture: list[Captured] | None) -> Iterator[list[float]]:
    """Time every evaluate_employee call made by engine.run (and keep the business-roles
    ones when capture is given). The wrapper costs two clock reads per employee."""
    import engine.run as engine_run

    original = engine_run.evaluate_employee  # type: ignore[attr-defined]
    spent = [0.0]

    def evaluate(policy: Any, item: Any, *, trace: bool = True) -> Any:
        started = time.perf_counter()
        result = original(policy, item, trace=trace)
        spent[0] += time.perf_counter() - started
        if capture is not None and policy.policy == BUSINESS:
            capture.append(Captured(policy, item, result))
        return result

    engine_run.evaluate_employee = evaluate  # type: ignore[attr-defined]
    try:
        yield spent
    finally:
        engine_run.evaluate_employee = original  # type: ignore[attr-defined]


def run_once(policies: Sequence[Any], folder: Path, period: str,
             capture: list[Captured] | None = None) -> RunSample:
    """One `run(policies, inputs, period, trace=False)`, timed."""
    from engine.run import run

    inputs = inputs_for(folder)
    gc.collect()
    with _watching(capture) as spent:
        started, cpu = time.perf_counter(), time.process_time()
        result = run(policies, inputs, period, trace=False)
        sample = Sample(time.perf_counter() - started, time.process_time() - cpu)
    records = len(result.results)
    del result
    return RunSample(sample, records, spent[0])


def profile_once(policies: Sequence[Any], folder: Path, period: str, out: Path,
                 top: int = 15) -> None:
    """One more run() under cProfile: the stats to `out`, the top functions by cumulative and
    by own time to `out`.txt."""
    import cProfile
    import io
    import pstats

    from engine.run import run

    inputs = inputs_for(folder)
    gc.collect()
    profiler = cProfile.Profile()
    profiler.enable()
    run(policies, inputs, period, trace=False)
    profiler.disable()
    profiler.dump_stats(out)
    text = io.StringIO()
    stats = pstats.Stats(profiler, stream=text)
    for order in ("cumulative", "tottime"):
        stats.sort_stats(order).print_stats(top)
    out.with_name(out.name + ".txt").write_text(text.getvalue(), encoding="utf-8")


def to_record(item: Any) -> Record:
    from engine.expr import MISSING

    def present(facts: Any) -> dict[str, Any]:
        return {k: v for k, v in facts.items() if v is not MISSING}

    return Record(item.employee, item.name, item.role, tuple(item.months), present(item.facts),
                  tuple(present(m) for m in item.month_facts),
                  tuple(None if y is None else present(y) for y in item.year_facts),
                  {g: tuple(s) for g, s in item.ratings.items()}, item.proration)


def payout_of(result: Any) -> Payout:
    return Payout(result.total_score, result.tier,
                  {r.name: r.amount for r in result.rewards if r.amount is not None},
                  tuple(r.name for r in result.rewards if r.granted))


class BaselineMismatch(RuntimeError):
    """A baseline computed something else than meritpay: its figures would mean nothing."""


def check(name: str, evaluate: Callable[[Record], Payout], records: Sequence[Record],
          expected: Sequence[Payout], *, score_exact: bool) -> int:
    """Evaluate every record with the baseline and compare with meritpay: every reward amount
    to the cent, the tier, the outcomes and the total score. Raises BaselineMismatch."""
    problems = []
    with decimal.localcontext(decimal.Context(prec=28, rounding=decimal.ROUND_HALF_EVEN)):
        for record, want in zip(records, expected, strict=True):
            found = differences(want, evaluate(record), score_exact=score_exact)
            if found:
                problems.append(f"{record.employee} ({record.role}): " + "; ".join(found))
    if problems:
        raise BaselineMismatch(f"{name} differs from meritpay for {len(problems)} of "
                               f"{len(records)} records:\n  " + "\n  ".join(problems[:10]))
    return len(records)


def time_loop(evaluate: Callable[[Any], Any], items: Sequence[Any]) -> Sample:
    gc.collect()
    with decimal.localcontext(decimal.Context(prec=28, rounding=decimal.ROUND_HALF_EVEN)):
        started, cpu = time.perf_counter(), time.process_time()
        for item in items:
            evaluate(item)
        return Sample(time.perf_counter() - started, time.process_time() - cpu)


def policies() -> list[Any]:
    from engine.run import load_policies

    return load_policies([Path(__file__).resolve().parent.parent / "policies"])


def measure(folder: Path, size: int, period: str, repeat: int, *, baselines: bool = True,
            records: bool = True) -> list[Row]:
    """The in-process rows: run() over everyone (median of `repeat`), then per record."""
    shipped = policies()
    captured: list[Captured] = []
    samples = [run_once(shipped, folder, period, captured if i == 0 else None)
               for i in range(repeat)]
    measured = Measured(tuple(s.sample for s in samples), samples[0].records)
    evaluating = sorted(s.evaluating for s in samples)[len(samples) // 2]
    rows = [Row(size, f"evaluate in-process: run() of {period}, trace off, all policies "
                      "(read, roll up, evaluate, population)", measured.wall, measured.cpu,
                records=measured.records, rate=rate_text(measured.records, measured.wall),
                note=f"{evaluating:.1f} s of it evaluating employees")]
    if records:
        rows += per_record(size, captured, repeat, baselines)
    return rows


def per_record(size: int, captured: list[Captured], repeat: int, baselines: bool
               ) -> list[Row]:
    from engine.evaluate import evaluate_employee
    from engine.fast import evaluate as compiled_evaluate

    items = [(c.policy, c.item) for c in captured]
    expected = [payout_of(c.result) for c in captured]
    records = [to_record(c.item) for c in captured]
    captured.clear()
    contenders: list[Contender] = [
        (OURS, lambda pi: compiled_evaluate(pi[0], pi[1]), items),
        (DEFINITION, lambda pi: evaluate_employee(pi[0], pi[1], trace=False), items)]
    unavailable: dict[str, str] = {}
    if baselines:
        contenders += baseline_contenders(records, expected, unavailable)
    samples: dict[str, list[Sample]] = {name: [] for name, _, _ in contenders}
    for _ in range(repeat):  # interleaved, so a change in load hits every one alike
        for name, evaluate, inputs in contenders:
            samples[name].append(time_loop(evaluate, inputs))
    timed = {name: Measured(tuple(s), len(records)) for name, s in samples.items()}
    ours = timed[OURS]
    rows = []
    for name, measured in timed.items():
        row = Row(size, f"per record, business-roles: {name}", measured.wall, measured.cpu,
                  records=measured.records, rate=f"{measured.per_record_us or 0:,.1f} us/record")
        if name == OURS:
            row.ratios = {other: ours.wall / m.wall for other, m in timed.items()
                          if other != name}
            checks, texts = [], []
            if HAND in timed:
                checks.append(row.ratios[HAND] <= 1.5)
                texts.append("<= 1.5x hand-written")
            zen = [row.ratios[n] for n in ZEN if n in timed]
            if zen:  # against zen's fastest path: the one meritpay's ratio is largest to
                checks.append(max(zen) <= 1 / 1.5)
                texts.append(">= 1.5x faster than zen's fastest")
            if checks:
                row.target = target_text(all(checks), ", ".join(texts))
        else:
            row.ratios = {"meritpay": measured.wall / ours.wall}
        rows.append(row)
    rows += [Row(size, f"per record, business-roles: {name}", note=f"not measured: {why}")
             for name, why in unavailable.items()]
    return rows


def baseline_contenders(records: list[Record], expected: list[Payout],
                        unavailable: dict[str, str]) -> list[Contender]:
    """The baselines, each checked against meritpay on every record first."""
    from . import handwritten
    from .interpreted import Interpreted, SimpleevalBackend, ZenBackend

    check(HAND, handwritten.evaluate, records, expected, score_exact=True)
    found: list[Contender] = [(HAND, handwritten.evaluate, records)]
    try:
        naive = Interpreted(SimpleevalBackend())
    except ImportError as error:
        unavailable["simpleeval, parsed once"] = f"simpleeval is not installed ({error})"
    else:
        check("simpleeval", naive.evaluate, records, expected, score_exact=True)
        found.append(("simpleeval, parsed once", naive.evaluate, records))
    try:
        import zen  # noqa: F401
    except ImportError:
        for name in ZEN:
            unavailable[name] = "zen-engine is not installed: pip install -e '.[bench]'"
        return found
    from .zen_graph import ZenGraph

    # zen computes in its own decimal type and hands floats back: scores agree to the
    # 4 places meritpay writes, amounts to the cent
    expressions = Interpreted(ZenBackend())
    check(ZEN[0], expressions.evaluate, records, expected, score_exact=False)
    found.append((ZEN[0], expressions.evaluate, records))
    graph = ZenGraph()
    check(ZEN[1], graph.evaluate, records, expected, score_exact=False)
    found.append((ZEN[1], graph.evaluate, records))
    return found


def main(argv: Sequence[str]) -> None:
    import argparse
    import json
    import sys
    from dataclasses import asdict

    parser = argparse.ArgumentParser(prog="python -m benchmarks.inprocess")
    parser.add_argument("folder", type=Path)
    parser.add_argument("--size", type=int, required=True)
    parser.add_argument("--period", default="2025-Q3")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--no-baselines", action="store_true")
    parser.add_argument("--no-records", action="store_true")
    parser.add_argument("--profile", type=Path,
                        help="instead: one run() under cProfile, stats to this file")
    args = parser.parse_args(argv)
    if args.profile is not None:
        profile_once(policies(), args.folder, args.period, args.profile)
        return
    try:
        rows = measure(args.folder, args.size, args.period, args.repeat,
                       baselines=not args.no_baselines, records=not args.no_records)
    except BaselineMismatch as mismatch:
        print(f"{MISMATCH}: {mismatch}", file=sys.stderr)
        sys.exit(1)
    args.out.write_text(json.dumps([asdict(r) for r in rows], indent=1), encoding="utf-8")


if __name__ == "__main__":
    import sys

    main(sys.argv[1:])
