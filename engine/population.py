"""The population stage: rules that need everyone's own results first.

- selections (`select: {by, top, within}`): the top N or top P% of a group (role, team or the
  whole company) by a measure; top P% of n people is ceil(P x n); everyone tied at the cut
  qualifies unless the rule names a tie-break, never input order;
- distribution caps (`tiers.distribution`): at most a share of a group in a band; in
  `enforce` mode the lowest scorers above the cap move one band down, band by band from the
  top, and are evaluated again so every amount follows their new band; `advisory` mode only
  reports;
- team pools (`kind: pool`): the pool is computed once per team from the team's facts,
  rounded once, and split among the members by their shares so that the parts sum to the pool
  to the cent (largest remainder: leftover cents go to the largest fractions, ties by the
  larger share, then member id).

Each function takes results and returns new results; nothing is changed in place.
"""

from __future__ import annotations

import bisect
import decimal
import math
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from decimal import ROUND_FLOOR, Decimal
from types import MappingProxyType
from typing import Any

from .diagnostics import Diagnostic, Location, Severity
from .evaluate import (
    EmployeeInput,
    EmployeeResult,
    EvaluationError,
    TraceEvent,
    decimal_context,
    divides_by_zero,
    money,
    round_money,
)
from .expr import MISSING, MissingValue, series_read
from .model import CompiledPolicy, RewardDecl
from .tables import Member


@dataclass(frozen=True)
class PopulationNote:
    """Something the population stage found, for the run's report (an advisory cap)."""

    rule: str
    group: str
    message: str


Evaluate = Callable[[CompiledPolicy, EmployeeInput], EmployeeResult]


def group_key(result: EmployeeResult, within: str) -> str:
    if within == "team":
        return f"team {result.team or '(none)'}"
    if within == "company":
        return "company"
    return f"role {result.role}"


def top_count(size: int, count: int | None, share: Decimal | None) -> int:
    """How many of `size` people the top takes: N, or ceil(share x size)."""
    if count is not None:
        return min(count, size)
    assert share is not None
    return min(size, math.ceil(share * size))


def _tie(value: Decimal | None) -> Decimal:
    return value if value is not None else Decimal("-Infinity")


def top_of(candidates: Sequence[tuple[tuple[Decimal, Decimal], int]], take: int
           ) -> tuple[set[int], Decimal | None]:
    """The `take` best by (measure, tie-break), plus everyone equal to the last one taken on
    both: never input order. Returns the chosen and the measure at the cut."""
    ordered = sorted(candidates, key=lambda c: c[0], reverse=True)
    if take <= 0 or not ordered:
        return set(), None
    last = ordered[min(take, len(ordered)) - 1][0]
    return {i for key, i in ordered if key >= last}, last[0]


def rank_within_roles(results: list[EmployeeResult]) -> list[EmployeeResult]:
    """Each result's rank (1 = best; ties share the best rank) and percentile (the share of
    the role's group scoring strictly lower) by total score within the role, in place."""
    groups: dict[str, list[int]] = defaultdict(list)
    for index, result in enumerate(results):
        groups[result.role].append(index)
    for indexes in groups.values():
        scores = sorted(results[i].total_score for i in indexes)
        size = len(indexes)
        for index in indexes:
            score = results[index].total_score
            lower = bisect.bisect_left(scores, score)
            higher = size - bisect.bisect_right(scores, score)
            results[index] = replace(results[index], rank=higher + 1,
                                     percentile=Decimal(lower) / Decimal(size))
    return results


