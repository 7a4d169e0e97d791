"""Rendering a report: the terminal table, JSON, CSV files and the HTML page (its text;
tests/test_report_browser.py opens it in a browser)."""

from __future__ import annotations

import base64
import csv
import hashlib
import json
import re
from decimal import Decimal
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from arflow.errors import ValidationError
from arflow.report import (
    CSV_HEADERS,
    LABELS,
    anchor,
    render_html,
    render_text,
    report_csv,
    report_dict,
    report_json,
    write_csv,
)
from arflow.report._text import width
from tests.report_sample import FORMULA, HOSTILE, empty_report, report


def test_both_locales_have_the_same_words() -> None:
    assert set(LABELS["en"]) == set(LABELS["zh_CN"])
    assert all(LABELS["zh_CN"][k] for k in LABELS["zh_CN"] if not k.startswith("unit_"))


@pytest.mark.parametrize("render", [render_text, render_html])
def test_an_unknown_locale_is_refused(render: Any) -> None:
    with pytest.raises(ValidationError, match="'fr' is not one of en, zh_CN"):
        render(report(), "fr")


# -- terminal -------------------------------------------------------------------------------


def _headline_rows(text: str) -> list[str]:
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.strip().startswith(("Headline", "核心")))
    return lines[start : start + 7]


def test_the_terminal_table_shows_each_currency_side_by_side() -> None:
    text = render_text(report())
    rows = _headline_rows(text)
    assert rows[0].split() == ["Headline", "CNY", "USD"]
    assert rows[1].split()[-2:] == ["1,250,750.50", "61,600.00"]
    assert rows[2].split()[-2:] == ["438,750.50", "9,600.00"]
    assert "47.3 (target 45)" in rows[3] and "- (no sales in the period)" in rows[3]
    assert rows[4].split()[-2:] == ["62.5%", "100.0%"]
    assert rows[5].split()[-2:] == ["81.2%", "90.0%"]
    assert rows[6].split()[-2:] == ["35.1%", "15.6%"]
    # numbers right-aligned: every row ends in the same column
    assert len({width(r) for r in rows}) == 1
    assert "Aging (CNY)" in text and "Aging (USD)" in text
    assert "90+          63,000.00      4   5.0%" in text
    assert "Falling due soon  3" in text and "High risk         1" in text
    assert "A 14 · B 9 · C 4 · D 1 · no grade 2" in text


def test_the_terminal_table_aligns_chinese_labels_by_display_width() -> None:
    text = render_text(report(), "zh_CN")
    rows = _headline_rows(text)
    assert rows[0].split()[0] == "核心指标" and "本月回款率" in rows[4]
    assert len({width(r) for r in rows}) == 1
    assert "账龄结构 (CNY)" in text and "未到期" in text


def test_the_terminal_table_of_an_empty_report_says_so() -> None:
    text = render_text(empty_report())
    assert "Headline: no data" in text and "Aging" not in text


def test_a_name_cannot_send_escape_sequences_to_the_terminal() -> None:
    from dataclasses import replace

    r = report()
    bad = replace(r, grades=(("A\x1b[2J\nforged line", 3),))
    text = render_text(bad)
    assert "\x1b" not in text and "A?[2J?forged line 3" in text


# -- JSON -----------------------------------------------------------------------------------


def _walk(value: Any) -> Any:
    if isinstance(value, dict):
        for v in value.values():
            yield from _walk(v)
    elif isinstance(value, list):
        for v in value:
            yield from _walk(v)
    else:
        yield value


def test_json_holds_every_figure_exactly_as_text() -> None:
    r = report()
    data = json.loads(report_json(r))
    assert data["schema"] == 1 and data["as_of"] == "2026-11-30"
    cny = data["headline"][0]
    assert cny["total"] == {"amount": "1250750.50", "currency": "CNY"}
    assert cny["dso"]["value"] == "47.3" and cny["dso"]["target"] == "45"
    usd = data["headline"][1]
    assert usd["dso"]["value"] is None and usd["dso"]["undefined"] == "no sales in the period"
    # no number is a float: amounts and ratios are strings, only counts are integers
    assert not any(isinstance(v, float) for v in _walk(data))
    assert [b["amount"]["amount"] for b in data["aging"][0]["buckets"]] == [
        str(b.amount.amount) for b in r.aging[0].buckets
    ]
    assert data["aging"][2]["group"] == {"salesperson": "li.wei"}
    assert data["aging"][0]["group"] == {}
    assert data["grades"][-1] == {"grade": None, "customers": 2}
    assert data["rankings"][0]["entries"][0]["label"] == HOSTILE
    assert data["trends"][0]["points"][4] == {
        "month_end": "2026-05-31",
        "value": None,
        "undefined": "no sales",
    }
    assert len(data["forecast"][0]["weeks"]) == 13
    assert data["forecast"][0]["backtest"][0]["actual"] == {"amount": "48000.00", "currency": "CNY"}
    node = data["contracts"][0]["nodes"][1]
    assert node["milestones"][0]["actual_date"] == "2026-09-12"
    assert node["receivable_ids"] == ["R-0907"]
    assert set(data) == {"schema", *r.__dataclass_fields__}


