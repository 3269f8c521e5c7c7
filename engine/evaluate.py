"""Evaluate compiled policies against employees' facts, exactly, with a trace of every step.

Per employee (independent of everyone else, so the population partitions cleanly):
facts -> indicator values -> scores -> weighted total -> gates -> tier -> rewards.
Then the population stage, which needs everyone: selections (top N, top percent),
distribution caps and team pools.

Numbers are Decimals throughout. Scores and rates are computed in a local context of
PRECISION significant digits; money rounds once per reward line by the policy's rule.
"""

from __future__ import annotations

import decimal
import functools
import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from types import MappingProxyType
from typing import Any

from .diagnostics import Diagnostic, Location, MeritpayError, Severity
from .expr import MISSING, MissingValue, series_read
from .model import (
    Band,
    Bracket,
    CompiledPolicy,
    Curve,
    Expr,
    IndicatorDecl,
    RewardDecl,
    RoleDecl,
)

PRECISION = 28
ZERO = Decimal(0)
ONE = Decimal(1)


class EvaluationError(MeritpayError):
    """An employee cannot be evaluated (a missing fact with no fallback, a zero divisor...)."""

    exit_code = 2


@dataclass(frozen=True)
class SeriesRead:
    """Traced only: one month, earlier period or complete fiscal year that a month-, period-
    or year-wise function of the expression walks, with the values read there."""

    over: str  # month, period, year
    label: str  # 2025-07; period -1 (the one before, skipping periods with no rows); 2023
    reads: tuple[tuple[str, Any], ...] | None  # None: no data for it at all


@dataclass(frozen=True)
class TraceEvent:
    """One step of an evaluation: what it read, what it produced, and how it went."""

    step: str  # indicator, score, weight, total, gate, tier, pay_mix, reward, outcome
    name: str
    outcome: str  # applied, failed, missing, excluded, not_applicable
    value: Any
    reads: tuple[tuple[str, Any], ...] = ()
    detail: str = ""
    line: int = 0
    series: tuple[SeriesRead, ...] = ()  # what months()/consecutive_years()... walked


@dataclass(frozen=True, slots=True)
class IndicatorResult:
    name: str
    status: str  # scored, excluded, not_applicable
    value: Decimal | None
    score: Decimal | None
    weight: Decimal  # after adjustments and renormalisation; 0 when not counted
    step: int | None = None  # a steps curve: the index of the step the value reached

    @property
    def contribution(self) -> Decimal:
        """weight x score, what the indicator adds to the total score (worked out when asked,
        as the total was: a result of a large run keeps one number fewer per indicator)."""
        if self.status != "scored" or self.score is None:
            return ZERO
        return _SCORING.multiply(self.weight, self.score)


@dataclass(frozen=True, slots=True)
class RewardResult:
    name: str
    kind: str
    amount: Decimal | None  # money kinds
    granted: bool | None  # non-money kinds
    status: str  # paid, gate_failed, not_granted, granted, selected, not_selected, pending
    measure: Decimal | None = None  # what a population selection ranks by
    tie: Decimal | None = None  # the selection's tie-break value
    bracket: int | None = None  # a commission: the highest bracket reached (None: gate failed)


@dataclass(frozen=True)
class EmployeeInput:
    """What one evaluation needs: a segment of an employee's period under one policy."""

    employee: str
    name: str
    role: str
    team: str
    months: tuple[str, ...]
    facts: Mapping[str, Any]  # rolled-up facts; MISSING where absent
    month_facts: tuple[Mapping[str, Any], ...] = ()
    period_facts: tuple[Mapping[str, Any], ...] = ()  # earlier periods, oldest first
    year_facts: tuple[Mapping[str, Any] | None, ...] = ()  # complete fiscal years, oldest first
    proration: Decimal = ONE
    ratings: Mapping[str, tuple[Decimal, ...]] = field(default_factory=dict)
    band_override: str | None = None  # set by a distribution cap in the population stage


