"""Dry-run a policy change: evaluate the old and the new version on the same facts and period,
and say what changed in the policy, what it costs, who gains and loses, and why.

Both versions are evaluated whatever their effective ranges (that is the point of a dry-run).
The cause of each employee's change is found by comparing the two traces, rule by rule in
pipeline order, never guessed from names.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import os
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from decimal import ROUND_HALF_EVEN, Decimal
from types import MappingProxyType
from typing import Any

from .diagnostics import Diagnostic, InputError
from .evaluate import EmployeeInput, EmployeeResult, TraceEvent, evaluate_employee, money, show
from .facts import NotGrouped
from .fast import evaluate
from .load import load_document
from .model import CompiledPolicy, Document, JsonPath
from .run import (
    Prepared,
    RunInputs,
    RunResult,
    choose_policy,
    prepare,
    run,
    segment_inputs,
    stream_runs,
)

ZERO = Decimal(0)
QUANTILES = (("min", None), ("p10", Decimal("0.10")), ("p25", Decimal("0.25")),
             ("median", Decimal("0.50")), ("p75", Decimal("0.75")), ("p90", Decimal("0.90")),
             ("max", None))
_CATEGORY = {"facts": "facts", "indicators": "indicators", "roles": "weights",
             "gates": "gates", "tiers": "tiers", "rewards": "rewards", "pay_mix": "pay mix",
             "guardrails": "guardrails"}
_COSMETIC = ("label", "title", "why", "outcome", "languages")


@dataclass(frozen=True)
class PolicyChange:
    """One difference between the two versions of a policy."""

    policy: str
    category: str  # weights, gates, tiers, rewards, indicators, facts, metadata, labels, ...
    path: str  # gates.margin_floor.when
    kind: str  # changed, added, removed
    old: str
    new: str
    old_at: str  # file:line, or '' when added
    new_at: str  # file:line, or '' when removed


@dataclass(frozen=True, slots=True)
class EmployeeDiff:
    employee: str
    name: str
    role: str
    months: tuple[str, ...]
    currency: str
    old: EmployeeResult | None
    new: EmployeeResult | None
    causes: tuple[str, ...]
    groups: Mapping[str, str] = field(default_factory=dict)  # --by column -> value

    @property
    def old_pay(self) -> Decimal:
        return self.old.total_pay if self.old is not None else ZERO

    @property
    def new_pay(self) -> Decimal:
        return self.new.total_pay if self.new is not None else ZERO

    @property
    def delta(self) -> Decimal:
        return self.new_pay - self.old_pay

    @property
    def changed(self) -> bool:
        return bool(self.causes) or self.delta != 0


@dataclass(frozen=True)
class Totals:
    """Cost before and after for a group of people."""

    headcount: int
    old: Decimal
    new: Decimal
    gainers: int
    losers: int

    @property
    def delta(self) -> Decimal:
        return self.new - self.old

    @property
    def percent(self) -> Decimal | None:
        if self.old == 0:
            return None
        return (self.delta / self.old * 100).quantize(Decimal("0.01"), rounding=ROUND_HALF_EVEN)


@dataclass(frozen=True)
class Breach:
    limit: str
    message: str


@dataclass(frozen=True)
class DiffReport:
    period: str
    old_label: str
    new_label: str
    policy_changes: tuple[PolicyChange, ...]
    employees: tuple[EmployeeDiff, ...]  # largest absolute change first
    only_old: tuple[Diagnostic, ...]  # employees the new version could not evaluate
    only_new: tuple[Diagnostic, ...]  # employees the old version could not evaluate
    currency: str
    by: tuple[str, ...] = ()
    breaches: tuple[Breach, ...] = ()

    # summaries -------------------------------------------------------------------------------
    def totals(self, people: Iterable[EmployeeDiff] | None = None) -> Totals:
        group = list(self.employees if people is None else people)
        return Totals(len(group), sum((e.old_pay for e in group), ZERO),
                      sum((e.new_pay for e in group), ZERO),
                      sum(1 for e in group if e.delta > 0), sum(1 for e in group if e.delta < 0))

    @property
    def unchanged(self) -> int:
        return sum(1 for e in self.employees if e.delta == 0)

    def by_role(self) -> list[tuple[str, Totals]]:
        roles: dict[str, list[EmployeeDiff]] = defaultdict(list)
        for item in self.employees:
            roles[item.role].append(item)
        return [(role, self.totals(people)) for role, people in sorted(roles.items())]

    def by_column(self, column: str) -> list[tuple[str, Totals]]:
        groups: dict[str, list[EmployeeDiff]] = defaultdict(list)
        for item in self.employees:
            groups[item.groups.get(column, "") or "(blank)"].append(item)
        return [(value, self.totals(people)) for value, people in sorted(groups.items())]

    def by_reward(self) -> list[tuple[str, Decimal, Decimal]]:
        old: dict[str, Decimal] = defaultdict(Decimal)
        new: dict[str, Decimal] = defaultdict(Decimal)
        order: list[str] = []
        for item in self.employees:
            for side, sums in ((item.old, old), (item.new, new)):
                for line in side.rewards if side is not None else ():
                    if line.amount is not None:
                        sums[line.name] += line.amount
                        if line.name not in order:
                            order.append(line.name)
        return [(name, old[name], new[name]) for name in order]

    def quantiles(self) -> list[tuple[str, Decimal]]:
        """Of the per-employee change, by the nearest-rank method: the q-quantile of n sorted
        values is the ceil(q x n)-th."""
        deltas = sorted(e.delta for e in self.employees)
        if not deltas:
            return []
        found = []
        for label, q in QUANTILES:
            if q is None:
                found.append((label, deltas[0] if label == "min" else deltas[-1]))
            else:
                found.append((label, deltas[max(1, math.ceil(q * len(deltas))) - 1]))
        return found

    def tier_matrix(self) -> list[tuple[str, str, int]]:
        counts = Counter((e.old.tier if e.old else "-", e.new.tier if e.new else "-")
                         for e in self.employees)
        return sorted((a, b, n) for (a, b), n in counts.items())

    def outcome_changes(self) -> list[tuple[str, int, int]]:
        """For each honour, pool, eligibility and development outcome: gained, lost."""
        gained: Counter[str] = Counter()
        lost: Counter[str] = Counter()
        names: set[str] = set()
        for item in self.employees:
            before = _granted(item.old)
            after = _granted(item.new)
            names |= _outcome_names(item.old) | _outcome_names(item.new)
            for name in after - before:
                gained[name] += 1
            for name in before - after:
                lost[name] += 1
        return [(n, gained[n], lost[n]) for n in sorted(names)]


def _granted(result: EmployeeResult | None) -> set[str]:
    return {r.name for r in result.rewards if r.amount is None and r.granted} if result else set()


def _outcome_names(result: EmployeeResult | None) -> set[str]:
    return {r.name for r in result.rewards if r.amount is None} if result else set()


# --------------------------------------------------------------------------------------------
# What changed in the policy

def _document(policy: CompiledPolicy) -> Document:
    document, _ = load_document(policy.text, policy.source)
    assert document is not None  # it compiled, so it loads
    return document


def _shown(value: Any) -> str:
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {_shown(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(_shown(v) for v in value) + "]"
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "(none)"
    return str(value)


def _category(path: JsonPath) -> str:
    if any(part in _COSMETIC for part in path if isinstance(part, str)):
        return "labels"
    head = str(path[0])
    if head == "indicators" and "score" in path:
        return "curves"
    if head == "rewards" and "brackets" in path:
        return "rates"
    return _CATEGORY.get(head, "metadata")


def _walk(old: Any, new: Any, path: JsonPath) -> Iterator[tuple[JsonPath, str, Any, Any]]:
    if isinstance(old, dict) and isinstance(new, dict):
        for key in [*new, *(k for k in old if k not in new)]:
            if key not in old:
                yield (*path, key), "added", None, new[key]
            elif key not in new:
                yield (*path, key), "removed", old[key], None
            else:
                yield from _walk(old[key], new[key], (*path, key))
    elif isinstance(old, list) and isinstance(new, list) and len(old) == len(new):
        for index, (a, b) in enumerate(zip(old, new, strict=True)):
            yield from _walk(a, b, (*path, index))
    elif old != new:
        yield path, "changed", old, new


def _path_text(path: JsonPath) -> str:
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def policy_changes(old: CompiledPolicy | None, new: CompiledPolicy | None) -> list[PolicyChange]:
    """Every difference between two versions of one policy, in the new file's order."""
    if old is None or new is None:
        present = new or old
        assert present is not None
        kind = "added" if old is None else "removed"
        at = f"{present.source}:1"
        return [PolicyChange(present.policy, "policies", present.policy, kind,
                             "" if old is None else f"version {present.version}",
                             "" if new is None else f"version {present.version}",
                             "" if old is None else at, "" if new is None else at)]
    before, after = _document(old), _document(new)
    changes = []
    for path, kind, a, b in _walk(before.data, after.data, ()):
        old_at = f"{before.source}:{before.position(path)[0]}" if kind != "added" else ""
        new_at = f"{after.source}:{after.position(path)[0]}" if kind != "removed" else ""
        changes.append(PolicyChange(new.policy, _category(path), _path_text(path), kind,
                                    _shown(a) if kind != "added" else "",
                                    _shown(b) if kind != "removed" else "", old_at, new_at))
    return changes


