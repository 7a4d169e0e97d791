"""The figures: aging, DSO (standard and countback), AR turnover, average days delinquent,
the collection effectiveness index, overdue, collection and written-off rates, rankings,
trends and customers by grade, each as of a date (``docs/analytics.md`` gives every
formula with a worked example).

Every figure is arithmetic over a few sums of the movement journal (``_source``), asked of
the database as ``GROUP BY`` queries on a SQL store and computed in Python on the memory
store. Amounts are summed per currency; with :class:`Rates` they are converted first and
the results are in the target currency.
"""

from __future__ import annotations

import calendar
import itertools
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, TypeVar

from ..domain import FIRST_DATE, LAST_DATE
from ..errors import CurrencyMismatch, InvalidDates, UnknownDimension, ValidationError
from ..money import Money, minor_unit
from ..store import Store
from ._results import (
    DIMENSIONS,
    Aging,
    Bucket,
    Figure,
    Group,
    Headline,
    RankEntry,
    Ranking,
    Trend,
    TrendPoint,
)
from ._source import (
    FILTER_ONLY,
    Key,
    Query,
    Source,
    Split,
    band_of,
    check_dims,
    source_of,
    where_values,
)

#: The default age bands: current, 1-30, 31-60, 61-90 and over 90 days past due.
DEFAULT_BUCKETS = (30, 60, 90)
#: Days of the default period of a period figure (DSO, ART, CEI, rates): the 90 days
#: ending on the as-of date.
DEFAULT_PERIOD_DAYS = 90
_Q = {
    "days": Decimal("0.01"),
    "ratio": Decimal("0.0001"),
    "times": Decimal("0.01"),
    "money": Decimal("0.01"),
}
#: What a ranking ranks by, and which way is first (True: largest first).
RANK_METRICS = {"overdue": True, "cash_collected": True, "on_time_rate": True, "dso": False}
#: What ``trend`` follows.
TREND_METRICS = (
    "total",
    "overdue",
    "dso",
    "dso_countback",
    "art",
    "add",
    "cei",
    "overdue_rate",
    "collection_rate",
    "written_off_ratio",
)

_Where = Mapping[str, "str | Iterable[str | None] | None"] | None
_T = TypeVar("_T")
_GKey = tuple[str, tuple[str | None, ...]]


@dataclass(frozen=True)
class Rates:
    """Exchange rates into ``to``: an amount of currency ``c`` counts ``rates[c]`` times in
    ``to`` (``to`` itself counts once). Figures given rates sum every currency, in ``to``."""

    to: str
    rates: Mapping[str, Decimal] = field(default_factory=dict)

    def rate(self, currency: str) -> Decimal:
        if currency == self.to:
            return Decimal(1)
        got = self.rates.get(currency)
        if got is None:
            raise CurrencyMismatch(currency, self.to, "no exchange rate given for it")
        return Decimal(got)


def _q(value: Decimal, unit: str) -> Decimal:
    q = value.quantize(_Q[unit], rounding=ROUND_HALF_UP)
    return q if q else q.copy_abs()  # no negative zero


def _month_end(d: date) -> date:
    return d.replace(day=calendar.monthrange(d.year, d.month)[1])


def _check_day(d: object, what: str) -> date:
    from ..errors import DateOutOfRange

    if not isinstance(d, date):
        raise InvalidDates(f"{what} must be a date, not {type(d).__name__}")
    if not FIRST_DATE + timedelta(days=1) <= d <= LAST_DATE:
        raise DateOutOfRange(f"{what} {d} is outside the dates arflow keeps", d)
    return d


