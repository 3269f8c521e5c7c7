"""Diagnostics: stable codes, severities, locations and messages.

Inner stages report what they know (a code, a message, maybe a column inside an
expression); outer stages add the file and line. Every code is listed in CODES
with a one-line meaning, and README.md lists the same codes (a test keeps the two
in step).
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from enum import StrEnum


class Severity(StrEnum):
    ERROR = "error"
    WARNING = "warning"


@dataclass(frozen=True, order=True)
class Location:
    file: str
    line: int = 0  # 1-based; 0 when the whole file is meant
    column: int = 0  # 1-based; 0 when the whole line is meant

    def __str__(self) -> str:
        if self.line and self.column:
            return f"{self.file}:{self.line}:{self.column}"
        if self.line:
            return f"{self.file}:{self.line}"
        return self.file


@dataclass(frozen=True)
class Diagnostic:
    code: str
    severity: Severity
    location: Location
    message: str
    hint: str = ""

    def sort_key(self) -> tuple[str, int, int, str, str]:
        loc = self.location
        return (loc.file, loc.line, loc.column, self.code, self.message)

    def render(self) -> str:
        text = f"{printable(str(self.location))}: {self.code}: {printable(self.message)}"
        if self.hint:
            text += f"\n    hint: {printable(self.hint)}"
        return text

    def to_json(self) -> dict[str, object]:
        data = asdict(self)
        data["severity"] = self.severity.value
        return data


def printable(text: str) -> str:
    """Text safe to print on a terminal: control and other invisible characters (escape
    sequences, NUL, bidi overrides) that an input file put into a message are escaped."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def sort_diagnostics(diagnostics: Iterable[Diagnostic]) -> list[Diagnostic]:
    """Sorted by file, line, column and code; exact duplicates dropped."""
    return sorted(set(diagnostics), key=Diagnostic.sort_key)


def render_json(diagnostics: Iterable[Diagnostic]) -> str:
    return json.dumps([d.to_json() for d in diagnostics], ensure_ascii=False, indent=2)


def did_you_mean(name: str, candidates: Iterable[str]) -> str:
    """' (did you mean 'x'?)' when a candidate is close to name, else ''."""
    close = difflib.get_close_matches(name, sorted(set(candidates)), n=1, cutoff=0.75)
    return f" (did you mean '{close[0]}'?)" if close else ""