def pair_policies(old: Sequence[CompiledPolicy], new: Sequence[CompiledPolicy], *,
                  force: bool = False) -> list[tuple[CompiledPolicy | None, CompiledPolicy | None]]:
    """Match the versions by policy id. Different ids (say, two single files) are an error
    unless force, which pairs them anyway."""
    olds = {p.policy: p for p in old}
    news = {p.policy: p for p in new}
    if len(old) == 1 and len(new) == 1 and old[0].policy != new[0].policy:
        if not force:
            raise InputError(f"the two files are different policies ('{old[0].policy}' and "
                             f"'{new[0].policy}'); give two versions of one policy, or add "
                             "--force to compare them anyway")
        return [(old[0], new[0])]
    for a, b in ((olds, news), (news, olds)):
        for policy in a.values():
            if policy.policy in b and set(policy.roles) != set(b[policy.policy].roles) \
                    and not force:
                other = b[policy.policy]
                raise InputError(
                    f"policy '{policy.policy}' covers roles {sorted(policy.roles)} in one "
                    f"version and {sorted(other.roles)} in the other; add --force to compare "
                    "them anyway")
    names = sorted(set(olds) | set(news))
    return [(olds.get(n), news.get(n)) for n in names]


# --------------------------------------------------------------------------------------------
# Why each employee's pay changed

