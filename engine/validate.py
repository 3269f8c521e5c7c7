"""Semantic checks the schema cannot express, and validation of whole policy sets.

`check_policy` takes one loaded Document and returns every problem found: expressions
(checked against the names each place may read), references, cycles, weights, tiers,
brackets, curves, labels, guardrails and unused declarations. A broken indicator, fact or
gate is reported once: expressions reading it are not reported again.
"""

from __future__ import annotations

import ast
import itertools
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from .diagnostics import Diagnostic, Location, Severity, did_you_mean, sort_diagnostics
from .expr import (
    ANY,
    BOOLEAN,
    DATE,
    LIST,
    NUMBER,
    SERIES,
    TEXT,
    CheckedExpression,
    Scope,
    check_expression,
    compile_expression,
    names_in,
)
from .load import load_document, read_text
from .model import Document, JsonPath
from .schema import schema_diagnostics

FORMAT_VERSION = 1
HUNDRED = Decimal(1)
MAX_ADJUSTMENTS = 8

_FACT_TYPES = {"money": NUMBER, "number": NUMBER, "ratio": NUMBER, "integer": NUMBER,
               "boolean": BOOLEAN, "date": DATE, "text": TEXT, "list": LIST}
_NAMED_ROLLUPS = {"sum", "mean", "first", "last", "min", "max"}
_MONEY_KINDS = {"amount", "commission", "pool"}


