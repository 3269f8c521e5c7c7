"""Render explanations as text, Markdown, JSON or one self-contained HTML page.

Every format is deterministic and holds nothing volatile (no times, no absolute paths: the
policy file is shown as the explanation names it). Text fits a terminal of TEXT_WIDTH columns
(CJK labels count two columns a character). JSON is the stable structure README documents,
version JSON_VERSION; numbers in it are exact decimal strings.
"""

from __future__ import annotations

import json
import unicodedata
from collections.abc import Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

from .explain import (
    Condition,
    Explanation,
    GateLine,
    IndicatorLine,
    OutcomeLine,
    RewardLine,
    Source,
    Units,
    WhyNot,
    decimal_text,
)
from .whynot import Check

FORMATS = ("text", "markdown", "json", "html")
TEXT_WIDTH = 100
JSON_VERSION = 1
TEMPLATES = Path(__file__).resolve().parent / "templates"


def render_explanations(explanations: Sequence[Explanation], output_format: str) -> str:
    if output_format == "json":
        return render_json(explanations)
    if output_format == "markdown":
        return "\n".join(render_markdown(e) for e in explanations)
    if output_format == "html":
        return render_html(explanations)
    return "\n".join(render_text(e) for e in explanations)


# --------------------------------------------------------------------------------------------
# Shared pieces

_PLAIN = Units()


def _score(value: Decimal | None) -> str:
    return "" if value is None else _PLAIN.value(value)


def _percent(value: Decimal | None) -> str:
    return "" if value is None else _PLAIN.value(value, "percent")


def _amount(explanation: Explanation, value: Decimal | None) -> str:
    return "" if value is None else f"{value:,.{explanation.places}f}"


def _named(label: str, name: str) -> str:
    return name if not label or label == name else f"{label} ({name})"


def _months(explanation: Explanation) -> str:
    months = explanation.months
    return months[0] if len(months) == 1 else f"{months[0]}..{months[-1]}"


def _gate_state(gate: GateLine) -> str:
    return {True: "passed", False: "FAILED", None: "MISSING"}[gate.passed]


def _outcome_state(outcome: OutcomeLine) -> str:
    return outcome.status.replace("_", " ")


def _whynot_title(item: WhyNot) -> str:
    kind = item.kind.replace("_", " ")
    if item.kind == "gate":
        return f"gate {item.name}"
    if item.kind == "tier":
        return f"tier {_named(item.label, item.name)}"
    return f"{_named(item.label, item.name)}, {kind}" if kind else item.name


def _bands(explanation: Explanation) -> str:
    tier = explanation.tier
    assert tier is not None
    parts = []
    for band in tier.bands:
        high = _score(band.high) if band.high is not None else "..."
        parts.append(f"{band.name} [{_score(band.low)}, {high}) x{_score(band.multiplier)}")
    return " | ".join(parts)


# --------------------------------------------------------------------------------------------
# Text

def width(text: str) -> int:
    """Display columns: East Asian wide and full-width characters take two."""
    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)


def wrap(text: str, indent: int, limit: int = TEXT_WIDTH) -> list[str]:
    """Wrap at spaces to `limit` display columns; continuation lines indented 4 more. A word
    longer than a line (CJK text has no spaces) is cut where it must be."""
    first, rest = " " * indent, " " * (indent + 4)
    lines: list[str] = []
    current = first
    for word in text.split(" "):
        candidate = word if current.strip() == "" else f"{current.rstrip(' ')} {word}"
        if current.strip() == "":
            candidate = current + word
        if width(candidate) <= limit:
            current = candidate
            continue
        if current.strip():
            lines.append(current.rstrip())
            current = rest + word
        else:
            current = current + word
        while width(current) > limit:  # a single overlong word
            cut = len(current)
            while width(current[:cut]) > limit:
                cut -= 1
            lines.append(current[:cut])
            current = rest + current[cut:]
    if current.strip():
        lines.append(current.rstrip())
    return lines


