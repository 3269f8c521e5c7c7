"""Generate the fictional sample data in examples/: seeded, deterministic, standard library only.

    .venv/bin/python examples/generate.py            # rewrites the committed files in examples/
    .venv/bin/python examples/generate.py OUT_DIR [EMPLOYEES] [SEED]

or, from a benchmark, `generate(out_dir, employees=100_000)`. Rows are written as they are made
(employee by employee); only the roster (one small record per employee) is held in memory. The
same arguments give byte-identical files: every random draw comes from `random.Random` seeded
with the seed and the employee or team id, and only exact arithmetic (integers, + - * / and
round on floats; no log, sin or sqrt) turns draws into values. All people and numbers are
fictional.

Layout: employees come in blocks of 200 with a fixed role mix (below), the same for every seed;
a remainder below 200 is business roles only. Teams: three iron-triangle corners make IT-nn,
two of each launch function make NPL-nn, six technical B2B sales make TB-nn.

Edge cases (all in the first block; `employees` must be at least 200):

    E0012  junior_sales_rep hired mid-quarter: hired 2025-08-16, rows from 2025-08.
    E0013  account_manager who leaves: left 2025-08-31, rows up to 2025-08; no 2025-Q4 data.
    E0016  role change inside 2025-Q3: junior_sales_rep up to 2025-07, account_manager from
           2025-08 (same policy, business-roles; the customer book carries over).
    E0003  technical_b2b_sales with a credit note: a negative line in 2025-08 (lines.csv).
    E0014  account_manager with new_customer_target 0 in every month of 2025: the indicator
           new_customer_development declares `divide_by_zero: exclude`.
    E0018  junior_sales_rep with new_customer_target 0 in 2025-Q3 (there the indicator is
           weighted 30%, so `exclude` renormalises the weights).
           No quota is 0: revenue_attainment declares `divide_by_zero: error`.
    E0023  account_manager with a gross margin of exactly 15.00% in every month of 2025-Q3.
    E0024  account_manager with a gross margin of exactly 14.99% in every month of 2025-Q3.
    E0020  junior_sales_rep at exactly 40% of quota in 2025-Q3.
    E0025  account_manager at exactly 150% of quota in 2025-Q3.
    E0008  account_manager eligible for equity: retention >= 90% in 2022 (Jul-Dec), 2023,
           2024 and 2025, and at least 2 successors trained.
    E0011  business_director eligible for equity in the same way.
    E0034  account_manager whose retention is exactly 89% in 2023 (100 customers at the start,
           89 at the end), >= 90% in every other year, at least 2 successors trained.
    E0035  account_manager with a missing year: no rows 2023-07..2024-12, so fiscal year 2024
           (the policies' fiscal year starts in January) and the July-June year 2023-07..2024-06
           both have no data; >= 90% in every year with data, at least 2 successors trained.
    E0038  business_director with no subordinate ratings (missing group) in 2025-Q3 and Q4.
    E0019  technical_b2b_sales with only 2 customer ratings in 2025-Q3 (min_raters is 3).
    NPL-02 launch team with a loss in 2025-Q3 (launch_profit < 0: no profit-share pool).
    TB-02  certification completed in 2025-09; TB-04 in 2025-11 (flag true to quarter end).

Modelling notes:
- Customer retention: each business employee has a book of customers that only shrinks during
  a calendar (fiscal) year: customers_start of a month is the previous month's
  customers_retained, and the book is refilled in January. So `first`/`last` over a quarter or
  a year give that period's retention. A few employees lose extra customers in 2025-Q3 or Q4.
  The history starts in 2022-07, so fiscal year 2022 (January to December) has six months.
- gross_margin and retention_rate are declared with an expression rollup; their columns hold the
  month's value of that expression (4 decimals), which the engine can recompute from the parts.
- Every month of a role with gross_margin has revenue > 0 (the rollup gross_profit / revenue has
  no divide_by_zero fallback), and every customers_start is > 0.
- target_cash is the full monthly amount in every row, also in a hire's or leaver's partial
  month; proration is the policy's business (`proration: days`).
"""

from __future__ import annotations

import csv
import hashlib
import sys
from dataclasses import dataclass, field
from pathlib import Path
from random import Random
from typing import Any

SEED = 20250930
EMPLOYEES = 200
HERE = Path(__file__).resolve().parent

# --- calendar -------------------------------------------------------------------------------

MONTHS: list[tuple[int, int, str]] = [
    (y, m, f"{y}-{m:02d}") for y in range(2022, 2026) for m in range(1, 13) if (y, m) >= (2022, 7)
]
APPRAISAL_MONTHS = ("2025-07", "2025-08", "2025-09", "2025-10", "2025-11", "2025-12")
QUARTERS = ("2025-Q3", "2025-Q4")


def quarter_of(period: str) -> str:
    return f"{period[:4]}-Q{(int(period[5:7]) - 1) // 3 + 1}"


# --- columns: the facts declared in the shipped policies ------------------------------------
# Order of first appearance reading policies/**/*.yaml in sorted path order (as `meritpay
# validate policies/` does). tests/test_examples.py checks these lists against the policies.

IDENTITY = ["employee", "name", "role", "team", "period", "hired", "left"]
# Descriptive columns no policy reads, for breaking a dry-run down (`meritpay diff --by`).
DESCRIPTIVE = ["grade", "location", "gender"]
LOCATIONS = ("Shanghai", "Shenzhen", "Beijing", "Singapore")
GRADES = {"junior_sales_rep": ("P3", "P4"), "account_manager": ("P5", "P6"),
          "business_director": ("M2", "M3"), "technical_b2b_sales": ("P5", "P6"),
          "iron_account_manager": ("P5", "P6"), "solution_expert": ("P6", "P7"),
          "delivery_manager": ("P5", "P6"), "launch_marketing": ("P4", "P5"),
          "launch_sales": ("P4", "P5"), "launch_technical": ("P5", "P6")}


