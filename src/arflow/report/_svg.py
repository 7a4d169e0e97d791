"""Charts drawn by arflow as inline SVG: no chart library, no script.

Each function returns one ``<svg>`` element as text. Every piece of text in it is escaped;
every bar, point and slice carries ``data-value`` (the exact number, as the report holds
it) so a test or a script can read what was drawn. Coordinates are floats: they are
pixels, not money.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from html import escape

W, H = 600, 260
LEFT, RIGHT, TOP, BOTTOM = 64, 16, 28, 48


def _e(text: object) -> str:
    return escape(str(text), quote=True)


def _n(x: float) -> str:
    return f"{x:.1f}"


@dataclass(frozen=True)
class Series:
    name: str  # shown in the legend
    values: tuple[Decimal | None, ...]  # one per category
    texts: tuple[str, ...]  # the value as shown, one per category


def _open(chart_id: str, kind: str, title: str, width: int = W, height: int = H) -> list[str]:
    return [
        f'<svg id="{_e(chart_id)}" class="chart" data-chart="{_e(kind)}" '
        f'viewBox="0 0 {width} {height}" width="{width}" height="{height}" role="img" '
        f'aria-label="{_e(title)}" xmlns="http://www.w3.org/2000/svg">',
        f"<title>{_e(title)}</title>",
    ]


def _empty(parts: list[str], text: str) -> str:
    parts.append(
        f'<text class="empty" x="{W / 2}" y="{H / 2}" text-anchor="middle">{_e(text)}</text>'
    )
    parts.append("</svg>")
    return "\n".join(parts)


def _scale(values: Sequence[Decimal | None]) -> tuple[float, float]:
    nums = [float(v) for v in values if v is not None]
    low, high = min([0.0, *nums]), max([0.0, *nums])
    if high == low:
        high = low + 1.0
    return low, high


def _legend(parts: list[str], names: Sequence[str], y: float) -> None:
    x = LEFT
    for i, name in enumerate(names):
        parts.append(f'<rect class="s{i}" x="{x}" y="{y - 9}" width="10" height="10"/>')
        parts.append(f'<text class="legend" x="{x + 14}" y="{y}">{_e(name)}</text>')
        x += 24 + 8 * len(name)


def bar_chart(
    chart_id: str,
    kind: str,
    title: str,
    categories: Sequence[str],
    series: Sequence[Series],
    *,
    empty_text: str = "no data",
) -> str:
    """Grouped vertical bars: one group per category, one bar per series."""
    parts = _open(chart_id, kind, title)
    if not categories or not series:
        return _empty(parts, empty_text)
    low, high = _scale([v for s in series for v in s.values])
    plot_h = H - TOP - BOTTOM
    plot_w = W - LEFT - RIGHT

    def y(v: float) -> float:
        return TOP + (high - v) / (high - low) * plot_h

    zero = y(0.0)
    for frac in (0.0, 0.5, 1.0):
        tv = low + (high - low) * frac
        parts.append(
            f'<text class="tick" x="{LEFT - 6}" y="{_n(y(tv) + 4)}" text-anchor="end">'
            f"{tv:,.0f}</text>"
        )
    parts.append(f'<line class="axis" x1="{LEFT}" x2="{W - RIGHT}" y1="{_n(zero)}" '
                 f'y2="{_n(zero)}"/>')  # fmt: skip
    slot = plot_w / len(categories)
    bar_w = max(min(slot * 0.8 / len(series), 48.0), 2.0)
    for ci, cat in enumerate(categories):
        x0 = LEFT + ci * slot + (slot - bar_w * len(series)) / 2
        for si, s in enumerate(series):
            v = s.values[ci]
            fv = 0.0 if v is None else float(v)
            top, bottom = sorted((y(fv), zero))
            x = x0 + si * bar_w
            parts.append(
                f'<rect class="bar s{si}" x="{_n(x)}" y="{_n(top)}" width="{_n(bar_w - 2)}" '
                f'height="{_n(max(bottom - top, 0.5))}" data-category="{_e(cat)}" '
                f'data-series="{_e(s.name)}" data-value="{_e("" if v is None else v)}">'
                f"<title>{_e(cat)} · {_e(s.name)}: {_e(s.texts[ci])}</title></rect>"
            )
            if len(series) == 1 and len(categories) <= 8:
                parts.append(
                    f'<text class="val" x="{_n(x + bar_w / 2)}" y="{_n(top - 4)}" '
                    f'text-anchor="middle">{_e(s.texts[ci])}</text>'
                )
        label_every = max(1, math.ceil(len(categories) / 14))
        if ci % label_every == 0:
            parts.append(
                f'<text class="cat" x="{_n(LEFT + ci * slot + slot / 2)}" y="{H - BOTTOM + 16}" '
                f'text-anchor="middle">{_e(cat)}</text>'
            )
    if len(series) > 1:
        _legend(parts, [s.name for s in series], H - 8)
    parts.append("</svg>")
    return "\n".join(parts)


def line_chart(
    chart_id: str,
    kind: str,
    title: str,
    categories: Sequence[str],
    values: Sequence[Decimal | None],
    texts: Sequence[str],
    *,
    target: Decimal | None = None,
    target_text: str = "target",
    scale: float = 1.0,
    tick: Callable[[float], str] = lambda v: f"{v:,.0f}",
    empty_text: str = "no data",
) -> str:
    """A line over the categories (months), broken where a value is undefined, with the
    target as a dashed line when there is one. Values are drawn times ``scale`` (100 for a
    ratio shown in percent); ``data-value`` keeps the value itself."""
    parts = _open(chart_id, kind, title)
    if not categories:
        return _empty(parts, empty_text)
    low, high = _scale([*values, target])
    low, high = low * scale, high * scale
    high *= 1.1 if high > 0 else 1.0
    plot_h = H - TOP - BOTTOM
    plot_w = W - LEFT - RIGHT - 24
    step = plot_w / max(len(categories) - 1, 1)

    def y(v: float) -> float:
        return TOP + (high - v) / (high - low) * plot_h

    parts.append(f'<line class="axis" x1="{LEFT}" x2="{W - RIGHT}" y1="{_n(y(low))}" '
                 f'y2="{_n(y(low))}"/>')  # fmt: skip
    for frac in (0.0, 0.5, 1.0):
        tv = low + (high - low) * frac
        parts.append(
            f'<text class="tick" x="{LEFT - 6}" y="{_n(y(tv) + 4)}" text-anchor="end">'
            f"{_e(tick(tv))}</text>"
        )
    if target is not None:
        ty = y(float(target) * scale)
        parts.append(
            f'<line class="target" x1="{LEFT}" x2="{W - RIGHT}" y1="{_n(ty)}" y2="{_n(ty)}" '
            f'data-value="{_e(target)}"/>'
        )
        parts.append(
            f'<text class="target-label" x="{LEFT + 4}" y="{_n(ty - 5)}">{_e(target_text)}</text>'
        )
    runs: list[list[str]] = [[]]
    for i, v in enumerate(values):
        if v is None:
            runs.append([])
        else:
            runs[-1].append(f"{_n(LEFT + i * step)},{_n(y(float(v) * scale))}")
    for run in runs:
        if len(run) > 1:
            parts.append(f'<polyline class="line" points="{" ".join(run)}"/>')
    label_every = max(1, math.ceil(len(categories) / 7))
    for i, (cat, v) in enumerate(zip(categories, values, strict=True)):
        x = LEFT + i * step
        if v is not None:
            parts.append(
                f'<circle class="point" cx="{_n(x)}" cy="{_n(y(float(v) * scale))}" r="3.5" '
                f'data-category="{_e(cat)}" data-value="{_e(v)}">'
                f"<title>{_e(cat)}: {_e(texts[i])}</title></circle>"
            )
        if i % label_every == 0:
            parts.append(
                f'<text class="cat" x="{_n(x)}" y="{H - BOTTOM + 16}" text-anchor="middle">'
                f"{_e(cat)}</text>"
            )
    parts.append("</svg>")
    return "\n".join(parts)


def donut(
    chart_id: str,
    kind: str,
    title: str,
    slices: Sequence[tuple[str, int]],
    *,
    empty_text: str = "no data",
) -> str:
    """A ring split by count, with its legend beside it."""
    width, height = 420, 220
    parts = _open(chart_id, kind, title, width, height)
    total = sum(n for _, n in slices if n > 0)
    if not slices or total == 0:
        parts.append(
            f'<text class="empty" x="{width / 2}" y="{height / 2}" text-anchor="middle">'
            f"{_e(empty_text)}</text></svg>"
        )
        return "\n".join(parts)
    cx, cy, r, inner = 110.0, 110.0, 90.0, 52.0
    angle = -math.pi / 2
    for i, (label, n) in enumerate(slices):
        cls = f"c{i % 8}"
        if n > 0:
            sweep = 2 * math.pi * n / total
            parts.append(
                f'<path class="slice {cls}" d="{_arc(cx, cy, r, inner, angle, sweep)}" '
                f'data-label="{_e(label)}" data-value="{n}">'
                f"<title>{_e(label)}: {n}</title></path>"
            )
            angle += sweep
        ly = 30 + i * 22
        parts.append(f'<rect class="{cls}" x="240" y="{ly - 11}" width="12" height="12"/>')
        parts.append(f'<text class="legend" x="258" y="{ly}">{_e(label)}: {n}</text>')
    parts.append(
        f'<text class="donut-total" x="{cx}" y="{cy + 6}" text-anchor="middle">{total}</text>'
    )
    parts.append("</svg>")
    return "\n".join(parts)


def _arc(cx: float, cy: float, r: float, inner: float, start: float, sweep: float) -> str:
    """The path of a ring segment from ``start`` through ``sweep`` radians."""
    sweep = min(sweep, 2 * math.pi - 1e-4)  # a full ring: one arc cannot close on itself
    end = start + sweep
    large = 1 if sweep > math.pi else 0

    def pt(radius: float, a: float) -> str:
        return f"{_n(cx + radius * math.cos(a))} {_n(cy + radius * math.sin(a))}"

    return (
        f"M {pt(r, start)} A {r} {r} 0 {large} 1 {pt(r, end)} "
        f"L {pt(inner, end)} A {inner} {inner} 0 {large} 0 {pt(inner, start)} Z"
    )
