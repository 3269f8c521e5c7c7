"""Explain one employee's result: every number top-down, and why what was not granted was not.

    EmployeeResult (evaluated with trace=True) + CompiledPolicy -> Explanation

The explanation is built from the trace alone (what each rule read and produced) and the
policy (labels, bands, the text and line of each rule), so a result kept in a ledger can be
explained later without the facts. Conditions that failed are handed to `whynot`, which says
by how much. Rendering is elsewhere (`explainreport`); every sentence here is plain English
with the policy's own labels in the chosen language.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from decimal import ROUND_HALF_EVEN, ROUND_UP, Decimal
from typing import Any

from .diagnostics import InputError, did_you_mean
from .evaluate import EmployeeResult, TraceEvent, money, show_rate
from .expr import MISSING, names_in
from .model import Band, CompiledPolicy, Curve, IndicatorDecl, RewardDecl
from .whynot import NEGATE, Check, analyse, substitute

SCORE_PLACES = 4
PERCENT_PLACES = 2


@dataclass(frozen=True)
class Source:
    """Where a rule is written."""

    file: str
    line: int


@dataclass(frozen=True)
class Read:
    """A value a rule read."""

    name: str
    label: str
    value: Any  # Decimal, bool, str; MISSING when the employee has none
    text: str  # as displayed: 14.99%, 1,260,100.00


@dataclass(frozen=True)
class Condition:
    """One comparison of a rule's condition, as a sentence and as data."""

    text: str  # gross_margin 14.99% < 15%: needs 0.01 percentage points more
    check: Check | None


@dataclass(frozen=True)
class RewardLine:
    name: str
    label: str
    kind: str
    amount: Decimal | None
    status: str
    gate: str | None
    basis: str  # how the amount is computed: the brackets of a commission
    arithmetic: tuple[str, ...]  # the arithmetic filled in, one line per part
    source: Source


@dataclass(frozen=True)
class BandLine:
    name: str
    label: str
    low: Decimal
    high: Decimal | None
    multiplier: Decimal


@dataclass(frozen=True)
class TierLine:
    name: str
    label: str
    by: str  # what the bands are read on: total_score or an expression
    score: Decimal
    multiplier: Decimal
    low: Decimal | None
    high: Decimal | None
    bands: tuple[BandLine, ...]
    notes: tuple[str, ...]  # where the score sits between the boundaries
    source: Source


@dataclass(frozen=True)
class GateLine:
    name: str
    why: str  # the gate's reason, in the chosen language
    passed: bool | None  # None: a value it reads is missing
    expression: str
    conditions: tuple[Condition, ...]
    consequences: tuple[str, ...]  # what a failed gate changes
    source: Source


@dataclass(frozen=True)
class RatingLine:
    group: str
    label: str
    status: str  # applied, missing (default score used), excluded
    mean: Decimal | None
    weight: Decimal  # as declared
    share: Decimal  # after groups left out are renormalised away
    detail: str


@dataclass(frozen=True)
class IndicatorLine:
    name: str
    label: str
    status: str  # scored, excluded, not_applicable
    expression: str
    arithmetic: str  # the expression with the values read: 3,613,600.00 / 3,330,000.00
    reads: tuple[Read, ...]
    value: Decimal | None
    value_text: str
    score: Decimal | None
    curve: str
    weight: Decimal
    contribution: Decimal
    note: str  # why it was excluded, counted as zero, or not applicable
    ratings: tuple[RatingLine, ...]
    source: Source


@dataclass(frozen=True)
class OutcomeLine:
    name: str
    label: str
    kind: str  # honour, talent_pool, eligibility, development
    granted: bool
    status: str
    expression: str
    conditions: tuple[Condition, ...]
    selection: str  # a top-N or top-percent selection: where the employee stood
    source: Source


@dataclass(frozen=True)
class WhyNot:
    """Something not granted (a tier above the one reached, a failed gate, a reward cut by
    one, an outcome not granted), with the nearest missed conditions and by how much."""

    name: str
    kind: str  # tier, gate, reward, honour, talent_pool, eligibility, development
    label: str
    granted: bool  # asked about with --why-not but granted after all
    reasons: tuple[Condition, ...]


