"""Compile a checked policy into a CompiledPolicy: typed, ordered, every expression compiled once.

Only a policy without errors compiles. Nothing here runs per employee.
"""

from __future__ import annotations

import decimal
import hashlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import date
from decimal import Decimal
from typing import Any

from .diagnostics import FindingsError
from .expr import MISSING, CheckedExpression, compile_expression
from .model import (
    Adjustment,
    Band,
    Bracket,
    CompiledPolicy,
    Curve,
    Distribution,
    Expr,
    FactDecl,
    GateDecl,
    IndicatorDecl,
    JsonPath,
    Objective,
    PayMix,
    RaterGroup,
    Raters,
    RewardDecl,
    RoleDecl,
    Rule,
    Selection,
    Tiers,
)
from .validate import PolicyCheck, to_decimal

ROUNDING = {
    "half_up": decimal.ROUND_HALF_UP, "half_even": decimal.ROUND_HALF_EVEN,
    "half_down": decimal.ROUND_HALF_DOWN, "up": decimal.ROUND_UP, "down": decimal.ROUND_DOWN,
    "ceiling": decimal.ROUND_CEILING, "floor": decimal.ROUND_FLOOR,
}
_DEFAULT_ROLLUP = {"money": "sum", "integer": "sum"}


def compile_policy(check: PolicyCheck) -> CompiledPolicy:
    """Build the compiled form of a policy that passed validation."""
    if not check.ok:
        errors = [d for d in check.diagnostics if d.severity.value == "error"]
        raise FindingsError(f"{check.document.source}: the policy has {len(errors)} error(s); "
                            "run 'meritpay validate' on it", errors)
    return _Compiler(check).build()


def _label(value: Any) -> Mapping[str, str]:
    if isinstance(value, str):
        return {"en": value}
    if isinstance(value, dict):
        return {str(k): str(v) for k, v in value.items()}
    return {}


def _number(value: Any, default: Decimal | None = None) -> Decimal | None:
    result = to_decimal(value)
    return default if result is None else result


def _required(value: Any) -> Decimal:
    result = to_decimal(value)
    assert result is not None, value  # validated
    return result


def _order(names: Iterable[str], deps: Callable[[str], Iterable[str]]) -> list[str]:
    """Names in an order where each comes after what it depends on (cycles were refused)."""
    ordered: list[str] = []
    done: set[str] = set()
    wanted = list(names)
    known = set(wanted)

    def visit(name: str) -> None:
        if name in done:
            return
        done.add(name)
        for dep in sorted(deps(name)):
            if dep in known:
                visit(dep)
        ordered.append(name)

    for name in wanted:
        visit(name)
    return ordered


def uses(expressions: Iterable[CheckedExpression], *functions: str) -> bool:
    """Some expression calls one of the functions (by its text: a call is the name and a
    bracket, which a quoted text cannot make a call of, but at worst counts as one)."""
    return any(f in c.text for c in expressions for f in functions)


def history_facts(expressions: Iterable[CheckedExpression],
                  facts: Sequence[FactDecl]) -> frozenset[str]:
    """The facts read month-, period- or year-wise, with the facts their rollups read."""
    needed = {name for c in expressions for name in c.inner_reads}
    by_name = {f.name: f for f in facts}
    pending = list(needed)
    while pending:
        fact = by_name.get(pending.pop())
        if fact is not None and fact.expression is not None:
            for name in fact.expression.reads - needed:
                needed.add(name)
                pending.append(name)
    return frozenset(n for n in needed if n in by_name)


def _indicator_names(exprs: Iterable[Expr | None]) -> set[str]:
    """Indicator names an expression may mean: plain names, and X of score.X / weight.X."""
    found: set[str] = set()
    for expr in exprs:
        if expr is not None:
            found |= {n.split(".", 1)[1] if n.startswith(("score.", "weight.")) else n
                      for n in expr.reads | expr.inner_reads}
    return found


