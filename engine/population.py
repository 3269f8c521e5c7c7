"""The population stage: rules that need everyone's own results first.

- selections (`select: {by, top, within}`): the top N or top P% of a group (role, team or the
  whole company) by a measure; top P% of n people is ceil(P x n); everyone tied at the cut
  qualifies unless the rule names a tie-break, never input order;
- distribution caps (`tiers.distribution`): at most a share of a group in a band; in
  `enforce` mode the lowest scorers above the cap move one band down, band by band from the
  top, and are evaluated again so every amount follows their new band; `advisory` mode only
  reports.

Each function takes results and returns new results; nothing is changed in place.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from decimal import Decimal

from .evaluate import EmployeeInput, EmployeeResult, RewardResult, TraceEvent
from .model import CompiledPolicy, RewardDecl


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


def select(results: Sequence[EmployeeResult], policies: dict[tuple[str, str], CompiledPolicy]
           ) -> list[EmployeeResult]:
    """Decide every `select` rule; returns results with those rewards selected or not."""
    decisions: dict[tuple[int, str], tuple[bool, str]] = {}
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
                    candidates.append((line.measure, index))
            candidates.sort(key=lambda c: c[0], reverse=True)
            if take == 0 or not candidates:
                chosen: set[int] = set()
                cut = None
            else:
                cut = candidates[min(take, len(candidates)) - 1][0]
                chosen = {i for m, i in candidates if m >= cut}
            for index in indexes:
                line = results[index].reward(reward.name)
                assert line is not None
                if index in chosen:
                    why = f"in the top {take} of {len(indexes)} ({group}), cut at {cut}"
                elif line.granted:
                    why = f"not in the top {take} of {len(indexes)} ({group}); cut at {cut}"
                else:
                    why = "its condition did not hold"
                decisions[(index, reward.name)] = (index in chosen, why)
    final = []
    for index, result in enumerate(results):
        rewards = []
        events = list(result.trace)
        for line in result.rewards:
            decision = decisions.get((index, line.name))
            if decision is None:
                rewards.append(line)
                continue
            picked, why = decision
            status = "selected" if picked else ("not_selected" if line.granted
                                                 else "not_granted")
            rewards.append(replace(line, granted=picked, status=status))
            if result.trace:
                events.append(TraceEvent("selection", line.name,
                                         "applied" if picked else "failed", picked,
                                         (("measure", line.measure),), why))
        final.append(replace(result, rewards=tuple(rewards), trace=tuple(events)))
    return final


def cap_distribution(results: Sequence[EmployeeResult], inputs: Sequence[EmployeeInput],
                     policies: dict[tuple[str, str], CompiledPolicy], evaluate: Evaluate
                     ) -> tuple[list[EmployeeResult], list[PopulationNote]]:
    """Apply `tiers.distribution`; re-evaluate employees moved down a band."""
    notes: list[PopulationNote] = []
    current = list(results)
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
                keep = holders[:allowed]
                # everyone tied with the last kept person keeps the band
                if keep:
                    last = current[keep[-1]].total_score
                    keep = [i for i in holders if current[i].total_score >= last]
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


def apply_population(results: Sequence[EmployeeResult], inputs: Sequence[EmployeeInput],
                     policies: Sequence[CompiledPolicy], evaluate: Evaluate
                     ) -> tuple[list[EmployeeResult], list[PopulationNote]]:
    """Distribution caps first (they change tiers), then selections (which may read tiers)."""
    by_version = {(p.policy, p.version): p for p in policies}
    capped, notes = cap_distribution(results, inputs, by_version, evaluate)
    return select(capped, by_version), notes


__all__ = ["PopulationNote", "RewardResult", "apply_population", "select", "top_count"]
