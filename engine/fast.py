"""Each role of a policy compiled into one Python function: the untraced evaluation path.

`evaluate.evaluate_employee` defines what a policy computes, step by step, with a trace.
A run that needs no trace calls `evaluate` here instead. On first use for a (policy, role),
that role's pipeline (its indicators, weights and adjustments, gates, tier, pay mix,
rewards and outcomes) is written out as the source of one Python function, compiled once:

- every expression inlined from its checked tree, the names it reads local variables (a
  fact is looked up once per employee, a computed value is the variable that holds it);
- every number of the policy a constant, every curve, band table and bracket table unrolled
  into comparisons;
- what the role does not use (other roles' indicators and rewards, gates for other roles)
  not written at all.

Per employee it does the arithmetic of evaluate_employee in the same order in the same
decimal context, so every value is identical, and nothing else: no trace events, no
environment dictionary, no walk over the policy's structure.

Whatever is out of the ordinary hands the employee back to evaluate_employee, which then
does the rare thing or says what is wrong: a value missing where the policy says `error`,
arithmetic that fails, a rater group that must fail, a band set by a distribution cap. So
every error message has one source, and the compiled function covers the common paths only.
tests/test_fast.py asserts both paths give identical results on every shipped policy and on
hypothesis-generated facts, and that the shipped data never needs the hand-back.
"""

from __future__ import annotations

import decimal
import functools
import weakref
from collections.abc import Callable, Container, Sequence
from dataclasses import fields
from decimal import Decimal
from typing import Any

from .evaluate import (
    ONE,
    ZERO,
    EmployeeInput,
    EmployeeResult,
    IndicatorResult,
    RewardResult,
    decimal_context,
    divides_by_zero,
    evaluate_employee,
    interpolated_rate,
)
from .expr import RUNTIME, MissingValue, builtins_compile, expression_source
from .model import CompiledPolicy, Curve, Expr, IndicatorDecl, RewardDecl, RoleDecl

Compiled = Callable[[EmployeeInput], EmployeeResult | None]  # None: evaluate_employee's turn


class _HandOver(Exception):
    """Raised inside a compiled function: this employee needs evaluate_employee."""


def evaluate(policy: CompiledPolicy, item: EmployeeInput, *, trace: bool = False
             ) -> EmployeeResult:
    """Evaluate one employee segment: with a trace, or when the compiled function hands it
    back, by evaluate_employee; otherwise by the role's compiled function. Raises
    EvaluationError as evaluate_employee does."""
    if not trace:
        function = compiled(policy, item.role)
        if function is not None:
            result = function(item)
            if result is not None:
                return result
    return evaluate_employee(policy, item, trace=trace)


def tracing(employees: Container[str]) -> Callable[[CompiledPolicy, EmployeeInput, bool],
                                                   EmployeeResult]:
    """An evaluator for run(..., evaluator=) that traces only these employees (explain needs
    one employee's trace, but everyone's results for the population stage)."""
    def evaluator(policy: CompiledPolicy, item: EmployeeInput, trace: bool) -> EmployeeResult:
        return evaluate(policy, item, trace=trace or item.employee in employees)

    return evaluator


# The compiled functions of each policy by role, for as long as the policy lives. None: the
# role cannot be compiled (an expression without its checked tree), evaluate_employee it is.
_COMPILED: dict[int, dict[str, Compiled | None]] = {}


def compiled(policy: CompiledPolicy, role: str) -> Compiled | None:
    """The role's compiled function, compiled on first use."""
    functions = _COMPILED.get(id(policy))
    if functions is None:
        functions = _COMPILED[id(policy)] = {}
        weakref.finalize(policy, _COMPILED.pop, id(policy), None)
    if role not in functions:
        decl = policy.roles.get(role)
        functions[role] = None if decl is None else compile_role(policy, decl)
    return functions[role]


def compile_role(policy: CompiledPolicy, role: RoleDecl) -> Compiled | None:
    """The function evaluating one role of the policy, or None when it cannot be written."""
    writer = _Writer(policy, role)
    try:
        source = writer.write()
    except _NotCompilable:
        return None
    namespace = writer.namespace
    code = builtins_compile(source, f"<{policy.policy} {policy.version} {role.name}>", "exec")
    exec(code, namespace)  # our generated source over checked trees; no user text reaches here
    function: Compiled = namespace["_evaluate"]
    return function


def source_of(policy: CompiledPolicy, role: str) -> str:
    """The generated source for one role (for reading and for tests)."""
    return _Writer(policy, policy.roles[role]).write()


_CONTEXT = decimal_context()