def role_indicators(role: RoleDecl, indicators: Iterable[IndicatorDecl],
                    gates: Iterable[GateDecl], tiers: Tiers | None,
                    rewards: Iterable[RewardDecl]) -> frozenset[str]:
    """The indicators an employee of this role needs: weighted (or shifted to), read by a gate,
    the tiers or a reward of the role, and what those read in turn. Others are not computed,
    so a role need not have the facts of indicators it never uses."""
    by_name = {i.name: i for i in indicators}
    needed = {name for name, _ in role.weights}
    needed |= {a.target for a in role.adjustments} | {a.source for a in role.adjustments}
    exprs: list[Expr | None] = [g.when for g in gates]
    if tiers is not None:
        exprs.append(tiers.by)
        if tiers.distribution is not None:
            exprs.append(tiers.distribution.tie_break)
    for reward in rewards:
        if reward.roles is None or role.name in reward.roles:
            exprs += [reward.amount, reward.base, reward.cap, reward.floor, reward.when,
                      reward.else_amount]
            if reward.select is not None:
                exprs += [reward.select.by, reward.select.tie_break]
    needed |= _indicator_names(exprs)
    pending = [n for n in needed if n in by_name]
    while pending:
        decl = by_name[pending.pop()]
        more = _indicator_names([decl.value]) | {p for p, _ in decl.parts}
        more |= {k for o in decl.objectives for k, _ in o.key_results}
        for name in more:
            if name in by_name and name not in needed:
                needed.add(name)
                pending.append(name)
    return frozenset(n for n in needed if n in by_name)


