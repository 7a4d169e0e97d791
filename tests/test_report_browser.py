"""The HTML report in a real browser: headless Chromium (Debian's ``/usr/bin/chromium``)
driven by Playwright with that executable (Playwright's own browsers are not used).

One browser for the module. Skips with the reason when Chromium or Playwright is absent,
unless ``CI`` is set: then it fails (``.ci/run`` installs Chromium).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from arflow.report import anchor, render_html
from tests.report_sample import FORMULA, HOSTILE, report

CHROMIUM = os.environ.get("ARFLOW_TEST_CHROMIUM", "/usr/bin/chromium")


def _absent(reason: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"CI is set, so the browser test must run: {reason}", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not (Path(CHROMIUM).is_file() or shutil.which(CHROMIUM)):
        _absent(f"Chromium not found at {CHROMIUM} (apt-get install chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError as exc:
        _absent(f"Playwright is not installed (pip install -e '.[test]'): {exc}")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
        try:
            yield b
        finally:
            b.close()


@pytest.fixture(scope="module")
def pages(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("report")
    out = {}
    for locale in ("en", "zh_CN"):
        out[locale] = folder / f"report-{locale}.html"
        out[locale].write_text(render_html(report(), locale), encoding="utf-8")
    return out


class Opened:
    """A page with what it said on the console and what it threw, and whether any dialog
    (an ``alert`` smuggled in through a name) opened."""

    def __init__(self, browser: Any, path: Path) -> None:
        self.page = browser.new_page(viewport={"width": 1300, "height": 900})
        self.console: list[str] = []
        self.errors: list[str] = []
        self.dialogs: list[str] = []
        self.page.on("console", lambda m: self.console.append(f"{m.type}: {m.text}"))
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.page.on("dialog", lambda d: (self.dialogs.append(d.message), d.dismiss()))
        self.page.goto(path.as_uri())
        self.page.wait_for_load_state("load")


@pytest.fixture
def en(browser: Any, pages: dict[str, Path]) -> Iterator[Opened]:
    opened = Opened(browser, pages["en"])
    yield opened
    opened.page.close()


def test_every_chart_is_drawn_and_nothing_complains(en: Opened) -> None:
    boxes = en.page.eval_on_selector_all(
        "svg.chart",
        """svgs => svgs.map(s => {
             const b = s.getBoundingClientRect();
             const shapes = s.querySelectorAll('rect.bar, circle.point, path.slice, polyline');
             const drawn = Array.from(shapes).filter(x => {
               const r = x.getBoundingClientRect(); return r.width > 0 && r.height > 0; });
             return {id: s.id, kind: s.dataset.chart, w: b.width, h: b.height,
                     shapes: shapes.length, drawn: drawn.length};
           })""",
    )
    kinds = sorted(b["kind"] for b in boxes)
    assert kinds == sorted(
        ["aging", "aging", "trend-dso", "trend-collection_rate", "grades", "forecast", "backtest"]
    )
    for b in boxes:
        assert b["w"] > 100 and b["h"] > 100, b
        assert b["shapes"] > 0 and b["drawn"] == b["shapes"], b
    assert en.console == [] and en.errors == [] and en.dialogs == []


def test_the_numbers_shown_are_the_reports(en: Opened) -> None:
    r = report()
    page = en.page
    for h in r.headline:
        cur = h.currency
        for key, m in (("total", h.total), ("overdue", h.overdue)):
            card = page.locator(f"#headline-{cur}-{key}")
            assert Decimal(card.get_attribute("data-value")) == m.amount
            assert Decimal(card.locator(".num").inner_text().replace(",", "")) == m.amount
        for key in ("dso", "collection_rate_mtd", "cei", "overdue_rate"):
            f = getattr(h, key)
            card = page.locator(f"#{anchor('headline', f'{cur}-{key}')}")
            assert card.get_attribute("data-value") == ("" if f.value is None else str(f.value))
    shown = {
        k: page.locator(f"#{anchor('headline', k)} .num").inner_text()
        for k in ("CNY-total", "CNY-dso", "CNY-collection_rate_mtd", "CNY-cei", "USD-dso")
    }
    assert shown == {
        "CNY-total": "1,250,750.50",
        "CNY-dso": "47.3",
        "CNY-collection_rate_mtd": "62.5%",
        "CNY-cei": "81.2%",
        "USD-dso": "-",
    }
    assert "target 45.0 days" in page.locator("#headline-CNY-dso").inner_text()
    assert "no sales in the period" in page.locator("#headline-USD-dso").inner_text()
    # the bars of each currency's aging chart are its buckets' amounts
    bars = page.eval_on_selector_all(
        "svg[data-chart=aging]",
        "ss => ss.map(s => [...s.querySelectorAll('rect.bar')].map(r => r.dataset.value))",
    )
    assert [[Decimal(v) for v in chart] for chart in bars] == [
        [b.amount.amount for b in a.buckets] for a in r.aging if not a.group
    ]
    points = page.eval_on_selector_all(
        "svg[data-chart=trend-dso] circle.point", "cs => cs.map(c => c.dataset.value)"
    )
    assert points == [str(p.value) for p in r.trends[0].points if p.value is not None]
    slices = page.eval_on_selector_all(
        "svg[data-chart=grades] path.slice", "ps => ps.map(p => +p.dataset.value)"
    )
    assert slices == [n for _, n in r.grades]
    c = r.contracts[0]
    aid = anchor("contract", c.contract_id)
    assert Decimal(page.locator(f"#{aid}-overdue").get_attribute("data-value")) == c.overdue.amount
    assert page.locator(f"#{aid}-unbilled").inner_text() == "200,000.00 CNY"


def _column(page: Any, table: str, col: int) -> list[str]:
    return page.eval_on_selector_all(
        f"#{table} tbody tr:not([hidden])", f"rs => rs.map(r => r.cells[{col}].textContent)"
    )


def test_clicking_a_header_sorts_the_table(en: Opened) -> None:
    page = en.page
    table = page.locator("table[data-table='ranking-overdue-customer']").get_attribute("id")
    assert _column(page, table, 3) == ["120,000.00", "64,250.00", "18,000.00", "9,800.50"]
    header = page.locator(f"#{table} thead th").nth(3)
    header.click()
    assert _column(page, table, 3) == ["9,800.50", "18,000.00", "64,250.00", "120,000.00"]
    assert header.get_attribute("aria-sort") == "ascending"
    header.click()
    assert _column(page, table, 3) == ["120,000.00", "64,250.00", "18,000.00", "9,800.50"]
    page.locator(f"#{table} thead th").nth(2).click()  # by customer id, as text
    assert _column(page, table, 2) == ["C-2", "C-4", "C-7", "C-9"]
    # a date column sorts by date, and Enter on a focused header sorts too
    watch = page.locator("table[data-table='watch-falling_due']").get_attribute("id")
    page.locator(f"#{watch} thead th").nth(2).focus()
    page.keyboard.press("Enter")
    assert _column(page, watch, 2) == ["2026-12-01", "2026-12-03", "2026-12-05"]
    assert en.console == [] and en.errors == []


def test_typing_in_a_filter_box_filters_the_rows(en: Opened) -> None:
    page = en.page
    table = page.locator("table[data-table='ranking-overdue-customer']").get_attribute("id")
    box = page.locator(f"input[data-table='{table}']")
    box.fill("acme")
    assert _column(page, table, 1) == ["Acme Trading"]
    assert page.locator(f"#{table}-count").inner_text() == "1"
    box.fill("<script>")  # the hostile name is text, found as text
    assert _column(page, table, 1) == [HOSTILE]
    box.fill("上海")
    assert _column(page, table, 2) == ["C-2"]
    box.fill("")
    assert len(_column(page, table, 1)) == 4
    assert FORMULA in _column(page, table, 1)
    assert en.dialogs == [] and en.errors == []


def test_a_contract_link_opens_its_section(en: Opened) -> None:
    page = en.page
    aid = anchor("contract", "K-2026/017")
    page.locator(f"a[href='#{aid}']").click()
    assert page.evaluate("location.hash") == f"#{aid}"
    section = page.locator(f"#{aid}")
    assert section.is_visible()
    assert "dunning step 3 (call) on 2026-12-02" in section.inner_text()
    assert HOSTILE in section.inner_text()
    assert page.evaluate(f"document.getElementById('{aid}').getBoundingClientRect().top") < 200


def test_chinese_labels_and_a_screenshot(
    browser: Any, pages: dict[str, Path], tmp_path_factory: pytest.TempPathFactory
) -> None:
    zh = Opened(browser, pages["zh_CN"])
    page = zh.page
    assert page.evaluate("document.documentElement.lang") == "zh-CN"
    assert page.locator("h1").inner_text() == "应收账款报告"
    assert (
        page.locator("#headline-CNY-collection_5f_rate_5f_mtd .label").inner_text() == "本月回款率"
    )
    assert page.locator("#aging h2").inner_text() == "账龄结构"
    assert "未到期" in page.locator("svg[data-chart=aging]").first.inner_html()
    shot = tmp_path_factory.mktemp("shots") / "report-zh_CN.png"
    page.screenshot(path=str(shot), full_page=False)
    assert shot.stat().st_size > 10_000
    print(f"screenshot: {shot}")
    assert zh.console == [] and zh.errors == [] and zh.dialogs == []
    page.close()


def test_the_report_of_a_real_book_shows_the_api_s_numbers(browser: Any, tmp_path: Path) -> None:
    """The worked book of docs/analytics_views.md, through ``build_report`` (the figures
    from the journal, the views, the forecast): every headline card, aging bar and
    ranking row the page shows is the API's, with no console error."""
    from arflow.analytics import build_report
    from arflow.rules import default_pack_path, load_pack
    from arflow.store import MemoryStore
    from tests.analytics_book import AS_OF, build

    store = MemoryStore()
    build(store)
    r = build_report(store, AS_OF, pack=load_pack(default_pack_path()))
    assert r.headline and r.aging and r.contracts and r.forecast
    path = tmp_path / "real.html"
    path.write_text(render_html(r, "en"), encoding="utf-8")
    opened = Opened(browser, path)
    page = opened.page
    try:
        for h in r.headline:
            card = page.locator(f"#headline-{h.currency}-total")
            assert Decimal(card.get_attribute("data-value")) == h.total.amount
            dso = page.locator(f"#{anchor('headline', f'{h.currency}-dso')}")
            assert dso.get_attribute("data-value") == (
                "" if h.dso.value is None else str(h.dso.value)
            )
        bars = page.eval_on_selector_all(
            "svg[data-chart=aging]",
            "ss => ss.map(s => [...s.querySelectorAll('rect.bar')].map(r => r.dataset.value))",
        )
        assert [[Decimal(v) for v in chart] for chart in bars] == [
            [b.amount.amount for b in a.buckets] for a in r.aging if not a.group
        ]
        for c in r.contracts:
            aid = anchor("contract", c.contract_id)
            shown = page.locator(f"#{aid}-overdue").get_attribute("data-value")
            assert Decimal(shown) == c.overdue.amount
        assert opened.console == [] and opened.errors == []
        page.screenshot(path=str(tmp_path / "real.png"), full_page=True)
    finally:
        page.close()
