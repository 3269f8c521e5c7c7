"""The named intermediate forms of the pipeline, frozen.

Document: YAML data plus where every node came from (load).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from functools import cached_property
from typing import Any

JsonPath = tuple[str | int, ...]


@dataclass(frozen=True)
class Scalar:
    """Where a scalar's text starts in the file, and how it was written."""

    line: int
    column: int  # of the first character of the text itself (inside quotes)
    single_line: bool  # the text is exactly what the file holds from `column` on, on one line
    plain: bool  # unquoted
    trailing_comment: bool  # an unquoted value followed by a '#' comment on the same line


@dataclass(frozen=True)
class Document:
    """A policy file as loaded: plain data (dict/list/str/int/Decimal/bool/None) and positions."""

    source: str
    text: str
    data: dict[str, Any]
    positions: dict[JsonPath, tuple[int, int]] = field(repr=False)
    key_positions: dict[JsonPath, tuple[int, int]] = field(repr=False)
    scalars: dict[JsonPath, Scalar] = field(repr=False)

    def position(self, path: JsonPath, *, key: bool = False) -> tuple[int, int]:
        """Line and column of the node at path (of its key when key=True), or of the nearest
        ancestor we know."""
        path = tuple(path)
        while path:
            if key and path in self.key_positions:
                return self.key_positions[path]
            if path in self.positions:
                return self.positions[path]
            path = path[:-1]
        return self.positions.get((), (1, 1))


# --------------------------------------------------------------------------------------------
# CompiledPolicy: every expression checked and compiled, every number a Decimal, rules ordered.

@dataclass(frozen=True)
class Rule:
    """Where a rule is written: shown in traces and explanations."""

    kind: str  # fact, indicator, weight, gate, tier, reward
    name: str
    file: str
    line: int

    def __str__(self) -> str:
        return f"{self.kind} {self.name} ({self.file}:{self.line})"


@dataclass(frozen=True)
class Expr:
    """A compiled expression with the names it reads."""

    text: str
    function: Any = field(repr=False, compare=False)  # Callable[[Mapping[str, Any]], Any]
    reads: frozenset[str]
    inner_reads: frozenset[str]
    presence_reads: frozenset[str]
    line: int
    column: int
    checked: Any = field(default=None, repr=False, compare=False)  # expr.CheckedExpression

    @cached_property
    def sorted_reads(self) -> tuple[str, ...]:
        """The names read, sorted (as traces list them); worked out once."""
        return tuple(sorted(self.reads))


@dataclass(frozen=True)
class FactDecl:
    name: str
    type: str
    rollup: str  # sum, mean, first, last, min, max, or "expression"
    expression: Expr | None
    default: Any  # a value, or expr.MISSING
    scope: str  # employee, team, company
    source: str  # facts, lines
    label: Mapping[str, str]


@dataclass(frozen=True)
class Curve:
    kind: str  # linear, threshold, steps, expression, identity
    zero_at: Decimal | None = None
    full_at: Decimal | None = None
    cap: Decimal | None = None
    floor: Decimal | None = None
    at: Decimal | None = None
    above: Decimal = Decimal(1)
    below: Decimal = Decimal(0)
    lower_is_better: bool = False
    steps: tuple[tuple[Decimal, Decimal], ...] = ()
    expression: Expr | None = None


@dataclass(frozen=True)
class RaterGroup:
    name: str
    weight: Decimal
    min_raters: int
    label: Mapping[str, str]


@dataclass(frozen=True)
class Raters:
    scale_min: Decimal
    scale_max: Decimal
    groups: tuple[RaterGroup, ...]
    missing_group: str  # renormalize, fail, default
    default_score: Decimal | None


@dataclass(frozen=True)
class Objective:
    name: str
    weight: Decimal
    key_results: tuple[tuple[str, Decimal], ...]
    label: Mapping[str, str]


