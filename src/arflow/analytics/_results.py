"""What the figures are: typed, immutable results, each as of a date.

Every figure is per currency: amounts in different currencies are never added unless the
caller passes exchange rates, and then the result's currency is the target currency. A
figure that cannot be computed (DSO over a period with no sales, a rate over an empty
book) is a :class:`Figure` whose ``value`` is None and whose ``undefined`` says why: never
a silent zero.

Grouping: every result that can be grouped carries ``group``, the values of the
dimensions it was grouped by, in the order asked (``(("salesperson", "li.wei"),)``); an
ungrouped result has ``group == ()``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Literal

from ..money import Money

#: The dimensions every figure can be filtered and grouped by.
DIMENSIONS: tuple[str, ...] = (
    "customer",
    "salesperson",
    "sales_manager",
    "team",
    "region",
    "grade",
    "currency",
    "product_line",
    "project",
    "contract",
    "tag",
)

Group = tuple[tuple[str, str | None], ...]
Unit = Literal["days", "ratio", "times", "money"]


@dataclass(frozen=True)
class Bucket:
    """One age band: receivables ``low`` to ``high`` days past due (both inclusive; None
    for open ends). ``current`` (not yet due) is the band ``high == 0`` with
    ``low is None``."""

    label: str
    low: int | None
    high: int | None
    amount: Money
    count: int
    share: Decimal | None  # amount / total; None when the total is zero


@dataclass(frozen=True)
class Aging:
    """The open receivables of one currency (and group) as of a date, by age band."""

    as_of: date
    currency: str
    group: Group
    buckets: tuple[Bucket, ...]
    total: Money
    overdue: Money


@dataclass(frozen=True)
class Figure:
    """One number: a DSO, a rate, a ratio. ``value`` is None when it is undefined, and
    ``undefined`` then says why (``"no sales in the period"``)."""

    name: str
    value: Decimal | None
    unit: Unit
    currency: str | None
    period_start: date
    period_end: date
    group: Group = ()
    undefined: str | None = None
    target: Decimal | None = None  # the pack's target, where it sets one (dso_target_days)


@dataclass(frozen=True)
class Headline:
    """The cards at the top of a report, for one currency."""

    as_of: date
    currency: str
    total: Money
    overdue: Money
    dso: Figure
    collection_rate_mtd: Figure
    cei: Figure
    overdue_rate: Figure


@dataclass(frozen=True)
class RankEntry:
    rank: int
    key: str | None  # the dimension's value (a customer id, a salesperson's id)
    label: str  # what a person reads (the customer's name)
    value: Decimal | None
    currency: str | None


@dataclass(frozen=True)
class Ranking:
    """``by`` (customer, salesperson, team, product_line, region) ranked by ``metric``
    (cash_collected, overdue, on_time_rate, dso), best first."""

    metric: str
    by: str
    as_of: date
    period_start: date
    period_end: date
    currency: str | None
    entries: tuple[RankEntry, ...]


@dataclass(frozen=True)
class TrendPoint:
    month_end: date
    value: Decimal | None
    undefined: str | None = None


@dataclass(frozen=True)
class Trend:
    """A figure month by month, each as the book stood at that month's end."""

    metric: str
    currency: str | None
    group: Group
    points: tuple[TrendPoint, ...]
    target: Decimal | None = None


@dataclass(frozen=True)
class MilestoneView:
    id: str
    name: str
    planned_date: date | None
    actual_date: date | None
    status: str


@dataclass(frozen=True)
class NodeView:
    """One payment node of a contract: what was planned, invoiced, collected, overdue."""

    node_id: str
    label: str
    planned: Money
    invoiced: Money
    collected: Money
    overdue: Money
    due_date: date | None
    milestones: tuple[MilestoneView, ...] = ()
    receivable_ids: tuple[str, ...] = ()


@dataclass(frozen=True)
class ContractView:
    """The project-contract-receivable view of one contract, as of a date."""

    as_of: date
    contract_id: str
    customer_id: str
    customer_name: str
    project_id: str | None
    title: str
    amount: Money
    invoiced: Money
    collected: Money
    open: Money
    overdue: Money
    nodes: tuple[NodeView, ...]
    unbilled: Money  # contract amount not yet invoiced
    disputes: tuple[str, ...] = ()  # ids of open disputes on its receivables
    promises: tuple[str, ...] = ()  # ids of open promises on its receivables
    next_action: str | None = None  # what arflow will do next, in words, and when


@dataclass(frozen=True)
class WatchItem:
    receivable_id: str
    customer_id: str
    customer_name: str
    due_date: date
    open_balance: Money
    days: int  # days until due (falling due) or past due (high risk)
    risk_level: str | None = None
    dunning_level: int = 0
    last_contact: str | None = None  # the last contact outcome, in words
    history: tuple[str, ...] = ()  # what happened to it, oldest first, in words


@dataclass(frozen=True)
class WatchList:
    name: Literal["falling_due", "high_risk"]
    as_of: date
    items: tuple[WatchItem, ...]
    #: the list stopped at the limit it was asked for: more may qualify
    cut: bool = False


@dataclass(frozen=True)
class ForecastWeek:
    week_start: date  # a Monday
    currency: str
    expected: Money
    from_due: Money  # receivables due that week, shifted by the customer's lateness
    from_promises: Money  # open promises to pay that week
    actual: Money | None = None  # what arrived (past weeks only)


@dataclass(frozen=True)
class Forecast:
    """Expected receipts per week, and last quarter's forecast against what arrived."""

    as_of: date
    currency: str
    weeks: tuple[ForecastWeek, ...]
    backtest: tuple[ForecastWeek, ...] = ()
    #: what is open but not expected within ``weeks``: expected after the last week, or
    #: under dispute (not expected until the dispute is resolved); None: not computed
    later: Money | None = None
    #: the days late each customer is expected to pay (``docs/analytics.md``: the observed
    #: lateness, or the fallback), by customer id
    lateness: tuple[tuple[str, int], ...] = ()


@dataclass(frozen=True)
class Report:
    """Everything a report shows, as of one date: what ``arflow report`` renders."""

    as_of: date
    headline: tuple[Headline, ...]
    aging: tuple[Aging, ...]
    figures: tuple[Figure, ...]
    trends: tuple[Trend, ...]
    rankings: tuple[Ranking, ...]
    grades: tuple[tuple[str | None, int], ...]  # customers by credit grade
    forecast: tuple[Forecast, ...]
    watch: tuple[WatchList, ...]
    contracts: tuple[ContractView, ...] = field(default=())
