"""business-roles 2025-Q3 evaluated expression by expression through an expression library.

The policy is written here as data plus the text of each of its expressions (indicator
values, applies_when, the expression curve, the downturn adjustment, gates, the tier's `by`,
reward amounts, bases, else branches, caps and floors, outcome conditions and the selection
measure: about 35 evaluations per employee). The structure around the expressions (curves,
weights and renormalisation, brackets, rounding, proration) is plain Python with Decimals, as
in meritpay; only the evaluation of the expressions changes:

- `SimpleevalBackend`: simpleeval's tree walker, each expression parsed once (number literals
  turned into Decimals in the parsed tree), names from the rolled-up facts and the results so
  far; what a naive engine does;
- `ZenBackend`: zen-engine's compiled expressions (`zen.compile_expression`, compiled once),
  each evaluated with a context of the names it reads; zen computes in its own decimal type
  and returns floats, which are turned back into Decimals (shortest repr).

Dotted names of the policy (`pay_mix.base`, `score.x`, `tier.name`) are written with `_`.
"""

from __future__ import annotations

import ast
import decimal
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, Protocol

from .records import Payout, Record

D = Decimal
ZERO, ONE = D(0), D(1)
CENT = D("0.01")
Compiled = Callable[[Mapping[str, Any]], Any]
FUNCTIONS = {"min", "max", "clamp"}


class Backend(Protocol):
    name: str

    def compile(self, python: str, zen: str) -> Compiled: ...


class DivideByZero(Exception):
    pass


def reads_of(text: str) -> tuple[str, ...]:
    names = re.findall(r"[A-Za-z_][A-Za-z0-9_]*", re.sub(r"'[^']*'", "", text))
    return tuple(dict.fromkeys(n for n in names
                               if n not in FUNCTIONS and n not in ("and", "or", "not")))


def _clamp(value: Decimal, low: Decimal, high: Decimal) -> Decimal:
    return max(low, min(high, value))


class _Decimals(ast.NodeTransformer):
    """Number literals become Decimals (from their text, exactly)."""

    def visit_Constant(self, node: ast.Constant) -> ast.Constant:
        if isinstance(node.value, int | float) and not isinstance(node.value, bool):
            number: Any = D(repr(node.value))  # simpleeval returns a constant's value as is
            return ast.copy_location(ast.Constant(number), node)
        return node


class SimpleevalBackend:
    name = "simpleeval"

    def __init__(self) -> None:
        from simpleeval import SimpleEval  # type: ignore[import-untyped]

        self.evaluator = SimpleEval(functions={"min": min, "max": max, "clamp": _clamp})

    def compile(self, python: str, zen: str) -> Compiled:
        evaluator = self.evaluator
        tree = _Decimals().visit(evaluator.parse(python))

        def evaluate(env: Mapping[str, Any]) -> Any:
            evaluator.names = env
            try:
                return evaluator.eval(python, previously_parsed=tree)
            except (decimal.DivisionByZero, decimal.InvalidOperation):
                raise DivideByZero from None

        return evaluate


def to_zen(value: Any) -> Any:
    return float(value) if isinstance(value, Decimal) else value


def from_zen(value: Any) -> Any:
    if isinstance(value, float):
        return D(repr(value))
    if isinstance(value, int) and not isinstance(value, bool):
        return D(value)
    return value


class ZenBackend:
    name = "zen expressions"

    def __init__(self) -> None:
        import zen

        self.zen = zen

    def compile(self, python: str, zen: str) -> Compiled:
        compiled = self.zen.compile_expression(zen)
        names = reads_of(zen)
        divides = "/" in zen

        def evaluate(env: Mapping[str, Any]) -> Any:
            value = compiled.evaluate({n: to_zen(env[n]) for n in names if n in env})
            if value is None and divides:
                raise DivideByZero  # zen's x / 0 is null
            return from_zen(value)

        return evaluate


# --------------------------------------------------------------------------------------------
# The policy as data. Curves: ("linear", zero_at, full_at, cap) with floor 0, ("steps",
# ((from, score), ...)), ("threshold", at, below, above), ("expression", python, zen).

Curve = tuple[Any, ...]


@dataclass(frozen=True)
class Indicator:
    name: str
    value: str | None  # None: the 360 review
    curve: Curve
    divide_by_zero: str = "error"  # error, zero, exclude
    applies_when: str | None = None
    zen_value: str | None = None  # when zen's syntax differs


def _d(*values: str) -> tuple[Decimal, ...]:
    return tuple(D(v) for v in values)