class _Compiler:
    def __init__(self, check: PolicyCheck) -> None:
        self.check = check
        self.doc = check.document
        self.data = check.document.data

    def expr(self, path: JsonPath) -> Expr:
        checked = self.check.expressions[tuple(path)]
        scalar = self.doc.scalars.get(tuple(path))
        line, column = (scalar.line, scalar.column) if scalar else self.doc.position(path)
        return Expr(checked.text, compile_expression(checked), checked.reads,
                    checked.inner_reads, checked.presence_reads, line, column, checked)

    def maybe(self, path: JsonPath) -> Expr | None:
        return self.expr(path) if tuple(path) in self.check.expressions else None

    def rule(self, kind: str, name: str, path: JsonPath) -> Rule:
        return Rule(kind, name, self.doc.source, self.doc.position(path, key=True)[0])

    def build(self) -> CompiledPolicy:
        data = self.data
        rounding = data.get("rounding") or {}
        effective = data["effective"]
        fiscal = data.get("fiscal_year") or {}
        facts = self.facts()
        indicators = self.indicators()
        rewards = self.rewards()
        roles = self.roles()
        gates = self.gates()
        tiers = self.tiers()
        expressions = self.check.expressions.values()
        return CompiledPolicy(
            source=self.doc.source,
            digest=hashlib.sha256(self.doc.text.encode("utf-8")).hexdigest(),
            policy=str(data["policy"]),
            version=str(data["version"]),
            title=_label(data.get("title")),
            languages=tuple(str(x) for x in data.get("languages") or ["en"]),
            effective_from=date.fromisoformat(str(effective["from"])),
            effective_until=(date.fromisoformat(str(effective["until"]))
                             if effective.get("until") else None),
            period=str(data["period"]),
            fiscal_start=int(fiscal.get("starts", 1)),
            currency=str(data["currency"]),
            places=int(rounding.get("places", 2)),
            rounding=ROUNDING[str(rounding.get("mode", "half_up"))],
            proration=str(data.get("proration", "days")),
            facts=facts,
            indicators=indicators,
            roles=roles,
            gates=gates,
            tiers=tiers,
            pay_mix=self.pay_mix(),
            rewards=rewards,
            needs_history=uses(expressions, "last_periods(", "consecutive_years("),
            uses_months=uses(expressions, "months(", "every_month(", "any_month(")
            or any(r.paid == "monthly" for r in rewards),
            uses_periods=uses(expressions, "last_periods("),
            uses_years=uses(expressions, "consecutive_years("),
            history_facts=history_facts(expressions, facts),
            text=self.doc.text,
            role_indicators={name: role_indicators(role, indicators, gates, tiers, rewards)
                             for name, role in roles.items()},
        )

    def facts(self) -> tuple[FactDecl, ...]:
        specs: dict[str, dict[str, Any]] = self.data["facts"]
        decls: dict[str, FactDecl] = {}
        for name, spec in specs.items():
            kind = str(spec["type"])
            rollup = spec.get("rollup", _DEFAULT_ROLLUP.get(kind, "last"))
            expression = self.maybe(("facts", name, "rollup"))
            default = spec.get("default", MISSING)
            if kind in ("money", "number", "ratio", "integer") and default is not MISSING:
                default = _required(default)
            decls[name] = FactDecl(
                name=name, type=kind, rollup="expression" if expression else str(rollup),
                expression=expression, default=default,
                scope=str(spec.get("scope", "employee")), source=str(spec.get("source", "facts")),
                label=_label(spec.get("label")))
        def deps(name: str) -> frozenset[str]:
            expression = decls[name].expression
            return expression.reads if expression is not None else frozenset()

        order = _order(decls, deps)
        return tuple(decls[n] for n in order)

    def curve(self, base: JsonPath, spec: Mapping[str, Any] | None) -> Curve:
        if not spec:
            return Curve("identity")
        kind = str(spec["curve"])
        cap, floor = _number(spec.get("cap")), _number(spec.get("floor"))
        if kind == "linear":
            return Curve(kind, zero_at=_required(spec["zero_at"]),
                         full_at=_required(spec["full_at"]), cap=_number(cap, Decimal(1)),
                         floor=_number(floor, Decimal(0)))
        if kind == "threshold":
            return Curve(kind, at=_required(spec["at"]),
                         above=_number(spec.get("above"), Decimal(1)) or Decimal(0),
                         below=_number(spec.get("below"), Decimal(0)) or Decimal(0),
                         lower_is_better=spec.get("direction") == "lower")
        if kind == "steps":
            steps = tuple((_required(s["from"]), _required(s["score"])) for s in spec["steps"])
            return Curve(kind, steps=steps)
        return Curve("expression", expression=self.expr((*base, "score", "expr")), cap=cap,
                     floor=floor)

    def indicators(self) -> tuple[IndicatorDecl, ...]:
        specs: dict[str, dict[str, Any]] = self.data["indicators"]
        decls: dict[str, IndicatorDecl] = {}
        for name, spec in specs.items():
            base = ("indicators", name)
            raters = None
            if spec.get("raters"):
                body = spec["raters"]
                missing_group = body.get("missing_group", "renormalize")
                default_score = None
                if isinstance(missing_group, dict):
                    default_score = _required(missing_group["default"])
                    missing_group = "default"
                raters = Raters(
                    scale_min=_required(body["scale"]["min"]),
                    scale_max=_required(body["scale"]["max"]),
                    groups=tuple(RaterGroup(g, _required(v["weight"]), int(v.get("min_raters", 1)),
                                            _label(v.get("label")))
                                 for g, v in body["groups"].items()),
                    missing_group=str(missing_group), default_score=default_score)
            objectives = tuple(
                Objective(o, _required(v["weight"]),
                          tuple((k, _required(w)) for k, w in v["key_results"].items()),
                          _label(v.get("label")))
                for o, v in (spec.get("objectives") or {}).items())
            decls[name] = IndicatorDecl(
                name=name, kind=str(spec["kind"]), label=_label(spec.get("label")),
                unit=str(spec.get("unit", "ratio")), value=self.maybe((*base, "value")),
                curve=self.curve(base, spec.get("score")),
                applies_when=self.maybe((*base, "applies_when")),
                missing=str(spec.get("missing", "error")),
                divide_by_zero=str(spec.get("divide_by_zero", "error")),
                raters=raters,
                parts=tuple((k, _required(w)) for k, w in (spec.get("parts") or {}).items()),
                objectives=objectives, rule=self.rule("indicator", name, base))

        def deps(name: str) -> set[str]:
            decl = decls[name]
            found = set(decl.value.reads) if decl.value else set()
            found |= {p for p, _ in decl.parts}
            found |= {k for o in decl.objectives for k, _ in o.key_results}
            return found

        return tuple(decls[n] for n in _order(decls, deps))

    def roles(self) -> dict[str, RoleDecl]:
        roles: dict[str, RoleDecl] = {}
        for name, spec in self.data["roles"].items():
            base = ("roles", name)
            adjustments = tuple(
                Adjustment(self.expr((*base, "adjustments", i, "when")), str(a["shift"]["from"]),
                           str(a["shift"]["to"]), _required(a["shift"]["points"]),
                           _label(a.get("why")))
                for i, a in enumerate(spec.get("adjustments") or []))
            roles[name] = RoleDecl(
                name=name, label=_label(spec.get("label")),
                weights=tuple((k, _required(w)) for k, w in spec["weights"].items()),
                adjustments=adjustments, rule=self.rule("role", name, base))
        return roles

    def gates(self) -> tuple[GateDecl, ...]:
        return tuple(
            GateDecl(name, self.expr(("gates", name, "when")), _label(spec.get("why")),
                     frozenset(spec["roles"]) if spec.get("roles") else None,
                     self.rule("gate", name, ("gates", name)))
            for name, spec in (self.data.get("gates") or {}).items())

    def tiers(self) -> Tiers | None:
        spec = self.data.get("tiers")
        if not spec:
            return None
        bands = tuple(Band(str(b["name"]), _required(b["from"]), _number(b.get("to")),
                           _number(b.get("multiplier"), Decimal(1)) or Decimal(0),
                           _label(b.get("label")))
                      for b in spec["bands"])
        distribution = None
        if spec.get("distribution"):
            body = spec["distribution"]
            distribution = Distribution(
                tuple((k, _required(v)) for k, v in (body.get("max_share") or {}).items()),
                str(body.get("within", "role")), str(body.get("mode", "advisory")),
                self.maybe(("tiers", "distribution", "tie_break")))
        return Tiers(self.maybe(("tiers", "by")), bands, distribution,
                     self.rule("tier", "tiers", ("tiers",)))

    def pay_mix(self) -> PayMix | None:
        spec = self.data.get("pay_mix")
        if not spec:
            return None
        return PayMix(str(spec["of"]), _required(spec["base"]), _required(spec["variable"]))

    def rewards(self) -> tuple[RewardDecl, ...]:
        decls: dict[str, RewardDecl] = {}
        for name, spec in (self.data.get("rewards") or {}).items():
            base = ("rewards", name)
            requires = spec.get("requires") or {}
            otherwise = requires.get("else")
            else_rate = _number(otherwise.get("rate")) if isinstance(otherwise, dict) else None
            select = None
            if spec.get("select"):
                body = spec["select"]
                top = body.get("top")
                share = to_decimal(top) if isinstance(top, str) else None
                select = Selection(
                    by=self.expr((*base, "select", "by")),
                    top_count=int(top) if share is None and top is not None else None,
                    top_share=share, within=str(body.get("within", "role")),
                    tie_break=self.maybe((*base, "select", "tie_break")))
            decls[name] = RewardDecl(
                name=name, kind=str(spec["kind"]), label=_label(spec.get("label")),
                roles=frozenset(spec["roles"]) if spec.get("roles") else None,
                amount=self.maybe((*base, "amount")), base=self.maybe((*base, "base")),
                mode=spec.get("mode"),
                brackets=tuple(Bracket(_number(b.get("upto")), _required(b["rate"]))
                               for b in spec.get("brackets") or []),
                gate=requires.get("gate"),
                else_amount=self.maybe((*base, "requires", "else")),
                else_rate=else_rate,
                cap=self.maybe((*base, "cap")), floor=self.maybe((*base, "floor")),
                paid=str(spec.get("paid", "period")), when=self.maybe((*base, "when")),
                select=select, split=str(spec.get("split", "shares")),
                outcome=_label(spec.get("outcome")), rule=self.rule("reward", name, base))

        def deps(name: str) -> set[str]:
            decl = decls[name]
            reads: set[str] = set()
            for expr in (decl.amount, decl.base, decl.cap, decl.floor, decl.when,
                         decl.else_amount):
                if expr is not None:
                    reads |= expr.reads
            return {r.split(".", 1)[1] for r in reads if r.startswith("reward.")}

        return tuple(decls[n] for n in _order(decls, deps))