def _event_value(event: TraceEvent, places: int) -> str:
    value = event.value
    if event.step == "reward" and isinstance(value, Decimal):
        return money(value, places)
    if isinstance(value, Decimal):
        return show(value.quantize(Decimal("0.0001"), rounding=ROUND_HALF_EVEN).normalize())
    if value is None:
        return {"not_applicable": "not applicable", "excluded": "excluded",
                "missing": "missing"}.get(event.outcome, "-")
    return show(value)


def _reads_text(event: TraceEvent, ratios: frozenset[str] = frozenset()) -> str:
    parts = []
    for name, value in event.reads:
        if isinstance(value, Decimal) and name in ratios:
            parts.append(f"{name} {_percent(value)}")
            continue
        if isinstance(value, Decimal):
            value = value.quantize(Decimal("0.0001"), rounding=ROUND_HALF_EVEN).normalize()
        parts.append(f"{name} {show(value)}")
    return ", ".join(parts)


_OUTCOME_WORDS = {"applied": "holds", "failed": "fails", "missing": "is missing",
                  "pending": "pending"}


def _key_of(event: TraceEvent) -> tuple[str, str]:
    return (event.step, "") if event.step == "tier" else (event.step, event.name)


def _value_of(event: TraceEvent, places: int) -> str:
    if event.step == "tier":  # the band reached is the tier's value
        return event.name
    return _event_value(event, places)


