"""The meritpay command line: parse flags, call one library function, render, map exit codes.

Exit codes, for every command: 0 ok; 1 findings (an invalid policy); 2 bad input or usage;
3 environment failure.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import wraps
from pathlib import Path
from typing import Any, TypeVar

import click

from engine import CODES, InputError, MeritpayError, __version__, validate_paths
from engine.diagnostics import Severity, printable, render_json

F = TypeVar("F", bound=Callable[..., Any])

EXIT_OK, EXIT_FINDINGS, EXIT_INPUT, EXIT_ENVIRONMENT = 0, 1, 2, 3


RUN_FORMATS = ("text", "csv", "json", "jsonl")
DIFF_FORMATS = ("text", "markdown", "json", "csv", "html")
EXPLAIN_FORMATS = ("text", "markdown", "json", "html")
_SUFFIX_FORMATS = {".txt": "text", ".csv": "csv", ".json": "json", ".jsonl": "jsonl",
                   ".md": "markdown", ".html": "html", ".htm": "html"}


def format_for(given: str | None, output: Path | None, formats: tuple[str, ...]) -> str:
    """--format when given; else what the -o file's extension names, when the command can
    write it; else text (so -o results.csv writes CSV, not a table)."""
    if given is not None:
        return given
    found = _SUFFIX_FORMATS.get(output.suffix.lower()) if output is not None else None
    return found if found in formats else "text"


def handle_errors(function: F) -> F:
    """Map meritpay's own errors to their exit codes; anything else is exit 3 unless --debug."""

    @wraps(function)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        debug = click.get_current_context().find_root().params.get("debug", False)
        try:
            return function(*args, **kwargs)
        except MeritpayError as error:
            if error.diagnostics:
                for diagnostic in error.diagnostics:
                    click.echo(diagnostic.render(), err=True)
            else:
                click.echo(f"meritpay: {printable(error.message)}", err=True)
            sys.exit(error.exit_code)
        except (click.ClickException, click.exceptions.Exit, click.Abort):
            raise  # usage errors: click prints them and exits 2
        except OSError as error:
            if debug:
                raise
            where = f": {error.filename}" if error.filename else ""
            click.echo(printable(f"meritpay: {error.strerror or error}{where}"), err=True)
            sys.exit(EXIT_ENVIRONMENT)
        except MemoryError:
            if debug:
                raise
            click.echo("meritpay: out of memory (an input far larger than expected?)", err=True)
            sys.exit(EXIT_ENVIRONMENT)
        except Exception as error:  # a bug of ours: one line, never a traceback
            if debug:
                raise
            click.echo(printable(f"meritpay: internal error: {type(error).__name__}: {error}")
                       + "\n    hint: run again with --debug for the traceback, and report it",
                       err=True)
            sys.exit(EXIT_ENVIRONMENT)

    return wrapper  # type: ignore[return-value]


