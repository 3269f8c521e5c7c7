"""One semantics: the compiled evaluation (engine/fast.py) gives exactly what the traced
evaluator (evaluate_employee) gives, on every shipped policy and on generated facts."""

from __future__ import annotations

import decimal
from collections.abc import Mapping
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine import fast
from engine.evaluate import EmployeeInput, EmployeeResult, EvaluationError, evaluate_employee
from engine.model import CompiledPolicy
from engine.run import RunInputs, load_policies, run

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"

# A policy using every part of the language the compiled path writes out: values with
# missing and divide_by_zero rules (error, zero, exclude), applies_when, each curve kind, a
# 360 review with a default group and one with a failing group, a composite of parts and an
# OKR of objectives, month-, period- and year-wise functions, is_missing, a weight adjustment
# bringing in an indicator, gates for some roles, tiers by an expression, a distribution
# tie-break, pay mix, amounts with else, cap, floor and proration, whole, graduated and
# interpolated commissions (one paid monthly, with an else rate), a pool, and outcomes with a
# selection.
KITCHEN = """meritpay: 1
policy: kitchen
version: "1"
effective: {from: 2025-01-01}
period: quarter
currency: CNY
facts:
  revenue: {type: money, label: Revenue}
  quota: {type: money, label: Quota}
  visits: {type: integer, label: Visits}
  cost: {type: money, default: 0, label: Cost}
  days: {type: number, rollup: mean, label: Days}
  remote: {type: boolean, rollup: last, default: false, label: Remote}
  rate: {type: ratio, rollup: last, label: Rate}
  target_cash: {type: money, label: Target cash}
  downturn: {type: boolean, scope: company, default: false, label: Downturn}
  team_profit: {type: money, scope: team, label: Team profit}
indicators:
  attainment:
    kind: result
    label: Attainment
    value: revenue / quota
    divide_by_zero: zero
    missing: zero
    score: {curve: linear, zero_at: 50%, full_at: 100%, cap: 1.5}
  margin:
    kind: result
    label: Margin
    value: (revenue - cost) / revenue
    divide_by_zero: exclude
    missing: exclude
    score: {curve: threshold, at: 20%, above: 1.1, below: 0.3}
  speed:
    kind: process
    label: Speed
    value: days
    missing: exclude
    score: {curve: threshold, at: 30, direction: lower, above: 1, below: 0}
  effort:
    kind: process
    label: Effort
    value: visits
    missing: zero
    score:
      curve: steps
      steps:
        - {from: 0, score: 0}
        - {from: 10, score: 0.5}
        - {from: 20, score: 1}
  steady:
    kind: process
    label: Steady
    value: min(months(visits))
    missing: exclude
    score:
      curve: steps
      steps:
        - {from: 0, score: 0}
        - {from: 5, score: 1}
  growth:
    kind: result
    label: Growth
    value: "safe_div(revenue, max(last_periods(revenue, 2)), 1)"
    missing: exclude
    score: {curve: expression, expr: "clamp(value - 0.5, -1, 2)", cap: 1.2}
  remote_work:
    kind: process
    label: Remote work
    applies_when: remote and not is_missing(rate)
    value: rate
    score: {curve: linear, zero_at: 0, full_at: 1}
  plain:
    kind: process
    label: Plain
    value: rate * 2
    missing: error
    score: {curve: linear, zero_at: 0, full_at: 2}
  review:
    kind: composite
    label: Review
    raters:
      scale: {min: 1, max: 5}
      missing_group: {default: 3}
      groups:
        superior: {weight: 60%, min_raters: 1, label: Superior}
        peer: {weight: 40%, min_raters: 2, label: Peers}
    score: {curve: linear, zero_at: 2, full_at: 4, cap: 1.25}
  strict_review:
    kind: composite
    label: Strict review
    raters:
      scale: {min: 1, max: 5}
      missing_group: fail
      groups:
        superior: {weight: 100%, min_raters: 1, label: Superior}
    score: {curve: linear, zero_at: 2, full_at: 4}
  blend:
    kind: composite
    label: Blend
    parts: {attainment: 60%, margin: 40%}
  okr:
    kind: composite
    label: OKR
    objectives:
      grow:
        label: Grow
        weight: 70%
        key_results: {attainment: 50%, effort: 50%}
      keep:
        label: Keep
        weight: 30%
        key_results: {speed: 100%}
roles:
  rep:
    label: Rep
    weights: {attainment: 30%, margin: 10%, effort: 10%, steady: 5%, growth: 5%,
              remote_work: 5%, review: 10%, blend: 10%, okr: 15%}
    adjustments:
      - when: downturn
        why: A downturn
        shift: {from: attainment, to: speed, points: 10%}
  lead:
    label: Lead
    weights: {attainment: 40%, strict_review: 20%, plain: 20%, okr: 20%}
gates:
  floor:
    when: revenue >= quota * 50%
    why: Half the quota
  lead_only:
    when: cost < revenue
    roles: [lead]
    why: Costs below revenue
tiers:
  by: total_score * 100
  bands:
    - {name: low, from: -1000, to: 60, multiplier: 0, label: Low}
    - {name: mid, from: 60, to: 100, multiplier: 1, label: Mid}
    - {name: high, from: 100, multiplier: 1.5, label: High}
  distribution:
    mode: advisory
    within: role
    max_share: {high: 20%}
    tie_break: revenue
pay_mix: {of: target_cash, base: 70%, variable: 30%}
rewards:
  base_pay:
    kind: amount
    label: Base pay
    amount: pay_mix.base
  variable_pay:
    kind: amount
    label: Variable pay
    amount: pay_mix.variable * tier.multiplier
    requires: {gate: floor, else: pay_mix.variable * 10%}
    cap: pay_mix.variable * 1.2
    floor: 100
  commission:
    kind: commission
    label: Commission
    roles: [rep]
    base: revenue
    mode: graduated
    paid: monthly
    brackets:
      - {upto: 1000, rate: 2%}
      - {upto: 3000, rate: 4%}
      - {rate: 6%}
    requires: {gate: floor, else: {rate: 1%}}
    cap: 500
  flat:
    kind: commission
    label: Flat commission
    base: revenue - cost
    mode: whole
    brackets:
      - {upto: 2000, rate: 1%}
      - {upto: 5000, rate: 3%}
      - {rate: 5%}
    requires: {gate: lead_only, else: 7}
  share:
    kind: commission
    label: Share
    roles: [lead]
    base: revenue
    mode: interpolated
    brackets:
      - {upto: 1000, rate: 1%}
      - {upto: 4000, rate: 3%}
  extra:
    kind: amount
    label: Extra
    amount: reward.base_pay * 1% + weight.attainment * 10
  team_share:
    kind: pool
    label: Team share
    amount: team_profit * 5%
    among: team
    split: equal
  star:
    kind: honour
    label: Star
    when: tier.name == 'high'
    select: {by: score.attainment, top: 1, within: role, tie_break: revenue}
  talent:
    kind: talent_pool
    label: Talent
    when: gate.floor and total_score >= 0.5
  steady_hand:
    kind: eligibility
    label: Steady hand
    when: every_month(visits >= 3) or any_month(visits >= 30)
"""