def _weight_causes(old: EmployeeResult, new: EmployeeResult) -> list[str]:
    before = {i.name: i.weight for i in old.indicators}
    found = []
    for indicator in new.indicators:
        was = before.get(indicator.name)
        if was is not None and was != indicator.weight:
            found.append(f"weight {indicator.name}: {_percent(was)} -> "
                         f"{_percent(indicator.weight)}")
    return found


def _percent(value: Decimal) -> str:
    return f"{(value * 100).quantize(Decimal('0.01'), rounding=ROUND_HALF_EVEN).normalize():f}%"


def causes(old: EmployeeResult | None, new: EmployeeResult | None, places: int,
           ratios: frozenset[str] = frozenset()) -> list[str]:
    """Every rule whose traced value or outcome differs, in pipeline order, both values.

    Weights come first (they change what every later step adds up), then the trace: each
    indicator, score, total, gate, tier, reward and outcome that differs.
    """
    if old is None or new is None:
        return ["evaluated only under the " + ("new" if old is None else "old") + " version"]
    changed, removed = _trace_causes(old.trace, new.trace, places, ratios)
    return _weight_causes(old, new) + changed + removed


def _trace_causes(old: Sequence[TraceEvent], new: Sequence[TraceEvent], places: int,
                  ratios: frozenset[str]) -> tuple[list[str], list[str]]:
    """The rules of two traces whose value or outcome differs or that are new, in the new
    trace's order; and the rules removed, in the old trace's order."""
    before = {_key_of(e): e for e in old}
    found: list[str] = []
    seen = set()
    for event in new:
        key = _key_of(event)
        seen.add(key)
        earlier = before.get(key)
        label = "tier" if event.step == "tier" else f"{event.step} {event.name}"
        if earlier is None:
            found.append(f"{label}: new rule, {_value_of(event, places)}")
            continue
        if earlier.outcome == event.outcome and earlier.name == event.name and \
                type(earlier.value) is type(event.value) and earlier.value == event.value:
            continue  # equal values read the same (most rules of most employees)
        old_value, new_value = _value_of(earlier, places), _value_of(event, places)
        outcome_changed = earlier.outcome != event.outcome and event.step != "tier"
        if old_value == new_value and not outcome_changed:
            continue
        text = label
        if earlier.detail != event.detail and event.step in ("gate", "outcome", "indicator"):
            text += f" ({earlier.detail} -> {event.detail})"
        if event.step in ("gate", "outcome", "weight", "selection") and outcome_changed:
            text += f": {_OUTCOME_WORDS.get(earlier.outcome, earlier.outcome)} -> " \
                    f"{_OUTCOME_WORDS.get(event.outcome, event.outcome)}"
            reads = _reads_text(event, ratios)
            if reads:
                text += f" at {reads}"
        elif old_value == new_value:
            now = _OUTCOME_WORDS.get(event.outcome, event.outcome)
            text += f": {old_value} either way, now {now}"
        else:
            text += f": {old_value} -> {new_value}"
        found.append(text)
    removed = [f"{event.step} {event.name}: rule removed (was {_value_of(event, places)})"
               for key, event in before.items() if key not in seen]
    return found, removed


# --------------------------------------------------------------------------------------------

def pseudonym(employee: str, key: str | None = None) -> str:
    """A stable keyed hash standing for an employee id where pay is shown to many readers.
    The key is MERITPAY_PSEUDONYM_KEY (keep it secret to make ids unguessable)."""
    secret = (key or os.environ.get("MERITPAY_PSEUDONYM_KEY") or "meritpay").encode("utf-8")
    return "P-" + hmac.new(secret, employee.encode("utf-8"), hashlib.sha256).hexdigest()[:8]