class Analytics:
    """The figures of one book, read through its store (``Analytics(store).aging(day)``).

    ``dso_target_days``: the DSO the company aims at (a rule pack's
    ``settings.dso_target_days``), carried on DSO figures and trends. ``reference``: compute
    in Python from the journal even on a SQL store (what the tests compare SQL against).
    """

    def __init__(
        self,
        store: Store,
        *,
        dso_target_days: Decimal | int | None = None,
        reference: bool = False,
    ) -> None:
        self.store = store
        self.source: Source = source_of(store, reference=reference)
        self.dso_target = None if dso_target_days is None else Decimal(dso_target_days)
        #: Sums already asked, while several figures of one date are made (``headline``).
        self._memo: dict[tuple[Query, int], Any] | None = None
        #: While :meth:`prefetch` looks what a computation asks: the queries, no answers.
        self._asked: dict[tuple[Query, int], tuple[Query, Rates | None]] | None = None

    # -- the sums every figure is made of ---------------------------------------------------
    def prefetch(self, make: Callable[[], object]) -> None:
        """Ask the book at once every sum ``make`` (figures of this object) will ask, and
        keep the answers while the memo is on (``build_report``, :meth:`together`):
        ``make`` runs once on empty sums to name them, then the source answers them
        together (``Source.sums_many``: one scan of the journal for the sums that differ
        only in their period). A sum the real run asks that the empty run did not is
        asked then, alone."""
        if self._memo is None:
            return
        memo, self._memo = self._memo, {}
        self._asked = {}
        try:
            make()
            asked = [x for k, x in self._asked.items() if k not in memo]
        finally:
            self._asked = None
            self._memo = memo
        answers = self.source.sums_many([q for q, _r in asked])
        for (q, rates), raw in zip(asked, answers, strict=True):
            memo[(q, id(rates))] = self._convert(raw, rates)

    def together(self, make: Callable[[], _T]) -> _T:
        """``make()`` (figures of this object), every sum it asks asked of the book at once
        first (:meth:`prefetch`), each asked once: the same figures in fewer scans."""
        outer = self._memo
        if outer is None:
            self._memo = {}
        try:
            self.prefetch(make)
            return make()
        finally:
            if outer is None:
                self._memo = None

    def _sums(self, q: Query, rates: Rates | None) -> dict[_GKey, dict[Key, tuple[Decimal, int]]]:
        if self._asked is not None:
            self._asked.setdefault((q, id(rates)), (q, rates))
            return {}
        memo = self._memo
        if memo is not None:
            got = memo.get((q, id(rates)))
            if got is None:
                self._memo = None
                try:
                    got = memo[(q, id(rates))] = self._sums(q, rates)
                finally:
                    self._memo = memo
            return got
        return self._convert(self.source.sums(q), rates)

    def _convert(
        self,
        raw: dict[tuple[str, tuple[str | None, ...], Key], tuple[int, int]],
        rates: Rates | None,
    ) -> dict[_GKey, dict[Key, tuple[Decimal, int]]]:
        out: dict[_GKey, dict[Key, tuple[Decimal, int]]] = {}
        for (cur, group, key), (minor, count) in raw.items():
            amount = Decimal(minor).scaleb(-minor_unit(cur))
            if rates is not None:
                amount *= rates.rate(cur)
                cur = rates.to
            got = out.setdefault((cur, group), {})
            a, n = got.get(key, (Decimal(0), 0))
            got[key] = (a + amount, n + count)
        return out

    def _total(
        self, q: Query, rates: Rates | None, keep: Callable[[Key], bool] | None = None
    ) -> dict[_GKey, Decimal]:
        return {
            g: sum((a for k, (a, _n) in keys.items() if keep is None or keep(k)), Decimal(0))
            for g, keys in self._sums(q, rates).items()
        }

    # -- aging ----------------------------------------------------------------------------------
    def aging(
        self,
        as_of: date,
        *,
        buckets: Sequence[int] = DEFAULT_BUCKETS,
        by: Sequence[str] = (),
        where: _Where = None,
        rates: Rates | None = None,
    ) -> tuple[Aging, ...]:
        """The receivables open on ``as_of`` by days past due, per currency and group:
        ``current`` (not yet due), then a band up to each of ``buckets`` (days past due,
        increasing), then one past the last. Empty when nothing is open."""
        as_of = _check_day(as_of, "as_of")
        bands = _bands(buckets)
        by = _dims(by)
        check_dims(by, where, "aging")
        highs = tuple(h for _label, _low, h in bands[1:-1] if h is not None)
        # Ungrouped, the sums by due date are few and read from an index in order; grouped,
        # the database puts each sum in its band (fewer rows to bring back).
        split: Split = "band" if by else "due"
        q = Query(
            on_to=as_of,
            by=by,
            where=where_values(where),
            split=split,
            bands=highs if split == "band" else (),
        )
        out = []
        for (cur, group), keys in sorted(self._sums(q, rates).items(), key=_order):
            amounts = [Decimal(0)] * len(bands)
            counts = [0] * len(bands)
            for key, (a, n) in keys.items():
                i = band_of((as_of - key).days, highs) if isinstance(key, date) else key
                assert isinstance(i, int)
                amounts[i] += a
                counts[i] += n
            total = sum(amounts, Decimal(0))
            if not total and not any(counts):
                continue  # every receivable of the group is closed
            out.append(
                Aging(
                    as_of=as_of,
                    currency=cur,
                    group=_group(by, group),
                    buckets=tuple(
                        Bucket(
                            label=label,
                            low=low,
                            high=high,
                            amount=Money.of(a, cur),
                            count=n,
                            share=_q(a / total, "ratio") if total else None,
                        )
                        for (label, low, high), a, n in zip(bands, amounts, counts, strict=True)
                    ),
                    total=Money.of(total, cur),
                    overdue=Money.of(total - amounts[0], cur),
                )
            )
        return tuple(out)

    # -- the period figures --------------------------------------------------------------------
    def _inputs(
        self,
        start: date,
        end: date,
        by: tuple[str, ...],
        where: _Where,
        rates: Rates | None,
        need: Iterable[str],
    ) -> dict[_GKey, dict[str, Decimal]]:
        """The quantities the period figures are made of, per currency and group: open
        receivables at the end (``ar_end``), the day before the start (``ar_start``) and
        overdue at the end (``overdue_end``); sales (``sales``), cash collected net of
        reversals (``collected``), write-offs (``written_off``) and cash received on or
        before the due date (``on_time``; ``paid``: all of it) within the period."""
        w = where_values(where)
        got: dict[str, dict[_GKey, Decimal]] = {}
        before = start - timedelta(days=1)
        for name in need:
            # ungrouped, balances are summed from the sums by due date the aging reads too
            split: Split = None if by else "due"
            if name == "ar_end":
                got[name] = self._total(Query(on_to=end, by=by, where=w, split=split), rates)
            elif name == "ar_start":
                got[name] = self._total(Query(on_to=before, by=by, where=w, split=split), rates)
            elif name == "overdue_end":
                q = Query(on_to=end, by=by, where=w, split="due")
                got[name] = self._total(q, rates, lambda k: k is not None and k < end)  # type: ignore[operator]
            else:
                kinds, sign = {
                    "sales": (("invoiced",), 1),
                    "collected": (("paid", "reversed"), -1),
                    "written_off": (("written_off",), -1),
                    "on_time": (("paid",), -1),
                    "paid": (("paid",), -1),
                }[name]
                # all the cash received is the sum of the on-time split: one sum, asked once
                split = "late" if name in ("on_time", "paid") else None
                q = Query(on_to=end, on_from=start, kinds=kinds, by=by, where=w, split=split)
                keep = (lambda k: k == 0) if name == "on_time" else None
                got[name] = {g: sign * v for g, v in self._total(q, rates, keep).items()}
        keys = sorted({g for values in got.values() for g in values}, key=_order_key)
        return {g: {n: got[n].get(g, Decimal(0)) for n in got} for g in keys}

    def _figures(
        self,
        name: str,
        unit: Any,
        as_of: date,
        start: date | None,
        by: Sequence[str],
        where: _Where,
        rates: Rates | None,
        need: Iterable[str],
        compute: Callable[[dict[str, Decimal], int], tuple[Decimal | None, str | None]],
        *,
        target: Decimal | None = None,
        default_start: date | None = None,
    ) -> tuple[Figure, ...]:
        end = _check_day(as_of, "as_of")
        if start is None:
            start = default_start or end - timedelta(days=DEFAULT_PERIOD_DAYS - 1)
        start = _check_day(start, "start")
        if start > end:
            raise InvalidDates(f"the period of {name} starts ({start}) after it ends ({end})")
        by = _dims(by)
        check_dims(by, where, name)
        days = (end - start).days + 1
        found = self._inputs(start, end, by, where, rates, need)
        if not found:
            return (
                Figure(
                    name=name,
                    value=None,
                    unit=unit,
                    currency=None if rates is None else rates.to,
                    period_start=start,
                    period_end=end,
                    undefined=f"no receivables recorded up to {end}",
                    target=target,
                ),
            )
        out = []
        for (cur, group), values in found.items():
            value, why = compute(values, days)
            out.append(
                Figure(
                    name=name,
                    value=None if value is None else _q(value, unit),
                    unit=unit,
                    currency=cur,
                    period_start=start,
                    period_end=end,
                    group=_group(by, group),
                    undefined=why,
                    target=target,
                )
            )
        return tuple(out)

    def dso(
        self,
        as_of: date,
        *,
        start: date | None = None,
        method: str = "standard",
        by: Sequence[str] = (),
        where: _Where = None,
        rates: Rates | None = None,
    ) -> tuple[Figure, ...]:
        """Days sales outstanding over [start, as_of] (default: the 90 days to ``as_of``).
        ``standard``: open receivables at the end / sales of the period x its days.
        ``countback``: the days of the latest sales the open receivables add up to,
        counted back month by month from the end."""
        if method == "standard":
            return self._figures(
                "dso",
                "days",
                as_of,
                start,
                by,
                where,
                rates,
                ("ar_end", "sales"),
                _dso,
                target=self.dso_target,
            )
        if method == "countback":
            return self._countback(as_of, start, by, where, rates)
        raise ValidationError(f"DSO method {method!r}: use 'standard' or 'countback'")

    def _countback(
        self,
        as_of: date,
        start: date | None,
        by: Sequence[str],
        where: _Where,
        rates: Rates | None,
    ) -> tuple[Figure, ...]:
        end = _check_day(as_of, "as_of")
        start = _check_day(start or end - timedelta(days=DEFAULT_PERIOD_DAYS - 1), "start")
        if start > end:
            raise InvalidDates(f"the period of dso_countback starts ({start}) after it ends")
        by = _dims(by)
        check_dims(by, where, "dso_countback")
        w = where_values(where)
        ar = self._total(Query(on_to=end, by=by, where=w), rates)
        q = Query(on_to=end, on_from=start, kinds=("invoiced",), by=by, where=w, split="on")
        daily = self._sums(q, rates)
        parts = []  # the period's months, latest first: (first day, last day)
        last = end
        while last >= start:
            first = max(start, last.replace(day=1))
            parts.append((first, last))
            last = first - timedelta(days=1)
        out = []
        keys = sorted(set(ar) | set(daily), key=_order_key)
        if not keys:
            return self._figures(
                "dso_countback",
                "days",
                as_of,
                start,
                by,
                where,
                rates,
                (),
                lambda v, d: (None, None),
                target=self.dso_target,
            )
        for g in keys:
            left = ar.get(g, Decimal(0))
            sales = daily.get(g, {})
            value: Decimal | None = Decimal(0)
            why = None
            if left < 0:
                value, why = None, "open receivables are negative"
            for first, last_day in parts:
                if left <= 0 or value is None:
                    break
                s = sum(
                    (a for k, (a, _n) in sales.items() if first <= k <= last_day),  # type: ignore[operator]
                    Decimal(0),
                )
                span = (last_day - first).days + 1
                if s <= 0:
                    value += span
                elif left >= s:
                    value += span
                    left -= s
                else:
                    value += left / s * span
                    left = Decimal(0)
            if value is not None and left > 0:
                value, why = (
                    None,
                    "open receivables exceed the sales of the period: take a longer one",
                )
            out.append(
                Figure(
                    name="dso_countback",
                    value=None if value is None else _q(value, "days"),
                    unit="days",
                    currency=g[0],
                    period_start=start,
                    period_end=end,
                    group=_group(by, g[1]),
                    undefined=why,
                    target=self.dso_target,
                )
            )
        return tuple(out)

    def art(
        self,
        as_of: date,
        *,
        start: date | None = None,
        by: Sequence[str] = (),
        where: _Where = None,
        rates: Rates | None = None,
    ) -> tuple[Figure, ...]:
        """AR turnover: sales of the period / the average of the open receivables the day
        before it starts and on its last day."""
        return self._figures(
            "art", "times", as_of, start, by, where, rates, ("sales", "ar_start", "ar_end"), _art
        )

    def add(
        self,
        as_of: date,
        *,
        start: date | None = None,
        by: Sequence[str] = (),
        where: _Where = None,
        rates: Rates | None = None,
    ) -> tuple[Figure, ...]:
        """Average days delinquent: DSO minus the best possible DSO, that is overdue
        receivables at the end / sales of the period x its days."""
        return self._figures(
            "add", "days", as_of, start, by, where, rates, ("overdue_end", "sales"), _add
        )

    def cei(
        self,
        as_of: date,
        *,
        start: date | None = None,
        by: Sequence[str] = (),
        where: _Where = None,
        rates: Rates | None = None,
    ) -> tuple[Figure, ...]:
        """Collection effectiveness index: (receivables at the start + sales - receivables
        at the end) / (receivables at the start + sales - current receivables at the end)."""
        need = ("ar_start", "sales", "ar_end", "overdue_end")
        return self._figures("cei", "ratio", as_of, start, by, where, rates, need, _cei)

    def overdue_rate(
        self,
        as_of: date,
        *,
        by: Sequence[str] = (),
        where: _Where = None,
        rates: Rates | None = None,
    ) -> tuple[Figure, ...]:
        """Overdue receivables / open receivables, on ``as_of``."""
        return self._figures(
            "overdue_rate",
            "ratio",
            as_of,
            as_of,
            by,
            where,
            rates,
            ("ar_end", "overdue_end"),
            _overdue_rate,
        )

    def collection_rate(
        self,
        as_of: date,
        *,
        start: date | None = None,
        by: Sequence[str] = (),
        where: _Where = None,
        rates: Rates | None = None,
    ) -> tuple[Figure, ...]:
        """Cash collected in the period (net of reversals) / (receivables open the day
        before it starts + sales of the period)."""
        need = ("collected", "ar_start", "sales")
        return self._figures(
            "collection_rate", "ratio", as_of, start, by, where, rates, need, _collection
        )

    def collection_rate_mtd(
        self,
        as_of: date,
        *,
        by: Sequence[str] = (),
        where: _Where = None,
        rates: Rates | None = None,
    ) -> tuple[Figure, ...]:
        """The collection rate of the month to date (from its first day to ``as_of``)."""
        as_of = _check_day(as_of, "as_of")
        need = ("collected", "ar_start", "sales")
        return self._figures(
            "collection_rate_mtd",
            "ratio",
            as_of,
            as_of.replace(day=1),
            by,
            where,
            rates,
            need,
            _collection,
        )

    def written_off_ratio(
        self,
        as_of: date,
        *,
        start: date | None = None,
        by: Sequence[str] = (),
        where: _Where = None,
        rates: Rates | None = None,
    ) -> tuple[Figure, ...]:
        """Written off in the period / sales of the period."""
        return self._figures(
            "written_off_ratio",
            "ratio",
            as_of,
            start,
            by,
            where,
            rates,
            ("written_off", "sales"),
            _written_off,
        )

    def on_time_rate(
        self,
        as_of: date,
        *,
        start: date | None = None,
        by: Sequence[str] = (),
        where: _Where = None,
        rates: Rates | None = None,
    ) -> tuple[Figure, ...]:
        """Cash received in the period on or before the due date of what it paid / all the
        cash received in the period (reversals left out)."""
        return self._figures(
            "on_time_rate",
            "ratio",
            as_of,
            start,
            by,
            where,
            rates,
            ("on_time", "paid"),
            _on_time,
        )

    # -- headline, rankings, trends, grades ---------------------------------------------------
    def headline(self, as_of: date, *, rates: Rates | None = None) -> tuple[Headline, ...]:
        """The report's cards per currency: open and overdue receivables, DSO, the
        collection rate of the month to date, CEI and the overdue rate."""
        if self._memo is not None:
            return self._headline(as_of, rates)
        self._memo = {}
        try:
            return self._headline(as_of, rates)
        finally:
            self._memo = None

    def _headline(self, as_of: date, rates: Rates | None) -> tuple[Headline, ...]:
        aging = {a.currency: a for a in self.aging(as_of, rates=rates)}

        def per(figures: tuple[Figure, ...]) -> dict[str | None, Figure]:
            return {f.currency: f for f in figures}

        dso = per(self.dso(as_of, rates=rates))
        mtd = per(self.collection_rate_mtd(as_of, rates=rates))
        cei = per(self.cei(as_of, rates=rates))
        rate = per(self.overdue_rate(as_of, rates=rates))
        out = []
        for cur in sorted(set(aging) | {c for c in dso if c is not None}):
            zero = Money.zero(cur)
            a = aging.get(cur)
            out.append(
                Headline(
                    as_of=as_of,
                    currency=cur,
                    total=zero if a is None else a.total,
                    overdue=zero if a is None else a.overdue,
                    dso=dso[cur],
                    collection_rate_mtd=mtd[cur],
                    cei=cei[cur],
                    overdue_rate=rate[cur],
                )
            )
        return tuple(out)

    def ranking(
        self,
        metric: str,
        by: str,
        as_of: date,
        *,
        start: date | None = None,
        where: _Where = None,
        rates: Rates | None = None,
        limit: int | None = None,
    ) -> tuple[Ranking, ...]:
        """``by``'s values (customers, salespeople, teams, product lines, regions...)
        ranked by ``metric``, one ranking per currency: ``overdue`` (overdue on
        ``as_of``, largest first), ``cash_collected`` (in the period, largest first),
        ``on_time_rate`` (highest first) or ``dso`` (standard, lowest first). Values
        that are undefined come last."""
        if metric not in RANK_METRICS:
            raise ValidationError(
                f"ranking metric {metric!r}: use one of {', '.join(RANK_METRICS)}"
            )
        if by not in DIMENSIONS or by in FILTER_ONLY:
            raise UnknownDimension(by, [d for d in DIMENSIONS if d not in FILTER_ONLY], "ranking")
        as_of = _check_day(as_of, "as_of")
        figures: tuple[Figure, ...]
        if metric == "overdue":
            figures = tuple(
                Figure(
                    name="overdue",
                    value=a.overdue.amount,
                    unit="money",
                    currency=a.currency,
                    period_start=as_of,
                    period_end=as_of,
                    group=a.group,
                )
                for a in self.aging(as_of, by=(by,), where=where, rates=rates)
            )
        elif metric == "cash_collected":
            figures = self._figures(
                "cash_collected",
                "money",
                as_of,
                start,
                (by,),
                where,
                rates,
                ("collected",),
                lambda v, d: (v["collected"], None),
            )
        elif metric == "on_time_rate":
            figures = self.on_time_rate(as_of, start=start, by=(by,), where=where, rates=rates)
        else:
            figures = self.dso(as_of, start=start, by=(by,), where=where, rates=rates)
        labels = self.source.customer_labels() if by == "customer" else {}
        largest = RANK_METRICS[metric]
        per: dict[str, list[Figure]] = {}
        for f in figures:
            if f.currency is not None:
                per.setdefault(f.currency, []).append(f)
        out = []
        for cur, found in sorted(per.items()):
            found.sort(
                key=lambda f: (
                    f.value is None,
                    Decimal(0) if f.value is None else (-f.value if largest else f.value),
                    str(f.group[0][1] if f.group else ""),
                )
            )
            if limit is not None:
                found = found[:limit]
            first = found[0]
            out.append(
                Ranking(
                    metric=metric,
                    by=by,
                    as_of=as_of,
                    period_start=first.period_start,
                    period_end=first.period_end,
                    currency=cur,
                    entries=tuple(
                        RankEntry(
                            rank=i + 1,
                            key=(key := f.group[0][1] if f.group else None),
                            label=labels.get(key or "", key) or "(none)",
                            value=f.value,
                            currency=cur,
                        )
                        for i, f in enumerate(found)
                    ),
                )
            )
        return tuple(out)

    def trend(
        self,
        metric: str,
        first_month: date,
        last_month: date,
        *,
        by: Sequence[str] = (),
        where: _Where = None,
        rates: Rates | None = None,
    ) -> tuple[Trend, ...]:
        """``metric`` at each month end from ``first_month``'s to ``last_month``'s, as the
        book stood then (by business date): one trend per currency and group. Rates and
        ``cei`` are over the month; ``dso``, ``art`` and ``add`` over the 90 days to the
        month end; ``total`` and ``overdue`` are the open and overdue receivables."""
        if metric not in TREND_METRICS:
            raise ValidationError(f"trend metric {metric!r}: use one of {', '.join(TREND_METRICS)}")
        first = _month_end(_check_day(first_month, "first_month"))
        last = _month_end(_check_day(last_month, "last_month"))
        if first > last:
            raise InvalidDates(f"the trend starts ({first}) after it ends ({last})")
        ends = []
        d = first
        while d <= last:
            ends.append(d)
            d = _month_end(d + timedelta(days=1))
        points: dict[tuple[str | None, Group], dict[date, TrendPoint]] = {}
        for e in ends:
            for f in self._month_figure(metric, e, _dims(by), where, rates):
                key = (f.currency, f.group)
                points.setdefault(key, {})[e] = TrendPoint(e, f.value, f.undefined)
        target = self.dso_target if metric.startswith("dso") else None
        out = []
        for (cur, group), got in sorted(
            points.items(), key=lambda kv: (kv[0][0] or "", str(kv[0][1]))
        ):
            if cur is None and len(points) > 1:
                continue
            out.append(
                Trend(
                    metric=metric,
                    currency=cur,
                    group=group,
                    points=tuple(
                        got.get(e, TrendPoint(e, None, f"no receivables recorded up to {e}"))
                        for e in ends
                    ),
                    target=target,
                )
            )
        return tuple(out)

    def _month_figure(
        self, metric: str, end: date, by: tuple[str, ...], where: _Where, rates: Rates | None
    ) -> tuple[Figure, ...]:
        month = end.replace(day=1)
        if metric in ("total", "overdue"):
            aging = self.aging(end, by=by, where=where, rates=rates)
            return tuple(
                Figure(
                    name=metric,
                    value=(a.total if metric == "total" else a.overdue).amount,
                    unit="money",
                    currency=a.currency,
                    period_start=end,
                    period_end=end,
                    group=a.group,
                )
                for a in aging
            )
        if metric == "dso":
            return self.dso(end, by=by, where=where, rates=rates)
        if metric == "dso_countback":
            return self.dso(end, method="countback", by=by, where=where, rates=rates)
        if metric == "art":
            return self.art(end, by=by, where=where, rates=rates)
        if metric == "add":
            return self.add(end, by=by, where=where, rates=rates)
        if metric == "overdue_rate":
            return self.overdue_rate(end, by=by, where=where, rates=rates)
        method: Callable[..., tuple[Figure, ...]] = {
            "cei": self.cei,
            "collection_rate": self.collection_rate,
            "written_off_ratio": self.written_off_ratio,
        }[metric]
        return method(end, start=month, by=by, where=where, rates=rates)

    def grades(self) -> tuple[tuple[str | None, int], ...]:
        """How many customers hold each credit grade (None: not graded), as the book
        stands (grades are kept as they are now, not by date)."""
        return tuple(self.source.grades())


