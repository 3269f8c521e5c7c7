"""Render a DiffReport: text for a terminal, markdown for a pull-request comment, json, csv
(the per-employee table) and one self-contained html file with inline SVG charts.

Markdown and html are read by many, so they show pseudonymous ids (a stable keyed hash) and
no names unless show_names is set. Every output is deterministic.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

from .diff import DiffReport, EmployeeDiff, Totals, pseudonym
from .evaluate import money

TOP = 20  # employees listed in text and markdown; csv and json list everyone


def _pct(totals: Totals) -> str:
    return "n/a" if totals.percent is None else f"{totals.percent:+}%"


def _signed(value: Decimal) -> str:
    return ("+" if value > 0 else "") + money(value)


def _who(item: EmployeeDiff, show_names: bool) -> str:
    if show_names:
        return f"{item.employee} {item.name}".strip()
    return pseudonym(item.employee)


def _score(value: Decimal | None) -> str:
    if value is None:
        return ""
    return str(value.quantize(Decimal("0.0001"), rounding=ROUND_HALF_EVEN))


def summary_lines(report: DiffReport) -> list[str]:
    totals = report.totals()
    lines = [
        f"headcount {totals.headcount}; total cost {report.currency} {money(totals.old)} -> "
        f"{money(totals.new)} ({_signed(totals.delta)}, {_pct(totals)})",
        f"gain {totals.gainers}, lose {totals.losers}, same {report.unchanged}",
    ]
    quantiles = report.quantiles()
    if quantiles:
        lines.append("change per employee: " + ", ".join(f"{label} {_signed(value)}"
                                                         for label, value in quantiles))
    return lines


# --- text ------------------------------------------------------------------------------------

def _table(headers: Sequence[str], rows: Sequence[Sequence[str]], right: Sequence[int] = ()
           ) -> list[str]:
    from rich import box
    from rich.console import Console
    from rich.table import Table

    table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False)
    for index, header in enumerate(headers):
        table.add_column(header, justify="right" if index in right else "left",
                         overflow="fold")
    for row in rows:
        table.add_row(*row)
    buffer = io.StringIO()
    Console(file=buffer, width=100, color_system=None, force_terminal=False).print(table)
    return [line.rstrip() for line in buffer.getvalue().splitlines()]


def _totals_rows(groups: Sequence[tuple[str, Totals]]) -> list[list[str]]:
    return [[name, str(t.headcount), money(t.old), money(t.new), _signed(t.delta), _pct(t),
             str(t.gainers), str(t.losers)] for name, t in groups]


_TOTALS_HEAD = ("headcount", "old", "new", "change", "%", "gain", "lose")


def render_text(report: DiffReport, *, show_names: bool = True, top: int = TOP) -> str:
    out = [f"meritpay diff {report.period}: {report.old_label} -> {report.new_label}", ""]
    out.append(f"Policy changes ({len(report.policy_changes)})")
    for change in report.policy_changes:
        where = change.new_at or change.old_at
        if change.kind == "changed":
            what = f"{change.old} -> {change.new}"
        elif change.kind == "added":
            what = f"added: {change.new}"
        else:
            what = f"removed: {change.old}"
        out.append(f"  {change.policy} [{change.category}] {change.path}: {what}  ({where})")
    out += ["", "Impact", *("  " + line for line in summary_lines(report)), ""]
    out += ["By role", *_table(("role", *_TOTALS_HEAD), _totals_rows(report.by_role()),
                               right=range(1, 8)), ""]
    out += ["By reward line", *_table(("reward", "old", "new", "change"), [
        [name, money(a), money(b), _signed(b - a)] for name, a, b in report.by_reward()],
        right=(1, 2, 3)), ""]
    out += ["Tier migration", *_table(("from", "to", "people"), [
        [a, b, str(n)] for a, b, n in report.tier_matrix()], right=(2,)), ""]
    outcomes = report.outcome_changes()
    if outcomes:
        out += ["Honours, talent pools and eligibilities", *_table(
            ("outcome", "gained", "lost"), [[n, str(g), str(lo)] for n, g, lo in outcomes],
            right=(1, 2)), ""]
    for column in report.by:
        out += [f"By {column}", *_table((column, *_TOTALS_HEAD),
                                         _totals_rows(report.by_column(column)),
                                         right=range(1, 8)), ""]
    changed = [e for e in report.employees if e.changed]
    out.append(f"Largest changes ({min(top, len(changed))} of {len(changed)} changed)")
    for item in changed[:top]:
        out.append(f"  {_who(item, show_names)} ({item.role}): {money(item.old_pay)} -> "
                   f"{money(item.new_pay)} ({_signed(item.delta)})")
        out += [f"    {cause}" for cause in item.causes]
    for title, diagnostics in (("Only the old version could evaluate", report.only_old),
                               ("Only the new version could evaluate", report.only_new)):
        if diagnostics:
            out += ["", f"{title} ({len(diagnostics)})"]
            out += [f"  {d.message}" for d in diagnostics]
    if report.breaches:
        out += ["", "Limits exceeded"] + [f"  {b.limit}: {b.message}" for b in report.breaches]
    return "\n".join(out) + "\n"


# --- markdown --------------------------------------------------------------------------------

def _md_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    def cell(text: str) -> str:
        return text.replace("|", "\\|")

    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(cell(c) for c in row) + " |" for row in rows]
    return lines


def render_markdown(report: DiffReport, *, show_names: bool = False, top: int = TOP) -> str:
    totals = report.totals()
    out = [f"### meritpay diff {report.period}: `{report.old_label}` -> `{report.new_label}`", ""]
    out += [f"**Total cost** {report.currency} {money(totals.old)} -> {money(totals.new)} "
            f"(**{_signed(totals.delta)}**, {_pct(totals)}); **{totals.gainers}** gain, "
            f"**{totals.losers}** lose, {report.unchanged} unchanged of {totals.headcount}.", ""]
    if report.breaches:
        out += ["**Limits exceeded**", ""] + [f"- `{b.limit}`: {b.message}"
                                              for b in report.breaches] + [""]
    out += [f"#### Policy changes ({len(report.policy_changes)})", ""]
    out += _md_table(("policy", "what", "path", "old", "new", "where"), [
        [c.policy, c.category, f"`{c.path}`", f"`{c.old}`" if c.old else "",
         f"`{c.new}`" if c.new else "", c.new_at or c.old_at] for c in report.policy_changes])
    out += ["", "#### Cost by role", ""]
    out += _md_table(("role", *_TOTALS_HEAD), _totals_rows(report.by_role()))
    out += ["", "#### Cost by reward line", ""]
    out += _md_table(("reward", "old", "new", "change"), [
        [name, money(a), money(b), _signed(b - a)] for name, a, b in report.by_reward()])
    out += ["", "#### Change per employee", ""]
    out += _md_table([label for label, _ in report.quantiles()],
                     [[_signed(value) for _, value in report.quantiles()]])
    out += ["", "#### Tier migration", ""]
    out += _md_table(("from", "to", "people"),
                     [[a, b, str(n)] for a, b, n in report.tier_matrix()])
    outcomes = report.outcome_changes()
    if outcomes:
        out += ["", "#### Honours, talent pools and eligibilities", ""]
        out += _md_table(("outcome", "gained", "lost"),
                         [[n, str(g), str(lo)] for n, g, lo in outcomes])
    for column in report.by:
        out += ["", f"#### By {column}", ""]
        out += _md_table((column, *_TOTALS_HEAD), _totals_rows(report.by_column(column)))
    changed = [e for e in report.employees if e.changed]
    out += ["", f"#### Largest changes ({min(top, len(changed))} of {len(changed)})", ""]
    out += _md_table(("employee", "role", "old", "new", "change", "because"), [
        [_who(e, show_names), e.role, money(e.old_pay), money(e.new_pay), _signed(e.delta),
         "<br>".join(e.causes)] for e in changed[:top]])
    for title, diagnostics in (("Only the old version could evaluate", report.only_old),
                               ("Only the new version could evaluate", report.only_new)):
        if diagnostics:
            out += ["", f"#### {title} ({len(diagnostics)})", ""]
            out += [f"- {d.code}" + (f" ({d.location.file}:{d.location.line})"
                                    if d.location.line else "") for d in diagnostics]
    if not show_names:
        out += ["", "_Employee ids are pseudonymous (a keyed hash); pay is confidential._"]
    return "\n".join(out) + "\n"


# --- json and csv ----------------------------------------------------------------------------

def _totals_json(totals: Totals) -> dict[str, Any]:
    return {"headcount": totals.headcount, "old": str(totals.old), "new": str(totals.new),
            "change": str(totals.delta),
            "percent": None if totals.percent is None else str(totals.percent),
            "gainers": totals.gainers, "losers": totals.losers}


def render_json(report: DiffReport) -> str:
    data = {
        "period": report.period, "old": report.old_label, "new": report.new_label,
        "currency": report.currency,
        "policy_changes": [c.__dict__ for c in report.policy_changes],
        "total": {**_totals_json(report.totals()), "unchanged": report.unchanged},
        "quantiles": {label: str(value) for label, value in report.quantiles()},
        "by_role": {role: _totals_json(t) for role, t in report.by_role()},
        "by_reward": {name: {"old": str(a), "new": str(b), "change": str(b - a)}
                      for name, a, b in report.by_reward()},
        "tier_migration": [{"from": a, "to": b, "people": n}
                           for a, b, n in report.tier_matrix()],
        "outcomes": {n: {"gained": g, "lost": lo} for n, g, lo in report.outcome_changes()},
        "by": {column: {value: _totals_json(t) for value, t in report.by_column(column)}
               for column in report.by},
        "employees": [{
            "employee": e.employee, "name": e.name, "role": e.role, "months": list(e.months),
            "old": str(e.old_pay), "new": str(e.new_pay), "change": str(e.delta),
            "old_tier": e.old.tier if e.old else None, "new_tier": e.new.tier if e.new else None,
            "causes": list(e.causes), **({"groups": dict(e.groups)} if report.by else {}),
        } for e in report.employees],
        "only_old": [d.to_json() for d in report.only_old],
        "only_new": [d.to_json() for d in report.only_new],
        "limits_exceeded": [b.__dict__ for b in report.breaches],
    }
    return json.dumps(data, ensure_ascii=False, indent=2) + "\n"


def render_csv(report: DiffReport) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["employee", "name", "role", "months", *report.by, "old_score",
                     "new_score", "old_tier", "new_tier", "old_pay", "new_pay", "change",
                     "causes"])
    for e in report.employees:
        writer.writerow([e.employee, e.name, e.role, f"{e.months[0]}..{e.months[-1]}",
                         *(e.groups.get(c, "") for c in report.by),
                         _score(e.old.total_score if e.old else None),
                         _score(e.new.total_score if e.new else None),
                         e.old.tier if e.old else "", e.new.tier if e.new else "",
                         str(e.old_pay), str(e.new_pay), str(e.delta), "; ".join(e.causes)])
    return buffer.getvalue()


# --- html ------------------------------------------------------------------------------------

def _esc(text: str) -> str:
    return (text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
            .replace('"', "&quot;"))


def histogram_svg(deltas: Sequence[Decimal], bins: int = 12) -> str:
    """Bars counting employees per band of change; zero change gets its own bar."""
    width, height, pad = 420, 200, 30
    if not deltas:
        return f'<svg width="{width}" height="{height}" role="img"></svg>'
    low, high = min(deltas), max(deltas)
    edges: list[tuple[str, int]] = []
    if low == high:
        edges = [(money(low), len(deltas))]
    else:
        step = (high - low) / bins
        counts = [0] * bins
        for value in deltas:
            index = min(int((value - low) / step), bins - 1)
            counts[index] += 1
        edges = [(money(low + step * i), counts[i]) for i in range(bins)]
    tallest = max(count for _, count in edges) or 1
    bar = (width - 2 * pad) / len(edges)
    parts = [f'<svg width="{width}" height="{height}" '
             f'role="img" class="chart histogram">']
    for index, (label, count) in enumerate(edges):
        h = max((height - 2 * pad) * count / tallest, 3 if count else 0)  # 1 person shows
        x = pad + index * bar
        parts.append(f'<rect x="{x:.1f}" y="{height - pad - h:.1f}" width="{bar - 2:.1f}" '
                     f'height="{h:.1f}" fill="#4a78c2"><title>{_esc(label)}: {count}</title>'
                     '</rect>')
        if count:
            parts.append(f'<text x="{x + bar / 2:.1f}" y="{height - pad - h - 3:.1f}" '
                         f'text-anchor="middle">{count}</text>')
    parts.append(f'<text x="{pad}" y="{height - 8}">{_esc(money(low))}</text>')
    parts.append(f'<text x="{width - pad}" y="{height - 8}" text-anchor="end">'
                 f'{_esc(money(high))}</text>')
    parts.append("</svg>")
    return "".join(parts)


def roles_svg(groups: Sequence[tuple[str, Totals]]) -> str:
    """Paired horizontal bars: each role's cost under the old (grey) and new (blue) version."""
    row, label_width, width = 34, 150, 460
    height = max(row * len(groups) + 44, 60)
    largest = max([max(t.old, t.new) for _, t in groups] + [Decimal(1)])
    span = width - label_width - 20
    parts = [f'<svg width="{width}" height="{height}" '
             'role="img" class="chart roles">']
    legend = height - 12
    parts.append(f'<rect x="{label_width}" y="{legend - 9}" width="10" height="10" '
                 'fill="#9aa0a6"></rect>')
    parts.append(f'<text x="{label_width + 14}" y="{legend}">old</text>')
    parts.append(f'<rect x="{label_width + 50}" y="{legend - 9}" width="10" height="10" '
                 'fill="#4a78c2"></rect>')
    parts.append(f'<text x="{label_width + 64}" y="{legend}">new</text>')
    for index, (role, totals) in enumerate(groups):
        y = 10 + index * row
        parts.append(f'<text x="0" y="{y + 14}">{_esc(role)}</text>')
        for offset, value, colour, side in ((0, totals.old, "#9aa0a6", "old"),
                                            (13, totals.new, "#4a78c2", "new")):
            w = float(span * value / largest)
            parts.append(f'<rect x="{label_width}" y="{y + offset}" width="{w:.1f}" '
                         f'height="11" fill="{colour}"><title>{_esc(role)} {side}: '
                         f'{_esc(money(value))}</title></rect>')
    parts.append("</svg>")
    return "".join(parts)


