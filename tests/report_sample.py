"""A report built by hand for the rendering tests: realistic figures in two currencies,
an undefined figure, and customer names written to break a page or a spreadsheet."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal as D

from arflow import Money
from arflow.analytics import (
    Aging,
    Bucket,
    ContractView,
    Figure,
    Forecast,
    ForecastWeek,
    Headline,
    MilestoneView,
    NodeView,
    RankEntry,
    Ranking,
    Report,
    Trend,
    TrendPoint,
    WatchItem,
    WatchList,
)

AS_OF = date(2026, 11, 30)
MONTH = date(2026, 11, 1)
HOSTILE = '<script>alert("x")</script>华东</td><img src=x onerror=alert(1)>'
FORMULA = '=HYPERLINK("http://evil.example","click")'


def cny(x: str) -> Money:
    return Money.of(x, "CNY")


def usd(x: str) -> Money:
    return Money.of(x, "USD")


def fig(name: str, value: str | None, unit: str, cur: str | None, **kw: object) -> Figure:
    return Figure(
        name=name,
        value=None if value is None else D(value),
        unit=unit,  # type: ignore[arg-type]
        currency=cur,
        period_start=MONTH if name.endswith("_mtd") else date(2026, 9, 1),
        period_end=AS_OF,
        **kw,  # type: ignore[arg-type]
    )


def _aging(cur: str, amounts: list[str], counts: list[int]) -> Aging:
    money = [Money.of(a, cur) for a in amounts]
    total = sum(money[1:], money[0])
    bands = [("current", None, 0), ("1-30", 1, 30), ("31-60", 31, 60), ("61-90", 61, 90),
             ("90+", 91, None)]  # fmt: skip
    buckets = tuple(
        Bucket(label, low, high, m, n, (m.amount / total.amount).quantize(D("0.0001")))
        for (label, low, high), m, n in zip(bands, money, counts, strict=True)
    )
    return Aging(AS_OF, cur, (), buckets, total, sum(money[2:], money[1]))


AGING_CNY = _aging("CNY", ["812000.00", "236500.50", "98000.00", "41250.00", "63000.00"],
                   [41, 12, 6, 3, 4])  # fmt: skip
AGING_USD = _aging("USD", ["52000.00", "8400.00", "0.00", "1200.00", "0.00"], [9, 2, 0, 1, 0])

HEAD_CNY = Headline(
    AS_OF, "CNY", AGING_CNY.total, AGING_CNY.overdue,
    dso=fig("dso", "47.3", "days", "CNY", target=D("45")),
    collection_rate_mtd=fig("collection_rate_mtd", "0.6250", "ratio", "CNY"),
    cei=fig("cei", "0.812", "ratio", "CNY"),
    overdue_rate=fig("overdue_rate", "0.3505", "ratio", "CNY"),
)  # fmt: skip
HEAD_USD = Headline(
    AS_OF, "USD", AGING_USD.total, AGING_USD.overdue,
    dso=fig("dso", None, "days", "USD", undefined="no sales in the period"),
    collection_rate_mtd=fig("collection_rate_mtd", "1", "ratio", "USD"),
    cei=fig("cei", "0.9", "ratio", "USD"),
    overdue_rate=fig("overdue_rate", "0.1558", "ratio", "USD"),
)  # fmt: skip

MONTHS = [date(2026, m + 1, 1) - timedelta(1) for m in range(1, 12)]  # Jan..Nov month ends
DSO_VALUES = ["52.1", "50.4", "49.0", "51.7", None, "48.2", "46.9", "47.5", "45.1", "46.0",
              "47.3"]  # fmt: skip


def report() -> Report:
    return Report(
        as_of=AS_OF,
        headline=(HEAD_CNY, HEAD_USD),
        aging=(
            AGING_CNY,
            AGING_USD,
            Aging(
                AS_OF,
                "CNY",
                (("salesperson", "li.wei"),),
                AGING_CNY.buckets[:2],
                cny("1048500.50"),
                cny("236500.50"),
            ),
        ),
        figures=(
            HEAD_CNY.dso,
            fig("dso_countback", "44.6", "days", "CNY"),
            fig("art", "7.72", "times", "CNY"),
            fig("add", "12.4", "days", "CNY"),
            fig("collection_rate", "0.734", "ratio", "CNY"),
            fig("written_off_ratio", "0.0031", "ratio", "CNY"),
            HEAD_USD.dso,
        ),
        trends=(
            Trend(
                "dso",
                "CNY",
                (),
                tuple(
                    TrendPoint(m, None if v is None else D(v), None if v else "no sales")
                    for m, v in zip(MONTHS, DSO_VALUES, strict=True)
                ),
                target=D("45"),
            ),
            Trend(
                "collection_rate",
                "CNY",
                (),
                tuple(TrendPoint(m, D("0.6") + D(i) / 100) for i, m in enumerate(MONTHS)),
            ),
        ),
        rankings=(
            Ranking(
                "overdue",
                "customer",
                AS_OF,
                MONTH,
                AS_OF,
                "CNY",
                (
                    RankEntry(1, "C-7", HOSTILE, D("120000.00"), "CNY"),
                    RankEntry(2, "C-2", "上海明远科技有限公司", D("64250.00"), "CNY"),
                    RankEntry(3, "C-4", "Acme Trading", D("18000.00"), "CNY"),
                    RankEntry(4, "C-9", FORMULA, D("9800.50"), "CNY"),
                ),
            ),
            Ranking(
                "on_time_rate",
                "salesperson",
                AS_OF,
                date(2026, 9, 1),
                AS_OF,
                None,
                (
                    RankEntry(1, "li.wei", "李伟", D("0.95"), None),
                    RankEntry(2, "zhang.min", "张敏", D("0.81"), None),
                    RankEntry(3, "j.smith", "John Smith", D("0.64"), None),
                ),
            ),
        ),
        grades=(("A", 14), ("B", 9), ("C", 4), ("D", 1), (None, 2)),
        forecast=(
            Forecast(
                AS_OF,
                "CNY",
                tuple(
                    ForecastWeek(
                        date(2026, 11, 30) + timedelta(7 * i),
                        "CNY",
                        cny(str(60000 + 5000 * (i % 4))),
                        cny(str(50000 + 5000 * (i % 4))),
                        cny("10000"),
                    )
                    for i in range(13)
                ),
                backtest=tuple(
                    ForecastWeek(
                        date(2026, 9, 7) + timedelta(7 * i),
                        "CNY",
                        cny("55000"),
                        cny("50000"),
                        cny("5000"),
                        cny(str(48000 + 3000 * i)),
                    )
                    for i in range(4)
                ),
            ),
        ),
        watch=(
            WatchList(
                "falling_due",
                AS_OF,
                (
                    WatchItem(
                        "R-1001",
                        "C-2",
                        "上海明远科技有限公司",
                        date(2026, 12, 3),
                        cny("36000.00"),
                        3,
                    ),
                    WatchItem("R-1002", "C-7", HOSTILE, date(2026, 12, 5), usd("1200.00"), 5),
                    WatchItem(
                        "R-1003", "C-4", "Acme Trading", date(2026, 12, 1), cny("8800.00"), 1
                    ),
                ),
            ),
            WatchList(
                "high_risk",
                AS_OF,
                (
                    WatchItem(
                        "R-0907",
                        "C-9",
                        FORMULA,
                        date(2026, 8, 15),
                        cny("63000.00"),
                        107,
                        risk_level="high",
                        dunning_level=3,
                        last_contact="promised to pay by 12-10, not kept",
                        history=(
                            "invoice sent 2026-07-16",
                            "reminder 2026-08-20",
                            "<b>call</b> 2026-09-02: promise",
                        ),
                    ),
                ),
            ),
        ),
        contracts=(
            ContractView(
                AS_OF,
                "K-2026/017",
                "C-7",
                HOSTILE,
                "P-3",
                "Warehouse automation, phase 1",
                cny("500000.00"),
                cny("300000.00"),
                cny("180000.00"),
                cny("120000.00"),
                cny("60000.00"),
                nodes=(
                    NodeView(
                        "N1",
                        "30% on signing",
                        cny("150000.00"),
                        cny("150000.00"),
                        cny("150000.00"),
                        cny("0.00"),
                        date(2026, 3, 31),
                    ),
                    NodeView(
                        "N2",
                        "30% on delivery",
                        cny("150000.00"),
                        cny("150000.00"),
                        cny("30000.00"),
                        cny("60000.00"),
                        date(2026, 9, 30),
                        milestones=(
                            MilestoneView(
                                "M2", "delivery", date(2026, 9, 1), date(2026, 9, 12), "done"
                            ),
                        ),
                        receivable_ids=("R-0907",),
                    ),
                    NodeView(
                        "N3",
                        "40% on acceptance",
                        cny("200000.00"),
                        cny("0.00"),
                        cny("0.00"),
                        cny("0.00"),
                        None,
                    ),
                ),
                unbilled=cny("200000.00"),
                disputes=("D-12",),
                promises=("PR-4",),
                next_action="dunning step 3 (call) on 2026-12-02",
            ),
            ContractView(
                AS_OF,
                "K_2026_018",
                "C-4",
                "Acme Trading",
                None,
                "Support 2027",
                usd("24000.00"),
                usd("6000.00"),
                usd("6000.00"),
                usd("0.00"),
                usd("0.00"),
                nodes=(),
                unbilled=usd("18000.00"),
            ),
        ),
    )


def empty_report() -> Report:
    return Report(AS_OF, (), (), (), (), (), (), (), ())