# -- the arithmetic of each figure, on the quantities of ``Analytics._inputs`` ------------------
_NO_SALES = "no sales in the period"


def _dso(v: dict[str, Decimal], days: int) -> tuple[Decimal | None, str | None]:
    if v["sales"] <= 0:
        return None, _NO_SALES
    return v["ar_end"] / v["sales"] * days, None


def _add(v: dict[str, Decimal], days: int) -> tuple[Decimal | None, str | None]:
    if v["sales"] <= 0:
        return None, _NO_SALES
    return v["overdue_end"] / v["sales"] * days, None


def _art(v: dict[str, Decimal], days: int) -> tuple[Decimal | None, str | None]:
    average = (v["ar_start"] + v["ar_end"]) / 2
    if average <= 0:
        return None, "no receivables open at the start or the end of the period"
    return v["sales"] / average, None


def _cei(v: dict[str, Decimal], days: int) -> tuple[Decimal | None, str | None]:
    current_end = v["ar_end"] - v["overdue_end"]
    owed = v["ar_start"] + v["sales"]
    if owed - current_end <= 0:
        return None, "nothing was collectable in the period"
    return (owed - v["ar_end"]) / (owed - current_end), None


def _overdue_rate(v: dict[str, Decimal], days: int) -> tuple[Decimal | None, str | None]:
    if v["ar_end"] <= 0:
        return None, "no open receivables"
    return v["overdue_end"] / v["ar_end"], None