class _Text:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def add(self, text: str = "", indent: int = 0) -> None:
        if not text:
            self.lines.append("")
            return
        self.lines.extend(wrap(text, indent))

    def render(self) -> str:
        return "".join(line + "\n" for line in self.lines)


def _at(source: Source) -> str:
    return f"[line {source.line}]" if source.line else ""


def render_text(e: Explanation) -> str:
    out = _Text()
    out.add(f"EXPLANATION {e.employee} {e.name}".rstrip() + f": {_named(e.role_label, e.role)}, "
            f"months {_months(e)}")
    out.add(f"policy {e.policy} {e.version} ({e.title}), file {e.source}; [line N] is a line of "
            "this file", 2)
    if e.focus is None:
        _text_body(out, e)
    else:
        out.add()
        out.add(f"TOTAL PAY  {e.currency} {_amount(e, e.total_pay)}")
    out.add()
    if e.focus is not None:
        out.add(f"WHY NOT {e.focus}")
    else:
        out.add("WHY NOT" if e.why_not else "WHY NOT  everything was granted")
    for item in e.why_not:
        out.add(_whynot_title(item), 2)
        for reason in item.reasons:
            out.add(reason.text, 4)
    return out.render()


def _text_body(out: _Text, e: Explanation) -> None:
    out.add()
    out.add(f"TOTAL PAY  {e.currency} {_amount(e, e.total_pay)}")
    if e.rewards:
        out.add("= " + " + ".join(f"{r.name} {_amount(e, r.amount)}" for r in e.rewards), 2)
    if e.proration != 1:
        out.add(f"amount rewards prorated by {_score(e.proration)} (days worked)", 2)
    out.add()
    out.add("REWARDS")
    for reward in e.rewards:
        _text_reward(out, e, reward)
    if e.tier is not None:
        tier = e.tier
        out.add()
        out.add(f"TIER  {_named(tier.label, tier.name)}, multiplier {_score(tier.multiplier)}  "
                f"{_at(tier.source)}")
        for note in tier.notes:
            out.add(note, 2)
        out.add(f"bands: {_bands(e)}", 2)
    if e.gates:
        out.add()
        out.add("GATES")
        for gate in e.gates:
            out.add(f"{gate.name}: {_gate_state(gate)}  {_at(gate.source)}", 2)
            out.add(f"when {gate.expression}", 4)
            for condition in gate.conditions:
                out.add(condition.text, 4)
            for consequence in gate.consequences:
                out.add(f"so {consequence}", 4)
            if gate.why:
                out.add(f"why: {gate.why}", 4)
    out.add()
    out.add(f"TOTAL SCORE  {_score(e.total_score)}  (rank {e.rank} in role; "
            f"{_percent(e.percentile)} of the role score lower)")
    for line in e.total:
        out.add(line, 2)
    out.add()
    out.add("INDICATORS  (a score of 1 meets the target)")
    for indicator in e.indicators:
        _text_indicator(out, indicator)
    if e.outcomes:
        out.add()
        out.add("OUTCOMES")
        for outcome in e.outcomes:
            out.add(f"{_named(outcome.label, outcome.name)}, {outcome.kind.replace('_', ' ')}: "
                    f"{_outcome_state(outcome)}  {_at(outcome.source)}", 2)
            out.add(f"when {outcome.expression}", 4)
            for condition in outcome.conditions:
                out.add(condition.text, 4)
            if outcome.selection:
                out.add(outcome.selection, 4)


def _text_reward(out: _Text, e: Explanation, reward: RewardLine) -> None:
    state = "" if reward.status == "paid" else f", {reward.status.replace('_', ' ')}"
    gate = f", gate {reward.gate}" if reward.gate else ""
    out.add(f"{_named(reward.label, reward.name)}: {_amount(e, reward.amount)}{gate}{state}  "
            f"{_at(reward.source)}", 2)
    if reward.basis:
        out.add(reward.basis, 4)
    for line in reward.arithmetic:
        out.add(line, 4)


