"""Shared by the hostile-input tests: an audit hook that records while a flag is set, a scope
of every type, read-only environments, and a harness that checks, compiles and evaluates one
expression text the way the engine does.

Audit hooks cannot be removed, so this module installs exactly one for the test process when
it is first imported; it records events only inside `watching()`.
"""

from __future__ import annotations

import copy
import decimal
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import date
from decimal import Decimal
from types import MappingProxyType
from typing import Any

from engine.evaluate import decimal_context
from engine.expr import (
    BOOLEAN,
    DATE,
    LIST,
    MISSING,
    NUMBER,
    TEXT,
    CheckedExpression,
    MissingValue,
    Scope,
    check_expression,
    compile_expression,
)

# Events that would mean an expression reached outside its values: imports, files, code,
# processes, the network, native code, frames and attribute hooks.
FORBIDDEN_EVENTS = frozenset({
    "import", "open", "exec", "compile", "subprocess.Popen", "os.system", "os.exec",
    "os.posix_spawn", "os.spawn", "os.fork", "os.forkpty", "os.kill", "os.remove",
    "os.rename", "os.chmod", "os.listdir", "os.scandir", "os.putenv", "os.unsetenv",
    "socket.connect", "socket.bind", "socket.getaddrinfo", "socket.__new__", "ctypes.dlopen",
    "ctypes.dlsym", "ctypes.cdata", "sys._getframe", "sys.settrace", "sys.setprofile",
    "object.__getattr__", "object.__setattr__", "object.__delattr__", "builtins.input",
    "code.__new__", "function.__new__", "marshal.loads", "pickle.find_class", "shutil.rmtree",
    "urllib.Request", "webbrowser.open", "sqlite3.connect",
})


class _Recorder:
    def __init__(self) -> None:
        self.active = False
        self.events: list[tuple[str, str]] = []

    def __call__(self, event: str, args: tuple[Any, ...]) -> None:
        if self.active:
            self.events.append((event, repr(args)[:200]))


RECORDER = _Recorder()
sys.addaudithook(RECORDER)


@contextmanager
def watching() -> Iterator[list[tuple[str, str]]]:
    """Record every audit event raised inside the block; yields the list it fills."""
    RECORDER.events = []
    RECORDER.active = True
    try:
        yield RECORDER.events
    finally:
        RECORDER.active = False


def forbidden(events: list[tuple[str, str]]) -> list[tuple[str, str]]:
    return [e for e in events if e[0] in FORBIDDEN_EVENTS or e[0].startswith(
        ("os.", "subprocess.", "socket.", "ctypes.", "shutil."))]


# --- the names an expression may read, one of every type ------------------------------------
FACTS: dict[str, str] = {"revenue": NUMBER, "quota": NUMBER, "margin": NUMBER, "region": TEXT,
                         "hired": DATE, "tags": LIST, "remote": BOOLEAN}
NAMES: dict[str, str] = {**FACTS, "sales": NUMBER, "score.sales": NUMBER,
                         "weight.sales": NUMBER, "gate.ok": BOOLEAN, "tier.name": TEXT}
SCOPE = Scope(NAMES, inner=Scope(dict(FACTS), is_inner=True, what="a month"),
              what="a hostile expression")


def _month(revenue: Any, quota: Any, margin: Any = Decimal("0.2")) -> dict[str, Any]:
    return {"revenue": revenue, "quota": quota, "margin": margin, "region": "east",
            "hired": date(2020, 1, 1), "tags": ("a", "b"), "remote": False}