@dataclass(frozen=True, slots=True)
class EmployeeResult:
    employee: str
    name: str
    role: str
    team: str
    months: tuple[str, ...]
    policy: str
    version: str
    currency: str
    proration: Decimal
    indicators: tuple[IndicatorResult, ...]
    total_score: Decimal
    gates: tuple[tuple[str, bool | None], ...]
    tier: str
    multiplier: Decimal
    rewards: tuple[RewardResult, ...]
    total_pay: Decimal
    trace: tuple[TraceEvent, ...] = field(default=(), compare=False)
    tie_break: Decimal | None = None  # the distribution cap's tie-break value
    rank: int = 0  # by total score within the role, 1 = best; ties share a rank
    percentile: Decimal = Decimal(0)  # share of the role scoring strictly lower

    def reward(self, name: str) -> RewardResult | None:
        return next((r for r in self.rewards if r.name == name), None)


def decimal_context() -> decimal.Context:
    """The context every score and rate is computed in: PRECISION digits, floats trapped."""
    return decimal.Context(prec=PRECISION, rounding=decimal.ROUND_HALF_EVEN,
                           traps=[decimal.InvalidOperation, decimal.DivisionByZero,
                                  decimal.Overflow, decimal.FloatOperation])


_SCORING = decimal_context()  # IndicatorResult.contribution's


def divides_by_zero(error: BaseException) -> bool:
    """Whether a decimal error is a division by zero: x/0 (DivisionByZero) or 0/0, which
    the C decimal module raises as InvalidOperation listing DivisionUndefined."""
    if isinstance(error, ZeroDivisionError):
        return True
    conditions = error.args[0] if error.args and isinstance(error.args[0], list) else []
    return any(c in (decimal.DivisionUndefined, decimal.DivisionByZero) for c in conditions)


def round_money(amount: Decimal, places: int, rounding: str) -> Decimal:
    """The one rounding of a money amount, to the policy's places and mode; a result of zero
    has no sign (-0.004 rounded is 0.00, never -0.00)."""
    rounded = amount.quantize(Decimal(1).scaleb(-places), rounding=rounding)
    return rounded.copy_abs() if rounded.is_zero() else rounded


def money(value: Decimal, places: int = 2) -> str:
    """1234567.5 -> '1,234,567.50' (locale-independent)."""
    return f"{value:,.{places}f}"


def show(value: Any) -> str:
    if value is MISSING:
        return "missing"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Decimal):
        return format(value.normalize(), "f")
    return str(value)


class _Missing(Exception):
    def __init__(self, names: list[str]) -> None:
        super().__init__(", ".join(names))
        self.names = names