class _Main(click.Group):
    """The command group; keeps the arguments as given, which the ledger records."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        ctx.meta["meritpay.argv"] = ["meritpay", *args]
        return super().parse_args(ctx, args)


@click.group(cls=_Main,
             context_settings={"help_option_names": ["-h", "--help"], "terminal_width": 100,
                               "max_content_width": 100})
@click.version_option(__version__, prog_name="meritpay")
@click.option("--debug", is_flag=True, help="Show Python tracebacks (for developers).")
def main(debug: bool) -> None:
    """Policy-as-code for performance appraisal and incentive pay."""


@main.command()
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path))
@click.option("--format", "output_format", type=click.Choice(["text", "json"]), default="text",
              show_default=True, help="text: file:line:col: CODE: message; json: a list.")
@click.option("--strict", is_flag=True, help="Treat warnings as errors (exit 1).")
@handle_errors
def validate(paths: tuple[Path, ...], output_format: str, strict: bool) -> None:
    """Check policy files and directories: schema, expressions, weights, tiers, guardrails.

    PATHS are policy files or directories searched for *.yaml (default: policies).
    Exit 0 when valid (warnings allowed), 1 when problems were found, 2 when a file
    cannot be read.
    """
    targets = list(paths) or [Path("policies")]
    for target in targets:
        if not target.exists():
            raise click.BadParameter(f"'{target}' does not exist", param_hint="PATHS")
    report = validate_paths(targets)
    if output_format == "json":
        click.echo(json.dumps({
            "files": report.files,
            "errors": report.errors,
            "warnings": report.warnings,
            "diagnostics": json.loads(render_json(report.diagnostics)),
        }, ensure_ascii=False, indent=2))
    else:
        for diagnostic in report.diagnostics:
            click.echo(diagnostic.render())
        noun = "file" if len(report.files) == 1 else "files"
        click.echo(f"{len(report.files)} {noun} checked: {report.errors} error(s), "
                   f"{report.warnings} warning(s)", err=True)
    failing = report.errors or (strict and report.warnings)
    sys.exit(EXIT_FINDINGS if failing else EXIT_OK)


@contextmanager
def progress_bar(what: str) -> Iterator[Callable[[int, int], None] | None]:
    """A progress bar on stderr when it is a terminal, shown once a run takes over 2 s."""
    if not sys.stderr.isatty():
        yield None
        return
    from rich.progress import Progress

    started = time.monotonic()
    with Progress(transient=True, console=None, disable=False) as bar:
        task = bar.add_task(what, total=None, visible=False)

        def update(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total or None,  # 0: not known yet
                       visible=time.monotonic() - started > 2)

        yield update


def workers_option(function: F) -> F:
    """--workers N: evaluate employees in N processes (same output, byte for byte)."""
    return click.option(
        "--workers", type=click.IntRange(min=1), default=1, show_default=True,
        help="Processes that evaluate employees in parallel; the output is the same.")(function)


def input_options(function: F) -> F:
    """The data files every evaluating command reads."""
    options = [
        click.option("--data", "data_dir", type=click.Path(path_type=Path, file_okay=False),
                     help="A folder holding facts.csv and any of ratings.csv, teams.csv, "
                          "team_facts.csv, company_facts.csv, lines.csv (the options below "
                          "override single files)."),
        click.option("--facts", "facts_path", type=click.Path(path_type=Path),
                     help="Monthly fact records: .csv, .json, .jsonl or .xlsx."),
        click.option("--period", help="The period to evaluate: 2025-Q3, 2025-07, 2025, or a "
                                      "date in it."),
        click.option("--to-date", help="Evaluate the months of a period so far, up to this "
                                       "month (YYYY-MM): progress against target."),
        click.option("--ratings", "ratings_path", type=click.Path(path_type=Path),
                     help="360 ratings, one per row: employee, period, group, rater, score."),
        click.option("--teams", "teams_path", type=click.Path(path_type=Path),
                     help="Team memberships: team, member, share [, role_in_team, period]."),
        click.option("--team-facts", "team_facts_path", type=click.Path(path_type=Path),
                     help="Monthly facts of teams: team, period, then facts of scope team."),
        click.option("--company-facts", "company_facts_path", type=click.Path(path_type=Path),
                     help="Monthly company facts: period, then facts of scope company."),
        click.option("--lines", "lines_path", type=click.Path(path_type=Path),
                     help="Transaction lines (credit notes negative) for facts with "
                          "source: lines."),
        click.option("--encoding", help="Encoding of CSV inputs, e.g. gb18030 (default UTF-8)."),
    ]
    for option in reversed(options):
        function = option(function)
    return function


def ledger_option(function: F) -> F:
    """--ledger PATH, for every command that records or reads runs."""
    return click.option(
        "--ledger", "ledger_path", type=click.Path(path_type=Path),
        help="The run ledger (default: $MERITPAY_LEDGER, else "
             "$XDG_DATA_HOME/meritpay/ledger.sqlite3, else "
             "~/.local/share/meritpay/ledger.sqlite3).")(function)


def ledger_file(path: Path | None) -> Path:
    """The ledger --ledger names, or the default one."""
    from engine.ledger import default_path

    return path if path is not None else default_path()


def run_inputs(params: dict[str, Any]) -> Any:
    """RunInputs from the input options, after checking every given file exists."""
    from engine.run import RunInputs

    paths = {key: params.pop(key) for key in (
        "facts_path", "ratings_path", "teams_path", "team_facts_path", "company_facts_path",
        "lines_path")}
    data: Path | None = params.pop("data_dir")
    if data is not None:
        if not data.is_dir():
            raise click.BadParameter(f"'{data}' is not a folder", param_hint="--data")
        for key in paths:
            candidate = data / (key.removesuffix("_path") + ".csv")
            if paths[key] is None and candidate.exists():
                paths[key] = candidate
    if paths["facts_path"] is None:
        raise click.UsageError("give the facts: --facts FILE, or --data FOLDER with facts.csv")
    for key, path in paths.items():
        if path is not None and not path.exists():
            option = "--" + key.removesuffix("_path").replace("_", "-")
            raise click.BadParameter(f"'{path}' does not exist", param_hint=option)
    return RunInputs(facts=paths["facts_path"], ratings=paths["ratings_path"],
                     teams=paths["teams_path"], team_facts=paths["team_facts_path"],
                     company_facts=paths["company_facts_path"], lines=paths["lines_path"],
                     encoding=params.pop("encoding"))


@main.command(name="run")
@click.argument("policy", type=click.Path(path_type=Path))
@input_options
@click.option("-o", "--output", type=click.Path(path_type=Path),
              help="Write here (atomically, only when the whole run succeeds); default stdout.")
@click.option("--format", "output_format", type=click.Choice(["text", "csv", "json", "jsonl"]),
              help="text is a table for people. Default: the -o file's extension (.csv, "
                   ".json, .jsonl), else text.")
@click.option("--keep-going", is_flag=True,
              help="Evaluate everyone possible; list the others as errors in the output.")
@workers_option
@ledger_option
@click.option("--no-ledger", is_flag=True,
              help="Do not record this run in the ledger (a throwaway run).")
@handle_errors
def run_command(policy: Path, period: str | None, to_date: str | None, output: Path | None,
                output_format: str | None, keep_going: bool, workers: int, **params: Any
                ) -> None:
    """Evaluate POLICY (a file or a directory of policies) against monthly facts.

    Each employee is evaluated under the policy for their role whose effective range covers
    the period. Exit 0 ok; 1 when a policy is invalid; 2 for bad input: unreadable or
    malformed files, an employee no policy covers, a fact missing with no fallback (unless
    --keep-going).
    """
    from engine.report import render_chunks, write_atomically
    from engine.run import load_policies, run

    inputs = run_inputs(params)
    if (period is None) == (to_date is None):
        raise click.UsageError("give one of --period (e.g. 2025-Q3) or --to-date (e.g. 2025-08)")
    if not policy.exists():
        raise click.BadParameter(f"'{policy}' does not exist", param_hint="POLICY")
    ledger_path = _run_ledger(params)  # ledger: None with --no-ledger
    policies = load_policies([policy])
    files = _ledger_snapshot(ledger_path, inputs)  # ledger: the input bytes, before the run
    with progress_bar("evaluating") as progress:
        result = run(policies, inputs, period or "", keep_going=keep_going, progress=progress,
                     to_date=to_date, workers=workers)
    for warning in result.warnings:
        click.echo(warning.render(), err=True)
    recorded = None if ledger_path is None else _record_run(  # ledger: before any output
        ledger_path, result, files, period or "", to_date, keep_going, inputs)
    chunks = render_chunks(result, format_for(output_format, output, RUN_FORMATS))
    if output is None:
        click.echo("".join(chunks), nl=False)
    else:
        write_atomically(output, chunks)  # written as rendered
        click.echo(f"wrote {len(result.results)} result(s) to {output}", err=True)
    if recorded is not None:  # ledger
        click.echo(f"recorded run {recorded.run_id} in {recorded.path}", err=True)
    if result.errors:
        click.echo(f"{len(result.errors)} employee segment(s) could not be evaluated", err=True)


@main.command(name="diff")
@click.argument("old", required=False)
@click.argument("new", required=False)
@click.option("--base", help="Compare every policy changed since this git revision (e.g. main) "
                             "with its current version, instead of OLD and NEW.")
@input_options
@click.option("--by", "by_columns", default="",
              help="Break the impact down by columns of the facts, e.g. grade,location,gender.")
@click.option("--format", "output_format",
              type=click.Choice(["text", "markdown", "json", "csv", "html"]),
              help="markdown fits a pull-request comment; csv is the per-employee table; html "
                   "is one self-contained file. Default: the -o file's extension (.md, .json, "
                   ".csv, .html), else text.")
@click.option("-o", "--output", type=click.Path(path_type=Path),
              help="Write here (atomically); default stdout.")
@click.option("--show-names", is_flag=True,
              help="Show employee ids and names in markdown and html (default: pseudonyms).")
@click.option("--max-cost-increase", help="Exit 1 when total cost rises more than this, e.g. 5%.")
@click.option("--max-losers", type=click.IntRange(min=0),
              help="Exit 1 when more than this many people lose pay.")
@click.option("--fail-on-change", is_flag=True, help="Exit 1 when anything changed.")
@click.option("--force", is_flag=True,
              help="Compare policies with different ids or roles anyway.")
@workers_option
@handle_errors
def diff_command(old: str | None, new: str | None, base: str | None, period: str | None,
                 to_date: str | None, by_columns: str, output_format: str | None,
                 output: Path | None, show_names: bool, max_cost_increase: str | None,
                 max_losers: int | None, fail_on_change: bool, force: bool, workers: int,
                 **params: Any) -> None:
    """Dry-run a policy change: evaluate OLD and NEW on the same facts and period.

    OLD and NEW are policy files or folders, or REV:PATH at a git revision
    (main:policies/2025-Q3). Both are evaluated whatever their effective ranges. Shows what
    changed in the policy, the cost before and after, who gains and loses and why. Exit 0;
    1 when a --max-* limit or --fail-on-change is exceeded (or a policy is invalid); 2 when
    nothing can be compared.
    """
    import tempfile
    from decimal import Decimal

    from engine.diff import check_limits, diff
    from engine.diffreport import render
    from engine.report import write_atomically
    from engine.revisions import changed_policies, checkout, is_revision_spec
    from engine.run import load_policies
    from engine.tables import read_columns
    from engine.validate import to_decimal

    if to_date is not None or period is None:
        raise click.UsageError("diff needs --period (e.g. 2025-Q3); --to-date is for run")
    if (base is None) == (old is None or new is None):
        raise click.UsageError("give OLD and NEW, or --base REVISION")
    limit: Decimal | None = None
    if max_cost_increase is not None:
        text = max_cost_increase if max_cost_increase.endswith("%") else max_cost_increase + "%"
        limit = to_decimal(text)
        if limit is None:
            raise click.BadParameter(f"'{max_cost_increase}' is not a percentage such as 5%",
                                     param_hint="--max-cost-increase")
    by = tuple(c.strip() for c in by_columns.split(",") if c.strip())
    inputs = run_inputs(params)
    cwd = Path.cwd()
    with tempfile.TemporaryDirectory(prefix="meritpay-diff-") as scratch:
        def side(spec: str, name: str) -> list[Any]:
            if is_revision_spec(spec):
                return load_policies([checkout(spec, Path(scratch) / name, cwd)])
            if not Path(spec).exists():
                raise click.BadParameter(f"'{spec}' is neither a file nor REV:PATH",
                                         param_hint=name.upper())
            return load_policies([Path(spec)])

        if base is not None:
            pairs = changed_policies(base, cwd)
            if not pairs:
                click.echo(f"no policy changed since {base}", err=True)
                return
            old_paths = [checkout(f"{base}:{o}", Path(scratch) / "old", cwd, from_top=True)
                         for o, _ in pairs if o is not None]
            new_paths = [n for _, n in pairs if n is not None]
            before = load_policies(old_paths) if old_paths else []
            after = load_policies(new_paths) if new_paths else []
            old_label, new_label = base, "working tree"
        else:
            assert old is not None and new is not None
            before, after = side(old, "old"), side(new, "new")
            old_label, new_label = old, new
        if by:
            from dataclasses import replace as with_fields

            inputs = with_fields(inputs, expected_columns=by)
        groups = read_columns(inputs.facts, by, _period_months(period, before + after),
                              encoding=inputs.encoding) if by else {}
        with progress_bar("comparing"):
            report = diff(before, after, inputs, period, force=force, by=by, groups=groups,
                          old_label=old_label, new_label=new_label, workers=workers)
    breaches = check_limits(report, max_cost_increase=limit, max_losers=max_losers,
                            fail_on_change=fail_on_change)
    from dataclasses import replace

    report = replace(report, breaches=tuple(breaches))
    text = render(report, format_for(output_format, output, DIFF_FORMATS),
                  show_names=show_names)
    if output is None:
        click.echo(text, nl=False)
    else:
        write_atomically(output, text)
        click.echo(f"wrote the comparison of {len(report.employees)} employee(s) to {output}",
                   err=True)
    for breach in breaches:
        click.echo(f"limit exceeded: {breach.limit}: {breach.message}", err=True)
    sys.exit(EXIT_FINDINGS if breaches else EXIT_OK)


def _period_months(period: str, policies: list[Any]) -> set[str]:
    from engine.run import parse_period

    kinds = {p.period for p in policies}
    return set(parse_period(period, next(iter(kinds)) if len(kinds) == 1 else None).months)


@main.command(name="test")
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path))
@click.option("--format", "output_format", type=click.Choice(["text", "json"]), default="text",
              show_default=True, help="text: PASS/FAIL per case; json: the structure in README.")
@click.option("--junit", type=click.Path(path_type=Path),
              help="Also write JUnit XML here (atomically), for CI systems.")
@click.option("--coverage", "show_coverage", is_flag=True,
              help="Print each policy's coverage and the items no case reached.")
@click.option("--min-coverage", help="Exit 1 when a policy's coverage is below this, e.g. 90%.")
@handle_errors
def test_command(paths: tuple[Path, ...], output_format: str, junit: Path | None,
                 show_coverage: bool, min_coverage: str | None) -> None:
    """Run the cases of policy test files (*.test.yaml) and measure policy coverage.

    PATHS are test files or directories searched for *.test.yaml (default: policies). A
    failing case shows expected and actual at the exact path and the trace that explains the
    actual value. Exit 0 when every case passes; 1 when a case fails, a policy is invalid or
    a policy's coverage is below --min-coverage; 2 for a malformed test file, a missing
    policy or an expectation naming an output the policy does not have.
    """
    from engine.casereport import coverage_lines, render_json, render_junit, render_text
    from engine.cases import run_suite
    from engine.coverage import parse_minimum, shortfalls
    from engine.report import write_atomically

    targets = list(paths) or [Path("policies")]
    for target in targets:
        if not target.exists():
            raise click.BadParameter(f"'{target}' does not exist", param_hint="PATHS")
    try:
        minimum = parse_minimum(min_coverage) if min_coverage is not None else None
    except ValueError as error:
        raise click.BadParameter(str(error), param_hint="--min-coverage") from None
    suite = run_suite(targets)
    if output_format == "json":
        click.echo(render_json(suite), nl=False)
    else:
        click.echo(render_text(suite, show_coverage=show_coverage), nl=False)
    if junit is not None:
        write_atomically(junit, render_junit(suite))
    below = shortfalls(suite.coverage, minimum) if minimum is not None else []
    for item, points in below:
        click.echo(f"meritpay: coverage of {item.policy} {item.version} ({item.source}) is "
                   f"{item.percent}%, {points} points below the minimum {minimum}%", err=True)
    if below and output_format == "text" and not show_coverage:
        click.echo("\n".join(coverage_lines([item for item, _ in below])), err=True)
    sys.exit(EXIT_FINDINGS if suite.failed or below else EXIT_OK)


# --- the ledger: recording runs, listing, verifying and replaying them ----------------------

def _run_ledger(params: dict[str, Any]) -> Path | None:
    """The ledger `run` records in (None with --no-ledger); refuses a file that is not a
    ledger, or a newer one, before the evaluation rather than after it."""
    from engine.ledger import preflight

    path, off = params.pop("ledger_path"), params.pop("no_ledger")
    if off and path is not None:
        raise click.UsageError("give --ledger PATH or --no-ledger, not both")
    if off:
        return None
    resolved = ledger_file(path)
    preflight(resolved)
    return resolved


def _ledger_snapshot(path: Path | None, inputs: Any) -> Any:
    from engine.ledger import snapshot

    return snapshot(inputs) if path is not None else ()


def _record_run(path: Path, result: Any, files: Any, period: str, to_date: str | None,
                keep_going: bool, inputs: Any) -> Any:
    from engine.ledger import RunOptions, record

    argv = click.get_current_context().meta.get("meritpay.argv") or ["meritpay", *sys.argv[1:]]
    return record(path, result, files, RunOptions(period, to_date, keep_going, inputs.encoding),
                  command=argv)


@main.command(name="runs")
@click.option("--policy", "policy_id", help="Only runs that evaluated someone under this policy.")
@click.option("--period", help="Only runs of this period, e.g. 2025-Q3.")
@click.option("--format", "output_format", type=click.Choice(["text", "json"]), default="text",
              show_default=True, help="text is a table for people.")
@click.option("--verify", is_flag=True,
              help="Check the hash chain instead: print the chain head, or name every run "
                   "edited or deleted (exit 1).")
@click.option("--head", help="With --verify: a chain head recorded earlier (in CI or git); "
                             "exit 1 unless the ledger still holds it.")
@ledger_option
@handle_errors
def runs_command(policy_id: str | None, period: str | None, output_format: str, verify: bool,
                 head: str | None, ledger_path: Path | None) -> None:
    """List the runs recorded in the ledger, oldest first, or verify its hash chain.

    Each run: id, time (UTC), user, period, employees, total pay per currency, and the
    policies@versions that evaluated someone. The ledger is only read, never changed. Exit 0;
    1 when --verify finds a run edited or deleted; 2 when the file is not a ledger or is
    newer than this meritpay; 3 when it cannot be read.
    """
    from engine import ledger

    path = ledger_file(ledger_path)
    if head is not None and (not verify or len(head) != 64 or head.strip("0123456789abcdef")):
        raise click.BadParameter("give --verify and a chain head of 64 hex digits, as "
                                 "`meritpay runs --verify` printed it", param_hint="--head")
    if verify:
        if policy_id is not None or period is not None:
            raise click.UsageError("--verify checks the whole ledger: no --policy or --period")
        checked = ledger.verify(path, head=head)
        if output_format == "json":
            click.echo(ledger.verification_json(checked), nl=False)
        for problem in checked.problems:
            click.echo(problem.render(), err=True)
        if checked.ok:
            if output_format == "text":
                click.echo(checked.head)
            click.echo(f"{checked.runs} run(s) in {path}: the chain is intact; its head is "
                       f"{checked.head_run or 'empty'}", err=True)
        else:
            click.echo(f"{path}: the chain is broken ({len(checked.problems)} problem(s)); "
                       f"the head as stored: {checked.head}", err=True)
        sys.exit(EXIT_OK if checked.ok else EXIT_FINDINGS)
    found = ledger.list_runs(path, policy=policy_id, period=period)
    if output_format == "json":
        click.echo(ledger.runs_json(found), nl=False)
    elif found:
        click.echo(ledger.runs_text(found), nl=False)
    click.echo(f"{len(found)} run(s) in {path}", err=True)


@main.command(name="replay")
@click.argument("run_id")
@ledger_option
@handle_errors
def replay_command(run_id: str, ledger_path: Path | None) -> None:
    """Evaluate a recorded run again from the policies and files stored in the ledger.

    RUN_ID is an id `meritpay runs` lists (R000042, or 42). No original file is needed. Says
    whether the results are byte-identical to those recorded, and if not, each employee and
    value that differs. The ledger is only read. Exit 0 when identical; 1 when the results
    differ or the stored run was changed after it was recorded; 2 for an unknown run id.
    """
    from engine import __version__
    from engine.ledger import replay

    outcome = replay(ledger_file(ledger_path), run_id)
    for problem in outcome.problems:
        click.echo(problem.render(), err=True)
    if outcome.recorded_engine != __version__:
        click.echo(f"note: {outcome.run_id} was recorded by meritpay {outcome.recorded_engine}; "
                   f"this is {__version__}", err=True)
    if outcome.identical:
        click.echo(f"{outcome.run_id}: identical: the replay gives the recorded results byte "
                   f"for byte ({outcome.segments} employee segment(s))")
    else:
        click.echo(f"{outcome.run_id}: the results differ from those recorded:")
        for line in outcome.differences:
            click.echo(f"  {line}")
    sys.exit(EXIT_OK if outcome.identical and not outcome.problems else EXIT_FINDINGS)


@main.command(name="explain")
@click.argument("employee")
@click.argument("policy", type=click.Path(path_type=Path), required=False)
@click.option("--run", "run_id", help="A recorded run to explain (default: the latest), when "
                                      "no POLICY is given.")
@ledger_option
@input_options
@click.option("--format", "output_format",
              type=click.Choice(["text", "markdown", "json", "html"]),
              help="text fits 100 columns; json is the structure README documents; html is "
                   "one self-contained page. Default: the -o file's extension (.md, .json, "
                   ".html), else text.")
@click.option("--why-not", "why_not", metavar="NAME",
              help="Only why NAME (a reward, outcome, gate or tier) was not granted.")
@click.option("--lang", default="en", show_default=True,
              help="The language of the policy's labels, one of its `languages`.")
@click.option("-o", "--output", type=click.Path(path_type=Path),
              help="Write here (atomically); default stdout.")
@handle_errors
def explain_command(employee: str, policy: Path | None, run_id: str | None,
                    ledger_path: Path | None, period: str | None, to_date: str | None,
                    output_format: str | None, why_not: str | None, lang: str,
                    output: Path | None, **params: Any) -> None:
    """Explain EMPLOYEE's result: every number top-down, and why not.

    Without POLICY: a recorded run from the ledger (--run ID, default the latest), evaluated
    again from its stored inputs with a trace and checked against the recorded results. With
    POLICY and the facts: evaluates everyone (population rules need them all) with a trace.
    Explains EMPLOYEE (an id, or an exact name): total pay, each reward's arithmetic, the tier
    and its boundaries, gates, indicators, outcomes, the policy line of every rule, and for
    what was not granted the nearest missed condition and by how much. An employee with two
    role segments gets both. Exit 2 for an unknown employee or run, --why-not name or --lang.
    """
    from engine.explain import explain_all, results_of
    from engine.explainreport import render_explanations
    from engine.fast import tracing
    from engine.report import write_atomically
    from engine.run import load_policies, run

    if policy is None:
        from engine.ledger import latest_run_id, load_run

        given = [k for k, v in params.items() if v is not None] + \
            [n for n, v in (("--period", period), ("--to-date", to_date)) if v is not None]
        if given:
            raise click.UsageError("the facts and period of a recorded run are in the ledger; "
                                   "give POLICY to explain a new evaluation instead")
        ledger = ledger_file(ledger_path)
        chosen = run_id or latest_run_id(ledger)
        if chosen is None:
            raise InputError(f"the ledger {ledger} holds no run yet: give POLICY and the "
                             "facts, or record a run with meritpay run")
        result, policies = load_run(ledger, chosen, employee)
        click.echo(f"explaining run {chosen} from {ledger}", err=True)
    else:
        if run_id is not None:
            raise click.UsageError("--run explains a recorded run: leave out POLICY")
        inputs = run_inputs(params)
        if (period is None) == (to_date is None):
            raise click.UsageError("give one of --period (e.g. 2025-Q3) or --to-date "
                                   "(e.g. 2025-08)")
        if not policy.exists():
            raise click.BadParameter(f"'{policy}' does not exist", param_hint="POLICY")
        policies = load_policies([policy])
        # everyone is evaluated (ranks, selections and pools need them), only the
        # employee explained with a trace
        result = run(policies, inputs, period or "", to_date=to_date,
                     evaluator=tracing({employee}))
        for warning in result.warnings:
            click.echo(warning.render(), err=True)
    explanations = explain_all(results_of(result.results, employee), policies, lang=lang,
                               why_not=why_not)
    text = render_explanations(explanations,
                               format_for(output_format, output, EXPLAIN_FORMATS))
    if output is None:
        click.echo(text, nl=False)
    else:
        write_atomically(output, text)
        click.echo(f"wrote the explanation of {employee} to {output}", err=True)


@main.command(name="codes")
def list_codes() -> None:
    """List every diagnostic code with its meaning."""
    for code, meaning in CODES.items():
        severity = Severity.WARNING if code.startswith("W_") else Severity.ERROR
        click.echo(f"{code:32} {severity.value:8} {meaning}")


if __name__ == "__main__":  # pragma: no cover
    main()