INDICATORS = (
    Indicator("revenue_attainment", "revenue / quota", ("linear", *_d("0.5", "1", "1.5"))),
    Indicator("new_customer_development", "new_customers / new_customer_target",
              ("linear", *_d("0", "1", "1.3")), "exclude"),
    Indicator("customer_retention", "retention_rate",
              ("steps", tuple(zip(_d("0", "0.8", "0.9", "0.95"), _d("0", "0.6", "1.0", "1.2"),
                                  strict=True)))),
    Indicator("average_order_value", "revenue / orders",
              ("linear", *_d("20000", "60000", "1.25")), "zero"),
    Indicator("profit_margin", "gross_margin", ("linear", *_d("0.05", "0.20", "1.4"))),
    Indicator("strategic_penetration", "strategic_penetrated / strategic_accounts",
              ("linear", *_d("0", "0.6", "1.2")), "exclude"),
    Indicator("cash_collection", "collection_days", ("linear", *_d("90", "45", "1.2"))),
    Indicator("visit_frequency", "visits",
              ("steps", tuple(zip(_d("0", "20", "30", "45"), _d("0", "0.7", "1.0", "1.1"),
                                  strict=True)))),
    Indicator("proposal_conversion", "proposals_won / proposals",
              ("linear", *_d("0.1", "0.35", "1.2")), "zero"),
    Indicator("contract_timeliness", "contracts_on_time / contracts_due",
              ("threshold", *_d("0.95", "0.5", "1.0")), "exclude"),
    Indicator("report_completeness", "reports_complete / reports_due",
              ("expression", "clamp(value, 0, 1)", "max([0, min([1, value])])"), "exclude"),
    Indicator("needs_analysis_rate", "needs_reports_sent / needs_reports_due",
              ("linear", *_d("0.5", "1", "1")), "exclude"),
    Indicator("carbon_neutral_adoption", "carbon_neutral_adopted",
              ("linear", *_d("0", "0.3", "1.2"))),
    Indicator("digital_collaboration",
              "min(shared_doc_updates / 24, 1) * 0.5 + online_proposal_quality * 0.5",
              ("linear", *_d("0.2", "0.8", "1.2")), applies_when="remote",
              zen_value="min([shared_doc_updates / 24, 1]) * 0.5 + online_proposal_quality * 0.5"),
    Indicator("review_360", None, ("linear", *_d("2", "4", "1.25"))),
)
RATER_GROUPS = (("superior", D("0.40"), 1), ("peer", D("0.30"), 2), ("customer", D("0.20"), 3),
                ("subordinate", D("0.10"), 1))
ROLES: dict[str, tuple[tuple[str, Decimal], ...]] = {
    "junior_sales_rep": tuple(zip(
        ("revenue_attainment", "new_customer_development", "visit_frequency",
         "needs_analysis_rate", "review_360", "digital_collaboration"),
        _d("0.40", "0.30", "0.10", "0.05", "0.10", "0.05"), strict=True)),
    "account_manager": tuple(zip(
        ("customer_retention", "average_order_value", "revenue_attainment", "cash_collection",
         "proposal_conversion", "contract_timeliness", "review_360", "digital_collaboration"),
        _d("0.25", "0.20", "0.15", "0.10", "0.10", "0.05", "0.10", "0.05"), strict=True)),
    "business_director": tuple(zip(
        ("profit_margin", "strategic_penetration", "revenue_attainment",
         "carbon_neutral_adoption", "report_completeness", "review_360"),
        _d("0.30", "0.25", "0.15", "0.05", "0.05", "0.20"), strict=True)),
}
ADJUSTED = ("account_manager", "business_director")  # when: market_downturn, 10 points
BANDS = (("below", ZERO, D("0.8"), ZERO), ("meets", D("0.8"), D("1.1"), D("1.0")),
         ("outstanding", D("1.1"), None, D("1.5")))
BRACKETS = ((D(1000000), D("0.02")), (D(3000000), D("0.04")), (None, D("0.06")))
ENDS = ((D(2000000), D("0.01")), (D(6000000), D("0.03")))


