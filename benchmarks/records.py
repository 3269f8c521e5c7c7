"""What every baseline reads and returns, independent of meritpay's own types.

A `Record` is one employee's role segment with its facts already rolled up (the period's,
each month's, each complete fiscal year's), the 360 scores by rater group and the proration
factor: exactly what meritpay's evaluation of one employee receives, so the per-record figures of
meritpay and of the baselines time the same work. A missing fact is absent from the mapping.

A `Payout` is what a baseline computes for one record and what is compared with meritpay:
the total score, the tier, every money reward of the role (rounded) and the outcomes granted
before the population stage.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any


@dataclass(frozen=True, slots=True)
class Record:
    employee: str
    name: str
    role: str
    months: tuple[str, ...]
    facts: Mapping[str, Any]
    month_facts: tuple[Mapping[str, Any], ...]
    year_facts: tuple[Mapping[str, Any] | None, ...]  # complete fiscal years, oldest first
    ratings: Mapping[str, tuple[Decimal, ...]]  # rater group -> scores
    proration: Decimal


@dataclass(frozen=True, slots=True)
class Payout:
    total_score: Decimal
    tier: str
    amounts: Mapping[str, Decimal]  # money reward -> amount, the role's rewards only
    outcomes: tuple[str, ...]  # non-money rewards whose condition holds (before selection)


CENT = Decimal("0.01")
FLOAT_TOLERANCE = Decimal("1e-12")


def score_text(value: Decimal) -> str:
    """A score as meritpay's CSV writes it: 4 places, half-even."""
    return str(value.quantize(Decimal("0.0001"), rounding=ROUND_HALF_EVEN))


def differences(expected: Payout, actual: Payout, *, score_exact: bool = True) -> list[str]:
    """How `actual` differs from `expected`: amounts to the cent, the tier, the outcomes, and
    the total score: exactly, or, for an engine that hands back floats (zen), within 1e-12
    (rounding such a score to 4 places can differ from meritpay's exact value at a tie)."""
    found = []
    if expected.amounts.keys() != actual.amounts.keys():
        found.append(f"rewards {sorted(expected.amounts)} != {sorted(actual.amounts)}")
    for name, amount in expected.amounts.items():
        other = actual.amounts.get(name)
        if other is None or amount.quantize(CENT) != other.quantize(CENT):
            found.append(f"{name} {amount} != {other}")
    if expected.tier != actual.tier:
        found.append(f"tier {expected.tier} != {actual.tier}")
    if sorted(expected.outcomes) != sorted(actual.outcomes):
        found.append(f"outcomes {sorted(expected.outcomes)} != {sorted(actual.outcomes)}")
    if score_exact:
        same_score = expected.total_score == actual.total_score
    else:
        same_score = abs(expected.total_score - actual.total_score) <= FLOAT_TOLERANCE
    if not same_score:
        found.append(f"total_score {expected.total_score} != {actual.total_score}")
    return found