class _Evaluator:
    def __init__(self, policy: CompiledPolicy, item: EmployeeInput, trace: bool) -> None:
        self.policy = policy
        self.item = item
        self.tracing = trace
        self.events: list[TraceEvent] = []
        env: dict[str, Any] = dict(item.facts)
        env["@months"] = item.month_facts
        env["@periods"] = (*item.period_facts, item.facts)
        env["@years"] = item.year_facts
        self.env = env
        self.view = MappingProxyType(env)  # what expressions get: read-only
        self.rule: tuple[str, int] = ("the evaluation", 0)  # the rule being evaluated
        self.current: Expr | None = None  # the expression being evaluated, until it returns

    # helpers --------------------------------------------------------------------------------
    def record(self, step: str, name: str, outcome: str, value: Any, expr: Expr | None = None,
               detail: str = "", line: int = 0) -> None:
        if not self.tracing:
            return
        reads: tuple[tuple[str, Any], ...] = ()
        series: tuple[SeriesRead, ...] = ()
        if expr is not None:
            get = self.env.get
            reads = tuple((n, get(n, MISSING)) for n in expr.sorted_reads)
            line = line or expr.line
            detail = detail or expr.text
            series = self.series(expr) if expr.inner_reads else ()
        self.events.append(TraceEvent(step, name, outcome, value, reads, detail, line, series))

    def series(self, expr: Expr) -> tuple[SeriesRead, ...]:
        """Traced only: every month, earlier period or fiscal year the expression's month-,
        period- or year-wise functions walk, with the values of the names read inside them."""
        names = sorted(expr.inner_reads)

        def reads(entry: Mapping[str, Any]) -> tuple[tuple[str, Any], ...]:
            return tuple((n, entry.get(n, MISSING)) for n in names)

        found: list[SeriesRead] = []
        walked = series_read(expr.function)
        if "@months" in walked:
            found += [SeriesRead("month", month, reads(entry)) for month, entry
                      in zip(self.item.months, self.item.month_facts, strict=False)]
        if "@periods" in walked:
            periods = self.env["@periods"]
            found += [SeriesRead("period", f"period -{len(periods) - 1 - i}" if
                                 i < len(periods) - 1 else "current", reads(entry))
                      for i, entry in enumerate(periods)]
        if "@years" in walked and self.item.months:
            year, month = map(int, self.item.months[0].split("-"))
            start = self.policy.fiscal_start
            current = year if month >= start else year - 1
            years = self.item.year_facts
            for i, entry in enumerate(years):
                number = current - len(years) + i
                label = str(number) if start == 1 else f"{number}/{(number + 1) % 100:02d}"
                found.append(SeriesRead("year", label, None if entry is None else reads(entry)))
        return tuple(found)

    def fail(self, code: str, message: str, hint: str, line: int,
             column: int = 0) -> EvaluationError:
        item = self.item
        diagnostic = Diagnostic(code, Severity.ERROR, Location(self.policy.source, line, column),
                                f"employee {item.employee} ({item.role}): {message}", hint)
        return EvaluationError(diagnostic.render(), [diagnostic])

    def run(self, expr: Expr) -> Any:
        """Evaluate; raise _Missing when it reads a missing value."""
        env = self.env
        absent = [n for n in expr.reads if env.get(n, MISSING) is MISSING]
        if absent:
            raise _Missing(sorted(absent))
        self.current = expr
        try:
            value = expr.function(self.view)
        except MissingValue:  # a month, period or year inside months() etc. lacks a value
            self.current = None
            raise _Missing(sorted(expr.inner_reads) or ["a value"]) from None
        self.current = None
        return value

    def failure(self, error: Exception) -> EvaluationError:
        """The engine's own error for arithmetic that fails or a value still missing, naming
        the rule, the employee and the expression's line."""
        what, line = self.rule
        expr, column = self.current, 0
        if expr is not None:
            line, column = expr.line, expr.column
        text = f" in '{expr.text}'" if expr is not None else ""
        if isinstance(error, MissingValue):
            error = _Missing(sorted(expr.inner_reads) if expr is not None else ["a value"])
        if isinstance(error, _Missing):
            return self.fail("E_EVAL_MISSING_FACT", f"{what} reads {', '.join(error.names)}, "
                             f"which is missing{text}", "add the fact, or give it a default",
                             line, column)
        if divides_by_zero(error):
            return self.fail("E_EVAL_DIVIDE_BY_ZERO", f"{what} divides by zero{text}",
                             "use safe_div(a, b, fallback)", line, column)
        reason = "a number grows too large" if isinstance(error, decimal.Overflow) \
            else "a result needs more digits than the precision"
        return self.fail("E_EVAL_ARITHMETIC", f"{what}: {reason}{text}",
                         f"numbers are exact to {PRECISION} digits; check the facts' sizes "
                         "and the expression", line, column)

    # the pipeline ---------------------------------------------------------------------------
    def evaluate(self) -> EmployeeResult:
        policy, item = self.policy, self.item
        role = policy.roles[item.role]
        with decimal.localcontext(decimal_context()):
            try:
                indicators = self.indicators(role)
                total = self.env["total_score"]
                gates = self.gates()
                band = self.tier()
                if policy.pay_mix is not None:
                    self.rule = ("pay_mix", 0)
                    self.pay_mix()
                rewards = self.rewards()
                tie_break = None
                distribution = policy.tiers.distribution if policy.tiers else None
                if distribution is not None and distribution.tie_break is not None:
                    self.rule = ("the distribution's tie-break", 0)
                    try:
                        tie_break = self.run(distribution.tie_break)
                    except _Missing:
                        tie_break = None
            except decimal.FloatOperation:
                raise  # a float in the money path is our bug, never the input's
            except (ArithmeticError, _Missing, MissingValue) as error:
                raise self.failure(error) from None
        total_pay = sum((r.amount for r in rewards if r.amount is not None), ZERO)
        return EmployeeResult(
            employee=item.employee, name=item.name, role=item.role, team=item.team,
            months=item.months, policy=policy.policy, version=policy.version,
            currency=policy.currency, proration=item.proration, indicators=indicators,
            total_score=total, gates=gates, tier=band.name if band else "",
            multiplier=band.multiplier if band else ZERO, rewards=rewards, total_pay=total_pay,
            trace=tuple(self.events), tie_break=tie_break)

    def indicators(self, role: RoleDecl) -> tuple[IndicatorResult, ...]:
        values: dict[str, tuple[str, Decimal | None, Decimal | None]] = {}
        needed = self.policy.role_indicators.get(role.name)
        for decl in self.policy.indicators:
            if needed is not None and decl.name not in needed:
                continue  # no rule of this role reads it
            self.rule = (f"indicator '{decl.name}'", decl.rule.line)
            status, value, score = self.indicator(decl, values)
            values[decl.name] = (status, value, score)
            self.env[decl.name] = value if value is not None else MISSING
            self.env[f"score.{decl.name}"] = score if score is not None else MISSING
        weights = self.weights(role)
        self.rule = ("the total score", role.rule.line)
        counted = {n: w for n, w in weights.items() if values.get(n, ("", None, None))[0]
                   == "scored"}
        denominator = sum(counted.values(), ZERO)
        if denominator == 0:
            raise self.fail("E_EVAL_NO_INDICATORS", "no weighted indicator applies, so there is "
                            "no total score", "check applies_when and missing: exclude",
                            role.rule.line)
        results = []
        total = ZERO
        decls = {d.name: d for d in self.policy.indicators}
        for name, _ in role.weights + tuple((n, w) for n, w in weights.items()
                                            if n not in dict(role.weights)):
            status, value, score = values[name]
            share = counted[name] / denominator if name in counted else ZERO
            contribution = share * score if score is not None and name in counted else ZERO
            total += contribution
            self.env[f"weight.{name}"] = share
            curve = decls[name].curve
            step = step_index(curve, value) if curve.kind == "steps" and value is not None \
                else None
            results.append(IndicatorResult(name, status, value, score, share, step))
        for name in values:
            self.env.setdefault(f"weight.{name}", ZERO)
        self.env["total_score"] = total
        self.record("total", "total_score", "applied", total,
                    detail=" + ".join(f"{show(r.weight)} x {show(r.score)}" for r in results
                                      if r.status == "scored" and r.weight)
                    + (f" (renormalised over {show(denominator)})" if denominator != ONE else ""),
                    line=role.rule.line)
        return tuple(results)

    def weights(self, role: RoleDecl) -> dict[str, Decimal]:
        weights = dict(role.weights)
        self.rule = (f"a weight adjustment of role '{role.name}'", role.rule.line)
        for adjustment in role.adjustments:
            try:
                active = bool(self.run(adjustment.when))
            except _Missing:
                active = False
            if active:
                weights[adjustment.source] = weights.get(adjustment.source, ZERO) \
                    - adjustment.points
                weights[adjustment.target] = weights.get(adjustment.target, ZERO) \
                    + adjustment.points
            self.record("weight", f"{role.name}: {adjustment.source} -> {adjustment.target}",
                        "applied" if active else "failed", adjustment.points, adjustment.when)
        return weights

    def indicator(self, decl: IndicatorDecl, values: Mapping[str, tuple[str, Decimal | None,
                                                                        Decimal | None]]
                  ) -> tuple[str, Decimal | None, Decimal | None]:
        line = decl.rule.line
        if decl.applies_when is not None:
            try:
                applies = bool(self.run(decl.applies_when))
            except _Missing:
                applies = False
            if not applies:
                self.record("indicator", decl.name, "not_applicable", None, decl.applies_when)
                return "not_applicable", None, None
        try:
            value = self.raw_value(decl, values)
        except _Missing as missing:
            return self.fallback(decl, "missing", f"{', '.join(missing.names)} is missing",
                                 decl.value, line)
        except ArithmeticError as error:
            if isinstance(error, decimal.FloatOperation) or not divides_by_zero(error):
                raise
            self.current = None
            return self.fallback(decl, "divide_by_zero", "it divides by zero", decl.value, line)
        if value is None:
            self.record("indicator", decl.name, "excluded", None, decl.value, line=line,
                        detail="no part of it could be scored")
            return "excluded", None, None
        score = self.score(decl.curve, value)
        self.record("indicator", decl.name, "applied", value, decl.value, line=line)
        self.record("score", decl.name, "applied", score, detail=curve_text(decl.curve),
                    line=line)
        return "scored", value, score

    def fallback(self, decl: IndicatorDecl, reason: str, why: str, expr: Expr | None,
                 line: int) -> tuple[str, Decimal | None, Decimal | None]:
        rule = decl.missing if reason == "missing" else decl.divide_by_zero
        if rule == "zero":
            score = self.score(decl.curve, ZERO)
            self.record("indicator", decl.name, "missing" if reason == "missing" else "applied",
                        ZERO, expr, detail=f"{why}: counted as 0 ({reason}: zero)", line=line)
            self.record("score", decl.name, "applied", score, detail=curve_text(decl.curve),
                        line=line)
            return "scored", ZERO, score
        if rule == "exclude":
            self.record("indicator", decl.name, "excluded", None, expr,
                        detail=f"{why}: left out and weights renormalised ({reason}: exclude)",
                        line=line)
            return "excluded", None, None
        code = "E_EVAL_MISSING_FACT" if reason == "missing" else "E_EVAL_DIVIDE_BY_ZERO"
        raise self.fail(code, f"indicator '{decl.name}' cannot be computed: {why}"
                        + (f" ({expr.text})" if expr else ""),
                        f"fix the facts, or declare {reason}: zero or exclude on the indicator",
                        expr.line if expr else line, expr.column if expr else 0)

    def raw_value(self, decl: IndicatorDecl, values: Mapping[str, tuple[str, Decimal | None,
                                                                        Decimal | None]]
                  ) -> Decimal | None:
        if decl.value is not None:
            result: Decimal = self.run(decl.value)
            return result
        if decl.raters is not None:
            return self.raters(decl)
        parts = decl.parts or tuple(
            (kr, objective.weight * weight)
            for objective in decl.objectives for kr, weight in objective.key_results)
        scored = [(values[name][2], weight) for name, weight in parts
                  if values[name][0] == "scored"]
        total_weight = sum((w for _, w in scored), ZERO)
        if not scored or total_weight == 0:
            return None
        return sum(((s or ZERO) * w for s, w in scored), ZERO) / total_weight

    def raters(self, decl: IndicatorDecl) -> Decimal | None:
        assert decl.raters is not None
        raters = decl.raters
        weighted, weights = ZERO, ZERO
        for group in raters.groups:
            scores = self.item.ratings.get(f"{decl.name}:{group.name}",
                                           self.item.ratings.get(group.name, ()))
            if len(scores) >= group.min_raters and scores:
                mean = sum(scores, ZERO) / len(scores)
                self.record("rating", f"{decl.name}.{group.name}", "applied", mean,
                            detail=f"mean of {len(scores)} rating(s), weight "
                            f"{show(group.weight)}", line=decl.rule.line)
            elif raters.missing_group == "default":
                assert raters.default_score is not None
                mean = raters.default_score
                self.record("rating", f"{decl.name}.{group.name}", "missing", mean,
                            detail=f"{len(scores)} rating(s), {group.min_raters} needed: the "
                            f"default score {show(mean)} is used", line=decl.rule.line)
            elif raters.missing_group == "fail":
                raise self.fail("E_EVAL_RATINGS", f"rater group '{group.name}' of "
                                f"'{decl.name}' has {len(scores)} rating(s); "
                                f"{group.min_raters} needed",
                                "collect the ratings, or declare missing_group: renormalize",
                                decl.rule.line)
            else:
                self.record("rating", f"{decl.name}.{group.name}", "excluded", None,
                            detail=f"{len(scores)} rating(s), {group.min_raters} needed: left "
                            "out, the other groups renormalised", line=decl.rule.line)
                continue
            weighted += group.weight * mean
            weights += group.weight
        if weights == 0:
            raise _Missing([f"ratings for {decl.name}"])
        return weighted / weights

    def score(self, curve: Curve, value: Decimal) -> Decimal:
        kind = curve.kind
        if kind == "identity":
            return value
        if kind == "linear":
            assert curve.zero_at is not None and curve.full_at is not None
            raw = (value - curve.zero_at) / (curve.full_at - curve.zero_at)
            return _bound(raw, curve.floor, curve.cap)
        if kind == "threshold":
            assert curve.at is not None
            met = value <= curve.at if curve.lower_is_better else value >= curve.at
            return curve.above if met else curve.below
        if kind == "steps":
            index = step_index(curve, value)
            return curve.steps[index][1] if index is not None else ZERO
        assert curve.expression is not None
        env = dict(self.env)
        env["value"] = value
        absent = [n for n in curve.expression.reads if env.get(n, MISSING) is MISSING]
        if absent:
            raise _Missing(sorted(absent))
        self.current = curve.expression
        result: Decimal = curve.expression.function(MappingProxyType(env))
        self.current = None
        return _bound(result, curve.floor, curve.cap)

    def gates(self) -> tuple[tuple[str, bool | None], ...]:
        results: list[tuple[str, bool | None]] = []
        for gate in self.policy.gates:
            self.rule = (f"gate '{gate.name}'", gate.rule.line)
            if gate.roles is not None and self.item.role not in gate.roles:
                results.append((gate.name, None))
                self.env[f"gate.{gate.name}"] = False
                continue
            try:
                passed: bool | None = bool(self.run(gate.when))
                outcome = "applied" if passed else "failed"
            except _Missing:
                passed, outcome = None, "missing"
            self.env[f"gate.{gate.name}"] = bool(passed)
            self.record("gate", gate.name, outcome, passed, gate.when)
            results.append((gate.name, passed))
        return tuple(results)

    def tier(self) -> Band | None:
        tiers = self.policy.tiers
        if tiers is None:
            self.env["tier.name"], self.env["tier.multiplier"] = "", ONE
            return None
        self.rule = ("the tier", tiers.rule.line)
        score = self.run(tiers.by) if tiers.by is not None else self.env["total_score"]
        band = find_band(tiers.bands, score)
        if self.item.band_override is not None:
            capped = next(b for b in tiers.bands if b.name == self.item.band_override)
            self.record("tier", capped.name, "applied", score, tiers.by,
                        detail=f"{band_text(tiers.bands, band, score)}; moved to {capped.name} "
                        "by the distribution cap", line=tiers.rule.line)
            self.env["tier.name"], self.env["tier.multiplier"] = capped.name, capped.multiplier
            return capped
        self.env["tier.name"] = band.name if band else ""
        self.env["tier.multiplier"] = band.multiplier if band else ZERO
        self.record("tier", band.name if band else "none", "applied" if band else "failed",
                    score, tiers.by, detail=band_text(tiers.bands, band, score),
                    line=tiers.rule.line)
        return band

    def pay_mix(self) -> None:
        mix = self.policy.pay_mix
        assert mix is not None
        target = self.env.get(mix.of, MISSING)
        if target is MISSING:
            raise self.fail("E_EVAL_MISSING_FACT", f"pay_mix reads '{mix.of}', which is missing",
                            "add the fact to the facts file", 0)
        self.env["pay_mix.base"] = target * mix.base
        self.env["pay_mix.variable"] = target * mix.variable
        if self.tracing:
            self.events.append(TraceEvent(
                "pay_mix", mix.of, "applied", target, ((mix.of, target),),
                f"base {show_rate(mix.base)}, variable {show_rate(mix.variable)}"))

    def rewards(self) -> tuple[RewardResult, ...]:
        results: list[RewardResult] = []
        for reward in self.policy.rewards:
            if reward.roles is not None and self.item.role not in reward.roles:
                continue
            result = self.reward(reward)
            if result.amount is not None:
                self.env[f"reward.{reward.name}"] = result.amount
            results.append(result)
        return tuple(results)

    def reward(self, reward: RewardDecl) -> RewardResult:
        line = reward.rule.line
        self.rule = (f"reward '{reward.name}'", line)
        if not reward.is_money:
            try:
                granted = bool(self.run(reward.when)) if reward.when is not None else True
                outcome = "applied" if granted else "failed"
            except _Missing:
                granted, outcome = False, "missing"
            status = "pending" if granted and reward.select is not None else \
                ("granted" if granted else "not_granted")
            measure = tie = None
            if reward.select is not None and granted:
                try:
                    measure = self.run(reward.select.by)
                    if reward.select.tie_break is not None:
                        tie = self.run(reward.select.tie_break)
                except _Missing:
                    granted, status, outcome = False, "not_granted", "missing"
            self.record("outcome", reward.name, outcome, granted, reward.when, line=line)
            return RewardResult(reward.name, reward.kind, None, granted, status, measure, tie)
        if reward.kind == "pool":
            self.record("reward", reward.name, "pending", None, reward.amount,
                        detail="a team pool, split in the population stage", line=line)
            return RewardResult(reward.name, reward.kind, ZERO, None, "pending")
        gate_open = True
        if reward.gate is not None:
            gate_open = bool(self.env.get(f"gate.{reward.gate}", False))
        try:
            raw, detail, bracket = self.reward_amount(reward, gate_open)
        except _Missing as missing:
            raise self.fail("E_EVAL_MISSING_FACT", f"reward '{reward.name}' reads "
                            f"{', '.join(missing.names)}, which is missing",
                            "add the fact, or give it a default", line) from None
        except ArithmeticError as error:
            if isinstance(error, decimal.FloatOperation) or not divides_by_zero(error):
                raise
            raise self.fail("E_EVAL_DIVIDE_BY_ZERO", f"reward '{reward.name}' divides by zero",
                            "use safe_div(a, b, fallback) in the amount", line) from None
        amount = raw
        if reward.kind == "amount" and self.item.proration != ONE:
            amount = amount * self.item.proration
            detail += f" x {show(self.item.proration)} (prorated)"
        for bound, expr in (("cap", reward.cap), ("floor", reward.floor)):
            if expr is None:
                continue
            limit: Decimal = self.run(expr)
            if (bound == "cap" and amount > limit) or (bound == "floor" and amount < limit):
                detail += f", {bound} {money(limit, self.policy.places)}"
                amount = limit
        rounded = round_money(amount, self.policy.places, self.policy.rounding)
        status = "paid" if gate_open else "gate_failed"
        self.record("reward", reward.name, "applied" if gate_open else "failed", rounded,
                    (reward.amount if gate_open else reward.else_amount) or reward.base,
                    detail=f"{detail} = {money(rounded, self.policy.places)}", line=line)
        return RewardResult(reward.name, reward.kind, rounded, None, status, bracket=bracket)

    def reward_amount(self, reward: RewardDecl, gate_open: bool
                      ) -> tuple[Decimal, str, int | None]:
        """The amount, its arithmetic, and (a commission whose gate is open) the highest
        bracket any of its bases reached."""
        places = self.policy.places
        if reward.kind == "amount":
            if not gate_open:
                if reward.else_amount is None:
                    return ZERO, f"gate {reward.gate} failed: 0", None
                value: Decimal = self.run(reward.else_amount)
                return value, f"gate {reward.gate} failed: {reward.else_amount.text}", None
            assert reward.amount is not None
            value = self.run(reward.amount)
            return value, reward.amount.text, None
        assert reward.base is not None
        bases: list[tuple[str, Decimal]]
        if reward.paid == "monthly" and self.item.month_facts:
            bases = []
            for month, facts in zip(self.item.months, self.item.month_facts, strict=True):
                env = {**self.env, **facts}
                absent = [n for n in reward.base.reads if env.get(n, MISSING) is MISSING]
                self.current = reward.base
                bases.append((month, ZERO if absent else
                              reward.base.function(MappingProxyType(env))))
                self.current = None
        else:
            bases = [("", self.run(reward.base))]
        total, parts, reached = ZERO, [], None
        for month, base in bases:
            if not gate_open:
                if reward.else_rate is not None:
                    amount = base * reward.else_rate
                    text = f"{money(base, places)} x {show_rate(reward.else_rate)} " \
                           f"(gate {reward.gate} failed)"
                elif reward.else_amount is not None:
                    amount = self.run(reward.else_amount)
                    text = f"gate {reward.gate} failed: {reward.else_amount.text}"
                else:
                    amount, text = ZERO, f"gate {reward.gate} failed: 0"
            else:
                amount, text = commission(reward, base, places)
                index = bracket_index(reward.brackets, base)
                reached = index if reached is None else max(reached, index)
            if month:
                amount = round_money(amount, places, self.policy.rounding)
                text = f"{month}: {text}"
            total += amount
            parts.append(text)
        return total, "; ".join(parts), reached