def descriptive(employee: str, role: str) -> list[str]:
    """Grade, location and gender from a hash of the id: stable, and independent of the
    random draws of the facts (adding them changed no other value)."""
    digest = hashlib.sha256(employee.encode()).digest()
    return [GRADES[role][digest[0] % 2], LOCATIONS[digest[1] % len(LOCATIONS)],
            "F" if digest[2] % 2 else "M"]
FACTS = [
    # business-roles
    "revenue", "quota", "gross_profit", "gross_margin", "new_customers", "new_customer_target",
    "customers_start", "customers_retained", "retention_rate", "orders", "visits", "proposals",
    "proposals_won", "contracts_due", "contracts_on_time", "reports_due", "reports_complete",
    "needs_reports_due", "needs_reports_sent", "strategic_accounts", "strategic_penetrated",
    "collection_days", "carbon_neutral_adopted", "remote", "shared_doc_updates",
    "online_proposal_quality", "target_cash", "successors_trained",
    # iron-triangle
    "quote_approval_days", "solutions_submitted", "solutions_accepted", "milestones_due",
    "milestones_on_time", "renewals_due", "renewals_signed", "active_usage_rate", "escalations",
    # product-launch
    "leads", "leads_converted", "opportunities", "contracts_closed", "solutions_reviewed",
    "solutions_passed",
    # technical-b2b
    "solution_requests", "solutions_joined", "standard_contributions", "demos",
    "feedback_requests", "feedback_answered_48h", "sea_key_account_target",
    "sea_key_accounts_opened", "iso_items_delivered", "patents_held", "patents_converted",
    "patent_conversion_baseline", "service_experience_score", "supplier_deals",
    "supplier_deals_ethical", "iec_standard_work",
]
TEAM_FACTS = [
    "customer_satisfaction", "collection_days", "team_contract_value",  # iron-triangle
    "launch_profit", "launch_profit_target", "launch_milestones_due",  # product-launch
    "launch_milestones_on_time",
    "certification_completed",  # technical-b2b
]
COMPANY_FACTS = ["market_downturn"]
LINE_FACTS = ["revenue"]  # facts declared `source: lines`
# Each policy's own facts are one run of columns; rows are built run by run (see Person.row).
assert FACTS[0:2] == ["revenue", "quota"] and FACTS[2:4] == ["gross_profit", "gross_margin"]
assert FACTS[26:28] == ["target_cash", "successors_trained"]  # the end of business-roles
assert (FACTS[28], FACTS[37], FACTS[43]) == ("quote_approval_days", "leads", "solution_requests")
assert len(FACTS) == 59
BLANK = {n: [""] * n for n in (9, 15, 16, 22, 24, 26, 31)}

# --- roles, policies and the 360 review -----------------------------------------------------

BUSINESS = ("junior_sales_rep", "account_manager", "business_director")
TECHNICAL = ("technical_b2b_sales",)
IRON = ("iron_account_manager", "solution_expert", "delivery_manager")
LAUNCH = ("launch_marketing", "launch_sales", "launch_technical")
POLICY_OF = {
    **dict.fromkeys(BUSINESS, "business-roles"),
    **dict.fromkeys(TECHNICAL, "technical-b2b"),
    **dict.fromkeys(IRON, "iron-triangle"),
    **dict.fromkeys(LAUNCH, "product-launch"),
}
# raters.groups of review_360 per policy (product-launch has no 360 review).
RATER_GROUPS = {
    "business-roles": ("superior", "peer", "customer", "subordinate"),
    "technical-b2b": ("superior", "peer", "customer", "partner"),
    "iron-triangle": ("superior", "peer", "customer"),
    "product-launch": (),
}
DIMENSION = {"superior": "goal_attainment", "peer": "collaboration", "customer": "service",
             "subordinate": "leadership", "partner": "collaboration_efficiency"}
SOURCE = {"superior": "manager_review", "peer": "peer_review", "customer": "third_party_survey",
          "subordinate": "anonymous_upward_review", "partner": "partner_survey"}
COMMENTS = {
    "superior": (
        ("Missed most quarterly goals; needs a recovery plan.", "Pipeline too thin this quarter."),
        ("Met the main goals.", "Solid quarter, forecasting can improve.", "On plan."),
        ("Beat the plan with margin to spare.", "Excellent goal attainment.", "Strong closer."),
    ),
    "peer": (
        ("Hard to reach when handovers were due.", "Shares information late."),
        ("Reliable partner on joint deals.", "Responsive most of the time."),
        ("Always helps other departments.", "Great at aligning teams.", "Generous with time."),
    ),
    "customer": (
        ("Slow answers to our requests.", "Proposal did not fit our needs."),
        ("Good service overall.", "Understands our business.", "Meetings were useful."),
        ("Outstanding service.", "Proactive and well prepared.", "Best account team we have."),
    ),
    "subordinate": (
        ("Little coaching this quarter.", "Priorities changed too often."),
        ("Clear priorities.", "Available when needed."),
        ("Excellent coach.", "Gives us room to grow.", "Explains the why behind goals."),
    ),
    "partner": (
        ("Purchase orders arrived late.", "Unclear specifications."),
        ("Smooth collaboration.", "Fair negotiation."),
        ("Very efficient joint planning.", "Brought us into the customer early."),
    ),
}

# One block of 200 employees; shuffled by a fixed layout seed so ids mean the same for any seed.
ROLE_COUNTS = (
    ("junior_sales_rep", 64), ("account_manager", 56), ("business_director", 14),
    ("technical_b2b_sales", 30), ("iron_account_manager", 8), ("solution_expert", 8),
    ("delivery_manager", 8), ("launch_marketing", 4), ("launch_sales", 4),
    ("launch_technical", 4),
)
BLOCK = sum(n for _, n in ROLE_COUNTS)
REMAINDER_ROLES = ("junior_sales_rep", "account_manager", "junior_sales_rep", "account_manager",
                   "junior_sales_rep", "account_manager", "junior_sales_rep", "account_manager",
                   "junior_sales_rep", "business_director")