def _text_indicator(out: _Text, indicator: IndicatorLine) -> None:
    out.add(f"{_named(indicator.label, indicator.name)}  {_at(indicator.source)}", 2)
    if indicator.status != "scored":
        out.add(f"{indicator.status.replace('_', ' ')}: {indicator.note}".rstrip(": "), 4)
        return
    if indicator.arithmetic and indicator.arithmetic != indicator.value_text:
        out.add(f"value: {indicator.expression} = {indicator.arithmetic} = "
                f"{indicator.value_text}", 4)
    else:
        out.add(f"value: {indicator.expression} = {indicator.value_text}", 4)
    if indicator.reads:
        out.add("reads: " + "; ".join(f"{r.name} {r.text}" + (f" ({r.label})" if r.label != r.name
                                                              else "") for r in indicator.reads),
                4)
    for rating in indicator.ratings:
        share = f" -> {_percent(rating.share)}" if rating.share != rating.weight else ""
        mean = _score(rating.mean) if rating.mean is not None else "none"
        detail = rating.detail.split(", weight")[0]
        out.add(f"rater: {_named(rating.label, rating.group)} {mean}, weight "
                f"{_percent(rating.weight)}{share}: {rating.status}, {detail}", 4)
    if indicator.note:
        out.add(f"note: {indicator.note}", 4)
    out.add(f"score: {_score(indicator.score)} ({indicator.curve})", 4)
    out.add(f"counts: weight {_percent(indicator.weight)} x {_score(indicator.score)} = "
            f"{_score(indicator.contribution)}", 4)


# --------------------------------------------------------------------------------------------
# Markdown

def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def render_markdown(e: Explanation) -> str:
    lines = [f"# {e.employee} {e.name}".rstrip() + f": {_named(e.role_label, e.role)}, "
             f"{_months(e)}", "",
             f"Policy `{e.policy}` {e.version} ({e.title}), `{e.source}`; lines below are lines "
             "of this file.", ""]
    lines += [f"## Total pay: {e.currency} {_amount(e, e.total_pay)}", ""]
    if e.focus is None:
        lines += ["| reward | amount | status | arithmetic | line |", "|---|---:|---|---|---:|"]
        for reward in e.rewards:
            arithmetic = "<br>".join(_cell(a) for a in (reward.basis, *reward.arithmetic) if a)
            lines.append(f"| {_cell(_named(reward.label, reward.name))} | "
                         f"{_amount(e, reward.amount)} | {reward.status.replace('_', ' ')} | "
                         f"{arithmetic} | {reward.source.line} |")
        lines.append("")
        if e.tier is not None:
            tier = e.tier
            lines += [f"## Tier: {_named(tier.label, tier.name)}, multiplier "
                      f"{_score(tier.multiplier)} (line {tier.source.line})", ""]
            lines += [f"- {note}" for note in tier.notes] + [f"- bands: {_bands(e)}", ""]
        if e.gates:
            lines += ["## Gates", ""]
            for gate in e.gates:
                lines.append(f"- **{gate.name}**: {_gate_state(gate)}, `{gate.expression}` "
                             f"(line {gate.source.line})")
                lines += [f"  - {c.text}" for c in gate.conditions]
                lines += [f"  - so {c}" for c in gate.consequences]
                lines += [f"  - why: {gate.why}"] if gate.why else []
            lines.append("")
        lines += [f"## Total score: {_score(e.total_score)}", "",
                  f"Rank {e.rank} in role; {_percent(e.percentile)} of the role score lower.", ""]
        lines += [f"- {line}" for line in e.total] + [""]
        lines += ["## Indicators", "",
                  "| indicator | value | score | weight | contribution | line |",
                  "|---|---:|---:|---:|---:|---:|"]
        for i in e.indicators:
            lines.append(f"| {_cell(_named(i.label, i.name))} | {i.value_text or i.status} | "
                         f"{_score(i.score)} | {_percent(i.weight)} | {_score(i.contribution)} | "
                         f"{i.source.line} |")
        lines.append("")
        for i in e.indicators:
            lines.append(f"- **{i.name}**: `{i.expression}`"
                         + (f" = {i.arithmetic}" if i.arithmetic else "")
                         + (f" = {i.value_text}" if i.value_text else "")
                         + (f"; score {_score(i.score)} ({i.curve})" if i.score is not None
                            else ""))
            lines += [f"  - rater group {r.group}: {_score(r.mean) if r.mean is not None else ''}"
                      f" weight {_percent(r.weight)}, {r.status}: {r.detail}" for r in i.ratings]
            lines += [f"  - {i.note}"] if i.note else []
        lines.append("")
        if e.outcomes:
            lines += ["## Outcomes", ""]
            for o in e.outcomes:
                lines.append(f"- **{_named(o.label, o.name)}** ({o.kind.replace('_', ' ')}): "
                             f"{_outcome_state(o)}, `{o.expression}` (line {o.source.line})")
                lines += [f"  - {c.text}" for c in o.conditions]
                lines += [f"  - {o.selection}"] if o.selection else []
            lines.append("")
    lines += [f"## Why not {e.focus}" if e.focus else "## Why not", ""]
    for item in e.why_not:
        lines.append(f"- **{_whynot_title(item)}**")
        lines += [f"  - {reason.text}" for reason in item.reasons]
    if not e.why_not:
        lines.append("Everything was granted.")
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------------------------
# JSON