def _collection(v: dict[str, Decimal], days: int) -> tuple[Decimal | None, str | None]:
    owed = v["ar_start"] + v["sales"]
    if owed <= 0:
        return None, "nothing was owed in the period"
    return v["collected"] / owed, None


def _written_off(v: dict[str, Decimal], days: int) -> tuple[Decimal | None, str | None]:
    if v["sales"] <= 0:
        return None, _NO_SALES
    return v["written_off"] / v["sales"], None


def _on_time(v: dict[str, Decimal], days: int) -> tuple[Decimal | None, str | None]:
    if v["paid"] <= 0:
        return None, "no cash received in the period"
    return v["on_time"] / v["paid"], None


# -- helpers ------------------------------------------------------------------------------------
def _bands(buckets: Sequence[int]) -> list[tuple[str, int | None, int | None]]:
    limits = list(buckets)
    if (
        not limits
        or any(not isinstance(b, int) or isinstance(b, bool) or b < 1 for b in limits)
        or any(b >= c for b, c in itertools.pairwise(limits))
    ):
        raise ValidationError(
            f"aging buckets {tuple(buckets)!r}: give increasing whole numbers of days, from 1"
        )
    bands: list[tuple[str, int | None, int | None]] = [("current", None, 0)]
    low = 1
    for b in limits:
        bands.append((f"{low}-{b}", low, b))
        low = b + 1
    bands.append((f"{limits[-1]}+", low, None))
    return bands


def _dims(by: Sequence[str] | str) -> tuple[str, ...]:
    """``by`` as a tuple: one dimension may be given as a string."""
    return (by,) if isinstance(by, str) else tuple(by)


def _group(by: tuple[str, ...], values: tuple[str | None, ...]) -> Group:
    return tuple(zip(by, values, strict=True))


def _order_key(g: _GKey) -> tuple[str, tuple[tuple[bool, str], ...]]:
    return g[0], tuple((v is None, v or "") for v in g[1])


def _order(item: tuple[_GKey, Any]) -> tuple[str, tuple[tuple[bool, str], ...]]:
    return _order_key(item[0])