def tiers_svg(matrix: Sequence[tuple[str, str, int]]) -> str:
    """A from x to grid, each cell shaded by how many people moved that way."""
    sources = sorted({a for a, _, _ in matrix})
    targets = sorted({b for _, b, _ in matrix})
    cell, left, top = 72, 100, 40
    width, height = left + cell * len(targets) + 10, top + cell * len(sources) + 10
    counts = {(a, b): n for a, b, n in matrix}
    most = max([n for _, _, n in matrix] + [1])
    parts = [f'<svg width="{width}" height="{height}" '
             'role="img" class="chart tiers">']
    parts.append(f'<text x="0" y="{top - 8}">from \\ to</text>')
    for j, target in enumerate(targets):
        parts.append(f'<text x="{left + j * cell + cell / 2}" y="{top - 8}" '
                     f'text-anchor="middle">{_esc(target)}</text>')
    for i, source in enumerate(sources):
        parts.append(f'<text x="0" y="{top + i * cell + cell / 2 + 4}">{_esc(source)}</text>')
        for j, target in enumerate(targets):
            n = counts.get((source, target), 0)
            shade = 0.08 + 0.8 * n / most if n else 0.03
            parts.append(f'<rect x="{left + j * cell}" y="{top + i * cell}" width="{cell - 2}" '
                         f'height="{cell - 2}" fill="#4a78c2" fill-opacity="{shade:.2f}">'
                         f'<title>{_esc(source)} to {_esc(target)}: {n}</title></rect>')
            parts.append(f'<text x="{left + j * cell + cell / 2 - 1}" '
                         f'y="{top + i * cell + cell / 2 + 3}" text-anchor="middle">{n}</text>')
    parts.append("</svg>")
    return "".join(parts)