@dataclass(frozen=True)
class Explanation:
    employee: str
    name: str
    role: str
    role_label: str
    months: tuple[str, ...]
    policy: str
    version: str
    title: str
    source: str  # the policy file
    lang: str
    currency: str
    places: int
    proration: Decimal
    total_pay: Decimal
    total_score: Decimal
    total: tuple[str, ...]  # how the total score was formed: weights, adjustments
    rank: int
    percentile: Decimal
    rewards: tuple[RewardLine, ...]
    tier: TierLine | None
    gates: tuple[GateLine, ...]
    indicators: tuple[IndicatorLine, ...]
    outcomes: tuple[OutcomeLine, ...]
    why_not: tuple[WhyNot, ...]
    focus: str | None = None  # --why-not NAME: why_not holds only that


def label(mapping: Mapping[str, str], lang: str, fallback: str) -> str:
    """The label in lang, else English, else the name."""
    return mapping.get(lang) or mapping.get("en") or fallback


def check_language(policy: CompiledPolicy, lang: str) -> None:
    if lang != "en" and lang not in policy.languages:
        raise InputError(f"policy {policy.policy} has no labels in '{lang}'; its languages are "
                         + ", ".join(policy.languages))


def why_not_names(policy: CompiledPolicy) -> list[str]:
    """What --why-not can name: rewards and outcomes, gates and tier bands."""
    names = [r.name for r in policy.rewards] + [g.name for g in policy.gates]
    names += [b.name for b in policy.tiers.bands] if policy.tiers else []
    return names


def explain(result: EmployeeResult, policy: CompiledPolicy, *, lang: str = "en",
            why_not: str | None = None) -> Explanation:
    """The explanation of one employee segment's result under the policy it was evaluated by.

    The result must carry its trace (evaluate with trace=True). Raises InputError for an
    unknown language or a --why-not name the policy does not have.
    """
    if not result.trace:
        raise InputError(f"employee {result.employee}: the result has no trace; evaluate with "
                         "trace=True to explain it")
    check_language(policy, lang)
    if why_not is not None and why_not not in why_not_names(policy):
        raise InputError(f"--why-not '{why_not}': policy {policy.policy} has no reward, outcome, "
                         f"gate or tier of that name{did_you_mean(why_not, why_not_names(policy))}"
                         "; it has " + ", ".join(why_not_names(policy)))
    return _Builder(result, policy, lang).build(why_not)


# --------------------------------------------------------------------------------------------
# Showing values in their own units.

class Units:
    """How each name's value is shown: money, a percentage (ratios), a number, true/false."""

    def __init__(self, places: int = 2, kinds: Mapping[str, str] | None = None) -> None:
        self.places = places
        self.kinds = dict(kinds or {})

    @classmethod
    def of(cls, policy: CompiledPolicy) -> Units:
        kinds: dict[str, str] = {}
        for fact in policy.facts:
            kinds[fact.name] = {"ratio": "percent", "money": "money"}.get(fact.type, "number")
        for indicator in policy.indicators:
            kinds[indicator.name] = cls.indicator_kind(indicator)
            kinds[f"weight.{indicator.name}"] = "percent"
        for name in ("pay_mix.base", "pay_mix.variable"):
            kinds[name] = "money"
        for reward in policy.rewards:
            kinds[f"reward.{reward.name}"] = "money"
        return cls(policy.places, kinds)

    @staticmethod
    def indicator_kind(indicator: IndicatorDecl) -> str:
        if indicator.value is None:  # 360 reviews and composites are scores and ratings
            return "number"
        return {"ratio": "percent", "money": "money"}.get(indicator.unit, "number")

    def percent_names(self) -> set[str]:
        return {name for name, kind in self.kinds.items() if kind == "percent"}

    def kind(self, name: str) -> str:
        return self.kinds.get(name, "number")

    def value(self, value: Any, kind: str = "number", against: Any = None) -> str:
        """A value for people; when it would look equal to `against` but is not, with as
        many more decimals as it takes to tell them apart (14.999% is not 15%)."""
        if value is MISSING or value is None:
            return "missing"
        if isinstance(value, bool):
            return "true" if value else "false"
        if not isinstance(value, Decimal):
            return str(value)
        if kind == "money":
            return money(value, self.places)
        scale = 100 if kind == "percent" else 1
        places = PERCENT_PLACES if kind == "percent" else SCORE_PLACES
        shown = _round(value * scale, places)
        while isinstance(against, Decimal) and against != value and places < 12 \
                and shown == _round(against * scale, places):
            places += 1
            shown = _round(value * scale, places)
        text = _plain(shown)
        return f"{text}%" if kind == "percent" else text

    def gap(self, gap: Decimal, kind: str) -> str:
        """A gap, rounded up (away from zero) so the amount shown is always enough."""
        size = abs(gap)
        if kind == "percent":
            points = _plain((size * 100).quantize(Decimal(1).scaleb(-PERCENT_PLACES), ROUND_UP))
            return f"{points} percentage point" + ("" if points == "1" else "s")
        if kind == "money":
            return money(size.quantize(Decimal(1).scaleb(-self.places), ROUND_UP), self.places)
        return _plain(size.quantize(Decimal(1).scaleb(-SCORE_PLACES), ROUND_UP))