def test_json_of_an_empty_report_is_explicitly_empty() -> None:
    data = report_dict(empty_report())
    assert data["headline"] == [] and data["grades"] == [] and data["contracts"] == []


# -- CSV ------------------------------------------------------------------------------------


def _read(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f))


def test_csv_writes_one_file_per_family_with_a_stable_header(tmp_path: Path) -> None:
    r = report()
    paths = write_csv(r, tmp_path / "out")
    assert sorted(p.name for p in paths) == sorted(f"{n}.csv" for n in CSV_HEADERS)
    for name, header in CSV_HEADERS.items():
        first = (tmp_path / "out" / f"{name}.csv").read_text(encoding="utf-8").splitlines()[0]
        assert first == ",".join(header)
    aging = _read(tmp_path / "out" / "aging.csv")
    assert len(aging) == 5 + 5 + 2
    assert sum(Decimal(row["amount"]) for row in aging if row["currency"] == "USD") == Decimal(
        "61600.00"
    )
    assert aging[-1]["group"] == "salesperson=li.wei"
    assert aging[0]["low"] == "" and aging[0]["high"] == "0"
    head = _read(tmp_path / "out" / "headline.csv")
    assert head[1]["dso"] == "" and head[0]["dso"] == "47.3" and head[0]["dso_target"] == "45"
    ranks = _read(tmp_path / "out" / "rankings.csv")
    assert ranks[0]["label"] == HOSTILE  # text stays text
    assert ranks[3]["label"] == "'" + FORMULA  # a spreadsheet will not run it
    forecast = _read(tmp_path / "out" / "forecast.csv")
    assert [row["kind"] for row in forecast].count("backtest") == 4
    assert forecast[0]["actual"] == "" and forecast[-1]["actual"] == "57000.00"
    watch = _read(tmp_path / "out" / "watch.csv")
    assert watch[1]["currency"] == "USD" and watch[3]["history"].count(" | ") == 2
    nodes = _read(tmp_path / "out" / "contract_nodes.csv")
    assert [n["node_id"] for n in nodes] == ["N1", "N2", "N3"]
    assert nodes[1]["milestones"] == "delivery:done" and nodes[2]["due_date"] == ""


def test_csv_of_an_empty_report_is_headers_only() -> None:
    texts = report_csv(empty_report())
    assert {n: t.count("\n") for n, t in texts.items()} == dict.fromkeys(CSV_HEADERS, 1)


def test_csv_into_a_file_is_refused_and_writes_nothing(tmp_path: Path) -> None:
    target = tmp_path / "taken"
    target.write_text("keep", encoding="utf-8")
    with pytest.raises(ValidationError, match="is a file, not a folder"):
        write_csv(report(), target)
    assert target.read_text(encoding="utf-8") == "keep"
    assert [p.name for p in tmp_path.iterdir()] == ["taken"]


# -- HTML (as text) -------------------------------------------------------------------------


class _Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.script: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        self._in_script = tag == "script"

    def handle_endtag(self, tag: str) -> None:
        self._in_script = False

    def handle_data(self, data: str) -> None:
        if self._in_script:
            self.script.append(data)


def _parse(html: str) -> _Tags:
    p = _Tags()
    p.feed(html)
    return p


def test_the_page_escapes_every_name_and_runs_only_its_own_script() -> None:
    html = render_html(report())
    tags = _parse(html)
    assert [t for t, _ in tags.tags].count("script") == 1
    assert not [t for t, a in tags.tags if t in ("img", "iframe", "link", "object", "embed")]
    assert not [a for _, a in tags.tags if any(k.startswith("on") for k in a)]
    assert '<script>alert("x")' not in html
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in html
    assert "&lt;b&gt;call&lt;/b&gt;" in html  # history lines are text too
    # the policy allows exactly that script, by its hash, and loads nothing from anywhere
    (csp,) = [
        a["content"] for t, a in tags.tags if a.get("http-equiv") == "Content-Security-Policy"
    ]
    assert csp is not None and "default-src 'none'" in csp
    digest = base64.b64encode(hashlib.sha256("".join(tags.script).encode()).digest()).decode()
    assert f"script-src 'sha256-{digest}'" in csp
    assert not re.search(r"\b(src|href)=\"(https?:)?//", html)