def _value(value: Any) -> Any:
    if isinstance(value, bool) or value is None or isinstance(value, str | int):
        return value
    if isinstance(value, Decimal):
        return decimal_text(value)
    if isinstance(value, tuple):
        return [_value(v) for v in value]
    return None  # missing


def _source(source: Source) -> dict[str, Any]:
    return {"file": source.file, "line": source.line}


def _check(check: Check | None) -> dict[str, Any] | None:
    if check is None:
        return None
    return {"left": check.left, "left_value": _value(check.left_value), "op": check.op,
            "right": check.right, "right_value": _value(check.right_value),
            "holds": check.holds, "gap": decimal_text(check.gap) if check.gap is not None
            else None, "percent": check.percent, "over": check.over or None,
            "at": check.at or None, "no_data": check.no_data}


def _conditions(conditions: Sequence[Condition]) -> list[dict[str, Any]]:
    return [{"text": c.text, "check": _check(c.check)} for c in conditions]


def explanation_json(e: Explanation) -> dict[str, Any]:
    tier = e.tier
    return {
        "employee": e.employee, "name": e.name, "role": e.role, "role_label": e.role_label,
        "months": list(e.months),
        "policy": {"id": e.policy, "version": e.version, "title": e.title, "file": e.source},
        "lang": e.lang, "currency": e.currency, "proration": decimal_text(e.proration),
        "total_pay": decimal_text(e.total_pay),
        "total_score": {"value": decimal_text(e.total_score), "rank_in_role": e.rank,
                        "percentile_in_role": decimal_text(e.percentile),
                        "explanation": list(e.total)},
        "rewards": [{"name": r.name, "label": r.label, "kind": r.kind,
                     "amount": decimal_text(r.amount), "status": r.status, "gate": r.gate,
                     "basis": r.basis, "arithmetic": list(r.arithmetic),
                     "source": _source(r.source)} for r in e.rewards],
        "tier": None if tier is None else {
            "name": tier.name, "label": tier.label, "by": tier.by,
            "score": decimal_text(tier.score), "multiplier": decimal_text(tier.multiplier),
            "from": decimal_text(tier.low), "to": decimal_text(tier.high) or None,
            "bands": [{"name": b.name, "label": b.label, "from": decimal_text(b.low),
                       "to": decimal_text(b.high) or None,
                       "multiplier": decimal_text(b.multiplier)} for b in tier.bands],
            "notes": list(tier.notes), "source": _source(tier.source)},
        "gates": [{"name": g.name, "why": g.why, "passed": g.passed, "expression": g.expression,
                   "conditions": _conditions(g.conditions),
                   "consequences": list(g.consequences), "source": _source(g.source)}
                  for g in e.gates],
        "indicators": [{
            "name": i.name, "label": i.label, "status": i.status, "expression": i.expression,
            "arithmetic": i.arithmetic,
            "reads": [{"name": r.name, "label": r.label, "value": _value(r.value),
                       "text": r.text} for r in i.reads],
            "value": decimal_text(i.value) or None, "value_text": i.value_text,
            "score": decimal_text(i.score) or None, "curve": i.curve,
            "weight": decimal_text(i.weight), "contribution": decimal_text(i.contribution),
            "note": i.note,
            "ratings": [{"group": r.group, "label": r.label, "status": r.status,
                         "mean": decimal_text(r.mean) or None, "weight": decimal_text(r.weight),
                         "share": decimal_text(r.share), "detail": r.detail}
                        for r in i.ratings],
            "source": _source(i.source)} for i in e.indicators],
        "outcomes": [{"name": o.name, "label": o.label, "kind": o.kind, "granted": o.granted,
                      "status": o.status, "expression": o.expression,
                      "conditions": _conditions(o.conditions), "selection": o.selection or None,
                      "source": _source(o.source)} for o in e.outcomes],
        "why_not": [{"name": w.name, "kind": w.kind, "label": w.label, "granted": w.granted,
                     "reasons": _conditions(w.reasons)} for w in e.why_not],
        "focus": e.focus,
    }