def to_decimal(value: Any) -> Decimal | None:
    """A YAML number or percentage string ('40%') as a Decimal; None if it is neither."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | Decimal):
        return Decimal(value)
    if isinstance(value, str) and value.endswith("%"):
        try:
            number = Decimal(value[:-1])
        except InvalidOperation:
            return None
        return number / 100 if number.is_finite() else None
    return None


def percent(value: Decimal) -> str:
    """0.4 -> '40%', 0.125 -> '12.5%'."""
    text = format((value * 100).normalize(), "f")
    return f"{text}%"


@dataclass
class PolicyCheck:
    """A checked policy: its document, the checked expressions by path, and what was found."""

    document: Document
    expressions: dict[JsonPath, CheckedExpression] = field(default_factory=dict)
    diagnostics: list[Diagnostic] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not any(d.severity is Severity.ERROR for d in self.diagnostics)


def _mapping(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


class _PolicyChecker:
    def __init__(self, document: Document) -> None:
        self.doc = document
        self.data = document.data
        self.result = PolicyCheck(document)
        self.facts = _mapping(self.data.get("facts"))
        self.indicators = _mapping(self.data.get("indicators"))
        self.roles = _mapping(self.data.get("roles"))
        self.gates = _mapping(self.data.get("gates"))
        self.rewards = _mapping(self.data.get("rewards"))
        self.tiers = _mapping(self.data.get("tiers"))
        self.bands = [b for b in _list(self.tiers.get("bands")) if isinstance(b, dict)]
        self.broken: set[str] = set()
        self.used: set[str] = set()  # fact, indicator and gate names something reads

    # reporting ------------------------------------------------------------------------------
    def report(self, path: JsonPath, code: str, message: str, hint: str = "", *,
               key: bool = False, severity: Severity = Severity.ERROR,
               column_offset: int | None = None) -> None:
        line, column = self.doc.position(path, key=key)
        scalar = self.doc.scalars.get(tuple(path))
        if column_offset is not None and scalar is not None:
            line, column = scalar.line, scalar.column
            if scalar.single_line:
                column += column_offset
        self.result.diagnostics.append(
            Diagnostic(code, severity, Location(self.doc.source, line, column), message, hint))

    # expressions ----------------------------------------------------------------------------
    def expression(self, path: JsonPath, scope: Scope, *, want: str | None = None,
                   owner: str | None = None) -> CheckedExpression | None:
        """Check the expression at path; record it; report its problems once."""
        node: Any = self.data
        for part in path:
            node = node[part]
        scalar = self.doc.scalars.get(tuple(path))
        if scalar is not None and scalar.plain and scalar.trailing_comment \
                and isinstance(node, str):
            self.report(path, "E_YAML_COMMENT_IN_EXPRESSION",
                        "an unquoted expression is followed by a '#' comment: YAML drops "
                        "everything from ' #' on, so the expression may have been cut",
                        "quote the whole expression, or move the comment to its own line")
        checked, problems = check_expression(node, scope)
        for problem in problems:
            self.report(path, problem.code, problem.message, problem.hint,
                        column_offset=problem.offset)
        if checked is None:
            self.used.update(_base_names(names_in(node)))
            if owner:
                self.broken.add(owner)
            return None
        self.used.update(_base_names(checked.reads | checked.inner_reads |
                                     checked.presence_reads))
        if want is not None and checked.type not in (want, ANY):
            self.report(path, "E_EXPR_TYPE", f"{scope.what} must give "
                        f"{'true/false' if want == BOOLEAN else 'a number'}, but "
                        f"'{checked.text}' gives {_type_word(checked.type)}",
                        "compare it, e.g. x >= 1" if want == BOOLEAN else "")
            if owner:
                self.broken.add(owner)
            return None
        if checked.uses_broken and owner:
            self.broken.add(owner)
        self.result.expressions[tuple(path)] = checked
        compile_expression(checked)  # proves the checked tree compiles; cheap, once per policy
        return checked

    # scopes ---------------------------------------------------------------------------------
    def fact_names(self, scopes: Iterable[str] = ("employee", "team", "company")) -> dict[str, str]:
        wanted = set(scopes)
        return {name: _FACT_TYPES.get(str(_mapping(spec).get("type")), ANY)
                for name, spec in self.facts.items()
                if str(_mapping(spec).get("scope", "employee")) in wanted}

    def scope(self, stage: str, what: str, extra: Mapping[str, str] | None = None) -> Scope:
        """Names visible at a pipeline stage: facts < indicators < gates < tiers < rewards."""
        facts = self.fact_names()
        names: dict[str, str] = dict(facts)
        if stage in ("indicator", "gate", "tier", "reward"):
            for name in self.indicators:
                names[name] = NUMBER
        if stage in ("gate", "tier", "reward"):
            for name in self.indicators:
                names[f"score.{name}"] = NUMBER
                names[f"weight.{name}"] = NUMBER
            names["total_score"] = NUMBER
        if stage in ("tier", "reward"):
            for name in self.gates:
                names[f"gate.{name}"] = BOOLEAN
        if stage == "reward":
            names["tier.name"] = TEXT
            names["tier.multiplier"] = NUMBER
            if isinstance(self.data.get("pay_mix"), dict):
                names["pay_mix.base"] = NUMBER
                names["pay_mix.variable"] = NUMBER
            for name, spec in self.rewards.items():
                if _mapping(spec).get("kind") in _MONEY_KINDS:
                    names[f"reward.{name}"] = NUMBER
        names.update(extra or {})
        inner = Scope({n: t for n, t in facts.items()}, what=f"a month or period inside {what}",
                      is_inner=True)
        broken = frozenset(self.broken | {f"score.{b}" for b in self.broken})
        return Scope(names, inner=inner, broken=broken, what=what)

    # the checks -----------------------------------------------------------------------------
    def run(self) -> PolicyCheck:
        self.check_effective()
        self.check_labels()
        self.check_facts()
        self.check_indicators()
        self.check_roles()
        self.check_gates()
        self.check_tiers()
        self.check_pay_mix()
        self.check_rewards()
        self.check_guardrails()
        self.check_unused()
        return self.result

    def check_effective(self) -> None:
        effective = _mapping(self.data.get("effective"))
        start, end = _as_date(effective.get("from")), _as_date(effective.get("until"))
        if start and end and end < start:
            self.report(("effective", "until"), "E_EFFECTIVE_RANGE",
                        f"the policy ends ({end}) before it starts ({start})",
                        "swap the dates, or fix the year")

    def check_labels(self) -> None:
        languages = [str(x) for x in _list(self.data.get("languages"))] or ["en"]
        for path, label in _labels(self.data, ()):
            present = {"en"} if isinstance(label, str) else set(_mapping(label))
            missing = [lang for lang in languages if lang not in present]
            if missing:
                self.report(path, "E_LABEL_LANGUAGE",
                            f"this label has no {', '.join(missing)} text",
                            f"the policy lists languages {languages}; add "
                            + ", ".join(f"{m}: ..." for m in missing))

    def check_facts(self) -> None:
        names = self.fact_names()
        rollup_deps: dict[str, set[str]] = {}
        for name, spec in self.facts.items():
            rollup = _mapping(spec).get("rollup")
            if rollup is None or (isinstance(rollup, str) and rollup in _NAMED_ROLLUPS):
                continue
            others = {n: t for n, t in names.items() if n != name}
            checked = self.expression(("facts", name, "rollup"),
                                      Scope(others, what=f"the rollup of fact '{name}'"),
                                      want=NUMBER, owner=name)
            if checked is not None:
                rollup_deps[name] = set(checked.reads)
        self.report_cycles(rollup_deps, lambda n: ("facts", n, "rollup"), "fact rollups")

    def check_indicators(self) -> None:
        deps: dict[str, set[str]] = {}
        for name, spec in self.indicators.items():
            spec = _mapping(spec)
            base = ("indicators", name)
            deps[name] = set()
            scope = self.scope("indicator", f"indicator '{name}'")
            scope = Scope({k: v for k, v in scope.names.items() if k != name}, scope.inner,
                          scope.broken, scope.what)
            if "value" in spec:
                checked = self.expression((*base, "value"), scope, want=NUMBER, owner=name)
                if checked is not None:
                    deps[name] |= {r for r in checked.reads if r in self.indicators}
            if "applies_when" in spec:
                self.expression((*base, "applies_when"), Scope(
                    self.fact_names(), what=f"'applies_when' of indicator '{name}'"),
                    want=BOOLEAN, owner=name)
            self.check_curve(base, _mapping(spec.get("score")), name)
            for key in ("parts",):
                deps[name] |= self.check_parts((*base, key), _mapping(spec.get(key)),
                                               f"parts of '{name}'")
            objectives = _mapping(spec.get("objectives"))
            if objectives:
                self.check_sum((*base, "objectives"),
                               {k: _mapping(v).get("weight") for k, v in objectives.items()},
                               f"objective weights of '{name}'")
                for objective, body in objectives.items():
                    deps[name] |= self.check_parts(
                        (*base, "objectives", objective, "key_results"),
                        _mapping(_mapping(body).get("key_results")),
                        f"key results of objective '{objective}'")
            raters = _mapping(spec.get("raters"))
            groups = _mapping(raters.get("groups"))
            if groups:
                self.check_sum((*base, "raters", "groups"),
                               {k: _mapping(v).get("weight") for k, v in groups.items()},
                               f"rater group weights of '{name}'")
            scale = _mapping(raters.get("scale"))
            low, high = to_decimal(scale.get("min")), to_decimal(scale.get("max"))
            if low is not None and high is not None and low >= high:
                self.report((*base, "raters", "scale"), "E_CURVE",
                            f"the rating scale runs from {low} to {high}",
                            "min must be below max")
            default = _mapping(raters.get("missing_group")).get("default")
            default_value = to_decimal(default)
            if (default_value is not None and low is not None and high is not None
                    and not low <= default_value <= high):
                self.report((*base, "raters", "missing_group", "default"), "E_CURVE",
                            f"the default score {default_value} is outside the scale "
                            f"{low}..{high}")
        self.report_cycles(deps, lambda n: ("indicators", n), "indicators")

    def check_parts(self, path: JsonPath, parts: dict[str, Any], what: str) -> set[str]:
        for part in parts:
            if part not in self.indicators:
                self.report((*path, part), "E_UNKNOWN_REFERENCE",
                            f"{what}: '{part}' is not an indicator"
                            f"{did_you_mean(part, self.indicators)}", key=True)
            self.used.add(part)
        if parts:
            self.check_sum(path, parts, what)
        return {p for p in parts if p in self.indicators}

    def check_curve(self, base: JsonPath, score: dict[str, Any], name: str) -> None:
        curve = score.get("curve")
        path = (*base, "score")
        if curve == "linear":
            zero, full = to_decimal(score.get("zero_at")), to_decimal(score.get("full_at"))
            if zero is not None and zero == full:
                self.report((*path, "full_at"), "E_CURVE",
                            f"zero_at and full_at are both {zero}: the curve has no slope",
                            "full_at is where the score reaches 1.00")
        if curve in ("linear", "expression"):
            cap, floor = to_decimal(score.get("cap")), to_decimal(score.get("floor"))
            if cap is not None and floor is not None and cap < floor:
                self.report((*path, "cap"), "E_CURVE", f"cap {cap} is below floor {floor}")
        if curve == "steps":
            self.check_increasing((*path, "steps"), _list(score.get("steps")), "from",
                                  "score steps")
        if curve == "expression" and "expr" in score:
            self.expression((*path, "expr"), Scope(
                {"value": NUMBER, **self.fact_names()}, what=f"the score of '{name}'"),
                want=NUMBER, owner=name)

    def check_increasing(self, path: JsonPath, items: list[Any], key: str, what: str,
                         last_open: bool = False) -> None:
        previous: Decimal | None = None
        for index, item in enumerate(items):
            value = to_decimal(_mapping(item).get(key))
            if value is None:
                if last_open and index != len(items) - 1:
                    self.report((*path, index), "E_BRACKETS_ORDER",
                                f"only the last of the {what} may leave out '{key}'",
                                f"give this bracket an '{key}' value")
                continue
            if previous is not None and value <= previous:
                self.report((*path, index, key), "E_BRACKETS_ORDER",
                            f"{what} must increase: {value} follows {previous}",
                            "list them from lowest to highest, each value once")
            previous = value

    def check_sum(self, path: JsonPath, weights: Mapping[str, Any], what: str) -> None:
        values = {k: to_decimal(v) for k, v in weights.items()}
        if any(v is None for v in values.values()):
            return  # the schema reports the bad value
        total = sum((v for v in values.values() if v is not None), Decimal(0))
        if total != HUNDRED:
            self.report(path, "E_WEIGHTS_SUM", f"{what} sum to {percent(total)}, not 100%",
                        f"{'add' if total < HUNDRED else 'remove'} "
                        f"{percent(abs(HUNDRED - total))}", key=True)

    def check_roles(self) -> None:
        company = self.fact_names(("company",))
        for role, spec in self.roles.items():
            spec = _mapping(spec)
            weights = _mapping(spec.get("weights"))
            base = ("roles", role)
            for indicator in weights:
                self.used.add(indicator)
                if indicator not in self.indicators:
                    self.report((*base, "weights", indicator), "E_UNKNOWN_REFERENCE",
                                f"role '{role}' weights '{indicator}', which is not an "
                                f"indicator{did_you_mean(indicator, self.indicators)}", key=True)
            self.check_sum((*base, "weights"), weights, f"the weights of role '{role}'")
            adjustments = [a for a in _list(spec.get("adjustments")) if isinstance(a, dict)]
            for index, adjustment in enumerate(adjustments):
                if "when" in adjustment:
                    self.expression((*base, "adjustments", index, "when"), Scope(
                        company, what=f"an adjustment of role '{role}' (company facts only)"),
                        want=BOOLEAN)
                shift = _mapping(adjustment.get("shift"))
                for end in ("from", "to"):
                    target = shift.get(end)
                    if isinstance(target, str) and target not in self.indicators:
                        self.report((*base, "adjustments", index, "shift", end),
                                    "E_UNKNOWN_REFERENCE", f"'{target}' is not an indicator"
                                    f"{did_you_mean(target, self.indicators)}")
                    elif isinstance(target, str):
                        self.used.add(target)
            self.check_adjustments(base, weights, adjustments)

    def check_adjustments(self, base: JsonPath, weights: dict[str, Any],
                          adjustments: list[dict[str, Any]]) -> None:
        """Every combination of adjustments must leave no negative weight (shifts keep 100%)."""
        start = {k: to_decimal(v) for k, v in weights.items()}
        if not adjustments or any(v is None for v in start.values()):
            return
        for size in range(1, min(len(adjustments), MAX_ADJUSTMENTS) + 1):
            for combination in itertools.combinations(range(len(adjustments)), size):
                current: dict[str, Decimal] = {k: v for k, v in start.items() if v is not None}
                for index in combination:
                    shift = _mapping(adjustments[index].get("shift"))
                    points = to_decimal(shift.get("points"))
                    source, target = shift.get("from"), shift.get("to")
                    if points is None or not isinstance(source, str) \
                            or not isinstance(target, str):
                        return
                    current[source] = current.get(source, Decimal(0)) - points
                    current[target] = current.get(target, Decimal(0)) + points
                negative = sorted(k for k, v in current.items() if v < 0)
                if negative:
                    which = " + ".join(f"adjustment {i + 1}" for i in combination)
                    self.report((*base, "adjustments", combination[-1]), "E_WEIGHTS_NEGATIVE",
                                f"with {which} in force, '{negative[0]}' has weight "
                                f"{percent(current[negative[0]])}",
                                "shift fewer points, or from an indicator with more weight")
                    return

    def check_gates(self) -> None:
        for name, spec in self.gates.items():
            spec = _mapping(spec)
            if "when" in spec:
                self.expression(("gates", name, "when"), self.scope("gate", f"gate '{name}'"),
                                want=BOOLEAN, owner=f"gate.{name}")
            self.check_role_list(("gates", name, "roles"), spec.get("roles"))

    def check_role_list(self, path: JsonPath, roles: Any) -> None:
        for index, role in enumerate(_list(roles)):
            if role not in self.roles:
                self.report((*path, index), "E_UNKNOWN_REFERENCE",
                            f"'{role}' is not a role of this policy"
                            f"{did_you_mean(str(role), self.roles)}")

    def check_tiers(self) -> None:
        if not self.tiers:
            return
        if "by" in self.tiers:
            self.expression(("tiers", "by"), self.scope("tier", "the tier score"), want=NUMBER)
        if self.check_band_order():
            return
        previous: tuple[int, Decimal, Decimal | None] | None = None
        for index, band in enumerate(self.bands):
            low, high = to_decimal(band.get("from")), to_decimal(band.get("to"))
            if low is None:
                continue
            path = ("tiers", "bands", index)
            if previous is not None:
                _, _, previous_high = previous
                name = band.get("name")
                if previous_high is None or low < previous_high:
                    self.report((*path, "from"), "E_TIERS_OVERLAP",
                                f"band '{name}' starts at {low}, inside the band before it "
                                f"(which ends at {previous_high or 'no upper bound'})",
                                "make each band start where the one before ends")
                elif low > previous_high:
                    self.report((*path, "from"), "E_TIERS_GAP",
                                f"a score from {previous_high} up to {low} falls in no band",
                                f"start band '{name}' at {previous_high}")
            previous = (index, low, high)
        if self.bands and to_decimal(self.bands[-1].get("to")) is not None:
            self.report(("tiers", "bands", len(self.bands) - 1, "to"), "E_TIERS_GAP",
                        "the top band has an upper bound, so higher scores fall in no band",
                        "remove 'to' from the top band")
        band_names = [str(b.get("name")) for b in self.bands]
        shares = _mapping(_mapping(self.tiers.get("distribution")).get("max_share"))
        for band_name in shares:
            if band_name not in band_names:
                self.report(("tiers", "distribution", "max_share", band_name),
                            "E_UNKNOWN_REFERENCE", f"'{band_name}' is not a tier band"
                            f"{did_you_mean(band_name, band_names)}", key=True)
        distribution = _mapping(self.tiers.get("distribution"))
        if "tie_break" in distribution:
            self.expression(("tiers", "distribution", "tie_break"),
                            self.scope("tier", "the tie-break"), want=NUMBER)

    def check_band_order(self) -> bool:
        """Report bands that end before they start or are not in ascending order."""
        found = False
        previous_low: Decimal | None = None
        for index, band in enumerate(self.bands):
            low, high = to_decimal(band.get("from")), to_decimal(band.get("to"))
            if low is None:
                continue
            path = ("tiers", "bands", index)
            if high is not None and high <= low:
                self.report((*path, "to"), "E_TIERS_ORDER",
                            f"band '{band.get('name')}' ends ({high}) where or before it starts "
                            f"({low})", "'to' is where the next band starts")
                found = True
            if previous_low is not None and low <= previous_low:
                self.report((*path, "from"), "E_TIERS_ORDER",
                            f"band '{band.get('name')}' starts at {low}, not above the band "
                            f"before it ({previous_low})", "list bands from lowest to highest")
                found = True
            previous_low = low
        return found

    def check_pay_mix(self) -> None:
        mix = _mapping(self.data.get("pay_mix"))
        if not mix:
            return
        of = mix.get("of")
        if isinstance(of, str):
            if of not in self.facts:
                self.report(("pay_mix", "of"), "E_UNKNOWN_REFERENCE",
                            f"'{of}' is not a declared fact{did_you_mean(of, self.facts)}")
            self.used.add(of)
        self.check_sum(("pay_mix",), {"base": mix.get("base"), "variable": mix.get("variable")},
                       "the base and variable parts of pay_mix")

    def check_rewards(self) -> None:
        deps: dict[str, set[str]] = {}
        for name, spec in self.rewards.items():
            spec = _mapping(spec)
            base = ("rewards", name)
            scope = self.scope("reward", f"reward '{name}'")
            scope = Scope({k: v for k, v in scope.names.items() if k != f"reward.{name}"},
                          scope.inner, scope.broken, scope.what)
            kind = spec.get("kind")
            if kind == "pool":
                scope = self.pool_scope(name)
            reads: set[str] = set()
            for key, want in (("amount", NUMBER), ("base", NUMBER), ("cap", NUMBER),
                              ("floor", NUMBER), ("when", BOOLEAN)):
                if key in spec:
                    checked = self.expression((*base, key), scope, want=want)
                    if checked is not None:
                        reads |= checked.reads
            requires = _mapping(spec.get("requires"))
            gate = requires.get("gate")
            if isinstance(gate, str):
                self.used.add(gate)
                if gate not in self.gates:
                    self.report((*base, "requires", "gate"), "E_UNKNOWN_REFERENCE",
                                f"reward '{name}' requires gate '{gate}', which is not declared"
                                f"{did_you_mean(gate, self.gates)}")
            otherwise = requires.get("else")
            if otherwise is not None and not isinstance(otherwise, dict):
                self.expression((*base, "requires", "else"), scope, want=NUMBER)
            if kind == "commission":
                self.check_increasing((*base, "brackets"), _list(spec.get("brackets")), "upto",
                                      "commission brackets", last_open=True)
            select = _mapping(spec.get("select"))
            for key in ("by", "tie_break"):
                if key in select:
                    self.expression((*base, "select", key), scope, want=NUMBER)
            self.check_role_list((*base, "roles"), spec.get("roles"))
            deps[name] = {r.split(".", 1)[1] for r in reads if r.startswith("reward.")}
        self.report_cycles(deps, lambda n: ("rewards", n), "rewards")

    def pool_scope(self, name: str) -> Scope:
        """A pool is computed once per team: team and company facts, and gates on them."""
        shared = self.fact_names(("team", "company"))
        names = dict(shared)
        for gate in self.gates:
            checked = self.result.expressions.get(("gates", gate, "when"))
            if checked is not None and checked.reads | checked.presence_reads <= set(shared) \
                    and not _walks_series(checked):
                names[f"gate.{gate}"] = BOOLEAN
        return Scope(names, what=f"pool '{name}' (computed per team: team and company facts "
                     "and gates on them only)")

    def check_guardrails(self) -> None:
        values = self.policy_values()
        scope = Scope(dict.fromkeys(values, NUMBER), what="a guardrail")
        for index, guardrail in enumerate(_list(self.data.get("guardrails"))):
            if not isinstance(guardrail, dict) or "check" not in guardrail:
                continue
            path = ("guardrails", index, "check")
            checked = self.expression(path, scope, want=BOOLEAN)
            if checked is None:
                continue
            function = compile_expression(checked)
            try:
                holds = bool(function(values))
            except (ArithmeticError, TypeError):  # pragma: no cover - numbers are all finite
                holds = False
            if not holds:
                actual = ", ".join(f"{n} is {percent(values[n])}" for n in sorted(checked.reads))
                self.report(path, "E_GUARDRAIL",
                            f"guardrail '{checked.text}' does not hold: {actual}",
                            _label_text(guardrail.get("why")))

    def policy_values(self) -> dict[str, Decimal]:
        """Numbers of the policy itself, for guardrails."""
        values: dict[str, Decimal] = {}
        for role, spec in self.roles.items():
            for indicator, weight in _mapping(_mapping(spec).get("weights")).items():
                number = to_decimal(weight)
                if number is not None:
                    values[f"weight.{role}.{indicator}"] = number
        for name, spec in self.indicators.items():
            groups = _mapping(_mapping(_mapping(spec).get("raters")).get("groups"))
            for group, body in groups.items():
                number = to_decimal(_mapping(body).get("weight"))
                if number is not None:
                    values[f"raters.{name}.{group}"] = number
        for band in self.bands:
            for key in ("multiplier", "from", "to"):
                number = to_decimal(band.get(key))
                if number is not None:
                    values[f"tier.{band.get('name')}.{key}"] = number
        mix = _mapping(self.data.get("pay_mix"))
        for key in ("base", "variable"):
            number = to_decimal(mix.get(key))
            if number is not None:
                values[f"pay_mix.{key}"] = number
        return values

    def check_unused(self) -> None:
        for name in self.facts:
            if name not in self.used:
                self.report(("facts", name), "W_UNUSED_FACT",
                            f"fact '{name}' is declared but nothing reads it",
                            "remove it, or use it in an indicator", key=True,
                            severity=Severity.WARNING)
        for name in self.indicators:
            if name not in self.used:
                self.report(("indicators", name), "W_UNUSED_INDICATOR",
                            f"indicator '{name}' is weighted in no role and read by nothing",
                            "add it to a role's weights, or remove it", key=True,
                            severity=Severity.WARNING)
        for name in self.gates:
            if name not in self.used:
                self.report(("gates", name), "W_UNUSED_GATE",
                            f"gate '{name}' is required by no reward and read by nothing",
                            "name it in a reward's requires, or remove it", key=True,
                            severity=Severity.WARNING)

    def report_cycles(self, deps: Mapping[str, set[str]], where: Any, what: str) -> None:
        for cycle in _cycles(deps):
            self.report(where(cycle[0]), "E_CYCLE",
                        f"{what} depend on each other in a cycle: "
                        + " -> ".join([*cycle, cycle[0]]),
                        "break the cycle: one of them must not read the next", key=True)
            self.broken.update(cycle)


def _cycles(deps: Mapping[str, set[str]]) -> list[list[str]]:
    """Each elementary cycle once, as found by depth-first search in name order."""
    found: list[list[str]] = []
    seen: set[frozenset[str]] = set()
    state: dict[str, int] = {}

    def visit(node: str, stack: list[str]) -> None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(deps.get(node, ())):
            if state.get(nxt) == 1:
                cycle = stack[stack.index(nxt):]
                if frozenset(cycle) not in seen:
                    seen.add(frozenset(cycle))
                    found.append(cycle)
            elif nxt in deps and state.get(nxt) is None:
                visit(nxt, stack)
        stack.pop()
        state[node] = 2

    for node in sorted(deps):
        if state.get(node) is None:
            visit(node, [])
    return found


def _walks_series(checked: CheckedExpression) -> bool:
    """Whether an expression walks months, periods or years (months(), every_month()...)."""
    return any(isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
               and node.func.id in SERIES for node in ast.walk(checked.tree))


def _base_names(names: Iterable[str]) -> set[str]:
    """'score.x' -> 'x', 'gate.g' -> 'g'; plain names unchanged."""
    return {n.split(".", 1)[1] if "." in n else n for n in names}


def _type_word(kind: str) -> str:
    return {NUMBER: "a number", BOOLEAN: "true/false", TEXT: "text", DATE: "a date",
            LIST: "a list"}.get(kind, "a value")


def _as_date(value: Any) -> date | None:
    if isinstance(value, str):
        try:
            return date.fromisoformat(value)
        except ValueError:
            return None
    return None


def _label_text(label: Any) -> str:
    if isinstance(label, str):
        return label
    if isinstance(label, dict):
        return str(label.get("en") or next(iter(label.values()), ""))
    return ""


def _labels(node: Any, path: JsonPath) -> Iterator[tuple[JsonPath, Any]]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key in ("label", "title", "why", "outcome") and isinstance(value, str | dict):
                yield (*path, key), value
            else:
                yield from _labels(value, (*path, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _labels(value, (*path, index))


def check_policy(document: Document) -> PolicyCheck:
    """Schema and semantic checks of one policy document; every problem, not just the first."""
    version = document.data.get("meritpay")
    if isinstance(version, int) and not isinstance(version, bool) and version > FORMAT_VERSION:
        line, column = document.position(("meritpay",))
        diagnostic = Diagnostic(
            "E_FORMAT_VERSION", Severity.ERROR, Location(document.source, line, column),
            f"this file is format version {version}; this meritpay reads format version "
            f"{FORMAT_VERSION}", "upgrade meritpay to read it")
        return PolicyCheck(document, diagnostics=[diagnostic])
    diagnostics = schema_diagnostics(document)
    result = _PolicyChecker(document).run()
    result.diagnostics = sort_diagnostics([*diagnostics, *result.diagnostics])
    return result


# --------------------------------------------------------------------------------------------
# Policy sets: many files, many versions.

@dataclass
class ValidationReport:
    """The outcome of validating some paths: every policy checked and every diagnostic."""

    policies: list[PolicyCheck]
    diagnostics: list[Diagnostic]
    files: list[str]

    @property
    def errors(self) -> int:
        return sum(1 for d in self.diagnostics if d.severity is Severity.ERROR)

    @property
    def warnings(self) -> int:
        return sum(1 for d in self.diagnostics if d.severity is Severity.WARNING)


def policy_files(paths: Iterable[Path]) -> tuple[list[Path], list[Diagnostic]]:
    """Expand directories to their policy files (*.yaml, *.yml; not *.test.yaml), sorted."""
    files: list[Path] = []
    notes: list[Diagnostic] = []
    for path in paths:
        if path.is_dir():
            found = sorted(p for p in path.rglob("*") if p.is_file() and _is_policy_name(p))
            if not found:
                notes.append(Diagnostic("W_NO_POLICIES", Severity.WARNING, Location(str(path)),
                                        "this directory holds no policy files (*.yaml)", ""))
            files.extend(found)
        else:
            files.append(path)
    unique = sorted(set(files), key=lambda p: str(p))
    return unique, notes


def _is_policy_name(path: Path) -> bool:
    name = path.name
    return name.endswith((".yaml", ".yml")) and not name.endswith((".test.yaml", ".test.yml")) \
        and not any(part.startswith(".") for part in path.parts)


def validate_paths(paths: Iterable[Path]) -> ValidationReport:
    """Load and check every policy under paths, then the checks across files.

    Raises InputError for a file that cannot be read at all.
    """
    files, diagnostics = policy_files(paths)
    checks: list[PolicyCheck] = []
    for path in files:
        text = read_text(path)
        document, problems = load_document(text, str(path))
        diagnostics.extend(problems)
        if document is None:
            continue
        check = check_policy(document)
        # a value the loader refused (say `012`) is not reported again by the schema
        refused = {(d.location.line, d.location.column) for d in problems}
        check.diagnostics = [d for d in check.diagnostics if not (
            d.code == "E_SCHEMA" and (d.location.line, d.location.column) in refused)]
        diagnostics.extend(check.diagnostics)
        checks.append(check)
    diagnostics.extend(_cross_file(checks))
    return ValidationReport(checks, sort_diagnostics(diagnostics), [str(f) for f in files])


def _cross_file(checks: list[PolicyCheck]) -> list[Diagnostic]:
    """Duplicate versions, and versions of one policy (or of one role) overlapping in time."""
    diagnostics: list[Diagnostic] = []
    entries = []
    for check in checks:
        data = check.document.data
        effective = _mapping(data.get("effective"))
        start = _as_date(effective.get("from"))
        if start is None:
            continue
        end = _as_date(effective.get("until")) or date.max
        entries.append((str(data.get("policy")), str(data.get("version")), start, end,
                        set(_mapping(data.get("roles"))), check.document))
    seen: dict[tuple[str, str], Document] = {}
    for policy, version, _, _, _, document in entries:
        if (policy, version) in seen:
            first = seen[(policy, version)]
            line, column = document.position(("version",))
            diagnostics.append(Diagnostic(
                "E_DUPLICATE_POLICY", Severity.ERROR, Location(document.source, line, column),
                f"policy '{policy}' version {version} is also defined in {first.source}",
                "give this file a new version, or remove one of them"))
        else:
            seen[(policy, version)] = document
    for (p1, v1, s1, e1, r1, d1), (p2, v2, s2, e2, r2, d2) in itertools.combinations(entries, 2):
        if (p1, v1) == (p2, v2) or not (s1 <= e2 and s2 <= e1):
            continue
        if p1 == p2:
            why = f"versions {v1} and {v2} of policy '{p1}'"
        elif r1 & r2:
            why = (f"policies '{p1}' and '{p2}' both cover role "
                   f"'{sorted(r1 & r2)[0]}'")
        else:
            continue
        later = max(((s1, d1), (s2, d2)), key=lambda x: (x[0], x[1].source))[1]
        overlap_start, overlap_end = max(s1, s2), min(e1, e2)
        line, column = later.position(("effective",))
        diagnostics.append(Diagnostic(
            "E_EFFECTIVE_OVERLAP", Severity.ERROR, Location(later.source, line, column),
            f"{why} are both in effect from {overlap_start}"
            f"{'' if overlap_end == date.max else f' to {overlap_end}'}",
            "end the earlier version the day before the later one starts"))
    return diagnostics