def select(results: list[EmployeeResult], policies: dict[tuple[str, str], CompiledPolicy]
           ) -> list[EmployeeResult]:
    """Decide every `select` rule: the results with those rewards selected or not, in
    place."""
    decisions: dict[tuple[int, str], tuple[bool, str, Decimal | None]] = {}
    rules: dict[str, tuple[RewardDecl, list[int]]] = {}
    for index, result in enumerate(results):
        policy = policies[(result.policy, result.version)]
        for reward in policy.rewards:
            if reward.select is not None and result.reward(reward.name) is not None:
                key = f"{policy.policy}/{policy.version}/{reward.name}"
                rules.setdefault(key, (reward, []))[1].append(index)
    for reward, members in rules.values():
        assert reward.select is not None
        groups: dict[str, list[int]] = defaultdict(list)
        for index in members:
            groups[group_key(results[index], reward.select.within)].append(index)
        for group, indexes in groups.items():
            take = top_count(len(indexes), reward.select.top_count, reward.select.top_share)
            candidates = []
            for index in indexes:
                line = results[index].reward(reward.name)
                if line is not None and line.granted and line.measure is not None:
                    candidates.append(((line.measure, _tie(line.tie)), index))
            chosen, cut = top_of(candidates, take)
            for index in indexes:
                line = results[index].reward(reward.name)
                assert line is not None
                if index in chosen:
                    why = f"in the top {take} of {len(indexes)} ({group}), cut at {cut}"
                elif line.granted:
                    why = f"not in the top {take} of {len(indexes)} ({group}); cut at {cut}"
                else:
                    why = "its condition did not hold"
                decisions[(index, reward.name)] = (index in chosen, why, cut)
    for index, result in enumerate(results):
        if not any((index, line.name) in decisions for line in result.rewards):
            continue  # no selection of its own: the result as it is
        rewards = []
        events = list(result.trace)
        for line in result.rewards:
            decision = decisions.get((index, line.name))
            if decision is None:
                rewards.append(line)
                continue
            picked, why, cut = decision
            status = "selected" if picked else ("not_selected" if line.granted
                                                 else "not_granted")
            rewards.append(replace(line, granted=picked, status=status))
            if result.trace:
                events.append(TraceEvent("selection", line.name,
                                         "applied" if picked else "failed", picked,
                                         (("measure", line.measure), ("cut", cut)), why))
        results[index] = replace(result, rewards=tuple(rewards), trace=tuple(events))
    return results


def cap_distribution(results: list[EmployeeResult], inputs: Sequence[EmployeeInput],
                     policies: dict[tuple[str, str], CompiledPolicy], evaluate: Evaluate
                     ) -> tuple[list[EmployeeResult], list[PopulationNote]]:
    """Apply `tiers.distribution`; re-evaluate employees moved down a band (in place)."""
    notes: list[PopulationNote] = []
    current = results
    overrides: dict[int, str] = {}
    for policy in {id(p): p for p in policies.values()}.values():
        tiers = policy.tiers
        if tiers is None or tiers.distribution is None:
            continue
        distribution = tiers.distribution
        caps = dict(distribution.max_share)
        members = [i for i, r in enumerate(current)
                   if (r.policy, r.version) == (policy.policy, policy.version)]
        groups: dict[str, list[int]] = defaultdict(list)
        for index in members:
            groups[group_key(current[index], distribution.within)].append(index)
        names = [band.name for band in tiers.bands]
        for group, indexes in sorted(groups.items()):
            band_of = {i: overrides.get(i, current[i].tier) for i in indexes}
            for position in range(len(names) - 1, 0, -1):
                band = names[position]
                if band not in caps:
                    continue
                allowed = math.floor(caps[band] * len(indexes))
                holders = sorted((i for i in indexes if band_of[i] == band),
                                 key=lambda i: current[i].total_score, reverse=True)
                if len(holders) <= allowed:
                    continue
                excess = len(holders) - allowed
                share = f"{len(holders)} of {len(indexes)} in {band}, cap {allowed}"
                if distribution.mode == "advisory":
                    notes.append(PopulationNote(f"tiers.distribution.{band}", group,
                                                f"{share}: {excess} over (advisory, nobody "
                                                "moved)"))
                    continue
                cut_score = current[holders[allowed]].total_score if allowed < len(holders) \
                    else None
                # the best `allowed` by (score, tie-break) keep the band, and everyone tied
                # with the last of them on both
                keep, _ = top_of([((current[i].total_score, _tie(current[i].tie_break)), i)
                                  for i in holders], allowed)
                moved = [i for i in holders if i not in keep]
                notes.append(PopulationNote(f"tiers.distribution.{band}", group,
                                            f"{share}: {len(moved)} moved to {names[position - 1]}"
                                            f" (scores below {cut_score} and ties kept)"))
                for index in moved:
                    band_of[index] = names[position - 1]
                    overrides[index] = names[position - 1]
    for index, band in overrides.items():
        result = current[index]
        policy = policies[(result.policy, result.version)]
        current[index] = evaluate(policy, replace(inputs[index], band_override=band))
    return current, notes