@functools.lru_cache(maxsize=4096)
def curve_text(curve: Curve) -> str:
    """How a curve turns a value into a score, in words (traced only; worked out once)."""
    if curve.kind == "linear":
        return (f"linear: 0 at {show(curve.zero_at)}, 1 at {show(curve.full_at)}, "
                f"between {show(curve.floor)} and {show(curve.cap)}")
    if curve.kind == "threshold":
        side = "at or below" if curve.lower_is_better else "at or above"
        return f"threshold: {show(curve.above)} {side} {show(curve.at)}, else " \
               f"{show(curve.below)}"
    if curve.kind == "steps":
        return "steps: " + ", ".join(f"{show(s)} from {show(f)}" for f, s in curve.steps)
    if curve.kind == "expression":
        assert curve.expression is not None
        return f"expression: {curve.expression.text}"
    return "the value is the score"


def _bound(value: Decimal, floor: Decimal | None, cap: Decimal | None) -> Decimal:
    if floor is not None and value < floor:
        return floor
    if cap is not None and value > cap:
        return cap
    return value


def show_rate(rate: Decimal) -> str:
    return f"{format((rate * 100).normalize(), 'f')}%"


def step_index(curve: Curve, value: Decimal) -> int | None:
    """The index of the last step of a steps curve whose `from` the value reaches."""
    reached = None
    for index, (start, _) in enumerate(curve.steps):
        if value >= start:
            reached = index
    return reached


