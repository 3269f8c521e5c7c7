"""business-roles 2025-Q3 as one zen-engine decision graph (JSON Decision Model).

    input -> scores (expression node) -> weights (decision table: role x downturn)
          -> total (expression node) -> tier (decision table) -> rewards (expression node)
          -> output

Each record's context is its rolled-up facts (floats: the Python binding takes no Decimal),
its role, proration, months (revenue per month), complete fiscal years (retention) and 360
scores by rater group. zen computes in its own decimal type; amounts are rounded inside the
graph with `round(x, 2)` (half away from zero, as half_up) and come back as floats.
"""

from __future__ import annotations

import itertools
import json
from decimal import Decimal
from typing import Any

from .records import Payout, Record

D = Decimal


def _clamp(expr: str, cap: str) -> str:
    return f"max([0, min([{cap}, {expr}])])"


def _linear(value: str, zero_at: str, full_at: str, cap: str) -> str:
    return _clamp(f"(({value}) - {zero_at}) / ({full_at} - {zero_at})", cap)


DIGITAL = "min([shared_doc_updates / 24, 1]) * 0.5 + online_proposal_quality * 0.5"
SCORES = [
    ("ra", "revenue / quota"),
    ("s_ra", _linear("$.ra", "0.5", "1", "1.5")),
    ("s_ncd", f"new_customer_target != 0 ? "
              f"{_linear('new_customers / new_customer_target', '0', '1', '1.3')} : null"),
    ("s_cr", "retention_rate >= 0.95 ? 1.2 : (retention_rate >= 0.9 ? 1.0 : "
             "(retention_rate >= 0.8 ? 0.6 : 0))"),
    ("s_aov", _linear("orders != 0 ? revenue / orders : 0", "20000", "60000", "1.25")),
    ("s_pm", _linear("gross_margin", "0.05", "0.20", "1.4")),
    ("s_sp", f"strategic_accounts != 0 ? "
             f"{_linear('strategic_penetrated / strategic_accounts', '0', '0.6', '1.2')} : null"),
    ("s_cc", _linear("collection_days", "90", "45", "1.2")),
    ("s_vf", "visits >= 45 ? 1.1 : (visits >= 30 ? 1.0 : (visits >= 20 ? 0.7 : 0))"),
    ("s_pc", _linear("proposals != 0 ? proposals_won / proposals : 0", "0.1", "0.35", "1.2")),
    ("s_ct", "contracts_due != 0 ? (contracts_on_time / contracts_due >= 0.95 ? 1.0 : 0.5) "
             ": null"),
    ("s_rc", "reports_due != 0 ? max([0, min([1, reports_complete / reports_due])]) : null"),
    ("s_na", f"needs_reports_due != 0 ? "
             f"{_linear('needs_reports_sent / needs_reports_due', '0.5', '1', '1')} : null"),
    ("s_cn", _linear("carbon_neutral_adopted", "0", "0.3", "1.2")),
    ("s_dc", f"remote ? {_linear(DIGITAL, '0.2', '0.8', '1.2')} : null"),
    ("w360", "(len(superior) >= 1 ? 0.4 : 0) + (len(peer) >= 2 ? 0.3 : 0) + "
             "(len(customer) >= 3 ? 0.2 : 0) + (len(subordinate) >= 1 ? 0.1 : 0)"),
    ("v360", "((len(superior) >= 1 ? 0.4 * avg(superior) : 0) + "
             "(len(peer) >= 2 ? 0.3 * avg(peer) : 0) + "
             "(len(customer) >= 3 ? 0.2 * avg(customer) : 0) + "
             "(len(subordinate) >= 1 ? 0.1 * avg(subordinate) : 0)) / $.w360"),
    ("s_360", _linear("$.v360", "2", "4", "1.25")),
]
INDICATORS = ("ra", "ncd", "cr", "aov", "pm", "sp", "cc", "vf", "pc", "ct", "rc", "na", "cn",
              "dc", "360")
WEIGHTS = {  # role -> indicator -> weight; the downturn moves 10 points from ra to cc
    "junior_sales_rep": {"ra": "0.40", "ncd": "0.30", "vf": "0.10", "na": "0.05",
                         "360": "0.10", "dc": "0.05"},
    "account_manager": {"cr": "0.25", "aov": "0.20", "ra": "0.15", "cc": "0.10", "pc": "0.10",
                        "ct": "0.05", "360": "0.10", "dc": "0.05"},
    "business_director": {"pm": "0.30", "sp": "0.25", "ra": "0.15", "cn": "0.05",
                          "rc": "0.05", "360": "0.20"},
}
GRADUATED = ("(#.revenue <= 0 ? 0 : min([#.revenue, 1000000]) * 0.02 + "
             "(#.revenue > 1000000 ? (min([#.revenue, 3000000]) - 1000000) * 0.04 : 0) + "
             "(#.revenue > 3000000 ? (#.revenue - 3000000) * 0.06 : 0))")