@dataclass(frozen=True)
class PoolContext:
    """What pools need: the teams, and a team's facts rolled up for a policy."""

    members: Mapping[str, tuple[Member, ...]] = field(default_factory=dict)
    team_facts: Callable[[CompiledPolicy, str], Mapping[str, Any]] = lambda policy, team: {}


def split_pool(total: Decimal, shares: Sequence[tuple[str, Decimal]], places: int
               ) -> dict[str, Decimal]:
    """Split total by shares so the parts sum to total exactly, at `places` decimals.

    Each part is first rounded down; the cents left over go one each to the largest
    remainders, ties to the larger share, then to the smaller member id.
    """
    unit = Decimal(1).scaleb(-places)
    weight = sum((s for _, s in shares), Decimal(0))
    exact = {member: total * share / weight for member, share in shares}
    parts = {m: v.quantize(unit, rounding=ROUND_FLOOR) for m, v in exact.items()}
    left = int((total - sum(parts.values(), Decimal(0))) / unit)
    order = sorted(shares, key=lambda ms: (-(exact[ms[0]] - parts[ms[0]]), -ms[1], ms[0]))
    for member, _ in order[:left]:
        parts[member] += unit
    return {m: part.copy_abs() if part.is_zero() else part for m, part in parts.items()}


def pools(results: list[EmployeeResult], policies: dict[tuple[str, str], CompiledPolicy],
          context: PoolContext) -> tuple[list[EmployeeResult], list[PopulationNote]]:
    """Compute every team pool and give each member their part (in place)."""
    notes: list[PopulationNote] = []
    index_of = {(r.employee, r.policy, r.version): i for i, r in enumerate(results)}
    parts: dict[tuple[int, str], tuple[Decimal, str, str]] = {}
    for policy in {id(p): p for p in policies.values()}.values():
        for reward in policy.rewards:
            if reward.kind != "pool":
                continue
            for team, members in context.members.items():
                present = [(m, index_of[(m.member, policy.policy, policy.version)])
                           for m in members
                           if (m.member, policy.policy, policy.version) in index_of]
                present = [(m, i) for m, i in present if results[i].reward(reward.name)]
                if not present:
                    continue
                total, detail = _pool_total(policy, reward, context.team_facts(policy, team),
                                            team)
                shares = [(m.member, m.share if reward.split == "shares" else Decimal(1))
                          for m, _ in present]
                split = split_pool(total, shares, policy.places) if total else {}
                for member, index in present:
                    part = split.get(member.member, Decimal(0)).quantize(
                        Decimal(1).scaleb(-policy.places))
                    share_text = f"share {member.share}" if reward.split == "shares" \
                        else "equal split"
                    parts[(index, reward.name)] = (
                        part, "paid" if total else "not_granted",
                        f"team {team}: {detail}; {share_text} of {len(present)} -> "
                        f"{money(part, policy.places)}")
                notes.append(PopulationNote(f"rewards.{reward.name}", f"team {team}",
                                            f"pool {money(total, policy.places)} split among "
                                            f"{len(present)} member(s)"))
    for index, result in enumerate(results):
        pooled = {line.name for line in result.rewards if line.kind == "pool"}
        if not pooled:
            continue  # no pool of its own: the result as it is
        # the pool's pending event from the employee's own evaluation gives way to its result
        events = [e for e in result.trace if not (e.step == "reward" and e.name in pooled)]
        rewards = []
        for line in result.rewards:
            if line.kind != "pool":
                rewards.append(line)
                continue
            amount, status, why = parts.get((index, line.name),
                                            (Decimal(0), "no_team", "not in any team's pool"))
            rewards.append(replace(line, amount=amount, status=status))
            if result.trace:
                events.append(TraceEvent("reward", line.name,
                                         "applied" if status == "paid" else "failed", amount,
                                         detail=why))
        total_pay = sum((r.amount for r in rewards if r.amount is not None), Decimal(0))
        results[index] = replace(result, rewards=tuple(rewards), trace=tuple(events),
                                 total_pay=total_pay)
    return results, notes