@dataclass(frozen=True)
class IndicatorDecl:
    name: str
    kind: str  # result, process, composite
    label: Mapping[str, str]
    unit: str
    value: Expr | None
    curve: Curve
    applies_when: Expr | None
    missing: str  # error, zero, exclude
    divide_by_zero: str  # error, zero, exclude
    raters: Raters | None
    parts: tuple[tuple[str, Decimal], ...]
    objectives: tuple[Objective, ...]
    rule: Rule


@dataclass(frozen=True)
class Adjustment:
    when: Expr
    source: str
    target: str
    points: Decimal
    why: Mapping[str, str]


@dataclass(frozen=True)
class RoleDecl:
    name: str
    label: Mapping[str, str]
    weights: tuple[tuple[str, Decimal], ...]
    adjustments: tuple[Adjustment, ...]
    rule: Rule


@dataclass(frozen=True)
class GateDecl:
    name: str
    when: Expr
    why: Mapping[str, str]
    roles: frozenset[str] | None
    rule: Rule


@dataclass(frozen=True)
class Band:
    name: str
    low: Decimal
    high: Decimal | None
    multiplier: Decimal
    label: Mapping[str, str]


@dataclass(frozen=True)
class Distribution:
    max_share: tuple[tuple[str, Decimal], ...]
    within: str
    mode: str  # enforce, advisory
    tie_break: Expr | None


@dataclass(frozen=True)
class Tiers:
    by: Expr | None  # None: total_score
    bands: tuple[Band, ...]
    distribution: Distribution | None
    rule: Rule


@dataclass(frozen=True)
class PayMix:
    of: str
    base: Decimal
    variable: Decimal


@dataclass(frozen=True)
class Bracket:
    upto: Decimal | None
    rate: Decimal


@dataclass(frozen=True)
class Selection:
    by: Expr
    top_count: int | None
    top_share: Decimal | None
    within: str
    tie_break: Expr | None


@dataclass(frozen=True)
class RewardDecl:
    name: str
    kind: str  # amount, commission, pool, honour, talent_pool, eligibility, development
    label: Mapping[str, str]
    roles: frozenset[str] | None
    amount: Expr | None
    base: Expr | None
    mode: str | None  # whole, graduated, interpolated
    brackets: tuple[Bracket, ...]
    gate: str | None
    else_amount: Expr | None
    else_rate: Decimal | None
    cap: Expr | None
    floor: Expr | None
    paid: str  # period, monthly
    when: Expr | None
    select: Selection | None
    split: str  # shares, equal
    outcome: Mapping[str, str]
    rule: Rule

    @property
    def is_money(self) -> bool:
        return self.kind in ("amount", "commission", "pool")


@dataclass(frozen=True)
class CompiledPolicy:
    source: str
    digest: str  # sha256 of the policy text
    policy: str
    version: str
    title: Mapping[str, str]
    languages: tuple[str, ...]
    effective_from: Any  # datetime.date
    effective_until: Any  # datetime.date | None
    period: str  # month, quarter, year
    fiscal_start: int
    currency: str
    places: int
    rounding: str  # a decimal module rounding constant
    proration: str
    facts: tuple[FactDecl, ...]  # rollup expressions after what they read
    indicators: tuple[IndicatorDecl, ...]  # after what they read
    roles: Mapping[str, RoleDecl]
    gates: tuple[GateDecl, ...]
    tiers: Tiers | None
    pay_mix: PayMix | None
    rewards: tuple[RewardDecl, ...]  # after what they read
    needs_history: bool  # some expression reads earlier periods or years
    uses_months: bool = True  # month-wise functions or a monthly reward: keep each month
    uses_periods: bool = True  # last_periods()
    uses_years: bool = True  # consecutive_years()
    history_facts: frozenset[str] | None = None  # facts earlier periods need (None: all)
    text: str = field(repr=False, default="")
    # the indicators each role needs: weighted, or read by its gates, tiers and rewards
    role_indicators: Mapping[str, frozenset[str]] = field(default_factory=dict)