def _runtime() -> dict[str, Any]:
    return {
        "__builtins__": {"len": len, "sum": sum, "bool": bool, "isinstance": isinstance,
                         "ArithmeticError": ArithmeticError},
        **RUNTIME,
        "_MissingValue": MissingValue, "_HandOver": _HandOver,
        "_FloatOperation": decimal.FloatOperation,
        "_FAIL": (ArithmeticError, MissingValue, _HandOver),
        "_getcontext": decimal.getcontext, "_setcontext": decimal.setcontext,
        "_CONTEXT": _CONTEXT, "_dbz": divides_by_zero, "_interpolated": interpolated_rate,
        "ZERO": ZERO, "ONE": ONE,
    }


@functools.cache
def _twin(cls: type) -> type:
    """A plain class laid out as the frozen, slotted result class `cls` (the same slots, in
    the same order, nothing else): its instances take their fields by plain assignment, then
    become `cls` by assigning __class__, which Python allows between classes of one layout.
    That is half the time of cls's own __init__ and half the memory of an instance with a
    __dict__."""
    slots = cls.__dict__["__slots__"]
    assert slots == tuple(f.name for f in fields(cls)) and cls.__bases__ == (object,), cls
    return type(f"{cls.__name__}Twin", (), {"__slots__": slots, "__module__": __name__})


class _NotCompilable(Exception):
    """A role the writer cannot write out (evaluate_employee evaluates it instead)."""