def _round(value: Decimal, places: int) -> Decimal:
    return value.quantize(Decimal(1).scaleb(-places), ROUND_HALF_EVEN)


def _plain(value: Decimal) -> str:
    text = format(value, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def decimal_text(value: Decimal | None) -> str:
    """Exactly, without exponent: for JSON."""
    return "" if value is None else format(value, "f")


# --------------------------------------------------------------------------------------------

class _Builder:
    def __init__(self, result: EmployeeResult, policy: CompiledPolicy, lang: str) -> None:
        self.result, self.policy, self.lang = result, policy, lang
        self.units = Units.of(policy)
        self.events: dict[tuple[str, str], TraceEvent] = {}
        for event in result.trace:
            self.events[(event.step, event.name)] = event
        self.facts = {f.name: f for f in policy.facts}
        self.indicator_decls = {i.name: i for i in policy.indicators}
        self.reward_decls = {r.name: r for r in policy.rewards}
        self.gate_decls = {g.name: g for g in policy.gates}
        self.gate_lines: dict[str, GateLine] = {}

    def source(self, line: int) -> Source:
        return Source(self.policy.source, line)

    def name_label(self, name: str) -> str:
        if name in self.facts:
            return label(self.facts[name].label, self.lang, name)
        if name in self.indicator_decls:
            return label(self.indicator_decls[name].label, self.lang, name)
        return name

    def read(self, name: str, value: Any) -> Read:
        return Read(name, self.name_label(name), value,
                    self.units.value(value, self.units.kind(name)))

    # the document --------------------------------------------------------------------------
    def build(self, focus: str | None) -> Explanation:
        result, policy = self.result, self.policy
        role = policy.roles[result.role]
        gates = self.gates()
        tier = self.tier()
        why_not = self.why_not(tier)
        if focus is not None:
            why_not = self.focused(focus, why_not)
        return Explanation(
            employee=result.employee, name=result.name, role=result.role,
            role_label=label(role.label, self.lang, role.name), months=result.months,
            policy=policy.policy, version=policy.version,
            title=label(policy.title, self.lang, policy.policy), source=policy.source,
            lang=self.lang, currency=result.currency, places=policy.places,
            proration=result.proration, total_pay=result.total_pay,
            total_score=result.total_score, total=self.total(), rank=result.rank,
            percentile=result.percentile, rewards=self.rewards(), tier=tier, gates=gates,
            indicators=self.indicators(), outcomes=self.outcomes(), why_not=why_not,
            focus=focus)

    # rewards -------------------------------------------------------------------------------
    def rewards(self) -> tuple[RewardLine, ...]:
        lines = []
        for line in self.result.rewards:
            if line.amount is None:
                continue
            decl = self.reward_decls[line.name]
            event = self.events.get(("reward", line.name))
            arithmetic = self.arithmetic(decl, event) if event else ()
            lines.append(RewardLine(
                line.name, label(decl.label, self.lang, line.name), line.kind, line.amount,
                line.status, decl.gate, self.basis(decl), arithmetic, self.source(decl.rule.line)))
        return tuple(lines)

    def basis(self, decl: RewardDecl) -> str:
        if decl.kind != "commission" or decl.base is None:
            return ""
        brackets = []
        for bracket in decl.brackets:
            upto = f"up to {money(bracket.upto, self.policy.places)}" if bracket.upto is not None \
                else "above"
            brackets.append(f"{show_rate(bracket.rate)} {upto}")
        monthly = ", paid monthly (each month rounded)" if decl.paid == "monthly" else ""
        return f"{decl.mode} brackets on {decl.base.text}: {', '.join(brackets)}{monthly}"

    def arithmetic(self, decl: RewardDecl, event: TraceEvent) -> tuple[str, ...]:
        """The trace's arithmetic with the values read filled in: `target_cash 136,800.00 x
        60% = 82,080.00`; a commission paid monthly gives one line a month and the sum."""
        detail = event.detail
        body, _, total = detail.rpartition(" = ")
        if not body:
            body, total = detail, ""
        reads = dict(event.reads)
        pay_mix = self.events.get(("pay_mix", self.policy.pay_mix.of)) \
            if self.policy.pay_mix is not None else None

        def show(name: str) -> str | None:
            if pay_mix is not None and name in ("pay_mix.base", "pay_mix.variable"):
                mix = self.policy.pay_mix
                assert mix is not None
                rate = mix.base if name == "pay_mix.base" else mix.variable
                return f"{mix.of} {self.units.value(pay_mix.value, 'money')} x {show_rate(rate)}"
            if name in reads:
                return f"{name} {self.units.value(reads[name], self.units.kind(name))}"
            return None

        for expr in (decl.amount, decl.else_amount):
            if expr is not None and expr.text in body and decl.kind == "amount":
                body = body.replace(expr.text, substitute(expr.text, show), 1)
                break
        parts = body.split("; ")
        if len(parts) == 1:
            return (f"{body} = {total}" if total else body,)
        return (*parts, f"= {total}")

    # tier ----------------------------------------------------------------------------------
    def tier(self) -> TierLine | None:
        tiers = self.policy.tiers
        event = self.events.get(("tier", self.result.tier)) or next(
            (e for e in self.result.trace if e.step == "tier"), None)
        if tiers is None or event is None:
            return None
        score = event.value
        by = tiers.by.text if tiers.by is not None else "total_score"
        bands = tuple(BandLine(b.name, label(b.label, self.lang, b.name), b.low, b.high,
                               b.multiplier) for b in tiers.bands)
        reached = next((b for b in tiers.bands if b.name == self.result.tier), None)
        show = self.units.value
        notes = []
        holding = next((b for b in tiers.bands if score >= b.low
                        and (b.high is None or score < b.high)), None)
        if holding is not None:
            upper = f"to {show(holding.high)} (exclusive)" if holding.high is not None \
                else "and above"
            notes.append(f"{by} {show(score, against=holding.low)} is in band {holding.name}: "
                         f"from {show(holding.low)} (inclusive) {upper}")
            if score == holding.low and holding is not tiers.bands[0]:
                notes.append(f"exactly on the boundary {show(holding.low)}: a score on a "
                             "boundary takes the higher band")
            elif holding is not tiers.bands[0]:
                notes.append(f"{show(score - holding.low)} above the lower boundary "
                             f"{show(holding.low)}")
            above = [b for b in tiers.bands if b.low > score]
            if above:
                nearest = min(above, key=lambda b: b.low)
                notes.append(f"{self.units.gap(nearest.low - score, 'number')} more {by} "
                             f"reaches tier {nearest.name}")
        else:
            notes.append(f"{by} {show(score)} is below every band")
        if reached is not None and holding is not None and reached.name != holding.name:
            notes.append(f"moved from {holding.name} to {reached.name} by the distribution cap")
        return TierLine(self.result.tier, label(reached.label, self.lang, reached.name)
                        if reached else "", by, score, self.result.multiplier,
                        reached.low if reached else None, reached.high if reached else None,
                        bands, tuple(notes), self.source(tiers.rule.line))

    # gates ---------------------------------------------------------------------------------
    def gates(self) -> tuple[GateLine, ...]:
        lines = []
        for name, passed in self.result.gates:
            event = self.events.get(("gate", name))
            if event is None:  # the gate does not apply to this role
                continue
            decl = self.gate_decls[name]
            conditions = self.conditions(decl.when.text, event, passed)
            consequences = self.consequences(name) if passed is not True else ()
            line = GateLine(name, label(decl.why, self.lang, ""), passed, decl.when.text,
                            conditions, consequences, self.source(decl.rule.line))
            self.gate_lines[name] = line
            lines.append(line)
        return tuple(lines)

    def consequences(self, gate: str) -> tuple[str, ...]:
        found = []
        for line in self.result.rewards:
            decl = self.reward_decls[line.name]
            if decl.gate != gate:
                continue
            if decl.else_rate is not None:
                found.append(f"{decl.name} pays {show_rate(decl.else_rate)} on the whole base "
                             "instead of its brackets")
            elif decl.else_amount is not None:
                found.append(f"{decl.name} pays {decl.else_amount.text} instead")
            else:
                found.append(f"{decl.name} pays 0")
        return tuple(found)

    def conditions(self, text: str, event: TraceEvent, holds: bool | None
                   ) -> tuple[Condition, ...]:
        """Each comparison of a condition: the failing ones (with their gaps) when it failed,
        every one when it held."""
        analysis = analyse(text, dict(event.reads), event.series,
                           percent_names=self.units.percent_names())
        checks = analysis.missed if holds is not True else analysis.checks
        return tuple(Condition(self.sentence(c), c) for c in checks)

    # indicators ----------------------------------------------------------------------------
    def total(self) -> tuple[str, ...]:
        result, policy = self.result, self.policy
        role = policy.roles[result.role]
        nominal = dict(role.weights)
        lines = []
        for adjustment in role.adjustments:
            event = self.events.get(("weight", f"{role.name}: {adjustment.source} -> "
                                               f"{adjustment.target}"))
            applied = event is not None and event.outcome == "applied"
            state = "holds" if applied else "does not hold"
            points = self.units.value(adjustment.points, "percent")
            lines.append(f"{adjustment.when.text} {state}: the shift of {points} from "
                         f"{adjustment.source} to {adjustment.target} "
                         f"{'applies' if applied else 'does not apply'} "
                         f"(line {adjustment.when.line})")
            if applied:
                nominal[adjustment.source] = nominal.get(adjustment.source, Decimal(0)) \
                    - adjustment.points
                nominal[adjustment.target] = nominal.get(adjustment.target, Decimal(0)) \
                    + adjustment.points
        counted = [i for i in result.indicators if i.status == "scored" and i.weight]
        share = sum((nominal.get(i.name, Decimal(0)) for i in counted), Decimal(0))
        left_out = [f"{i.name} ({i.status.replace('_', ' ')})" for i in result.indicators
                    if i.status != "scored"]
        lines.insert(0, f"total_score = sum of weight x score over {len(counted)} indicator(s) "
                     f"= {self.units.value(result.total_score)}")
        if share != 1 and share:
            lines.insert(1, f"weights renormalised over {self.units.value(share, 'percent')}"
                         + (f"; left out: {', '.join(left_out)}" if left_out else ""))
        return tuple(lines)

    def indicators(self) -> tuple[IndicatorLine, ...]:
        lines = []
        for item in self.result.indicators:
            decl = self.indicator_decls[item.name]
            event = self.events.get(("indicator", item.name))
            kind = self.units.indicator_kind(decl)
            expression = decl.value.text if decl.value is not None else (
                "weighted mean of the rater groups' mean ratings" if decl.raters is not None
                else "weighted mean of the scores of " + ", ".join(n for n, _ in decl.parts)
                if decl.parts else "weighted mean of the objectives' key results")
            reads = tuple(self.read(n, v) for n, v in event.reads) if event else ()
            shown = {r.name: r.text for r in reads}
            arithmetic = substitute(expression, shown.get) if decl.value is not None else ""
            note = ""
            if event is not None and event.detail and event.detail != expression:
                note = event.detail
            if item.status == "not_applicable" and decl.applies_when is not None:
                note = f"applies only when {decl.applies_when.text}, which does not hold"
            lines.append(IndicatorLine(
                item.name, label(decl.label, self.lang, item.name), item.status, expression,
                arithmetic, reads, item.value,
                self.units.value(item.value, kind) if item.value is not None else "", item.score,
                self.curve(decl.curve, kind), item.weight, item.contribution, note,
                self.ratings(decl), self.source(decl.rule.line)))
        return tuple(lines)

    def curve(self, curve: Curve, kind: str) -> str:
        def show(value: Decimal | None) -> str:
            return self.units.value(value, kind)

        def plain(value: Decimal | None) -> str:
            return self.units.value(value)

        if curve.kind == "linear":
            bounds = [f"at least {plain(curve.floor)}" if curve.floor else "",
                      f"at most {plain(curve.cap)}" if curve.cap is not None else ""]
            bounded = ", ".join(b for b in bounds if b)
            return (f"linear: 0 at {show(curve.zero_at)}, 1 at {show(curve.full_at)}"
                    + (f", {bounded}" if bounded else ""))
        if curve.kind == "threshold":
            side = "at or below" if curve.lower_is_better else "at or above"
            return (f"threshold: {plain(curve.above)} {side} {show(curve.at)}, else "
                    f"{plain(curve.below)}")
        if curve.kind == "steps":
            return "steps: " + ", ".join(f"{plain(s)} from {show(f)}" for f, s in curve.steps)
        if curve.kind == "expression" and curve.expression is not None:
            return f"expression: {curve.expression.text}"
        return "the value is the score"

    def ratings(self, decl: IndicatorDecl) -> tuple[RatingLine, ...]:
        if decl.raters is None:
            return ()
        found = []
        for group in decl.raters.groups:
            event = self.events.get(("rating", f"{decl.name}.{group.name}"))
            if event is None:
                continue
            found.append((group, event))
        counted = sum((g.weight for g, e in found if e.outcome != "excluded"), Decimal(0))
        return tuple(RatingLine(
            group.name, label(group.label, self.lang, group.name), event.outcome,
            event.value, group.weight,
            group.weight / counted if counted and event.outcome != "excluded" else Decimal(0),
            event.detail) for group, event in found)

    # outcomes ------------------------------------------------------------------------------
    def outcomes(self) -> tuple[OutcomeLine, ...]:
        lines = []
        for line in self.result.rewards:
            if line.amount is not None:
                continue
            decl = self.reward_decls[line.name]
            event = self.events.get(("outcome", line.name))
            expression = decl.when.text if decl.when is not None else "always"
            conditions: tuple[Condition, ...] = ()
            if decl.when is not None and event is not None:
                conditions = self.conditions(decl.when.text, event, event.value is True)
            lines.append(OutcomeLine(
                line.name, label(decl.label, self.lang, line.name), line.kind, bool(line.granted),
                line.status, expression, conditions, self.selection(decl),
                self.source(decl.rule.line)))
        return tuple(lines)

    def selection(self, decl: RewardDecl) -> str:
        event = self.events.get(("selection", decl.name))
        if decl.select is None or event is None:
            return ""
        reads = dict(event.reads)
        measure, cut = reads.get("measure"), reads.get("cut")
        by = decl.select.by.text
        kind = self.units.kind(by)
        how = f"top {decl.select.top_count}" if decl.select.top_count is not None else \
            f"top {self.units.value(decl.select.top_share, 'percent')}"
        where = event.detail.split("(")[-1].split(")")[0] if "(" in event.detail else ""
        rank = f"; rank {self.result.rank} in role, " \
               f"{self.units.value(self.result.percentile, 'percent')} of the role score lower"
        if measure is None:
            return f"{how} by {by} within {decl.select.within}: not a candidate, since its " \
                   "condition did not hold"
        shown = self.units.value(measure, kind, against=cut)
        if event.value:
            return f"selected, {event.detail.split(',')[0]}: {by} {shown}, the cut at " \
                   f"{self.units.value(cut, kind, against=measure)} ({how}){rank}"
        gap = self.units.gap(cut - measure, kind) if isinstance(cut, Decimal) else "?"
        return f"not selected: {by} {shown} is below the cut {self.units.value(cut, kind)} of " \
               f"the {how} in {where}: needs {gap} more{rank}"

    # why not -------------------------------------------------------------------------------
    def why_not(self, tier: TierLine | None) -> tuple[WhyNot, ...]:
        found: list[WhyNot] = []
        tiers = self.policy.tiers
        if tiers is not None and tier is not None:
            for band in tiers.bands:
                if band.low > tier.score:
                    found.append(WhyNot(band.name, "tier", label(band.label, self.lang,
                                                                 band.name), False,
                                        (Condition(self.band_gap(band), None),)))
        for gate in self.gate_lines.values():
            if gate.passed is not True:
                found.append(WhyNot(gate.name, "gate", gate.why, False, (
                    *gate.conditions, *(Condition(f"so {c}", None) for c in gate.consequences))))
        for line in self.result.rewards:
            decl = self.reward_decls[line.name]
            title = label(decl.label, self.lang, line.name)
            if line.amount is not None:
                reasons = self.reward_reasons(decl, line.status, line.amount)
                if reasons:
                    found.append(WhyNot(line.name, "reward", title, False, reasons))
            elif not line.granted:
                found.append(WhyNot(line.name, line.kind, title, False,
                                    self.outcome_reasons(decl)))
        return tuple(found)

    def band_gap(self, band: Band) -> str:
        tiers = self.policy.tiers
        assert tiers is not None
        event = next((e for e in self.result.trace if e.step == "tier"), None)
        score = event.value if event is not None else self.result.total_score
        by = tiers.by.text if tiers.by is not None else "total_score"
        return f"{self.units.gap(band.low - score, 'number')} more {by} reaches tier {band.name} " \
               f"(from {self.units.value(band.low)}; {by} is {self.units.value(score)})"

    def reward_reasons(self, decl: RewardDecl, status: str, amount: Decimal
                       ) -> tuple[Condition, ...]:
        if status == "gate_failed" and decl.gate is not None:
            gate = self.gate_lines.get(decl.gate)
            head = f"gate {decl.gate} failed"
            if gate is None or not gate.conditions:
                return (Condition(head, None),)
            return tuple(Condition(f"{head}: {c.text}", c.check) for c in gate.conditions)
        if amount == 0 and decl.amount is not None and "tier.multiplier" in decl.amount.reads \
                and self.result.multiplier == 0 and self.policy.tiers is not None:
            better = [b for b in self.policy.tiers.bands if b.multiplier > 0]
            if better:
                band = min(better, key=lambda b: b.low)
                return (Condition(f"tier {self.result.tier} has multiplier 0: "
                                  + self.band_gap(band), None),)
        return ()

    def outcome_reasons(self, decl: RewardDecl) -> tuple[Condition, ...]:
        event = self.events.get(("outcome", decl.name))
        if event is None:
            return ()
        if event.value is True:  # the condition held; the selection left it out
            return (Condition(self.selection(decl), None),)
        if decl.when is None:
            return ()
        return self.conditions(decl.when.text, event, False)

    def focused(self, name: str, found: tuple[WhyNot, ...]) -> tuple[WhyNot, ...]:
        chosen = tuple(w for w in found if w.name == name)
        if chosen:
            return chosen
        reward = self.result.reward(name)
        if name in self.reward_decls and reward is None:
            text = f"{name} does not apply to role {self.result.role}"
            kind = self.reward_decls[name].kind
        elif name in self.gate_decls and self.events.get(("gate", name)) is None:
            text, kind = f"gate {name} does not apply to role {self.result.role}", "gate"
        elif name in self.gate_decls:
            text, kind = f"gate {name} passed", "gate"
        elif name in self.reward_decls:
            kind = self.reward_decls[name].kind
            text = f"{name} was granted" if reward is not None and reward.amount is None else \
                f"{name} was paid in full"
        else:
            text, kind = f"tier {name} was reached (the tier is {self.result.tier})", "tier"
        decl_label: Mapping[str, str] = {}
        if name in self.reward_decls:
            decl_label = self.reward_decls[name].label
        return (WhyNot(name, kind, label(decl_label, self.lang, name), True,
                       (Condition(text, None),)),)

    # sentences -----------------------------------------------------------------------------
    def sentence(self, check: Check) -> str:
        """One comparison for people: `gross_margin 14.99% < 15%: needs 0.01 percentage points
        more`; a year that breaks a run; the tier or gate it depends on."""
        units = self.units
        where = {"year": f"fiscal year {check.at}", "month": check.at,
                 "period": check.at}.get(check.over, "")
        if check.no_data:
            what = f"no data for {where}" if check.at else f"no data for {check.left}"
            return f"{what} breaks the {check.run}-year run" if check.over == "year" \
                and check.run else what
        if check.op == "is":
            return f"{check.left} is {units.value(check.left_value)}" + self.linked(check)
        if check.left == "tier.name" and check.op == "==" and not check.holds:
            return f"tier is {check.left_value}, not {check.right_value}" + self.linked(check)
        kind = "percent" if check.percent else units.kind(check.left)
        if kind == "percent" and not check.percent:
            kind = "number"
        left = check.left if _is_name(check.left) else f"{check.left} ="
        if check.left_value is MISSING:
            return f"{check.left} is missing" + (f" in {where}" if where else "")
        right_value = check.right_value
        right = units.value(right_value, kind, against=check.left_value) \
            if isinstance(right_value, Decimal) else check.right
        if names_in(check.right) and not check.right.startswith(("'", '"')):
            right = f"{check.right} {right}"
        shown = units.value(check.left_value, kind, against=right_value)
        op = check.op if check.holds else NEGATE.get(check.op, check.op)
        if check.holds:
            return f"{left} {shown} {op} {right}"
        need = ""
        if check.gap is not None and check.op in (">=", ">", "<=", "<"):
            more = "more" if check.gap > 0 else "less"
            need = f"needs {'over ' if check.strict else ''}{units.gap(check.gap, kind)} {more}"
        elif check.gap is not None:
            need = f"needs to be {right}"
        if check.over == "year" and check.run:
            return f"{check.left} {shown} in {where} breaks the {check.run}-year run " \
                   f"({op} {right}" + (f": {need})" if need else ")")
        text = f"{left} {shown} {op} {right}" + (f" in {where}" if where else "")
        return f"{text}: {need}" if need else text

    def linked(self, check: Check) -> str:
        """What a failing test of a gate or the tier depends on."""
        if check.holds:
            return ""
        if check.left.startswith("gate.") and check.left[5:] in self.gate_lines:
            gate = self.gate_lines[check.left[5:]]
            return ": " + "; ".join(c.text for c in gate.conditions) if gate.conditions else ""
        if check.left == "tier.name" and self.policy.tiers is not None:
            band = next((b for b in self.policy.tiers.bands if b.name == check.right_value), None)
            if band is not None and band.name != self.result.tier:
                tier = next((e for e in self.result.trace if e.step == "tier"), None)
                if tier is not None and band.low > tier.value:
                    return ": " + self.band_gap(band)
                return f": {band.name} starts at {self.units.value(band.low)}"
        return ""


def _is_name(text: str) -> bool:
    return bool(text) and all(part.isidentifier() for part in text.split("."))


def explain_all(results: Sequence[EmployeeResult], policies: Sequence[CompiledPolicy], *,
                lang: str = "en", why_not: str | None = None) -> tuple[Explanation, ...]:
    """Explain each segment with the policy it was evaluated under (matched by id and
    version). A --why-not name must exist in at least one of those policies."""
    by_version = {(p.policy, p.version): p for p in policies}
    pairs = [(r, by_version[(r.policy, r.version)]) for r in results]
    if why_not is not None:
        known = {n for _, p in pairs for n in why_not_names(p)}
        if why_not not in known:
            names = sorted(known)
            raise InputError(f"--why-not '{why_not}': no reward, outcome, gate or tier of that "
                             f"name{did_you_mean(why_not, names)}; there are "
                             + ", ".join(names))
    explanations = []
    for result, policy in pairs:
        name = why_not if why_not is None or why_not in why_not_names(policy) else None
        explanation = explain(result, policy, lang=lang, why_not=name)
        if why_not is not None and name is None:
            explanation = replace(explanation, focus=why_not, why_not=(WhyNot(
                why_not, "", why_not, True, (Condition(
                    f"{why_not} is not in policy {policy.policy} of role {result.role}",
                    None),)),))
        explanations.append(explanation)
    return tuple(explanations)




def results_of(results: Sequence[EmployeeResult], employee: str) -> tuple[EmployeeResult, ...]:
    """The result(s) of one employee (one per role segment), by id or by exact name.
    An unknown employee is an InputError listing the nearest ids and names."""
    found = tuple(r for r in results if r.employee == employee)
    if not found:
        found = tuple(r for r in results if r.name and r.name.casefold() == employee.casefold())
    if found:
        return found
    import difflib

    candidates = sorted({r.employee for r in results} | {r.name for r in results if r.name})
    near = difflib.get_close_matches(employee, candidates, n=5, cutoff=0.6)
    hint = f"; near matches: {', '.join(near)}" if near else ""
    raise InputError(f"employee '{employee}' has no result in this run{hint}")


__all__ = ["Explanation", "Units", "WhyNot", "explain", "explain_all", "label", "results_of"]
