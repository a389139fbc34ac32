"""Inline SVG charts for the audit report (pure; no scripts, fonts or external assets)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from html import escape

from services.core.events import format_time

BAR_HEIGHT = 18
LABEL_WIDTH = 230
CHART_WIDTH = 720
# The report's CSS sets `svg text{font:12px sans-serif}`; no sans-serif glyph at 12 px is wider than this
# (digits and most letters are 6-7 px), so a label's estimated width bounds its real one.
CHAR_WIDTH = 7.5
MARGIN = 4


def bar_chart(title: str, bars: Sequence[tuple[str, int]]) -> str:
    """Horizontal bars, one per (label, value), scaled to the largest value; labels and values as text."""
    if not bars:
        return ""
    top = max(value for _, value in bars) or 1
    span = CHART_WIDTH - LABEL_WIDTH - 90
    height = BAR_HEIGHT * len(bars) + 30
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" role="img" width="{CHART_WIDTH}" height="{height}" '
             f'viewBox="0 0 {CHART_WIDTH} {height}"><title>{escape(title)}</title>',
             f'<text x="0" y="14" class="chart-title">{escape(title)}</text>']  # fmt: skip
    for index, (label, value) in enumerate(bars):
        y = 24 + index * BAR_HEIGHT
        width = max(1, round(span * value / top))
        parts.append(
            f'<text x="{LABEL_WIDTH - 6}" y="{y + 13}" text-anchor="end">{escape(label)}</text>'
            f'<rect x="{LABEL_WIDTH}" y="{y + 2}" width="{width}" height="{BAR_HEIGHT - 5}" class="bar"/>'
            f'<text x="{LABEL_WIDTH + width + 6}" y="{y + 13}">{value:,}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def timeline(first: datetime, last: datetime, notice: datetime | None) -> str:
    """One org's access on a time axis: first and last access, and the notice if there was one."""
    moments = [first, last, *([notice] if notice else [])]
    low, high = min(moments), max(moments)
    total = (high - low).total_seconds() or 1.0

    def x(moment: datetime) -> float:
        return 20 + (CHART_WIDTH - 40) * (moment - low).total_seconds() / total

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" role="img" width="{CHART_WIDTH}" height="64" '
             f'viewBox="0 0 {CHART_WIDTH} 64"><title>access timeline</title>',
             f'<line x1="20" y1="30" x2="{CHART_WIDTH - 20}" y2="30" class="axis"/>',
             f'<rect x="{x(first):.1f}" y="24" width="{max(2.0, x(last) - x(first)):.1f}" height="12" '
             'class="access"/>']  # fmt: skip
    marks = [("first access", first, "mark"), ("last access", last, "mark")]
    if notice is not None:
        marks.append(("notice", notice, "notice"))
    for index, (name, moment, css) in enumerate(marks):
        label = f"{name} {format_time(moment)[:16]}"
        parts.append(f'<circle cx="{x(moment):.1f}" cy="30" r="5" class="{css}"/>'
                     f'<text x="{label_x(x(moment), label):.1f}" y="{16 if index % 2 == 0 else 56}" '
                     f'text-anchor="middle">{escape(label)}</text>')  # fmt: skip
    parts.append("</svg>")
    return "".join(parts)


def label_width(label: str) -> float:
    """An upper bound of a label's rendered width in the report's chart font."""
    return CHAR_WIDTH * len(label)


def label_x(mark: float, label: str) -> float:
    """Where a label centred under its mark goes: as near the mark as keeps it all inside the chart (the
    first and last access sit at the axis' ends, where a centred label would be cut in half)."""
    half = label_width(label) / 2
    return min(max(mark, half + MARGIN), CHART_WIDTH - half - MARGIN)