class Interpreted:
    """One evaluator of business-roles over a backend: compile once, evaluate many."""

    def __init__(self, backend: Backend) -> None:
        self.name = backend.name

        def c(python: str, zen: str | None = None) -> Compiled:
            compiled = backend.compile(python, zen or python)
            reads = reads_of(python)

            def guarded(env: Mapping[str, Any]) -> Any:
                if any(env.get(n) is None for n in reads):
                    raise KeyError(", ".join(n for n in reads if env.get(n) is None))
                return compiled(env)

            return guarded

        self.values = [(i, c(i.value, i.zen_value) if i.value else None,
                        c(i.applies_when) if i.applies_when else None,
                        c(i.curve[1], i.curve[2]) if i.curve[0] == "expression" else None)
                       for i in INDICATORS]
        self.downturn = c("market_downturn")
        self.margin_floor = c("gross_margin >= 0.15")
        self.min_attainment = c("revenue_attainment >= 0.5")
        self.tier_by = c("total_score")
        self.base_pay = c("pay_mix_base")
        self.variable_pay = c("pay_mix_variable * tier_multiplier")
        self.variable_else = c("0")
        self.variable_cap = c("pay_mix_variable * 1.5")
        self.variable_floor = c("0")
        self.commission_base = c("revenue")
        self.commission_cap = c("300000")
        self.share_base = c("gross_profit")
        self.share_else = c("0")
        self.star = c("tier_name == 'outstanding'")
        self.star_by = c("total_score")
        self.leading = c("total_score >= 1.0 and score_revenue_attainment >= 1.0")
        self.equity_year = c("retention_rate >= 0.9")
        self.equity = c("years_held and successors_trained >= 2")

    def evaluate(self, r: Record) -> Payout:
        env: dict[str, Any] = dict(r.facts)
        role = r.role
        scores: dict[str, Decimal] = {}
        for indicator, value_of, applies, curve_expr in self.values:
            if applies is not None and not _holds(applies, env):
                continue
            if value_of is None:
                value = self.review(r.ratings)
            else:
                try:
                    value = value_of(env)
                except DivideByZero:
                    if indicator.divide_by_zero == "exclude":
                        continue
                    if indicator.divide_by_zero == "error":
                        raise
                    value = ZERO
            env[indicator.name] = value
            scores[indicator.name] = env[f"score_{indicator.name}"] = \
                self.score(indicator.curve, value, curve_expr, env)
        weights = dict(ROLES[role])
        if role in ADJUSTED and _holds(self.downturn, env):
            weights["revenue_attainment"] = weights["revenue_attainment"] - D("0.10")
            weights["cash_collection"] = weights.get("cash_collection", ZERO) + D("0.10")
        denominator = sum((w for n, w in weights.items() if n in scores), ZERO)
        total = ZERO
        for name, weight in weights.items():
            if name in scores:
                total += weight / denominator * scores[name]
        env["total_score"] = total
        margin_ok = _holds(self.margin_floor, env)
        attained = _holds(self.min_attainment, env)
        by = self.tier_by(env)
        tier, multiplier = "", ZERO
        for name, low, high, factor in BANDS:
            if by >= low and (high is None or by < high):
                tier, multiplier = name, factor
        env["tier_name"], env["tier_multiplier"] = tier, multiplier
        target = env["target_cash"]
        env["pay_mix_base"], env["pay_mix_variable"] = target * D("0.6"), target * D("0.4")
        amounts: dict[str, Decimal] = {}
        base = self.base_pay(env)
        amounts["base_pay"] = _money(base * r.proration if r.proration != ONE else base)
        pay = self.variable_pay(env) if attained else self.variable_else(env)
        if r.proration != ONE:
            pay = pay * r.proration
        cap, floor = self.variable_cap(env), self.variable_floor(env)
        pay = cap if pay > cap else floor if pay < floor else pay
        amounts["variable_pay"] = _money(pay)
        if role == "business_director":
            if margin_ok:
                profit = self.share_base(env)
                share = profit * _interpolated(profit)
            else:
                share = self.share_else(env)
            amounts["director_profit_share"] = _money(share)
        else:
            commission = ZERO
            for month in r.month_facts:
                revenue = self.commission_base({**env, **month})
                paid = _graduated(revenue) if margin_ok else revenue * D("0.02")
                commission += _money(paid)
            cap = self.commission_cap(env)
            amounts["commission"] = _money(cap if commission > cap else commission)
        outcomes = []
        if self.star(env):
            self.star_by(env)  # the selection's measure
            outcomes.append("value_creation_star")
        if self.leading(env):
            outcomes.append("leading_talent")
        if role in ADJUSTED:
            years = r.year_facts[-3:]
            env["years_held"] = len(years) == 3 and all(
                y is not None and bool(self.equity_year(y)) for y in years)
            if self.equity(env):
                outcomes.append("equity_eligibility")
        return Payout(total, tier, amounts, tuple(outcomes))

    @staticmethod
    def review(ratings: Mapping[str, Sequence[Decimal]]) -> Decimal:
        weighted = weights = ZERO
        for group, weight, least in RATER_GROUPS:
            scores = ratings.get(group, ())
            if len(scores) >= least and scores:
                weighted += weight * (sum(scores, ZERO) / len(scores))
                weights += weight
        return weighted / weights

    @staticmethod
    def score(curve: Curve, value: Decimal, expression: Compiled | None,
              env: Mapping[str, Any]) -> Decimal:
        kind = curve[0]
        if kind == "linear":
            raw = (value - curve[1]) / (curve[2] - curve[1])
            return ZERO if raw < ZERO else curve[3] if raw > curve[3] else raw
        if kind == "steps":
            reached = ZERO
            for start, score in curve[1]:
                if value >= start:
                    reached = score
            return reached
        if kind == "threshold":
            return curve[3] if value >= curve[1] else curve[2]  # type: ignore[no-any-return]
        assert expression is not None
        result: Decimal = expression({**env, "value": value})
        return result


def _holds(condition: Compiled, env: Mapping[str, Any]) -> bool:
    try:
        return bool(condition(env))
    except KeyError:  # a missing name: the condition does not hold
        return False


def _money(value: Decimal) -> Decimal:
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


def _graduated(base: Decimal) -> Decimal:
    total, lower = ZERO, ZERO
    for upto, rate in BRACKETS:
        if base <= lower:
            break
        top = base if upto is None or base < upto else upto
        total += (top - lower) * rate
        if upto is None:
            break
        lower = upto
    return total


def _interpolated(base: Decimal) -> Decimal:
    (low, low_rate), (high, high_rate) = ENDS
    if base <= low:
        return low_rate
    if base <= high:
        return low_rate + (high_rate - low_rate) * (base - low) / (high - low)
    return high_rate