def render_html(report: DiffReport, *, show_names: bool = False, top: int = 100) -> str:
    from pathlib import Path

    import jinja2
    from markupsafe import Markup

    environment = jinja2.Environment(
        loader=jinja2.FileSystemLoader(Path(__file__).parent / "templates"),
        autoescape=True, keep_trailing_newline=True, undefined=jinja2.StrictUndefined)

    def table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> Markup:
        head = "".join(f"<th>{_esc(h)}</th>" for h in headers)
        body = "".join("<tr>" + "".join(f"<td>{_esc(c)}</td>" for c in r) + "</tr>"
                       for r in rows)
        return Markup(f"<table><tr>{head}</tr>{body}</table>")

    totals = report.totals()
    changed = [e for e in report.employees if e.changed]
    return environment.get_template("diff.html.j2").render(
        report=report, show_names=show_names, unchanged=report.unchanged,
        totals={"old": money(totals.old), "new": money(totals.new),
                "delta": _signed(totals.delta), "delta_raw": totals.delta,
                "percent": _pct(totals), "gainers": totals.gainers, "losers": totals.losers,
                "headcount": totals.headcount},
        histogram=Markup(histogram_svg([e.delta for e in report.employees])),
        roles_chart=Markup(roles_svg(report.by_role())),
        tiers_chart=Markup(tiers_svg(report.tier_matrix())),
        table=table, totals_head=_TOTALS_HEAD, by_role=_totals_rows(report.by_role()),
        by_reward=[[n, money(a), money(b), _signed(b - a)] for n, a, b in report.by_reward()],
        quantile_head=[label for label, _ in report.quantiles()],
        quantile_row=[_signed(value) for _, value in report.quantiles()],
        outcomes=[[n, str(g), str(lo)] for n, g, lo in report.outcome_changes()],
        by_columns=[(c, _totals_rows(report.by_column(c))) for c in report.by],
        changed=[{"who": _who(e, show_names), "role": e.role, "old": money(e.old_pay),
                  "new": money(e.new_pay), "delta": _signed(e.delta), "delta_raw": e.delta,
                  "causes": e.causes} for e in changed[:top]],
        changed_count=len(changed),
        unmatched=[("Only the old version could evaluate",
                    [d.message for d in report.only_old]),
                   ("Only the new version could evaluate",
                    [d.message for d in report.only_new])],
    )


def render(report: DiffReport, output_format: str, *, show_names: bool = False) -> str:
    if output_format == "markdown":
        return render_markdown(report, show_names=show_names)
    if output_format == "json":
        return render_json(report)
    if output_format == "csv":
        return render_csv(report)
    if output_format == "html":
        return render_html(report, show_names=show_names)
    return render_text(report, show_names=True)
