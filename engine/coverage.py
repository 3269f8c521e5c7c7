"""Policy coverage: which parts of a policy the results of its test cases exercised.

    CompiledPolicy + traced EmployeeResults -> PolicyCoverage

A policy's coverage items, in policy order, each with the line of its rule:

- a gate: 2 items, it passed and it failed (a gate not evaluated, or missing, is neither);
- the tier bands: 1 item per band reached;
- an indicator: 1 item, scored at least once; a `steps` curve adds 1 item per step reached;
- a commission: 1 item per bracket reached (graduated: every bracket the base reaches into;
  whole and interpolated: the bracket the base falls in), and a commission or amount with
  `requires` 1 more for its gate-failed `else` branch;
- a money reward (amount, commission, pool): 1 item, paid a non-zero amount at least once;
- a non-money reward (honour, talent pool, eligibility, development): 2 items, granted and not
  granted.

Indicators that are no role's weighted indicator (the parts of a composite, key results) do
not appear in EmployeeResult.indicators; what they did is read from the trace, so coverage
needs results evaluated with trace=True.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal

from .evaluate import EmployeeResult, show, show_rate, step_index
from .model import CompiledPolicy


@dataclass(frozen=True)
class CoverageItem:
    kind: str  # gate, band, indicator, step, bracket, else, reward, outcome
    rule: str  # the gate, indicator or reward it belongs to ("tiers" for bands)
    text: str  # what has to happen, e.g. "gate margin_floor fails"
    line: int  # the rule's line in the policy file
    covered: bool


@dataclass(frozen=True)
class PolicyCoverage:
    policy: str
    version: str
    source: str  # the policy file
    items: tuple[CoverageItem, ...]

    @property
    def covered(self) -> int:
        return sum(1 for item in self.items if item.covered)

    @property
    def total(self) -> int:
        return len(self.items)

    @property
    def fraction(self) -> Decimal:
        """Covered items over all items, exactly (1 when the policy has no items)."""
        return Decimal(self.covered) / Decimal(self.total) if self.total else Decimal(1)

    @property
    def percent(self) -> Decimal:
        """The percentage rounded down to one place: 99.96% shows 99.9%, never 100.0%."""
        return (self.fraction * 100).quantize(Decimal("0.1"), rounding=ROUND_FLOOR)

    @property
    def uncovered(self) -> tuple[CoverageItem, ...]:
        return tuple(item for item in self.items if not item.covered)


@dataclass
class _Seen:
    """What the results of one policy did."""

    gates: set[tuple[str, bool]] = field(default_factory=set)
    bands: set[str] = field(default_factory=set)
    scored: set[str] = field(default_factory=set)
    steps: set[tuple[str, int]] = field(default_factory=set)
    brackets: dict[str, set[int]] = field(default_factory=dict)
    gate_failed: set[str] = field(default_factory=set)
    paid: set[str] = field(default_factory=set)
    outcomes: set[tuple[str, bool]] = field(default_factory=set)


def _observe(policy: CompiledPolicy, results: Iterable[EmployeeResult]) -> _Seen:
    seen = _Seen()
    curves = {decl.name: decl.curve for decl in policy.indicators}
    for result in results:
        for name, passed in result.gates:
            if passed is not None:
                seen.gates.add((name, passed))
        if result.tier:
            seen.bands.add(result.tier)
        listed = set()
        for indicator in result.indicators:
            listed.add(indicator.name)
            if indicator.status == "scored":
                seen.scored.add(indicator.name)
            if indicator.step is not None:
                seen.steps.add((indicator.name, indicator.step))
        for event in result.trace:  # indicators no role weighs: parts, key results
            if event.name in listed or event.name not in curves:
                continue
            if event.step == "score":
                seen.scored.add(event.name)
            elif event.step == "indicator" and isinstance(event.value, Decimal) \
                    and curves[event.name].kind == "steps":
                index = step_index(curves[event.name], event.value)
                if index is not None:
                    seen.steps.add((event.name, index))
        for reward in result.rewards:
            if reward.bracket is not None:
                seen.brackets.setdefault(reward.name, set()).add(reward.bracket)
            if reward.status == "gate_failed":
                seen.gate_failed.add(reward.name)
            if reward.amount is not None and reward.amount != 0:
                seen.paid.add(reward.name)
            if reward.granted is not None:
                seen.outcomes.add((reward.name, reward.granted))
    return seen


def policy_coverage(policy: CompiledPolicy, results: Iterable[EmployeeResult]) -> PolicyCoverage:
    """The coverage of one policy by the results evaluated under it (others are ignored)."""
    own = [r for r in results if (r.policy, r.version) == (policy.policy, policy.version)]
    seen = _observe(policy, own)
    items: list[CoverageItem] = []
    for gate in policy.gates:
        line = gate.rule.line
        items.append(CoverageItem("gate", gate.name, f"gate {gate.name} passes", line,
                                  (gate.name, True) in seen.gates))
        items.append(CoverageItem("gate", gate.name, f"gate {gate.name} fails", line,
                                  (gate.name, False) in seen.gates))
    if policy.tiers is not None:
        for band in policy.tiers.bands:
            items.append(CoverageItem("band", "tiers", f"tier band {band.name} (from "
                                      f"{show(band.low)}) is reached", policy.tiers.rule.line,
                                      band.name in seen.bands))
    for decl in policy.indicators:
        line = decl.rule.line
        items.append(CoverageItem("indicator", decl.name, f"indicator {decl.name} is scored",
                                  line, decl.name in seen.scored))
        if decl.curve.kind == "steps":
            for index, (start, score) in enumerate(decl.curve.steps):
                items.append(CoverageItem(
                    "step", decl.name, f"indicator {decl.name} reaches step {index + 1} (from "
                    f"{show(start)}, score {show(score)})", line,
                    (decl.name, index) in seen.steps))
    for reward in policy.rewards:
        line = reward.rule.line
        if reward.is_money:
            items.append(CoverageItem("reward", reward.name, f"reward {reward.name} pays a "
                                      "non-zero amount", line, reward.name in seen.paid))
        else:
            for granted in (True, False):
                items.append(CoverageItem(
                    "outcome", reward.name,
                    f"{reward.kind} {reward.name} is {'' if granted else 'not '}granted", line,
                    (reward.name, granted) in seen.outcomes))
        if reward.kind == "commission":
            reached = seen.brackets.get(reward.name, set())
            for index, bracket in enumerate(reward.brackets):
                hit = any(r >= index for r in reached) if reward.mode == "graduated" \
                    else index in reached
                ends = f"up to {show(bracket.upto)}" if bracket.upto is not None else "open"
                items.append(CoverageItem(
                    "bracket", reward.name, f"reward {reward.name} reaches bracket {index + 1} "
                    f"({ends}, {show_rate(bracket.rate)})", line, hit))
        if reward.gate is not None and reward.kind in ("amount", "commission"):
            items.append(CoverageItem("else", reward.name, f"reward {reward.name} takes its "
                                      f"else branch (gate {reward.gate} fails)", line,
                                      reward.name in seen.gate_failed))
    return PolicyCoverage(policy.policy, policy.version, policy.source, tuple(items))


def coverage(policies: Sequence[CompiledPolicy], results: Iterable[EmployeeResult]
             ) -> list[PolicyCoverage]:
    """Coverage of each policy (by id and version, the first file of a pair kept), in the
    order of policy id and version."""
    everyone = list(results)
    unique: dict[tuple[str, str], CompiledPolicy] = {}
    for policy in policies:
        unique.setdefault((policy.policy, policy.version), policy)
    return [policy_coverage(unique[key], everyone) for key in sorted(unique)]


def parse_minimum(text: str) -> Decimal:
    """'90%' or '90' -> Decimal(90), a percentage between 0 and 100; ValueError otherwise."""
    number = text.strip().removesuffix("%").strip()
    try:
        value = Decimal(number)
    except ArithmeticError:
        raise ValueError(f"'{text}' is not a percentage: write e.g. 90%") from None
    if not value.is_finite() or not 0 <= value <= 100:
        raise ValueError(f"'{text}' is not a percentage between 0% and 100%")
    return value


def shortfalls(coverages: Iterable[PolicyCoverage], minimum: Decimal
               ) -> list[tuple[PolicyCoverage, Decimal]]:
    """The policies covered below minimum (a percentage), each with the percentage points
    missing, rounded up to one place (never 0.0 for a policy that is below)."""
    return [(item, (minimum - item.fraction * 100).quantize(Decimal("0.1"),
                                                            rounding=ROUND_CEILING))
            for item in coverages if item.fraction * 100 < minimum]