def diff(old: Sequence[CompiledPolicy], new: Sequence[CompiledPolicy], inputs: RunInputs,
         period: str, *, force: bool = False, by: Sequence[str] = (),
         groups: Mapping[str, Mapping[str, str]] | None = None,
         old_label: str = "old", new_label: str = "new", workers: int = 1) -> DiffReport:
    """Evaluate both versions on the same inputs and compare.

    Both versions run without a trace (the compiled path). Only the employees whose results
    differ are evaluated again with a trace, one at a time, to find the causes: so a diff
    costs little more than two runs, and holds no trace for the thousands who did not
    change. The population stage's own events (selections, pool parts) are kept from the
    untraced runs, behind a marker that also remembers a band set by a distribution cap."""
    pairs = pair_policies(old, new, force=force)
    changes = [change for a, b in pairs for change in policy_changes(a, b)]
    places, ratios = _shown_as((*old, *new))
    own: dict[tuple[str, str], tuple[list[str], list[str]]] = {}

    def each(employee: str, found: list[list[tuple[CompiledPolicy, EmployeeInput,
                                                   EmployeeResult]]], kept: bool) -> None:
        """While the employee's rows are at hand: the causes of their own evaluation, when
        its results differ (an employee kept for a distribution cap is traced at the end)."""
        if kept:
            return
        olds = {r.months[0]: (p, i, r) for p, i, r in found[0]}
        for new_policy, new_item, b in found[1]:
            match = olds.get(b.months[0])
            if match is not None and not _same(match[2], b):
                own[_key(b)] = _trace_causes(_own_events(match[0], match[1]),
                                             _own_events(new_policy, new_item), places,
                                             ratios)

    try:
        streamed = stream_runs((old, new), inputs, period, keep_going=True,
                               ignore_effective=True, evaluator=_marked, each=each)
    except NotGrouped:
        streamed = None
    if streamed is not None:
        read, (before, after) = streamed

        def explained(a: EmployeeResult, b: EmployeeResult) -> list[str]:
            if a.employee in read.facts.employees:  # kept for a cap: traced now
                return causes(*_traced_pair(a, b, before.policies, after.policies, read,
                                            period), places, ratios)
            changed, removed = own.get(_key(b), ([], []))
            late, gone = _trace_causes(a.trace[1:], b.trace[1:], places, ratios)
            return _weight_causes(a, b) + changed + late + removed + gone

        olds, news = _by_key(before), _by_key(after)
        # the report keeps each result without its trace: the runs hold them no longer, so
        # each pair compared is dropped (a run's results, not two copies of them, at a time)
        before, after = replace(before, results=()), replace(after, results=())
        del streamed
        return _compare(before, after, olds, news, changes, by=by, groups=groups or {},
                        old_label=old_label, new_label=new_label, explained=explained)
    both = prepare((*old, *new), inputs, period)  # the files are read once, for both
    before = run(old, both, period, keep_going=True, ignore_effective=True, workers=workers,
                 evaluator=_marked)
    after = run(new, both, period, keep_going=True, ignore_effective=True, workers=workers,
                evaluator=_marked)

    def traced(a: EmployeeResult, b: EmployeeResult) -> tuple[EmployeeResult, EmployeeResult]:
        return _traced_pair(a, b, before.policies, after.policies, both, period)

    return compare(before, after, changes, by=by, groups=groups or {},
                   old_label=old_label, new_label=new_label, traced=traced)


_MARK = "population"  # the step of the marker event that starts an untraced result's trace


def _marked(policy: CompiledPolicy, item: EmployeeInput, trace: bool) -> EmployeeResult:
    """The compiled evaluation, its trace a marker: the population stage appends its own
    events after it (it records them only for traced results), and a band set by a
    distribution cap is its value."""
    result = evaluate(policy, item)
    band = item.band_override
    return replace(result, trace=_UNMOVED if band is None else (TraceEvent(_MARK, "", "", band),))


_UNMOVED = (TraceEvent(_MARK, "", "", None),)  # the marker of most: one tuple for all