def render_json(explanations: Sequence[Explanation]) -> str:
    data = {"meritpay_explain": JSON_VERSION,
            "explanations": [explanation_json(e) for e in explanations]}
    return json.dumps(data, ensure_ascii=False, indent=2) + "\n"


# --------------------------------------------------------------------------------------------
# HTML

CHART_ROW = 26  # px per indicator in the bar chart
CHART_LABEL = 260  # px for the labels left of the bars
CHART_BARS = 420  # px for the bars


def chart(e: Explanation) -> dict[str, Any]:
    """The geometry of the bar chart of scores against the target 1.00, for the template."""
    scored = [i for i in e.indicators if i.score is not None]
    top = max([Decimal("1.5"), *(i.score for i in scored if i.score is not None)])
    scale = Decimal(CHART_BARS) / top

    def x(value: Decimal) -> int:
        return int((max(value, Decimal(0)) * scale).to_integral_value())

    def short(text: str) -> str:  # the labels left of the bars fit CHART_LABEL px
        return text if width(text) <= 40 else text[:38].rstrip() + "..."

    bars = [{"label": short(i.label or i.name), "score": _score(i.score),
             "width": x(i.score or Decimal(0)), "y": n * CHART_ROW,
             "met": (i.score or Decimal(0)) >= 1} for n, i in enumerate(scored)]
    return {"bars": bars, "target": x(Decimal(1)), "height": max(1, len(bars)) * CHART_ROW + 24,
            "label_width": CHART_LABEL, "bars_width": CHART_BARS, "row": CHART_ROW,
            "ticks": [{"x": x(Decimal(t)), "text": t} for t in ("0", "0.5", "1", "1.5")
                      if Decimal(t) <= top]}


def render_html(explanations: Sequence[Explanation]) -> str:
    try:
        import jinja2
    except ImportError as error:  # pragma: no cover - a declared dependency
        from .diagnostics import EnvironmentFailure

        raise EnvironmentFailure("--format html needs jinja2: pip install 'jinja2>=3.1'") \
            from error
    environment = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(TEMPLATES)), autoescape=True,
        undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True,
        keep_trailing_newline=True)
    environment.globals.update(named=_named, score=_score, percent=_percent,
                               gate_state=_gate_state, outcome_state=_outcome_state,
                               whynot_title=_whynot_title, months=_months, bands=_bands)
    environment.filters["amount"] = lambda value, e: _amount(e, value)
    template = environment.get_template("explain.html.j2")
    return template.render(explanations=[(e, chart(e)) for e in explanations])


__all__ = ["FORMATS", "JSON_VERSION", "TEXT_WIDTH", "explanation_json", "render_explanations",
           "render_html", "render_json", "render_markdown", "render_text", "width", "wrap"]