def mostly(values: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """A value, absent about one time in six: most employees reach the common paths."""
    return st.one_of(values, values, values, values, values, st.none())


amounts = mostly(st.decimals(min_value=-100, max_value=6000, places=2))
counts = mostly(st.integers(min_value=0, max_value=40).map(Decimal))
scores = st.lists(st.integers(min_value=1, max_value=5).map(Decimal), max_size=3).map(tuple)


@pytest.fixture(scope="module")
def kitchen(tmp_path_factory: pytest.TempPathFactory) -> CompiledPolicy:
    path = tmp_path_factory.mktemp("kitchen") / "kitchen.yaml"
    path.write_text(KITCHEN, encoding="utf-8")
    [policy] = load_policies([path])
    return policy


def facts_of(values: Mapping[str, Any], policy: CompiledPolicy) -> dict[str, Any]:
    """A rolled-up record: every fact of the policy, MISSING (or its default) when absent."""
    found = {}
    for fact in policy.facts:
        value = values.get(fact.name)
        found[fact.name] = value if value is not None else fact.default
    return found


@st.composite
def employees(draw: st.DrawFn, policy: CompiledPolicy) -> EmployeeInput:
    def record() -> dict[str, Any]:
        return facts_of({
            "revenue": draw(amounts), "quota": draw(amounts), "visits": draw(counts),
            "cost": draw(amounts), "days": draw(counts), "remote": draw(st.booleans()),
            "rate": draw(mostly(st.decimals(min_value=0, max_value=2, places=3))),
            "target_cash": draw(amounts),
            "downturn": draw(st.booleans()),
        }, policy)

    months = draw(st.integers(min_value=0, max_value=3))
    month_facts = tuple(record() for _ in range(months))
    facts = record()
    ratings = {"superior": draw(scores), "peer": draw(scores)}
    periods = tuple(record() for _ in range(draw(st.integers(min_value=0, max_value=2))))
    return EmployeeInput(
        employee="E1", name="Li", role=draw(st.sampled_from(["rep", "lead"])), team="",
        months=("2025-07", "2025-08", "2025-09")[:months], facts=facts,
        month_facts=month_facts, period_facts=periods,
        proration=draw(st.sampled_from([Decimal(1), Decimal(46) / Decimal(92)])),
        ratings={k: v for k, v in ratings.items() if v})


def outcome(call: Any) -> tuple[str, Any]:
    try:
        return "result", call()
    except EvaluationError as error:
        return "error", [d.render() for d in error.diagnostics]


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_compiled_and_traced_evaluation_agree_on_generated_facts(
        kitchen: CompiledPolicy, data: st.DataObject) -> None:
    item = data.draw(employees(kitchen))
    expected = outcome(lambda: evaluate_employee(kitchen, item, trace=True))
    assert outcome(lambda: fast.evaluate(kitchen, item)) == expected
    assert outcome(lambda: evaluate_employee(kitchen, item, trace=False)) == expected


def test_every_role_of_the_kitchen_policy_compiles(kitchen: CompiledPolicy) -> None:
    assert all(fast.compiled(kitchen, role) is not None for role in kitchen.roles)


def _shipped() -> list[CompiledPolicy]:
    return load_policies([ROOT / "policies"])


def _sample() -> RunInputs:
    return RunInputs(facts=EXAMPLES / "facts.csv", ratings=EXAMPLES / "ratings.csv",
                     teams=EXAMPLES / "teams.csv", team_facts=EXAMPLES / "team_facts.csv",
                     company_facts=EXAMPLES / "company_facts.csv", lines=EXAMPLES / "lines.csv")


@pytest.mark.parametrize("quarter", ["2025-Q3", "2025-Q4"])
def test_shipped_policies_give_the_same_results_compiled_and_traced(
        quarter: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every shipped policy over the sample data: identical results, and the compiled
    functions never hand an employee back (the sample has nothing out of the ordinary)."""
    handed: list[str] = []

    def counting(policy: CompiledPolicy, item: EmployeeInput, *, trace: bool = True
                 ) -> EmployeeResult:
        if not trace:
            handed.append(f"{policy.policy} {item.employee}")
        return evaluate_employee(policy, item, trace=trace)

    monkeypatch.setattr(fast, "evaluate_employee", counting)
    policies = [p for p in _shipped() if p.source.split("/")[-2] == quarter]
    traced = run(policies, _sample(), "2025-Q3", trace=True, ignore_effective=True)
    compiled = run(policies, _sample(), "2025-Q3", trace=False, ignore_effective=True)
    assert len(compiled.results) == 201
    assert compiled.results == traced.results
    assert handed == []


def test_compiled_results_equal_ones_built_by_their_constructors(
        kitchen: CompiledPolicy) -> None:
    item = EmployeeInput(
        employee="E1", name="Li", role="lead", team="",
        months=("2025-07",), facts=facts_of({
            "revenue": Decimal("3000.00"), "quota": Decimal("2000.00"), "cost": Decimal(100),
            "rate": Decimal("0.5"), "target_cash": Decimal("10000.00"), "visits": Decimal(12),
            "days": Decimal(20)}, kitchen),
        month_facts=(), ratings={"superior": (Decimal(4),)})
    result = fast.evaluate(kitchen, item)
    rebuilt = EmployeeResult(**{name: getattr(result, name)
                                for name in EmployeeResult.__dataclass_fields__})
    assert result == rebuilt and hash(result.rewards) == hash(rebuilt.rewards)
    # lead: attainment 3000/2000 = 1.5 -> (1.5-0.5)/0.5 = 2, capped at 1.5
    assert result.indicators[0].score == Decimal("1.5")
    # base pay: 10000 x 70% = 7000.00
    assert result.reward("base_pay") is not None
    assert result.reward("base_pay").amount == Decimal("7000.00")  # type: ignore[union-attr]


def test_a_missing_value_where_the_policy_says_error_is_reported_by_the_traced_path(
        kitchen: CompiledPolicy) -> None:
    item = EmployeeInput(employee="E9", name="", role="lead", team="", months=(),
                         facts=facts_of({"revenue": Decimal(10), "quota": Decimal(10)}, kitchen),
                         ratings={"superior": (Decimal(3),)})
    with pytest.raises(EvaluationError) as caught:
        fast.evaluate(kitchen, item)
    # 'plain' reads rate, which is missing, and says missing: error
    assert [d.code for d in caught.value.diagnostics] == ["E_EVAL_MISSING_FACT"]
    assert "indicator 'plain'" in caught.value.diagnostics[0].message


def test_the_compiled_path_runs_in_the_evaluation_context() -> None:
    """The decimal context a caller has is left as it was."""
    before = decimal.getcontext()
    policies = [p for p in _shipped() if p.source.split("/")[-2] == "2025-Q3"]
    run(policies, _sample(), "2025-Q3", trace=False)
    assert decimal.getcontext() is before


def test_tracing_one_employee_traces_only_that_one_and_changes_no_result() -> None:
    """What explain does: everyone evaluated (the population stage needs them), one traced."""
    policies = [p for p in _shipped() if p.source.split("/")[-2] == "2025-Q3"]
    everyone = run(policies, _sample(), "2025-Q3", trace=True)
    one = run(policies, _sample(), "2025-Q3", evaluator=fast.tracing({"E0024"}))
    assert one.results == everyone.results
    traced = {r.employee for r in one.results if r.trace}
    assert traced == {"E0024"}
    [mine] = [r for r in one.results if r.employee == "E0024"]
    [full] = [r for r in everyone.results if r.employee == "E0024"]
    assert mine.trace == full.trace


def test_results_of_a_run_share_what_repeats() -> None:
    """A large run holds its results: the weight shares of everyone scored on every
    indicator, the (gate, passed) pairs and the months are one object each, not one per
    employee (values unchanged: the shipped test above compares them with the traced path)."""
    from engine.run import RunInputs, load_policies, run

    result = run(load_policies([ROOT / "policies" / "2025-Q3"]), RunInputs(
        facts=EXAMPLES / "facts.csv", ratings=EXAMPLES / "ratings.csv",
        teams=EXAMPLES / "teams.csv", team_facts=EXAMPLES / "team_facts.csv",
        company_facts=EXAMPLES / "company_facts.csv", lines=EXAMPLES / "lines.csv"),
        "2025-Q3")
    reps = [r for r in result.results if r.role == "junior_sales_rep"
            and all(i.status == "scored" for i in r.indicators)]
    assert len(reps) > 5
    first = reps[0]
    for other in reps[1:]:
        assert all(a.weight is b.weight for a, b in zip(first.indicators, other.indicators,
                                                         strict=True))
        assert all(a is b for a, b in zip(first.gates, other.gates, strict=True)
                   if a == b)
        assert other.months is first.months or other.months != first.months