def test_every_id_is_unique_and_contract_anchors_never_collide() -> None:
    html = render_html(report(), "zh_CN")
    ids = [a["id"] for _, a in _parse(html).tags if a.get("id")]
    assert len(ids) == len(set(ids))
    assert anchor("contract", "K_2026_018") != anchor("contract", "K-2026-018")
    assert anchor("contract", "K/1") != anchor("contract", "K_2f_1")
    assert re.fullmatch(r"[A-Za-z0-9_-]+", anchor("contract", HOSTILE))
    assert f'id="{anchor("contract", "K-2026/017")}"' in html
    assert f'href="#{anchor("contract", "K-2026/017")}"' in html


def test_the_headline_cards_carry_the_exact_numbers() -> None:
    html = render_html(report())
    cards = {a["id"]: a for t, a in _parse(html).tags if "card" in (a.get("class") or "").split()}
    assert cards["headline-CNY-total"]["data-value"] == "1250750.50"
    assert cards["headline-CNY-dso"]["data-value"] == "47.3"
    assert cards["headline-USD-dso"]["data-value"] == ""
    assert cards["headline-USD-collection_5f_rate_5f_mtd"]["data-value"] == "1"
    assert len(cards) == 2 * 6


def test_an_empty_report_renders_a_page_that_says_no_data() -> None:
    html = render_html(empty_report(), "zh_CN")
    assert '<html lang="zh-CN">' in html and "无数据" in html
    assert html.count('class="chart"') == 1  # the grade ring, drawn empty


# -- what `arflow report` prints and writes (arflow.cli.emit_report) -------------------------


def test_the_command_prints_or_writes_each_output(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from arflow.cli import emit_report

    r = report()
    assert emit_report(r) == 0
    assert capsys.readouterr().out == render_text(r)
    assert emit_report(r, locale="zh_CN") == 0
    assert "本月回款率" in capsys.readouterr().out
    assert emit_report(r, json_out=True) == 0
    assert json.loads(capsys.readouterr().out) == report_dict(r)
    assert emit_report(r, csv_dir=str(tmp_path / "csv")) == 0
    assert "10 CSV file(s) written" in capsys.readouterr().out
    assert (tmp_path / "csv" / "aging.csv").read_text(encoding="utf-8") == report_csv(r)["aging"]
    page = tmp_path / "report.html"
    assert emit_report(r, html_file=str(page), locale="zh_CN") == 0
    assert "written to" in capsys.readouterr().out
    assert page.read_text(encoding="utf-8") == render_html(r, "zh_CN")
    assert {p.name for p in tmp_path.iterdir()} == {"csv", "report.html"}  # no temp file left


def test_the_command_refuses_an_html_path_it_cannot_write(tmp_path: Path) -> None:
    from arflow.cli import emit_report, exit_code

    with pytest.raises(ValidationError, match="does not exist") as missing:
        emit_report(report(), html_file=str(tmp_path / "nope" / "r.html"))
    assert exit_code(missing.value) == 4
    with pytest.raises(ValidationError, match="is a folder"):
        emit_report(report(), html_file=str(tmp_path))
    assert list(tmp_path.iterdir()) == []


# -- any name is text -------------------------------------------------------------------------


def _with_name(name: str) -> Any:
    from dataclasses import replace

    r = report()
    watch = r.watch[0]
    item = replace(watch.items[0], customer_name=name, history=(name,))
    return replace(r, watch=(replace(watch, items=(item,)),), contracts=r.contracts[1:])


_PLAIN = [(t, sorted(a)) for t, a in _parse(render_html(_with_name("plain"))).tags]


@settings(max_examples=50, deadline=None)
@given(st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=40))
def test_any_name_renders_as_text_and_adds_no_markup(name: str) -> None:
    html = render_html(_with_name(name))
    parsed = _parse(html)
    assert [(t, sorted(a)) for t, a in parsed.tags] == _PLAIN
    assert "".join(parsed.script) == "".join(_parse(render_html(report())).script)