def _pool_total(policy: CompiledPolicy, reward: RewardDecl, facts: Mapping[str, Any],
                team: str) -> tuple[Decimal, str]:
    """The team's pool, rounded once; 0 when its condition fails or a fact is missing."""
    env = dict(facts)
    view = MappingProxyType(env)  # what expressions get: read-only
    current = None
    with decimal.localcontext(decimal_context()):
        try:
            for gate in policy.gates:  # only gates on team facts, as validation allows
                if not series_read(gate.when.function) and all(
                        env.get(n, MISSING) is not MISSING for n in gate.when.reads):
                    current = gate.when
                    env[f"gate.{gate.name}"] = bool(gate.when.function(view))
            for expr, what in ((reward.when, "condition"), (reward.amount, "amount")):
                if expr is None:
                    continue
                absent = sorted(n for n in expr.reads if env.get(n, MISSING) is MISSING)
                if absent:
                    return Decimal(0), f"{what} {expr.text}: {', '.join(absent)} missing"
                current = expr
                if what == "condition" and not expr.function(view):
                    return Decimal(0), f"{expr.text} does not hold"
            assert reward.amount is not None
            current = reward.amount
            total = Decimal(reward.amount.function(view))
            current = None
            rounded = round_money(total, policy.places, policy.rounding)
        except decimal.FloatOperation:
            raise  # a float in the money path is our bug, never the input's
        except (ArithmeticError, MissingValue) as error:
            raise _pool_failure(policy, reward, team, current, error) from None
    return rounded, f"{reward.amount.text} = {money(rounded, policy.places)}"


def _pool_failure(policy: CompiledPolicy, reward: RewardDecl, team: str, expr: Any,
                  error: Exception) -> EvaluationError:
    """The engine's own error for a team pool whose arithmetic fails."""
    line, column = (expr.line, expr.column) if expr is not None else (reward.rule.line, 0)
    text = f" in '{expr.text}'" if expr is not None else ""
    if divides_by_zero(error):
        code, reason, hint = "E_EVAL_DIVIDE_BY_ZERO", "divides by zero", \
            "use safe_div(a, b, fallback)"
    else:
        code, reason, hint = "E_EVAL_ARITHMETIC", "a number grows too large" if isinstance(
            error, decimal.Overflow) else "a result needs more digits than the precision", \
            "check the team's facts and the expression"
    diagnostic = Diagnostic(code, Severity.ERROR, Location(policy.source, line, column),
                            f"team {team}: pool '{reward.name}' {reason}{text}", hint)
    return EvaluationError(diagnostic.render(), [diagnostic])


def apply_population(results: list[EmployeeResult], inputs: Sequence[EmployeeInput],
                     policies: Sequence[CompiledPolicy], evaluate: Evaluate,
                     context: PoolContext | None = None
                     ) -> tuple[list[EmployeeResult], list[PopulationNote]]:
    """Distribution caps first (they change tiers), then selections (which may read tiers),
    then team pools. The list of results is taken over: each result changed is replaced in
    it as the stage goes, so a large run holds one result per employee, not one per step."""
    by_version = {(p.policy, p.version): p for p in policies}
    capped, notes = cap_distribution(results, inputs, by_version, evaluate)
    selected = select(rank_within_roles(capped), by_version)
    pooled, pool_notes = pools(selected, by_version, context or PoolContext())
    return pooled, notes + pool_notes


__all__ = ["PoolContext", "PopulationNote", "apply_population", "select", "split_pool",
           "top_count"]