def _traced_pair(a: EmployeeResult, b: EmployeeResult, old: Sequence[CompiledPolicy],
                 new: Sequence[CompiledPolicy], both: Prepared, period: str
                 ) -> tuple[EmployeeResult, EmployeeResult]:
    """Two results of marked runs (the same segment under each version), evaluated again
    with a trace. The input is built once when both versions read the facts alike."""
    old_policy, item = _segment(a, old, both, period)
    new_policy = choose_policy(new, b.role, both.period, ignore_effective=True)
    if new_policy is not None and _reads(new_policy) == _reads(old_policy):
        new_item = item
    else:
        new_policy, new_item = _segment(b, new, both, period)
    return _traced(a, old_policy, item), _traced(b, new_policy, new_item)


def _segment(result: EmployeeResult, policies: Sequence[CompiledPolicy], both: Prepared,
             period: str) -> tuple[CompiledPolicy, EmployeeInput]:
    segments = segment_inputs(policies, both, period, result.employee, ignore_effective=True)
    return next((p, i) for p, i in segments if i.months == result.months)


def _reads(policy: CompiledPolicy) -> tuple[object, ...]:
    """What a policy's input is built from (run.build_input): equal, the inputs are equal."""
    return (policy.facts, policy.proration, policy.uses_months, policy.needs_history,
            policy.history_facts, policy.uses_periods, policy.uses_years, policy.fiscal_start,
            policy.period)


def _traced(result: EmployeeResult, policy: CompiledPolicy, item: EmployeeInput
            ) -> EmployeeResult:
    """A result of a marked run, evaluated again with a trace: the same input (and band),
    the employee's own trace, then the population's events as the population stage would
    have added them to a traced result."""
    marker, *population = result.trace
    assert marker.step == _MARK
    if marker.value is not None:
        item = replace(item, band_override=marker.value)
    return replace(result, trace=(*_own_events(policy, item), *population))


def _own_events(policy: CompiledPolicy, item: EmployeeInput) -> list[TraceEvent]:
    """The trace of the employee's own evaluation, but for a pool's pending part (the
    population stage's event takes its place)."""
    own = evaluate_employee(policy, item, trace=True)
    pooled = {line.name for line in own.rewards if line.kind == "pool"}
    return [e for e in own.trace if not (e.step == "reward" and e.name in pooled)]


def _shown_as(policies: Sequence[CompiledPolicy]) -> tuple[int, frozenset[str]]:
    """The places money is shown to, and the ratio facts (shown as percentages)."""
    places = max((p.places for p in policies), default=2)
    return places, frozenset(f.name for p in policies for f in p.facts if f.type == "ratio")


def _same(a: EmployeeResult, b: EmployeeResult) -> bool:
    """Whether two results say the same of the employee (whatever the policy's version):
    then no rule's outcome differs that shows in the result, and no cause is listed."""
    return (a.indicators, a.total_score, a.gates, a.tier, a.multiplier, a.rewards,
            a.total_pay, a.proration) == (b.indicators, b.total_score, b.gates, b.tier,
                                          b.multiplier, b.rewards, b.total_pay, b.proration)


_NO_GROUPS: Mapping[str, str] = MappingProxyType({})  # without --by: one for everyone


def _key(result: EmployeeResult) -> tuple[str, str]:
    return result.employee, result.months[0]


def _failed_employee(diagnostic: Diagnostic) -> str:
    message = diagnostic.message
    return message.split(" ", 2)[1].rstrip(":") if message.startswith("employee ") else message


def compare(before: RunResult, after: RunResult, changes: Sequence[PolicyChange], *,
            by: Sequence[str] = (), groups: Mapping[str, Mapping[str, str]] | None = None,
            old_label: str = "old", new_label: str = "new",
            traced: Callable[[EmployeeResult, EmployeeResult],
                             tuple[EmployeeResult, EmployeeResult]] | None = None,
            explained: Callable[[EmployeeResult, EmployeeResult], list[str]] | None = None
            ) -> DiffReport:
    """The report of two runs of the same inputs. With `traced` or `explained`, the runs'
    results are untraced (marked, see diff): `traced` gives the traced results of a pair
    that changed, or `explained` its causes; the results kept in the report carry no
    trace."""
    return _compare(before, after, _by_key(before), _by_key(after), changes, by=by,
                    groups=groups, old_label=old_label, new_label=new_label, traced=traced,
                    explained=explained)