def bracket_index(brackets: Sequence[Bracket], base: Decimal) -> int:
    """The index of the bracket the base falls in: the first whose `upto` it does not
    exceed (a base on an `upto` stays in that lower bracket), else the last."""
    return next((i for i, b in enumerate(brackets) if b.upto is None or base <= b.upto),
                len(brackets) - 1)


def find_band(bands: Sequence[Band], score: Decimal) -> Band | None:
    """The band whose [from, to) holds the score; a score on a boundary takes the higher band."""
    for band in bands:
        if score >= band.low and (band.high is None or score < band.high):
            return band
    return None


def band_text(bands: Sequence[Band], band: Band | None, score: Decimal) -> str:
    if band is None:
        return f"score {show(score)} is below every band"
    upper = f"below {show(band.high)}" if band.high is not None else "and above"
    return f"score {show(score)} is in band {band.name} (from {show(band.low)} {upper})"


def commission(reward: RewardDecl, base: Decimal, places: int) -> tuple[Decimal, str]:
    """The commission on base under the reward's table, with its arithmetic.

    whole: the rate of the bracket the base falls in applies to all of it;
    graduated: each slice at its own bracket's rate;
    interpolated: the rate between the ends of the brackets around the base, linearly.
    A base exactly on an `upto` belongs to that (lower) bracket.
    """
    brackets = reward.brackets
    if reward.mode == "graduated":
        total, parts, lower = ZERO, [], ZERO
        for bracket in brackets:
            if base <= lower:
                break
            top = base if bracket.upto is None else min(base, bracket.upto)
            piece = top - lower
            total += piece * bracket.rate
            parts.append(f"{money(piece, places)} x {show_rate(bracket.rate)}")
            if bracket.upto is None:
                break
            lower = bracket.upto
        return total, " + ".join(parts) if parts else "0"
    if reward.mode == "interpolated":
        rate = interpolated_rate(brackets, base)
        return base * rate, f"{money(base, places)} x {show_rate(rate)} (interpolated)"
    chosen = next((b for b in brackets if b.upto is None or base <= b.upto), brackets[-1])
    return base * chosen.rate, f"{money(base, places)} x {show_rate(chosen.rate)}"


def interpolated_rate(brackets: Sequence[Any], base: Decimal) -> Decimal:
    """Linear between the (upto, rate) ends of the brackets; flat below the first end and
    above the last; an open last bracket's rate applies above the last end."""
    ends = [(b.upto, b.rate) for b in brackets if b.upto is not None]
    open_rate = next((b.rate for b in brackets if b.upto is None), None)
    if not ends:
        return open_rate if open_rate is not None else ZERO
    if base <= ends[0][0]:
        return Decimal(ends[0][1])
    for (low, low_rate), (high, high_rate) in itertools.pairwise(ends):
        if base <= high:
            return Decimal(low_rate + (high_rate - low_rate) * (base - low) / (high - low))
    return Decimal(open_rate if open_rate is not None else ends[-1][1])


def evaluate_employee(policy: CompiledPolicy, item: EmployeeInput, *,
                      trace: bool = True) -> EmployeeResult:
    """Evaluate one employee segment under one policy. Raises EvaluationError."""
    return _Evaluator(policy, item, trace).evaluate()