IRON_SHARE = {"iron_account_manager": ("sales", "0.40"), "solution_expert": ("technical", "0.35"),
              "delivery_manager": ("operations", "0.25")}
LAUNCH_SHARE = {"launch_marketing": ("marketing", "0.15"), "launch_sales": ("sales", "0.20"),
                "launch_technical": ("technical", "0.15")}
TB_SHARES = ("0.21", "0.18", "0.17", "0.16", "0.14", "0.14")

# Edge cases (see the docstring); ids in the first block.
HIRE, LEAVER, ROLE_CHANGE, CREDIT_NOTE = "E0012", "E0013", "E0016", "E0003"
AM_NO_TARGET, JUNIOR_NO_TARGET = "E0014", "E0018"
MARGIN_15, MARGIN_1499 = "E0023", "E0024"
LOW_ATTAINMENT, HIGH_ATTAINMENT = "E0020", "E0025"
EQUITY_AM, EQUITY_DIRECTOR, RETENTION_89, MISSING_YEAR = "E0008", "E0011", "E0034", "E0035"
NO_SUBORDINATES, FEW_CUSTOMERS = "E0038", "E0019"
EDGE_ROLES = {
    HIRE: "junior_sales_rep", LEAVER: "account_manager", ROLE_CHANGE: "junior_sales_rep",
    CREDIT_NOTE: "technical_b2b_sales", AM_NO_TARGET: "account_manager",
    JUNIOR_NO_TARGET: "junior_sales_rep", MARGIN_15: "account_manager",
    MARGIN_1499: "account_manager", LOW_ATTAINMENT: "junior_sales_rep",
    HIGH_ATTAINMENT: "account_manager", EQUITY_AM: "account_manager",
    EQUITY_DIRECTOR: "business_director", RETENTION_89: "account_manager",
    MISSING_YEAR: "account_manager", NO_SUBORDINATES: "business_director",
    FEW_CUSTOMERS: "technical_b2b_sales",
}
STEADY_RETENTION = (EQUITY_AM, EQUITY_DIRECTOR, RETENTION_89, MISSING_YEAR)
GAP = ("2023-07", "2024-12")  # MISSING_YEAR has no rows in this range (inclusive)

# Fictional names: pinyin-style syllables and common English names, combined at random.
SURNAMES_ZH = ("Wang", "Li", "Zhang", "Liu", "Chen", "Yang", "Zhao", "Huang", "Zhou", "Wu",
               "Xu", "Sun", "Hu", "Zhu", "Gao", "Lin", "He", "Guo", "Ma", "Luo", "Liang", "Song",
               "Zheng", "Xie", "Han", "Tang", "Feng", "Yu", "Dong", "Xiao")
GIVEN_ZH = ("an", "bo", "chen", "di", "fan", "hao", "hui", "jia", "jie", "jun", "kai", "lan",
            "lei", "li", "lin", "ling", "mei", "min", "ning", "qi", "qing", "rui", "shan", "tao",
            "ting", "wei", "wen", "xin", "yan", "yi", "ying", "yu", "yue", "zhen", "zhi", "zi")
FIRST_EN = ("Alice", "Ben", "Chloe", "Daniel", "Emma", "Felix", "Grace", "Henry", "Isla", "Jack",
            "Katie", "Liam", "Maya", "Noah", "Olivia", "Paul", "Quinn", "Rosa", "Sam", "Tara",
            "Umar", "Vera", "Will", "Zoe")
LAST_EN = ("Abbott", "Barlow", "Carver", "Dunmore", "Ellery", "Fairfax", "Garland", "Hollis",
           "Ingram", "Jarvis", "Kemble", "Lowther", "Marsden", "Norcott", "Oakley", "Pemberton",
           "Radley", "Sutton", "Thackery", "Upton", "Varley", "Whitlock", "Yardley")


@dataclass(slots=True)
class Employee:
    index: int
    id: str
    role: str  # the role in 2025-12 (or when leaving)
    name: str = ""
    team: str = ""
    role_in_team: str = ""
    share: str = ""
    superior: str = ""
    peers: list[str] = field(default_factory=list)
    reports: list[str] = field(default_factory=list)


# --- small exact helpers ----------------------------------------------------------------------


def money(cents: int) -> str:
    sign = "-" if cents < 0 else ""
    cents = abs(cents)
    return f"{sign}{cents // 100}.{cents % 100:02d}"


def ratio(num: int, den: int, places: int = 4) -> str:
    """num/den rounded half-up to `places` decimals (num, den >= 0, den > 0)."""
    scale = 10**places
    v = (2 * num * scale + den) // (2 * den)
    return f"{v // scale}.{v % scale:0{places}d}"


def tenths(x: float) -> str:
    v = int(x * 10 + 0.5)
    return f"{v // 10}.{v % 10}"


def hundredths(x: float) -> str:
    v = int(x * 100 + 0.5)
    return f"{v // 100}.{v % 100:02d}"


def noise(rng: Random) -> float:
    """A bell-shaped draw in [-1, 1] (mean of three uniforms, rescaled)."""
    return (rng.random() + rng.random() + rng.random() - 1.5) / 1.5


def between(rng: Random, lo: float, hi: float) -> float:
    return lo + (hi - lo) * rng.random()


def ibetween(rng: Random, lo: int, hi: int) -> int:
    """An integer in [lo, hi]."""
    return lo + int((hi - lo + 1) * rng.random())