REWARDS = [
    ("margin_ok", "gross_margin != null and gross_margin >= 0.15"),
    ("base_pay", "round(target_cash * 0.6 * proration, 2)"),
    ("variable_pay", "round(max([0, min([target_cash * 0.4 * 1.5, "
                     "(ra >= 0.5 ? target_cash * 0.4 * multiplier : 0) * proration])]), 2)"),
    ("commission", "role != 'business_director' ? round(min([300000, sum(map(months, "
                   f"round($.margin_ok ? {GRADUATED} : #.revenue * 0.02, 2)))]), 2) : null"),
    ("director_profit_share",
     "role == 'business_director' ? round($.margin_ok ? gross_profit * "
     "(gross_profit <= 2000000 ? 0.01 : (gross_profit <= 6000000 ? "
     "0.01 + 0.02 * (gross_profit - 2000000) / 4000000 : 0.03)) : 0, 2) : null"),
    ("value_creation_star", "tier == 'outstanding'"),
    ("leading_talent", "total_score >= 1.0 and s_ra >= 1.0"),
    ("equity_eligibility", "role != 'junior_sales_rep' and len(years) >= 3 and "
                           "all(years[len(years) - 3:], # != null and #.retention_rate >= 0.9) "
                           "and successors_trained >= 2"),
]


def _node(node_id: str, kind: str, content: dict[str, Any] | None = None) -> dict[str, Any]:
    node: dict[str, Any] = {"id": node_id, "type": kind, "name": node_id,
                            "position": {"x": 0, "y": 0}}
    if content is not None:
        node["content"] = content
    return node


def _expressions(pairs: list[tuple[str, str]]) -> dict[str, Any]:
    return {"passThrough": True, "expressions": [
        {"id": key, "key": key, "value": value} for key, value in pairs]}


def graph() -> dict[str, Any]:
    """The decision graph as JDM."""
    weight_rules = []
    for role, role_weights in WEIGHTS.items():
        for downturn in ("true", ""):
            shifted = dict(role_weights)
            if downturn and role != "junior_sales_rep":
                shifted["ra"] = str(D(shifted["ra"]) - D("0.10"))
                shifted["cc"] = str(D(shifted.get("cc", "0")) + D("0.10"))
            rule = {"_id": f"{role}-{downturn or 'any'}", "role": f"'{role}'",
                    "downturn": downturn}
            rule.update({f"w_{i}": shifted.get(i, "0") for i in INDICATORS})
            weight_rules.append(rule)
    weights: dict[str, Any] = {
        "hitPolicy": "first", "passThrough": True,
        "inputs": [{"id": "role", "name": "role", "field": "role"},
                   {"id": "downturn", "name": "downturn", "field": "market_downturn"}],
        "outputs": [{"id": f"w_{i}", "name": f"w_{i}", "field": f"w_{i}"} for i in INDICATORS],
        "rules": weight_rules}
    counted = [f"(w_{i} > 0 and s_{i} != null)" for i in INDICATORS]
    denominator = " + ".join(f"({c} ? w_{i} : 0)" for c, i in zip(counted, INDICATORS,
                                                                    strict=True))
    total = " + ".join(f"({c} ? w_{i} / $.den * s_{i} : 0)" for c, i in zip(
        counted, INDICATORS, strict=True))
    tiers: dict[str, Any] = {
        "hitPolicy": "first", "passThrough": True,
        "inputs": [{"id": "score", "name": "score", "field": "total_score"}],
        "outputs": [{"id": "tier", "name": "tier", "field": "tier"},
                    {"id": "multiplier", "name": "multiplier", "field": "multiplier"}],
        "rules": [
            {"_id": "outstanding", "score": ">= 1.1", "tier": "'outstanding'",
             "multiplier": "1.5"},
            {"_id": "meets", "score": ">= 0.8", "tier": "'meets'", "multiplier": "1"},
            {"_id": "below", "score": ">= 0", "tier": "'below'", "multiplier": "0"},
            {"_id": "none", "score": "", "tier": "''", "multiplier": "0"}]}
    nodes = [
        _node("input", "inputNode"),
        _node("scores", "expressionNode", _expressions(SCORES)),
        _node("weights", "decisionTableNode", weights),
        _node("total", "expressionNode", _expressions(
            [("den", denominator), ("total_score", total)])),
        _node("tier", "decisionTableNode", tiers),
        _node("rewards", "expressionNode", _expressions(REWARDS)),
        _node("output", "outputNode"),
    ]
    order = [n["id"] for n in nodes]
    edges = [{"id": f"{a}-{b}", "sourceId": a, "targetId": b, "type": "edge"}
             for a, b in itertools.pairwise(order)]
    return {"contentType": "application/vnd.gorules.decision", "nodes": nodes, "edges": edges}


def _float(value: Any) -> Any:
    return float(value) if isinstance(value, Decimal) else value


def _decimal(value: Any) -> Decimal:
    return D(repr(value)) if isinstance(value, float) else D(value)


class ZenGraph:
    name = "zen decision graph"

    def __init__(self) -> None:
        import zen

        self.decision = zen.ZenEngine().create_decision(json.dumps(graph()))

    def evaluate(self, r: Record) -> Payout:
        context = {name: _float(value) for name, value in r.facts.items()}
        context["role"] = r.role
        context["proration"] = float(r.proration)
        context["months"] = [{"revenue": float(m.get("revenue", 0))} for m in r.month_facts]
        context["years"] = [None if y is None or "retention_rate" not in y else
                            {"retention_rate": float(y["retention_rate"])}
                            for y in r.year_facts]
        for group in ("superior", "peer", "customer", "subordinate"):
            context[group] = [float(s) for s in r.ratings.get(group, ())]
        result = self.decision.evaluate(context)["result"]
        money = ("base_pay", "variable_pay",
                 "director_profit_share" if r.role == "business_director" else "commission")
        outcomes = tuple(o for o in ("value_creation_star", "leading_talent",
                                     "equity_eligibility") if result.get(o))
        return Payout(_decimal(result["total_score"]), result["tier"],
                      {name: _decimal(result[name]) for name in money}, outcomes)