class _Writer:
    """Writes the source of one role's function, in the order evaluate_employee works."""

    def __init__(self, policy: CompiledPolicy, role: RoleDecl) -> None:
        self.policy, self.role = policy, role
        self.lines: list[str] = []
        self.depth = 1
        self.namespace = _runtime()
        self.constants: dict[tuple[str, Decimal], str] = {}
        self.facts: dict[str, str] = {}  # fact name -> variable, looked up once at the start
        # names computed so far -> (variable, whether it can hold MISSING)
        self.known: dict[str, tuple[str, bool]] = {}
        self.counter = 0
        self.series = False  # some expression walks months, periods or years

    # writing --------------------------------------------------------------------------------
    def line(self, text: str) -> None:
        self.lines.append("    " * self.depth + text)

    def block(self, head: str) -> _Indent:
        self.line(head)
        return _Indent(self)

    def fresh(self, stem: str) -> str:
        self.counter += 1
        return f"{stem}{self.counter}"

    def const(self, value: Any) -> str:
        """A constant of the policy, by name (Decimal, bool, str or None)."""
        if value is None or isinstance(value, bool | str | int):
            return repr(value)
        key = (type(value).__name__, value)
        if key not in self.constants or self.namespace[self.constants[key]] is not value:
            # equal Decimals may differ in exponent: each distinct object keeps its own name
            name = f"_c{len(self.namespace)}"
            self.namespace[name] = value
            self.constants[key] = name
        return self.constants[key]

    def resolve(self, name: str) -> tuple[str, bool]:
        """The variable holding a name's value now, as the environment of evaluate_employee
        would hold it: computed so far, else the employee's fact (or MISSING)."""
        if name in self.known:
            return self.known[name]
        if name not in self.facts:
            self.facts[name] = f"f{len(self.facts)}"
        return self.facts[name], True

    def expression(self, expr: Expr | None, names: dict[str, str] | None = None
                   ) -> tuple[str, str]:
        """Source of an expression and the test that some name it needs is missing ('' when
        none can be). `names` overrides variables for some names (value, a month's facts)."""
        assert expr is not None
        if expr.checked is None:
            raise _NotCompilable(expr.text)
        override = names or {}

        def local(name: str) -> str:
            return override[name] if name in override else self.resolve(name)[0]

        prefix = f"{self.fresh('e')}_"
        source, constants = expression_source(expr.checked, local, prefix)
        self.namespace.update(constants)
        if "_f_" in source and "_series" in source:
            self.series = True
        tests = []
        for name in sorted(expr.reads):
            if name in override:
                tests.append(f"{override[name]} is _MISSING")
                continue
            variable, maybe = self.resolve(name)
            if maybe:
                tests.append(f"{variable} is _MISSING")
        return source, " or ".join(dict.fromkeys(tests))

    def checked_value(self, expr: Expr, target: str, on_missing: Callable[[], None],
                      names: dict[str, str] | None = None) -> None:
        """target = the expression's value; on_missing's code where evaluate_employee's run()
        finds a name missing (before or inside month-wise functions)."""
        source, absent = self.expression(expr, names)
        inner = "_f_" in source
        if absent:
            with self.block(f"if {absent}:"):
                on_missing()
            self.line("else:")
            self.depth += 1
        if inner:
            with self.block("try:"):
                self.line(f"{target} = {source}")
            with self.block("except _MissingValue:"):
                on_missing()
        else:
            self.line(f"{target} = {source}")
        if absent:
            self.depth -= 1

    def make(self, target: str, cls: type, values: Sequence[str]) -> None:
        """target = an instance of a frozen result class, built without its __init__ (which
        sets each field through object.__setattr__, three times slower): built as its twin
        (a plain class with the same slots, see _twin), then made the result class. Equal,
        hashable, replaceable and picklable like one built by the constructor
        (tests/test_fast.py checks)."""
        names = [f.name for f in fields(cls)]
        assert len(names) == len(values), (cls, values)
        self.namespace[f"_{cls.__name__}"] = cls
        self.namespace[f"_{cls.__name__}Twin"] = _twin(cls)
        self.line(f"{target} = _{cls.__name__}Twin()")
        for name, value in zip(names, values, strict=True):
            self.line(f"{target}.{name} = {value}")
        self.line(f"{target}.__class__ = _{cls.__name__}")

    def shared(self, result: RewardResult) -> str:
        """A result every employee with it can share (frozen): its name in the namespace."""
        name = f"_result{len(self.namespace)}"
        self.namespace[name] = result
        return name

    def hand_over(self) -> None:
        self.line("raise _HandOver")

    # the function ---------------------------------------------------------------------------
    def write(self) -> str:
        policy = self.policy
        body_start = len(self.lines)
        self.depth = 2
        indicators = self.indicators()
        total, indicator_results = self.weights(indicators)
        gates = self.gates()
        tier, multiplier = self.tier(total)
        self.pay_mix()
        rewards, amounts = self.rewards()
        tie = self.tie_break()
        pay = self.fresh("pay")
        self.line(f"{pay} = ZERO" + "".join(f" + {a}" for a in amounts))
        self.make("result", EmployeeResult, [
            "item.employee", "item.name", "item.role", "item.team", "item.months",
            repr(policy.policy), repr(policy.version), repr(policy.currency), "item.proration",
            indicator_results, total,
            "(" + "".join(self.gate_pair(name, value) + ", " for name, value in gates) + ")",
            tier, multiplier,
            f"({''.join(r + ', ' for r in rewards)})", pay, "()", tie, "0", "ZERO"])
        body = self.lines[body_start:]
        self.lines = self.lines[:body_start]
        self.depth = 1
        self.line("if item.band_override is not None:")
        self.line("    return None")
        self.line("facts = item.facts")
        self.line("get = facts.get")
        if self.series:
            self.line("_series = {'@months': item.month_facts, "
                      "'@periods': (*item.period_facts, facts), '@years': item.year_facts}")
        self.line("saved = _getcontext()")
        self.line("_setcontext(_CONTEXT)")
        self.line("try:")
        self.depth = 2
        for name, variable in self.facts.items():
            self.line(f"{variable} = get({name!r}, _MISSING)")
        self.lines += body
        self.depth = 1
        self.line("except _FAIL:")
        self.line("    return None")
        self.line("finally:")
        self.line("    _setcontext(saved)")
        self.line("return result")
        return "def _evaluate(item):\n" + "\n".join(self.lines) + "\n"

    # indicators -----------------------------------------------------------------------------
    def indicators(self) -> dict[str, tuple[str, str, str, str | None]]:
        """name -> (status, value, score, step) variables; value and score hold MISSING when
        the indicator is not scored."""
        needed = self.policy.role_indicators.get(self.role.name)
        found: dict[str, tuple[str, str, str, str | None]] = {}
        for decl in self.policy.indicators:
            if needed is not None and decl.name not in needed:
                continue
            found[decl.name] = self.indicator(decl, found)
            _, value, score, _ = found[decl.name]
            self.known[decl.name] = (value, True)
            self.known[f"score.{decl.name}"] = (score, True)
        return found

    def indicator(self, decl: IndicatorDecl,
                  found: dict[str, tuple[str, str, str, str | None]]
                  ) -> tuple[str, str, str, str | None]:
        self.line(f"# indicator {decl.name}")
        status, value, score = self.fresh("st"), self.fresh("v"), self.fresh("s")
        step = self.fresh("k") if decl.curve.kind == "steps" else None
        if decl.applies_when is not None:
            applies = self.fresh("a")

            def not_applicable() -> None:
                self.line(f"{applies} = False")

            self.checked_value(decl.applies_when, applies, not_applicable)
            with self.block(f"if not {applies}:"):
                self.line(f"{status}, {value}, {score} = 'not_applicable', _MISSING, _MISSING")
                if step:
                    self.line(f"{step} = None")
            self.line("else:")
            self.depth += 1
        self.raw_value(decl, found, status, value, score, step)
        if decl.applies_when is not None:
            self.depth -= 1
        return status, value, score, step

    def raw_value(self, decl: IndicatorDecl, found: dict[str, tuple[str, str, str, str | None]],
                  status: str, value: str, score: str, step: str | None) -> None:
        """value, its score and status, with the indicator's rules for missing values and
        division by zero."""
        how = self.fresh("m")  # 0 computed, 1 missing, 2 divided by zero, 3 nothing scored
        self.line(f"{how} = 0")
        if decl.value is not None:
            def missing() -> None:
                self.line(f"{how} = 1")

            source, absent = self.expression(decl.value)
            if absent:
                with self.block(f"if {absent}:"):
                    missing()
                self.line("else:")
                self.depth += 1
            with self.block("try:"):
                self.line(f"{value} = {source}")
            if "_f_" in source:
                with self.block("except _MissingValue:"):
                    missing()
            self.division_by_zero(how)
            if absent:
                self.depth -= 1
        elif decl.raters is not None:
            with self.block("try:"):
                self.raters(decl, value, how)
            self.division_by_zero(how)
        else:
            self.composite(decl, found, value, how)
        with self.block(f"if {how} == 0:"):
            self.line(f"{status} = 'scored'")
            self.score(decl.curve, value, score, step)
        for code, rule in ((1, decl.missing), (2, decl.divide_by_zero)):
            with self.block(f"elif {how} == {code}:"):
                if rule == "zero":
                    self.line(f"{status}, {value} = 'scored', ZERO")
                    self.score(decl.curve, value, score, step)
                elif rule == "exclude":
                    self.excluded(status, value, score, step)
                else:
                    self.hand_over()
        if decl.value is None and decl.raters is None:  # no part of a composite scored
            with self.block("else:"):
                self.excluded(status, value, score, step)

    def excluded(self, status: str, value: str, score: str, step: str | None) -> None:
        self.line(f"{status}, {value}, {score} = 'excluded', _MISSING, _MISSING")
        if step:
            self.line(f"{step} = None")

    def division_by_zero(self, how: str) -> None:
        with self.block("except ArithmeticError as error:"):
            with self.block("if isinstance(error, _FloatOperation) or not _dbz(error):"):
                self.line("raise")
            self.line(f"{how} = 2")

    def raters(self, decl: IndicatorDecl, value: str, how: str) -> None:
        raters = decl.raters
        assert raters is not None
        weighted, weights = self.fresh("rw"), self.fresh("rt")
        self.line(f"{weighted} = {weights} = ZERO")
        self.line("ratings = item.ratings")
        for group in raters.groups:
            scores, mean = self.fresh("rs"), self.fresh("rm")
            self.line(f"{scores} = ratings.get({f'{decl.name}:{group.name}'!r}, "
                      f"ratings.get({group.name!r}, ()))")
            weight = self.const(group.weight)
            with self.block(f"if len({scores}) >= {group.min_raters} and {scores}:"):
                self.line(f"{mean} = sum({scores}, ZERO) / len({scores})")
                self.line(f"{weighted} += {weight} * {mean}")
                self.line(f"{weights} += {weight}")
            if raters.missing_group == "default":
                with self.block("else:"):
                    self.line(f"{weighted} += {weight} * {self.const(raters.default_score)}")
                    self.line(f"{weights} += {weight}")
            elif raters.missing_group == "fail":
                with self.block("else:"):
                    self.hand_over()
        with self.block(f"if {weights} == 0:"):
            self.line(f"{how} = 1")
        with self.block("else:"):
            self.line(f"{value} = {weighted} / {weights}")

    def composite(self, decl: IndicatorDecl, found: dict[str, tuple[str, str, str, str | None]],
                  value: str, how: str) -> None:
        """The weighted mean of the scored parts' scores; nothing scored: excluded."""
        parts: Sequence[tuple[str, Decimal]] = decl.parts
        if not parts:
            with decimal.localcontext(decimal_context()):
                parts = tuple((kr, objective.weight * weight) for objective in decl.objectives
                              for kr, weight in objective.key_results)
        total, weights, scored = self.fresh("ct"), self.fresh("cw"), self.fresh("cs")
        self.line(f"{total} = {weights} = ZERO")
        self.line(f"{scored} = False")
        for name, weight in parts:
            status, _, part_score, _ = found[name]
            with self.block(f"if {status} == 'scored':"):
                self.line(f"{total} = {total} + ({part_score} or ZERO) * {self.const(weight)}")
                self.line(f"{weights} = {weights} + {self.const(weight)}")
                self.line(f"{scored} = True")
        with self.block(f"if not {scored} or {weights} == 0:"):
            self.line(f"{how} = 3")
        with self.block("else:"):
            self.line(f"{value} = {total} / {weights}")

    def score(self, curve: Curve, value: str, score: str, step: str | None) -> None:
        kind = curve.kind
        if kind == "identity":
            self.line(f"{score} = {value}")
        elif kind == "linear":
            assert curve.zero_at is not None and curve.full_at is not None
            with decimal.localcontext(decimal_context()):
                span = curve.full_at - curve.zero_at
            self.line(f"{score} = ({value} - {self.const(curve.zero_at)}) / {self.const(span)}")
            self.bound(score, curve.floor, curve.cap)
        elif kind == "threshold":
            compare = "<=" if curve.lower_is_better else ">="
            self.line(f"{score} = {self.const(curve.above)} if {value} {compare} "
                      f"{self.const(curve.at)} else {self.const(curve.below)}")
        elif kind == "steps":
            assert step is not None
            # validation keeps the steps increasing: the last reached is the first from the top
            keyword = "if"
            for index in reversed(range(len(curve.steps))):
                start, points = curve.steps[index]
                with self.block(f"{keyword} {value} >= {self.const(start)}:"):
                    self.line(f"{step}, {score} = {index}, {self.const(points)}")
                keyword = "elif"
            with self.block("else:"):
                self.line(f"{step}, {score} = None, ZERO")
        else:
            assert curve.expression is not None
            source, absent = self.expression(curve.expression, {"value": value})
            if absent:
                with self.block(f"if {absent}:"):
                    self.hand_over()
            self.line(f"{score} = {source}")
            self.bound(score, curve.floor, curve.cap)
        if step is not None and kind != "steps":
            self.line(f"{step} = None")

    def bound(self, variable: str, floor: Decimal | None, cap: Decimal | None) -> None:
        if floor is not None and cap is not None:
            with self.block(f"if {variable} < {self.const(floor)}:"):
                self.line(f"{variable} = {self.const(floor)}")
            with self.block(f"elif {variable} > {self.const(cap)}:"):
                self.line(f"{variable} = {self.const(cap)}")
        elif floor is not None:
            with self.block(f"if {variable} < {self.const(floor)}:"):
                self.line(f"{variable} = {self.const(floor)}")
        elif cap is not None:
            with self.block(f"if {variable} > {self.const(cap)}:"):
                self.line(f"{variable} = {self.const(cap)}")

    # weights and the total ------------------------------------------------------------------
    def weights(self, indicators: dict[str, tuple[str, str, str, str | None]]
                ) -> tuple[str, str]:
        """The total score's variable, and the source of the IndicatorResult tuple."""
        role = self.role
        fixed = [name for name, _ in role.weights]
        extra: list[str] = []
        for adjustment in role.adjustments:
            for name in (adjustment.source, adjustment.target):
                if name not in fixed and name not in extra:
                    extra.append(name)
        if len(extra) > 1 or any(n not in indicators for n in fixed + extra):
            raise _NotCompilable("adjustments adding several indicators")
        weight = {name: self.fresh("w") for name in fixed + extra}
        present = {name: self.fresh("p") for name in extra}
        self.line("# weights")
        for name, points in role.weights:
            self.line(f"{weight[name]} = {self.const(points)}")
        for name in extra:
            self.line(f"{present[name]} = False")
        actives = []
        for adjustment in role.adjustments:
            active = self.fresh("adj")
            actives.append(active)

            def inactive(active: str = active) -> None:
                self.line(f"{active} = False")

            self.checked_value(adjustment.when, active, inactive)
            with self.block(f"if {active}:"):
                shift = self.const(adjustment.points)
                for name, sign in ((adjustment.source, "-"), (adjustment.target, "+")):
                    if name in present:
                        self.line(f"{weight[name]} = ({weight[name]} if {present[name]} else "
                                  f"ZERO) {sign} {shift}")
                        self.line(f"{present[name]} = True")
                    else:
                        self.line(f"{weight[name]} = {weight[name]} {sign} {shift}")
        denominator = self.fresh("den")
        self.line(f"{denominator} = ZERO")
        for name in fixed + extra:
            status = indicators[name][0]
            test = f"{present[name]} and " if name in present else ""
            with self.block(f"if {test}{status} == 'scored':"):
                self.line(f"{denominator} = {denominator} + {weight[name]}")
        with self.block(f"if {denominator} == 0:"):
            self.hand_over()
        total = self.fresh("total")
        self.line(f"{total} = ZERO")
        # Everyone whose indicators are all scored, and no adjustment applies to, has the
        # same shares (the same sums and divisions): worked out here, in the context the
        # function runs in, and shared.
        whole = self.fresh("whole")
        with decimal.localcontext(_CONTEXT):
            full = ZERO
            for _, points in role.weights:
                full = full + points
            fixed_share = {name: points / full if full else ZERO
                           for name, points in role.weights}
        every = [f"{indicators[name][0]} == 'scored'" for name in fixed]
        self.line(f"{whole} = " + " and ".join(every + [f"not {a}" for a in actives]))
        shares_seen = self.fresh("_shares")
        self.namespace[shares_seen] = {}
        results = []
        shares: dict[str, str] = {}
        for name in fixed + extra:
            status, value, score, step = indicators[name]
            share, part = self.fresh("sh"), self.fresh("c")
            shares[name] = share
            test = f"{present[name]} and " if name in present else ""
            with self.block(f"if {test}{status} == 'scored':"):
                if name in fixed_share:
                    self.line(f"if {whole}:")
                    self.line(f"    {share} = {self.const(fixed_share[name])}")
                    self.line("else:")
                    self.depth += 1
                self.line(f"{share} = {weight[name]} / {denominator}")
                # the few shares an indicator can have, one object each (results keep them)
                self.line(f"{share} = {shares_seen}.setdefault({share}, {share})")
                if name in fixed_share:
                    self.depth -= 1
                self.line(f"{part} = {share} * {score}")
            with self.block("else:"):
                self.line(f"{share} = {part} = ZERO")
            if name in present:
                with self.block(f"if {present[name]}:"):
                    self.line(f"{total} = {total} + {part}")
            else:
                self.line(f"{total} = {total} + {part}")
            result = self.fresh("ir")
            self.make(result, IndicatorResult, [
                repr(name), status, f"None if {value} is _MISSING else {value}",
                f"None if {score} is _MISSING else {score}", share, step or "None"])
            results.append(result)
        for name in indicators:
            self.known[f"weight.{name}"] = (shares.get(name, "ZERO"), False)
        self.known["total_score"] = (total, False)
        if extra:
            name = extra[0]
            listed = "(" + "".join(r + ", " for r in results[:-1]) + ")"
            tuple_source = f"({listed} + (({results[-1]},) if {present[name]} else ()))"
        else:
            tuple_source = "(" + "".join(r + ", " for r in results) + ")"
        return total, tuple_source

    # gates, tier, pay mix -------------------------------------------------------------------
    def gates(self) -> list[tuple[str, str]]:
        found = []
        for gate in self.policy.gates:
            if gate.roles is not None and self.role.name not in gate.roles:
                found.append((gate.name, "None"))
                self.known[f"gate.{gate.name}"] = ("False", False)
                continue
            self.line(f"# gate {gate.name}")
            passed = self.fresh("g")

            def missing(passed: str = passed) -> None:
                self.line(f"{passed} = None")

            self.checked_value(gate.when, passed, missing)
            self.line(f"{passed} = None if {passed} is None else bool({passed})")
            found.append((gate.name, passed))
            self.known[f"gate.{gate.name}"] = (f"({passed} is True)", False)
        return found

    def gate_pair(self, name: str, passed: str) -> str:
        """The (gate, passed) pair of a result: one of three shared tuples."""
        pairs = self.fresh("_gate")
        self.namespace[pairs] = {value: (name, value) for value in (True, False, None)}
        return f"{pairs}[{passed}]"

    def tier(self, total: str) -> tuple[str, str]:
        tiers = self.policy.tiers
        if tiers is None:
            self.known["tier.name"] = ("''", False)
            self.known["tier.multiplier"] = ("ONE", False)
            return "''", "ZERO"
        self.line("# tier")
        score = total
        if tiers.by is not None:
            score = self.fresh("ts")
            source, absent = self.expression(tiers.by)
            if absent:
                with self.block(f"if {absent}:"):
                    self.hand_over()
            self.line(f"{score} = {source}")
        name, multiplier = self.fresh("tn"), self.fresh("tm")
        keyword = "if"
        for band in tiers.bands:
            test = f"{score} >= {self.const(band.low)}"
            if band.high is not None:
                test += f" and {score} < {self.const(band.high)}"
            with self.block(f"{keyword} {test}:"):
                self.line(f"{name}, {multiplier} = {band.name!r}, {self.const(band.multiplier)}")
            keyword = "elif"
        with self.block("else:"):
            self.line(f"{name}, {multiplier} = '', ZERO")
        self.known["tier.name"] = (name, False)
        self.known["tier.multiplier"] = (multiplier, False)
        return name, multiplier

    def pay_mix(self) -> None:
        mix = self.policy.pay_mix
        if mix is None:
            return
        self.line("# pay mix")
        target, _ = self.resolve(mix.of)
        with self.block(f"if {target} is _MISSING:"):
            self.hand_over()
        base, variable = self.fresh("pb"), self.fresh("pv")
        self.line(f"{base} = {target} * {self.const(mix.base)}")
        self.line(f"{variable} = {target} * {self.const(mix.variable)}")
        self.known["pay_mix.base"] = (base, False)
        self.known["pay_mix.variable"] = (variable, False)

    def value(self, expr: Expr | None, target: str) -> None:
        """target = the expression; a missing name is evaluate_employee's to report."""
        source, absent = self.expression(expr)
        if absent:
            with self.block(f"if {absent}:"):
                self.hand_over()
        self.line(f"{target} = {source}")

    # rewards --------------------------------------------------------------------------------
    def rewards(self) -> tuple[list[str], list[str]]:
        """The RewardResult variables, and the amounts that add up to the total pay."""
        results, amounts = [], []
        for reward in self.policy.rewards:
            if reward.roles is not None and self.role.name not in reward.roles:
                continue
            self.line(f"# reward {reward.name}")
            result = self.fresh("r")
            if not reward.is_money:
                self.outcome(reward, result)
            elif reward.kind == "pool":
                pending = RewardResult(reward.name, reward.kind, ZERO, None, "pending")
                self.line(f"{result} = {self.shared(pending)}")
                self.known[f"reward.{reward.name}"] = ("ZERO", False)
                amounts.append("ZERO")
            else:
                amounts.append(self.money(reward, result))
            results.append(result)
        return results, amounts

    def outcome(self, reward: RewardDecl, result: str) -> None:
        granted = self.fresh("og")
        if reward.when is None:
            self.line(f"{granted} = True")
        else:
            def missing() -> None:
                self.line(f"{granted} = False")

            self.checked_value(reward.when, granted, missing)
            self.line(f"{granted} = bool({granted})")
        if reward.select is None:  # two possible results, made once
            yes = RewardResult(reward.name, reward.kind, None, True, "granted")
            no = RewardResult(reward.name, reward.kind, None, False, "not_granted")
            self.line(f"{result} = {self.shared(yes)} if {granted} else {self.shared(no)}")
            return
        status, measure, tie = self.fresh("os"), self.fresh("om"), self.fresh("ot")
        self.line(f"{measure} = {tie} = None")
        self.line(f"{status} = 'pending' if {granted} else 'not_granted'")
        select = reward.select
        with self.block(f"if {granted}:"):
            def lost() -> None:
                self.line(f"{granted}, {status} = False, 'not_granted'")

            source, absent = self.expression(select.by)
            tie_source, tie_absent = ("", "")
            if select.tie_break is not None:
                tie_source, tie_absent = self.expression(select.tie_break)
            if absent:
                with self.block(f"if {absent}:"):
                    lost()
                self.line("else:")
                self.depth += 1
            with self.block("try:"):
                self.line(f"{measure} = {source}")
                if select.tie_break is not None:
                    if tie_absent:
                        with self.block(f"if {tie_absent}:"):
                            self.line("raise _MissingValue")
                    self.line(f"{tie} = {tie_source}")
            with self.block("except _MissingValue:"):
                lost()
            if absent:
                self.depth -= 1
        self.make(result, RewardResult, [repr(reward.name), repr(reward.kind), "None", granted,
                                         status, measure, tie, "None"])

    def money(self, reward: RewardDecl, result: str) -> str:
        """An amount or commission line; returns the variable of its rounded amount."""
        gate = "True"
        if reward.gate is not None:
            gate = self.known.get(f"gate.{reward.gate}", ("False", False))[0]
        gate_open = self.fresh("go")
        self.line(f"{gate_open} = {gate}")
        amount, bracket = self.fresh("am"), self.fresh("br")
        self.line(f"{bracket} = None")
        if reward.kind == "amount":
            with self.block(f"if not {gate_open}:"):
                if reward.else_amount is None:
                    self.line(f"{amount} = ZERO")
                else:
                    self.value(reward.else_amount, amount)
            with self.block("else:"):
                self.value(reward.amount, amount)
            with self.block("if item.proration != ONE:"):
                self.line(f"{amount} = {amount} * item.proration")
        else:
            self.commission(reward, gate_open, amount, bracket)
        for bound, expr in (("cap", reward.cap), ("floor", reward.floor)):
            if expr is None:
                continue
            limit = self.fresh("lim")
            self.value(expr, limit)
            compare = ">" if bound == "cap" else "<"
            with self.block(f"if {amount} {compare} {limit}:"):
                self.line(f"{amount} = {limit}")
        rounded = self.fresh("ra")
        self.round(amount, rounded)
        self.make(result, RewardResult, [
            repr(reward.name), repr(reward.kind), rounded, "None",
            f"'paid' if {gate_open} else 'gate_failed'", "None", "None", bracket])
        self.known[f"reward.{reward.name}"] = (rounded, False)
        return rounded

    def round(self, amount: str, rounded: str) -> None:
        places = self.const(Decimal(1).scaleb(-self.policy.places))
        self.line(f"{rounded} = {amount}.quantize({places}, "
                  f"rounding={self.policy.rounding!r})")
        with self.block(f"if not {rounded}:"):
            self.line(f"{rounded} = {rounded}.copy_abs()")

    def commission(self, reward: RewardDecl, gate_open: str, total: str, reached: str) -> None:
        """total = the commission (each month's rounded, when paid monthly); reached = the
        highest bracket a base reached with the gate open."""
        self.line(f"{total} = ZERO")
        base = self.fresh("b")
        if reward.paid == "monthly":
            with self.block("if item.month_facts:"):
                month = self.fresh("mf")
                with self.block(f"for {month} in item.month_facts:"):
                    names = {}
                    for name in sorted(reward.base.reads if reward.base else ()):
                        variable = self.fresh("mb")
                        self.line(f"{variable} = {month}.get({name!r}, "
                                  f"{self.resolve(name)[0]})")
                        names[name] = variable
                    source, absent = self.expression(reward.base, names)
                    if absent:
                        self.line(f"{base} = ZERO if {absent} else {source}")
                    else:
                        self.line(f"{base} = {source}")
                    self.commission_on(reward, gate_open, base, total, reached, monthly=True)
            self.line("else:")
            self.depth += 1
        self.value(reward.base, base)
        self.commission_on(reward, gate_open, base, total, reached, monthly=False)
        if reward.paid == "monthly":
            self.depth -= 1

    def commission_on(self, reward: RewardDecl, gate_open: str, base: str, total: str,
                      reached: str, *, monthly: bool) -> None:
        amount = self.fresh("ca")
        with self.block(f"if not {gate_open}:"):
            if reward.else_rate is not None:
                self.line(f"{amount} = {base} * {self.const(reward.else_rate)}")
            elif reward.else_amount is not None:
                self.value(reward.else_amount, amount)
            else:
                self.line(f"{amount} = ZERO")
        with self.block("else:"):
            self.table(reward, base, amount)
            index = self.fresh("bi")
            keyword = "if"
            brackets = reward.brackets
            for position, bracket in enumerate(brackets):
                if bracket.upto is None:
                    break
                with self.block(f"{keyword} {base} <= {self.const(bracket.upto)}:"):
                    self.line(f"{index} = {position}")
                keyword = "elif"
            if keyword == "if":
                self.line(f"{index} = 0")
            else:
                with self.block("else:"):
                    stop = next((i for i, b in enumerate(brackets) if b.upto is None),
                                len(brackets) - 1)
                    self.line(f"{index} = {stop}")
            self.line(f"{reached} = {index} if {reached} is None or {index} > {reached} "
                      f"else {reached}")
        if monthly:
            self.round(amount, amount)
        self.line(f"{total} = {total} + {amount}")

    def table(self, reward: RewardDecl, base: str, amount: str) -> None:
        """amount = the commission on base under the reward's brackets."""
        brackets = reward.brackets
        if reward.mode == "graduated":
            self.line(f"{amount} = ZERO")
            lower = "ZERO"
            for bracket in brackets:
                self.line(f"if {base} > {lower}:")
                self.depth += 1
                top = self.fresh("top")
                if bracket.upto is None:
                    self.line(f"{top} = {base}")
                else:
                    upto = self.const(bracket.upto)
                    self.line(f"{top} = {upto} if {upto} < {base} else {base}")
                self.line(f"{amount} = {amount} + ({top} - {lower}) * "
                          f"{self.const(bracket.rate)}")
                if bracket.upto is None:
                    break
                lower = self.const(bracket.upto)
            opened = next((i + 1 for i, b in enumerate(brackets) if b.upto is None),
                          len(brackets))
            self.depth -= opened  # the nested ifs, one per bracket reached
        elif reward.mode == "interpolated":
            name = f"_brackets{len(self.namespace)}"
            self.namespace[name] = brackets
            self.line(f"{amount} = {base} * _interpolated({name}, {base})")
        else:
            keyword = "if"
            for bracket in brackets:
                if bracket.upto is None:
                    break
                with self.block(f"{keyword} {base} <= {self.const(bracket.upto)}:"):
                    self.line(f"{amount} = {base} * {self.const(bracket.rate)}")
                keyword = "elif"
            chosen = next((b for b in brackets if b.upto is None), brackets[-1])
            if keyword == "if":
                self.line(f"{amount} = {base} * {self.const(chosen.rate)}")
            else:
                with self.block("else:"):
                    self.line(f"{amount} = {base} * {self.const(chosen.rate)}")

    def tie_break(self) -> str:
        tiers = self.policy.tiers
        distribution = tiers.distribution if tiers is not None else None
        if distribution is None or distribution.tie_break is None:
            return "None"
        tie = self.fresh("tb")

        def missing() -> None:
            self.line(f"{tie} = None")

        self.checked_value(distribution.tie_break, tie, missing)
        return tie


class _Indent:
    def __init__(self, writer: _Writer) -> None:
        self.writer = writer
        writer.depth += 1

    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        self.writer.depth -= 1