# Every diagnostic code, with what it means. README.md lists the same table.
CODES: dict[str, str] = {
    # reading the file
    "E_FILE_UNREADABLE": "the file cannot be opened or read",
    "E_FILE_ENCODING": "the file is not valid UTF-8",
    "E_FILE_TOO_LARGE": "the file is larger than a policy (5 MiB) or a data file (1 GiB, or "
                        "$MERITPAY_MAX_DATA_BYTES) can reasonably be",
    "E_YAML_SYNTAX": "the YAML cannot be parsed (bad indentation, tab, unclosed quote...)",
    "E_YAML_DUPLICATE_KEY": "a key appears twice in one mapping",
    "E_YAML_AMBIGUOUS": "a plain value YAML 1.1 would misread (no, 012, 1:30, .nan...)",
    "E_YAML_UNSUPPORTED": "an explicit tag (!!python/..., !custom) or a merge key (<<)",
    "E_YAML_TOO_LARGE": "anchors/aliases or nesting expand beyond the node or depth limit, or a "
                        "number has more than 28 digits",
    "E_YAML_COMMENT_IN_EXPRESSION": "an unquoted expression is followed by a # comment",
    "E_YAML_NOT_A_MAPPING": "the document is not a mapping of keys to values",
    "E_YAML_MULTIPLE_DOCUMENTS": "the file holds more than one YAML document",
    # format and schema
    "E_FORMAT_VERSION": "the file declares a format version this meritpay does not know",
    "E_SCHEMA": "a value breaks the policy schema (unknown key, wrong type, missing field)",
    # expressions
    "E_EXPR_SYNTAX": "an expression cannot be parsed",
    "E_EXPR_FORBIDDEN": "an expression uses syntax outside the allowed language",
    "E_EXPR_UNKNOWN_NAME": "an expression uses a name that is not declared",
    "E_EXPR_UNKNOWN_FUNCTION": "an expression calls a function that is not in the table",
    "E_EXPR_ARGUMENTS": "a function is called with the wrong number or kind of arguments",
    "E_EXPR_TYPE": "an expression combines values of incompatible types",
    "E_EXPR_TOO_COMPLEX": "an expression is too long, too deep or has too large a power",
    # semantics
    "E_UNKNOWN_REFERENCE": "a field names an indicator, gate, role, band or fact not declared",
    "E_CYCLE": "indicators, facts or rewards depend on each other in a cycle",
    "E_WEIGHTS_SUM": "weights that must sum to 100% do not",
    "E_WEIGHTS_NEGATIVE": "a weight adjustment leaves a negative weight",
    "E_TIERS_ORDER": "tier bands are out of order",
    "E_TIERS_OVERLAP": "two tier bands overlap",
    "E_TIERS_GAP": "tier bands leave a gap",
    "E_BRACKETS_ORDER": "commission brackets or score steps do not increase",
    "E_CURVE": "a scoring curve is degenerate (zero_at equals full_at, cap below floor...)",
    "E_LABEL_LANGUAGE": "a label lacks a language the policy lists in `languages`",
    "E_EFFECTIVE_RANGE": "an effective range ends before it starts",
    "E_EFFECTIVE_OVERLAP": "two versions covering the same policy or role overlap in time",
    "E_GUARDRAIL": "a guardrail about the policy does not hold",
    "E_DUPLICATE_POLICY": "the same policy id and version appear in two files",
    # facts and evaluation
    "E_FACTS": "a fact record is malformed (bad number, missing column, duplicate row...)",
    "E_RATINGS": "a 360 rating is malformed (unknown group, score off the scale...)",
    "E_EVAL_MISSING_FACT": "a fact an employee's rule reads is missing and has no fallback",
    "E_EVAL_DIVIDE_BY_ZERO": "an indicator divides by zero and declares no fallback, or another "
                             "rule divides by zero",
    "E_EVAL_ARITHMETIC": "a rule's arithmetic fails for an employee: a number grows beyond the "
                         "exact range, or a result needs more than 28 digits",
    "E_EVAL_NO_POLICY": "no policy covers an employee's role in the period",
    "E_EVAL_NO_INDICATORS": "none of a role's weighted indicators applies to an employee",
    "E_EVAL_RATINGS": "a 360 review lacks a rater group and declares missing_group: fail",
    "E_TEAMS": "a team membership is malformed (share not above 0, a member twice...)",
    "E_LINES": "a transaction line is malformed (unknown fact, duplicate line id...)",
    "E_TEST_POLICY": "a test file names a policy that does not exist",
    "E_TEST_PATH": "a test file names a file outside its folder (an absolute path, or ../ "
                   "above it)",
    "E_TEST_EXPECTATION": "a test case expects an output the policy does not have (a reward, "
                          "gate, indicator, outcome, band or role of no such name)",
    # the ledger of runs
    "E_LEDGER_NOT_A_LEDGER": "the ledger path holds a file that is not a meritpay ledger "
                             "(left untouched)",
    "E_LEDGER_NEWER": "the ledger was written by a newer meritpay (left untouched)",
    "E_LEDGER_TAMPERED": "a recorded run was edited or deleted: the hash chain does not hold",
    "E_LEDGER_BUSY": "another process kept the ledger locked too long to record the run",
    "E_LEDGER_READ_ONLY": "the ledger or its folder cannot be written",
    "E_LEDGER_DISK_FULL": "no space is left to record the run",
    "E_LEDGER_INTERRUPTED": "an interrupted run left a journal only the next run may roll back",
    "E_LEDGER_CORRUPT": "the ledger file is damaged below the hash chain (SQLite reports it)",
    "E_UNKNOWN_RUN": "no run with this id is recorded in the ledger",
    "E_REPLAY_DIFFERS": "a recorded run evaluated again gives other results (explain --run)",
    "W_FACTS_UNKNOWN_COLUMNS": "the facts have columns no policy declares (ignored)",
    "W_UNUSED_FACT": "a declared fact is read by nothing",
    "W_UNUSED_INDICATOR": "an indicator is weighted in no role and used by nothing",
    "W_UNUSED_GATE": "a gate is required by no reward and used by nothing",
    "W_NO_POLICIES": "a directory given to validate holds no policy files",
}


class MeritpayError(Exception):
    """Base of every error meritpay raises on purpose; carries an exit code."""

    exit_code = 2

    def __init__(self, message: str, diagnostics: list[Diagnostic] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.diagnostics = diagnostics or []


class InputError(MeritpayError):
    """Unreadable or malformed input, or bad usage: exit 2."""

    exit_code = 2


class FindingsError(MeritpayError):
    """The input was read and has problems (an invalid policy): exit 1."""

    exit_code = 1


class EnvironmentFailure(MeritpayError):
    """Disk full, I/O error, ledger busy: exit 3."""

    exit_code = 3