def share_of(rng: Random, n: int, p: float) -> int:
    """About p of n, as an integer in [0, n]."""
    return max(0, min(n, int(n * p + rng.random())))


def split(rng: Random, total: int, parts: int, unit: int = 1) -> list[int]:
    """`parts` positive multiples of `unit` summing to `total` (a multiple of unit)."""
    units = total // unit
    parts = max(1, min(parts, units // 4))
    weights = [0.3 + rng.random() for _ in range(parts)]
    whole = sum(weights)
    out = [max(1, int(units * w / whole)) for w in weights]
    out[out.index(max(out))] += units - sum(out)
    return [u * unit for u in out]


# --- roster -----------------------------------------------------------------------------------


def _block_roles() -> list[str]:
    roles = [role for role, n in ROLE_COUNTS for _ in range(n)]
    Random("meritpay-examples-layout").shuffle(roles)
    return roles


def build_roster(employees: int, seed: int) -> list[Employee]:
    blocks, rest = divmod(employees, BLOCK)
    pattern = _block_roles()
    roster: list[Employee] = []
    groups: list[list[Employee]] = []
    for b in range(blocks + (1 if rest else 0)):
        roles = pattern if b < blocks else [REMAINDER_ROLES[i % 10] for i in range(rest)]
        group = []
        for role in roles:
            i = len(roster)
            emp = Employee(i, f"E{i + 1:04d}", role)
            roster.append(emp)
            group.append(emp)
        groups.append(group)
        seen: dict[str, int] = {}
        for emp in group:
            k = seen.get(emp.role, 0)
            seen[emp.role] = k + 1
            if emp.role in IRON:
                emp.team = f"IT-{b * 8 + k + 1:02d}"
                emp.role_in_team, emp.share = IRON_SHARE[emp.role]
            elif emp.role in LAUNCH:
                emp.team = f"NPL-{b * 2 + k // 2 + 1:02d}"
                emp.role_in_team, emp.share = LAUNCH_SHARE[emp.role]
            elif emp.role in TECHNICAL:
                emp.team = f"TB-{b * 5 + k // 6 + 1:02d}"
                emp.role_in_team = "lead" if k % 6 == 0 else "member"
                emp.share = TB_SHARES[k % 6]
    names = Random(f"{seed}/names")
    for emp in roster:
        if names.random() < 0.6:
            given = names.choice(GIVEN_ZH) + names.choice(GIVEN_ZH)
            emp.name = f"{names.choice(SURNAMES_ZH)} {given.capitalize()}"
        else:
            emp.name = f"{names.choice(FIRST_EN)} {names.choice(LAST_EN)}"
    # Reporting lines (the superior rater), peers and reports, within each group.
    directors_before: list[Employee] = []
    for g, group in enumerate(groups):
        directors = [e for e in group if e.role == "business_director"] or directors_before
        directors_before = directors
        rng = Random(f"{seed}/org/{g}")
        j = 0
        for emp in group:
            if emp.role == "business_director":
                emp.superior = f"VP-{emp.index % 3 + 1:02d}"
            elif directors:
                boss = directors[j % len(directors)]
                j += 1
                emp.superior = boss.id
                if emp.role in BUSINESS:
                    boss.reports.append(emp.id)
            else:
                emp.superior = "VP-01"
        by_role: dict[str, list[Employee]] = {}
        by_team: dict[str, list[Employee]] = {}
        for emp in group:
            by_role.setdefault(emp.role, []).append(emp)
            if emp.team:
                by_team.setdefault(emp.team, []).append(emp)
        for emp in group:
            if emp.team and emp.role not in LAUNCH:
                mates = [m.id for m in by_team[emp.team] if m is not emp]
                if emp.role in TECHNICAL and emp.role_in_team == "member":
                    emp.superior = by_team[emp.team][0].id  # the team lead
            else:
                mates = [m.id for m in by_role[emp.role] if m is not emp]
                rng.shuffle(mates)
            emp.peers = mates[:4]
        # Account managers with mentees: juniors rate them as subordinates.
        juniors = [e.id for e in by_role.get("junior_sales_rep", [])]
        for emp in by_role.get("account_manager", []):
            if juniors and rng.random() < 0.35:
                n = ibetween(rng, 1, 3)
                emp.reports = [juniors[ibetween(rng, 0, len(juniors) - 1)] for _ in range(n)]
                emp.reports = sorted(set(emp.reports))
    for eid, role in EDGE_ROLES.items():
        assert roster[int(eid[1:]) - 1].role == role, (eid, role)
    roster[int(ROLE_CHANGE[1:]) - 1].role = "account_manager"
    return roster


# --- per-employee monthly facts ---------------------------------------------------------------

QUOTA_YUAN = {  # monthly quota range in yuan, rounded to 10,000
    "junior_sales_rep": (150_000, 300_000), "account_manager": (500_000, 1_200_000),
    "business_director": (3_000_000, 8_000_000), "technical_b2b_sales": (700_000, 1_900_000),
    "iron_account_manager": (600_000, 1_500_000), "solution_expert": (100_000, 300_000),
    "delivery_manager": (100_000, 250_000),
}
TARGET_CASH_YUAN = {
    "junior_sales_rep": (15_000, 22_000), "account_manager": (28_000, 42_000),
    "business_director": (65_000, 95_000), "technical_b2b_sales": (35_000, 55_000),
    "iron_account_manager": (30_000, 45_000), "solution_expert": (32_000, 48_000),
    "delivery_manager": (25_000, 38_000), "launch_marketing": (25_000, 38_000),
    "launch_sales": (26_000, 40_000), "launch_technical": (28_000, 42_000),
}
DEALS = {"junior_sales_rep": (2, 5), "account_manager": (3, 8), "business_director": (6, 14),
         "technical_b2b_sales": (2, 6), "iron_account_manager": (2, 6),
         "solution_expert": (1, 3), "delivery_manager": (1, 3)}
GROWTH = {2022: 100, 2023: 106, 2024: 112, 2025: 118}  # quota index per year
BOOK = {"junior_sales_rep": (12, 30), "account_manager": (35, 90),
        "business_director": (90, 200)}


class Person:
    """Running state of one employee while their months are generated."""

    def __init__(self, emp: Employee, seed: int) -> None:
        self.emp = emp
        self.rng = rng = Random(f"{seed}/{emp.id}")
        eid = emp.id
        self.hired, self.left = self._dates()
        self.first_month = max("2022-07", self.hired[:7])
        self.last_month = self.left[:7] if self.left else "2025-12"
        self.quality = noise(rng)  # drives ratings and some process facts
        u = rng.random()
        if u < 0.06:
            self.attainment = between(rng, 0.35, 0.55)
        elif u < 0.16:
            self.attainment = between(rng, 0.60, 0.80)
        elif u < 0.93:
            self.attainment = between(rng, 0.80, 1.20)
        else:
            self.attainment = between(rng, 1.25, 1.60)
        self.q_attainment = self.attainment
        role = emp.role if eid != ROLE_CHANGE else "junior_sales_rep"
        lo, hi = QUOTA_YUAN.get(role, (0, 0))
        self.quota_base = int(between(rng, lo, hi) / 10_000 + 0.5) * 10_000
        lo, hi = TARGET_CASH_YUAN[role]
        self.target_cash = int(between(rng, lo, hi) / 500 + 0.5) * 500 * 100  # cents
        v = rng.random()
        base = 1200 + int(300 * rng.random()) if v < 0.27 else 1500 + int(500 * rng.random())
        if v > 0.9:
            base = 2000 + int(400 * rng.random())
        self.margin_bp = base + (150 if emp.role == "business_director" else 0)
        self.collection_days = between(rng, 38, 88)
        self.remote = rng.random() < 0.25
        self.aov = between(rng, 15_000, 40_000) if role == "junior_sales_rep" else (
            between(rng, 25_000, 70_000) if role == "account_manager"
            else between(rng, 60_000, 200_000))
        self.conversion = between(rng, 0.10, 0.45)
        self.carbon = between(rng, 0.0, 0.25)
        self.successors = (1 if rng.random() < 0.4 else 0) if emp.role in BUSINESS[1:] else 0
        if eid in STEADY_RETENTION:
            self.successors = 2
        self.retention = (between(rng, 0.83, 0.95) if role == "junior_sales_rep"
                          else between(rng, 0.85, 0.975))
        if eid in STEADY_RETENTION:
            self.retention = between(rng, 0.93, 0.96)
        self.shock = rng.random() < 0.15 and eid not in STEADY_RETENTION
        self.shock_quarter = 3 if rng.random() < 0.5 else 4
        self.book = 0
        self.losses: dict[str, int] = {}
        self.strategic = ibetween(rng, 6, 14) if emp.role == "business_director" else (
            ibetween(rng, 0, 3) if emp.role == "account_manager" else 0)
        self.penetrated = share_of(rng, self.strategic, between(rng, 0.2, 0.6))
        # technical
        self.patents = ibetween(rng, 2, 10)
        self.converted = share_of(rng, self.patents, between(rng, 0.1, 0.4))
        self.baseline = ratio(self.converted, self.patents, 3)
        self.iso = rng.random() < 0.5
        self.iec = rng.random() < 0.2
        self.feedback_rate = between(rng, 0.86, 1.0)
        self.join_rate = between(rng, 0.3, 1.0)
        self.ethical_rate = between(rng, 0.4, 1.0)
        self.service = between(rng, 62, 95)
        self.sea_target = 0
        # iron triangle and launch
        self.approval_days = between(rng, 0.8, 3.4)
        self.accept_rate = between(rng, 0.35, 0.95)
        self.usage = between(rng, 0.35, 0.92)
        self.funnel_rate = between(rng, 0.0, 1.0)

    def _dates(self) -> tuple[str, str]:
        rng, eid = self.rng, self.emp.id
        if eid == HIRE:
            return "2025-08-16", ""
        left = "2025-08-31" if eid == LEAVER else ""
        if eid not in STEADY_RETENTION and rng.random() < 0.08:
            y, m = MONTHS[ibetween(rng, 1, 29)][:2]  # hired during the history
        else:
            y, m = ibetween(rng, 2012, 2021), ibetween(rng, 1, 12)
        return f"{y}-{m:02d}-{ibetween(rng, 1, 28):02d}", left

    def role_in(self, period: str) -> str:
        if self.emp.id == ROLE_CHANGE and period < "2025-08":
            return "junior_sales_rep"
        return self.emp.role

    def active(self, period: str) -> bool:
        if not self.first_month <= period <= self.last_month:
            return False
        return not (self.emp.id == MISSING_YEAR and GAP[0] <= period <= GAP[1])

    # -- customer book (business roles) ------------------------------------------------------

    def _plan_year(self, year: int, month: int, role: str) -> None:
        """Start a book for the rest of `year` and spread the year's losses over its months."""
        rng, eid = self.rng, self.emp.id
        lo, hi = BOOK[role]
        if self.book:  # the book grows by last year's new customers
            self.book += ibetween(rng, 1, max(2, lo // 3))
        else:
            self.book = ibetween(rng, lo, hi) if eid != RETENTION_89 else 96
        rate = self.retention + 0.02 * noise(rng)
        months = [f"{year}-{m:02d}" for m in range(month, 13)]
        if eid == RETENTION_89 and year == 2023:
            self.book, lost = 100, 11
        elif eid in STEADY_RETENTION:
            lost = int(self.book * (1 - max(rate, 0.92)))
        else:
            lost = int(self.book * (1 - min(rate, 0.99)) + 0.5)
        self.losses = dict.fromkeys(months, 0)
        for _ in range(lost):
            self.losses[months[int(len(months) * rng.random())]] += 1
        if self.shock and year == 2025:
            q = self.shock_quarter
            shock = [f"2025-{m:02d}" for m in range(3 * q - 2, 3 * q + 1)]
            for _ in range(int(self.book * between(rng, 0.06, 0.16))):
                self.losses[shock[int(3 * rng.random())]] += 1

    # -- one month -----------------------------------------------------------------------------

    def row(self, y: int, m: int, period: str, fresh: bool) -> tuple[list[str], int]:
        """The facts row for one month, and its revenue in cents (0 when not declared)."""
        emp, rng = self.emp, self.rng
        role = self.role_in(period)
        ident = [emp.id, emp.name, role, emp.team, period, self.hired, self.left,
                 *descriptive(emp.id, role)]
        if m in (1, 4, 7, 10) or fresh:
            self.q_attainment = max(0.3, self.attainment + 0.08 * noise(rng))
            self.sea_target = ibetween(rng, 2, 5)
        if m == 1 and not fresh:  # a yearly raise, to 50 yuan
            self.target_cash = int(self.target_cash * between(rng, 1.02, 1.06) / 5000) * 5000
        if emp.id == ROLE_CHANGE and period == "2025-08":  # promoted: new quota and pay
            lo, hi = QUOTA_YUAN[role]
            self.quota_base = int(between(rng, lo, hi) / 10_000 + 0.5) * 10_000
            lo, hi = TARGET_CASH_YUAN[role]
            self.target_cash = int(between(rng, lo, hi) / 500 + 0.5) * 500 * 100
        cash = money(self.target_cash)
        policy = POLICY_OF[role]
        # Each policy's own facts are one run of columns (see the asserts below FACTS).
        if policy == "product-launch":
            return ident + BLANK[26] + [cash, ""] + BLANK[9] + self._launch(role) + BLANK[16], 0
        revenue, quota = self._revenue(y, period)
        if policy == "business-roles":
            facts = self._business(y, m, period, role, revenue, quota, cash, fresh)
            return ident + facts + BLANK[31], revenue
        if policy == "technical-b2b":
            head = [money(revenue), money(quota), *self._margin(period, revenue)]
            tail = self._technical(m, fresh)
            return ident + head + BLANK[22] + [cash, ""] + BLANK[15] + tail, revenue
        head = [money(revenue), money(quota)]
        return ident + head + BLANK[24] + [cash, ""] + self._iron(role) + BLANK[22], revenue

    def _revenue(self, y: int, period: str) -> tuple[int, int]:
        """(revenue, quota) of the month in cents."""
        eid = self.emp.id
        quota = int(self.quota_base * GROWTH[y] / 100 / 10_000 + 0.5) * 10_000 * 100
        q3 = "2025-07" <= period <= "2025-09"
        if q3 and eid == LOW_ATTAINMENT:
            return quota * 40 // 100, quota
        if q3 and eid == HIGH_ATTAINMENT:
            return quota * 150 // 100, quota
        f = max(0.12, self.q_attainment * (1 + 0.22 * noise(self.rng)))
        if period == self.hired[:7]:
            f *= 0.4  # a first month ramps up
        revenue = int(quota * f)
        if q3 and eid in (MARGIN_15, MARGIN_1499):
            revenue = revenue // 10_000 * 10_000  # whole hundreds of yuan: exact margins
        return revenue, quota

    def _margin(self, period: str, revenue: int) -> list[str]:
        """[gross_profit, gross_margin] of the month."""
        eid = self.emp.id
        bp = self.margin_bp + int(80 * noise(self.rng))
        if "2025-07" <= period <= "2025-09" and eid in (MARGIN_15, MARGIN_1499):
            bp = 1500 if eid == MARGIN_15 else 1499
        profit = (2 * revenue * bp + 10_000) // 20_000
        return [money(profit), ratio(profit, revenue)]

    def _business(self, y: int, m: int, period: str, role: str, revenue: int, quota: int,
                  cash: str, fresh: bool) -> list[str]:
        """The business-roles facts, revenue to successors_trained."""
        rng, eid = self.rng, self.emp.id
        rnd = rng.random
        junior = role == "junior_sales_rep"
        director = role == "business_director"
        target = 3 if junior else (2 if director else 1)
        if (eid == AM_NO_TARGET and y == 2025) or (
                eid == JUNIOR_NO_TARGET and "2025-07" <= period <= "2025-09"):
            target = 0
        won = max(0, int(target * self.attainment * (1 + 0.6 * noise(rng)) + 0.5))
        if target == 0:
            won = int(2 * rnd())
        if fresh or m == 1:
            self._plan_year(y, m, role)
        start = self.book
        self.book = retained = max(1, start - self.losses.get(period, 0))
        orders = max(1, int(revenue / 100 / self.aov + rnd()))
        visits = (8 + int(9 * rnd()) if junior else (3 + int(6 * rnd()) if director
                                                       else 6 + int(9 * rnd())))
        visits += 1 if self.quality > 0.3 else 0
        proposals = (4 + int(7 * rnd()) if junior else (1 + int(4 * rnd()) if director
                                                         else 3 + int(6 * rnd())))
        contracts = int(6 * rnd())
        late = 1 if contracts and rnd() < 0.15 else 0
        reports = 4 + int(2 * rnd())
        incomplete = 1 if rnd() < 0.12 else 0
        needs = 1 + int(4 * rnd())
        unsent = 1 if rnd() < 0.2 else 0
        if m in (1, 4, 7, 10) and rnd() < 0.3:
            self.penetrated = min(self.strategic, self.penetrated + 1)
        days = max(20.0, self.collection_days + 9 * noise(rng))
        self.carbon = min(0.6, self.carbon + 0.004 * rnd())
        updates = 4 + int(9 * rnd()) if self.remote else int(6 * rnd())
        quality = 0.5 + 0.45 * rnd() if self.remote else 0.3 + 0.5 * rnd()
        if not junior and self.successors < 3 and rnd() < 0.02:
            self.successors += 1
        return [
            money(revenue), money(quota), *self._margin(period, revenue),
            str(won), str(target), str(start), str(retained), ratio(retained, start),
            str(orders), str(visits), str(proposals),
            str(share_of(rng, proposals, self.conversion)),
            str(contracts), str(contracts - late), str(reports), str(reports - incomplete),
            str(needs), str(needs - unsent), str(self.strategic), str(self.penetrated),
            tenths(days), ratio(int(self.carbon * 1000), 1000, 3),
            "true" if self.remote else "false", str(updates), hundredths(quality),
            cash, str(self.successors),
        ]

    def _technical(self, m: int, fresh: bool) -> list[str]:
        """The technical-b2b facts of their own, solution_requests to iec_standard_work."""
        rng = self.rng
        rnd = rng.random
        requests = 2 + int(7 * rnd())
        demos = 3 + int(3 * rnd()) if rnd() < 0.9 else 1 + int(2 * rnd())
        feedback = 8 + int(23 * rnd())
        if m == 1 and not fresh:
            self.baseline = ratio(self.converted, self.patents, 3)  # last year's rate
        if rnd() < 0.12:
            self.patents += 1
        if self.converted < self.patents and rnd() < 0.08:
            self.converted += 1
        deals = int(9 * rnd())
        return [
            str(requests), str(share_of(rng, requests, self.join_rate)),
            str(int(rnd() * rnd() * 4)), str(demos),
            str(feedback), str(share_of(rng, feedback, self.feedback_rate)),
            str(self.sea_target), str(int(rnd() * rnd() * 3)),
            str(int(3 * rnd()) if self.iso else 0),
            str(self.patents), str(self.converted), self.baseline,
            tenths(min(99.0, self.service + 6 * noise(rng))),
            str(deals), str(share_of(rng, deals, self.ethical_rate)),
            "true" if self.iec else "false",
        ]

    def _iron(self, role: str) -> list[str]:
        """The iron-triangle facts of their own, quote_approval_days to escalations."""
        rng = self.rng
        rnd = rng.random
        days = max(0.3, self.approval_days + 0.6 * noise(rng))
        submitted = 3 + int(6 * rnd()) if role == "solution_expert" else int(2 * rnd())
        due = 3 + int(6 * rnd()) if role == "delivery_manager" else int(3 * rnd())
        late = int(rnd() * rnd() * 3) if due else 0
        renewals = 1 + int(5 * rnd())
        usage = int(1000 * max(0.1, self.usage + 0.08 * noise(rng)))
        return [
            tenths(days), str(submitted), str(share_of(rng, submitted, self.accept_rate)),
            str(due), str(max(0, due - late)),
            str(renewals), str(share_of(rng, renewals, 0.55 + 0.4 * self.usage)),
            ratio(usage, 1000, 3), str(int(rnd() * rnd() * 3)),
        ]

    def _launch(self, role: str) -> list[str]:
        """The product-launch facts: each function fills its own funnel step, 0 for the rest."""
        rng = self.rng
        out: list[str] = []
        for owner, lo, hi, p_lo, p_hi in (
            ("launch_marketing", 80, 300, 0.04, 0.26),  # leads, leads_converted
            ("launch_sales", 12, 40, 0.08, 0.38),  # opportunities, contracts_closed
            ("launch_technical", 3, 10, 0.45, 0.98),  # solutions_reviewed, solutions_passed
        ):
            n = ibetween(rng, lo, hi) if role == owner else 0
            p = p_lo + (p_hi - p_lo) * max(0.0, min(1.0, self.funnel_rate + 0.15 * noise(rng)))
            out += [str(n), str(share_of(rng, n, p))]
        return out


# --- files ------------------------------------------------------------------------------------


def _writer(handle: Any) -> Any:
    return csv.writer(handle, lineterminator="\n")


def _lines(person: Person, period: str, revenue: int, write: Any) -> None:
    rng, eid = person.rng, person.emp.id
    lo, hi = DEALS[person.role_in(period)]
    credit = 0
    if eid == CREDIT_NOTE and period == "2025-08":
        credit = revenue * 18 // 100  # a returned shipment, credited in the month
    # Round totals (exact margins and attainments) are split into round deals.
    unit = 10_000 if (revenue + credit) % 10_000 == 0 else 1
    amounts = split(rng, revenue + credit, ibetween(rng, lo, hi), unit)
    stamp = period.replace("-", "")
    for n, amount in enumerate(amounts, 1):
        write((eid, period, "revenue", f"INV-{eid}-{stamp}-{n:02d}", money(amount)))
    if credit:
        write((eid, period, "revenue", f"CN-{eid}-{stamp}-01", money(-credit)))


def _rates_in(rater: str, quarter: str) -> bool:
    return not (rater == LEAVER and quarter == "2025-Q4")


def _ratings(person: Person, seed: int, write: Any) -> None:
    emp = person.emp
    groups = RATER_GROUPS[POLICY_OF[emp.role]]
    if not groups:
        return
    rng = Random(f"{seed}/{emp.id}/ratings")
    for quarter in QUARTERS:
        months = [p for p in APPRAISAL_MONTHS if quarter_of(p) == quarter]
        present = [p for p in months if person.active(p)]
        if not present:
            continue
        partial = len(present) < 3  # a hire or leaver: no customer or partner survey yet
        level = 3.55 + 1.1 * person.quality + 0.15 * noise(rng)
        for group in groups:
            if group == "superior":
                raters = [emp.superior]
            elif group == "peer":
                raters = [p for p in emp.peers if _rates_in(p, quarter)][: ibetween(rng, 2, 4)]
            elif group == "subordinate":
                if emp.id == NO_SUBORDINATES:
                    continue
                reports = list(emp.reports)
                rng.shuffle(reports)
                raters = sorted(reports[: ibetween(rng, 3, 6)])
            elif partial:
                continue
            elif group == "customer":
                n = 2 if (emp.id == FEW_CUSTOMERS and quarter == "2025-Q3") else ibetween(rng, 3, 6)
                raters = [f"C{c}" for c in sorted(rng.sample(range(10000, 100000), n))]
            else:  # partner
                n = ibetween(rng, 2, 3)
                raters = [f"P{c}" for c in sorted(rng.sample(range(100, 1000), n))]
            bias = {"customer": -0.1, "subordinate": 0.1}.get(group, 0.0)
            for rater in raters:
                if not _rates_in(rater, quarter):
                    continue
                score = max(1.0, min(5.0, level + bias + 0.6 * noise(rng)))
                band = 0 if score < 3 else (1 if score < 4 else 2)
                comment = rng.choice(COMMENTS[group][band]) if rng.random() < 0.7 else ""
                write((emp.id, quarter, group, rater, tenths(score), DIMENSION[group],
                       SOURCE[group], comment))


def _team_facts(team: str, seed: int, write: Any) -> None:
    rng = Random(f"{seed}/team/{team}")
    kind, number = team.split("-")
    k = int(number)
    satisfaction, days = between(rng, 3.4, 4.7), between(rng, 40, 76)
    contract = between(rng, 1_500_000, 4_000_000)
    profit_target = int(between(rng, 300_000, 800_000) / 10_000 + 0.5) * 10_000 * 100
    for y, m, period in MONTHS:
        row = [team, period] + [""] * len(TEAM_FACTS)
        if kind == "IT":
            row[2] = hundredths(max(1.0, min(5.0, satisfaction + 0.25 * noise(rng))))
            row[3] = tenths(max(15.0, days + 6 * noise(rng)))
            row[4] = money(int(contract * (1 + 0.3 * noise(rng)) * 100))
        elif kind == "NPL":
            if m in (1, 4, 7, 10) or period == "2022-07":
                level = between(rng, 0.6, 1.5)
                if k % 2 == 0 and period == "2025-07":
                    level = -0.35  # the NPL-02 launch makes a loss in 2025-Q3
            target = int(profit_target * GROWTH[y] / 100 / 1_000_000 + 0.5) * 1_000_000
            row[5] = money(int(target * (level + 0.25 * noise(rng))))
            row[6] = money(target)
            due = ibetween(rng, 1, 4)
            row[7] = str(due)
            row[8] = str(due - (1 if rng.random() < 0.2 else 0))
        else:
            done = (k % 5 == 2 and period == "2025-09") or (
                k % 5 == 4 and period in ("2025-11", "2025-12")) or (
                k % 5 == 0 and period == "2024-06")
            row[9] = "true" if done else "false"
        write(row)


def generate(out_dir: Path, employees: int = EMPLOYEES, seed: int = SEED) -> None:
    """Write the sample files into out_dir (created if needed).

    `employees` is at least 200: one full block holds every role and every edge case.
    """
    if employees < BLOCK:
        raise ValueError(f"employees must be at least {BLOCK}, not {employees}")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    roster = build_roster(employees, seed)

    def open_csv(name: str, header: list[str]) -> tuple[Any, Any]:
        handle = (out_dir / name).open("w", encoding="utf-8", newline="")
        writer = _writer(handle)
        writer.writerow(header)
        return handle, writer

    files = []
    try:
        fh, facts = open_csv("facts.csv", IDENTITY + DESCRIPTIVE + FACTS)
        files.append(fh)
        lh, lines = open_csv("lines.csv", ["employee", "period", "fact", "line_id", "amount"])
        files.append(lh)
        rh, ratings = open_csv("ratings.csv", ["employee", "period", "group", "rater", "score",
                                               "dimension", "source", "comment"])
        files.append(rh)
        write_fact, write_line, write_rating = facts.writerow, lines.writerow, ratings.writerow
        for emp in roster:
            person = Person(emp, seed)
            fresh = True
            for y, m, period in MONTHS:
                if not person.active(period):
                    fresh = True
                    continue
                row, revenue = person.row(y, m, period, fresh)
                fresh = False
                write_fact(row)
                if revenue and period in APPRAISAL_MONTHS:
                    _lines(person, period, revenue, write_line)
            _ratings(person, seed, write_rating)

        th, teams = open_csv("teams.csv", ["team", "member", "role_in_team", "share", "period"])
        files.append(th)
        members = sorted((e for e in roster if e.team), key=lambda e: (e.team, e.index))
        for quarter in QUARTERS:
            for emp in members:
                teams.writerow((emp.team, emp.id, emp.role_in_team, emp.share, quarter))

        tfh, team_facts = open_csv("team_facts.csv", ["team", "period", *TEAM_FACTS])
        files.append(tfh)
        for team in sorted({e.team for e in members}):
            _team_facts(team, seed, team_facts.writerow)

        ch, company = open_csv("company_facts.csv", ["period", *COMPANY_FACTS])
        files.append(ch)
        for _, _, period in MONTHS:
            company.writerow((period, "true" if period in ("2025-11", "2025-12") else "false"))
    finally:
        for handle in files:
            handle.close()


def main(argv: list[str]) -> None:
    out_dir = Path(argv[0]) if argv else HERE
    employees = int(argv[1]) if len(argv) > 1 else EMPLOYEES
    seed = int(argv[2]) if len(argv) > 2 else SEED
    generate(out_dir, employees, seed)


if __name__ == "__main__":
    main(sys.argv[1:])