def _by_key(run: RunResult) -> dict[tuple[str, str], EmployeeResult]:
    return {_key(r): r for r in run.results}


def _compare(before: RunResult, after: RunResult, olds: dict[tuple[str, str], EmployeeResult],
             news: dict[tuple[str, str], EmployeeResult], changes: Sequence[PolicyChange], *,
             by: Sequence[str], groups: Mapping[str, Mapping[str, str]] | None,
             old_label: str, new_label: str,
             traced: Callable[[EmployeeResult, EmployeeResult],
                              tuple[EmployeeResult, EmployeeResult]] | None = None,
             explained: Callable[[EmployeeResult, EmployeeResult], list[str]] | None = None
             ) -> DiffReport:
    """compare, taking each pair out of `olds` and `news` as it goes."""
    places, ratios = _shown_as((*before.policies, *after.policies))
    failed_old = {_failed_employee(d) for d in before.errors}
    failed_new = {_failed_employee(d) for d in after.errors}
    people = []
    for key in sorted(set(olds) | set(news)):
        a, b = olds.pop(key, None), news.pop(key, None)
        if (a is None and key[0] in failed_old) or (b is None and key[0] in failed_new):
            continue  # reported among the employees only one version could evaluate
        present = b or a
        assert present is not None
        marked = traced is not None or explained is not None
        if not marked or a is None or b is None:
            found = causes(a, b, places, ratios)
        elif _same(a, b):
            found = []
        elif explained is not None:
            found = explained(a, b)
        else:
            assert traced is not None
            found = causes(*traced(a, b), places, ratios)
        if marked:  # the markers go; the report keeps no trace
            a, b = (a and replace(a, trace=())), (b and replace(b, trace=()))
        people.append(EmployeeDiff(
            present.employee, present.name, present.role, present.months, present.currency,
            a, b, tuple(found),
            {column: (groups or {}).get(present.employee, {}).get(column, "") for column in by}
            if by else _NO_GROUPS))
    people.sort(key=lambda e: (-abs(e.delta), e.employee, e.months))
    only_old = tuple(d for d in after.errors if _failed_employee(d) not in failed_old)
    only_new = tuple(d for d in before.errors if _failed_employee(d) not in failed_new)
    currencies = {e.currency for e in people}
    return DiffReport(
        period=after.period.title, old_label=old_label, new_label=new_label,
        policy_changes=tuple(changes), employees=tuple(people), only_old=only_old,
        only_new=only_new, currency=", ".join(sorted(currencies)), by=tuple(by))


def check_limits(report: DiffReport, *, max_cost_increase: Decimal | None = None,
                 max_losers: int | None = None, fail_on_change: bool = False
                 ) -> list[Breach]:
    """The CI limits the report exceeds, each saying by how much."""
    breaches = []
    totals = report.totals()
    if max_cost_increase is not None and totals.old > 0:
        increase = totals.delta / totals.old
        if increase > max_cost_increase:
            breaches.append(Breach(
                "--max-cost-increase",
                f"total cost rises {_pct(increase)} ({money(totals.delta)}), over the limit of "
                f"{_pct(max_cost_increase)} by {_pct(increase - max_cost_increase)}"))
    if max_losers is not None and totals.losers > max_losers:
        breaches.append(Breach("--max-losers", f"{totals.losers} people lose pay, over the "
                               f"limit of {max_losers} by {totals.losers - max_losers}"))
    if fail_on_change:
        changed = sum(1 for e in report.employees if e.changed)
        if changed or report.policy_changes:
            breaches.append(Breach("--fail-on-change",
                                   f"{len(report.policy_changes)} policy change(s) and "
                                   f"{changed} employee result(s) changed"))
    return breaches


def _pct(value: Decimal) -> str:
    return f"{(value * 100).quantize(Decimal('0.01'), rounding=ROUND_HALF_EVEN)}%"