def environments() -> list[dict[str, Any]]:
    """Plain dicts (snapshotted by the caller) for the read-only views expressions get:
    ordinary values, zeros, values missing in some month or wholly, and huge numbers."""
    ordinary = {**_month(Decimal("1200.50"), Decimal("1000")), "sales": Decimal("1.2005"),
                "score.sales": Decimal("1.1"), "weight.sales": Decimal(1), "gate.ok": True,
                "tier.name": "gold"}
    months = (_month(Decimal(400), Decimal(333)), _month(Decimal("400.25"), Decimal(333)),
              _month(Decimal("400.25"), Decimal(334)))
    zeros = {**ordinary, "revenue": Decimal(0), "quota": Decimal(0), "sales": Decimal(0),
             "score.sales": Decimal(0)}
    zero_months = tuple(_month(Decimal(0), Decimal(0)) for _ in range(3))
    missing = {**ordinary, "margin": MISSING, "region": MISSING}
    gappy = (_month(Decimal(1), Decimal(2)), _month(MISSING, Decimal(2), MISSING))
    huge = {**ordinary, "revenue": Decimal("9" * 28), "quota": Decimal("1E-999990"),
            "sales": Decimal("-" + "9" * 28)}
    huge_months = (_month(Decimal("9" * 28), Decimal("1E+999990")),)
    result = []
    for env, series in ((ordinary, months), (zeros, zero_months), (missing, gappy),
                        (huge, huge_months)):
        result.append({**env, "@months": series, "@periods": (*series, env),
                       "@years": (series[0], None, series[-1])})
    return result


def read_only(env: dict[str, Any]) -> Mapping[str, Any]:
    """The environment as expressions see it: read-only views all the way down."""
    def view(entry: Any) -> Any:
        return None if entry is None else MappingProxyType(dict(entry))

    top = dict(env)
    for key in ("@months", "@periods", "@years"):
        top[key] = tuple(view(entry) for entry in env[key])
    return MappingProxyType(top)


ENVIRONMENTS = environments()
SNAPSHOTS = copy.deepcopy(ENVIRONMENTS)
VIEWS = [read_only(env) for env in ENVIRONMENTS]


_TYPES: dict[str, type | tuple[type, ...]] = {NUMBER: Decimal, BOOLEAN: bool, TEXT: str,
                                              DATE: date, LIST: tuple}


def _allowed(error: BaseException) -> bool:
    """What a compiled expression may raise: a value missing inside months() etc., or decimal
    arithmetic that fails (the evaluator turns both into its own errors). A FloatOperation
    would be a float in the money path: never allowed."""
    if isinstance(error, decimal.FloatOperation):
        return False
    return isinstance(error, MissingValue | ArithmeticError)


class Outcome:
    """What one text did: its problem codes, or its evaluations."""

    __slots__ = ("checked", "codes", "events", "foreign", "values")

    def __init__(self) -> None:
        self.codes: list[str] = []
        self.checked: CheckedExpression | None = None
        self.foreign: list[str] = []  # exceptions that are not allowed
        self.events: list[tuple[str, str]] = []
        self.values: list[Any] = []


def probe(text: str) -> Outcome:
    """Check `text`; if accepted, compile it and evaluate it on every read-only environment
    with the audit recorder on. Never raises for a well-behaved engine."""
    outcome = Outcome()
    checked, problems = check_expression(text, SCOPE)
    assert (checked is None) == bool(problems), (text, problems)
    for item in problems:
        assert item.code.startswith("E_EXPR_"), (text, item)
        assert 0 <= item.offset <= len(text), (text, item)
    outcome.codes = [p.code for p in problems]
    if checked is None:
        return outcome
    outcome.checked = checked
    function = compile_expression(checked)
    with decimal.localcontext(decimal_context()), watching() as events:
        for view in VIEWS:
            if any(view.get(n, MISSING) is MISSING for n in checked.reads):
                continue  # the evaluator never runs an expression with a missing read
            try:
                value = function(view)
            except Exception as error:  # classified just below
                if not _allowed(error):
                    outcome.foreign.append(f"{type(error).__name__}: {error}")
                continue
            outcome.values.append(value)
            if not isinstance(value, _TYPES.get(checked.type, object)) or (
                    checked.type == NUMBER and isinstance(value, bool)):
                outcome.foreign.append(f"a {checked.type} expression gave {value!r}")
    outcome.events = forbidden(events)
    return outcome


def facts_unchanged() -> bool:
    return ENVIRONMENTS == SNAPSHOTS
