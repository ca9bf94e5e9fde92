"""SVG charts drawn on the server: no script, no CDN, colours from the console's stylesheet.

Each function returns markup-safe SVG that scales to its container (``viewBox``, width 100%).
Shapes carry CSS classes, never ``style`` attributes (the CSP allows no inline style), and every
chart has a ``<title>``; the numbers also appear in tables next to it.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

from markupsafe import Markup, escape

from app.infra.metrics import ANSWER_BUCKETS

WIDTH, HEIGHT = 720, 200
LEFT, RIGHT, TOP, BOTTOM = 44, 8, 10, 28
#: Stacking order of callback outcomes (bottom first) in the per-minute chart.
STACK = ("passive", "doorbell", "retry", "deferred", "failed", "refused")


@dataclass(frozen=True)
class Bucket:
    label: str
    upper: float  # seconds; inf for the last
    count: float

    @property
    def late(self) -> bool:
        """Answers in this bucket missed WeCom's 5-second window."""
        return self.upper > 5.0


def _number(value: float) -> str:
    return f"{value:.0f}" if float(value).is_integer() else f"{value:.1f}"


def _svg(title: str, body: list[str], height: int = HEIGHT) -> Markup:
    head = (
        f'<svg class="chart" viewBox="0 0 {WIDTH} {height}" role="img" '
        f'preserveAspectRatio="xMidYMid meet" xmlns="http://www.w3.org/2000/svg">'
        f"<title>{escape(title)}</title>"
    )
    return Markup(head + "".join(body) + "</svg>")


def _axis(top_value: float, plot_height: int) -> list[str]:
    bottom = TOP + plot_height
    return [
        f'<line class="axis" x1="{LEFT}" y1="{bottom}" x2="{WIDTH - RIGHT}" y2="{bottom}"/>',
        f'<line class="axis" x1="{LEFT}" y1="{TOP}" x2="{LEFT}" y2="{bottom}"/>',
        f'<text class="tick" x="{LEFT - 4}" y="{TOP + 10}" text-anchor="end">'
        f"{_number(top_value)}</text>",
        f'<text class="tick" x="{LEFT - 4}" y="{bottom}" text-anchor="end">0</text>',
    ]


def per_minute(minutes: Sequence[tuple[float, dict[str, float]]]) -> Markup:
    """Stacked bars of callbacks per minute by outcome; ``minutes`` oldest first."""
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    totals = [sum(counts.get(o, 0) for o in STACK) for _, counts in minutes]
    top = max([*totals, 1])
    slot = plot_w / max(len(minutes), 1)
    body = _axis(top, plot_h)
    for index, (start, counts) in enumerate(minutes):
        x = LEFT + index * slot
        y = TOP + plot_h
        for outcome in STACK:
            value = counts.get(outcome, 0)
            if not value:
                continue
            height = value / top * plot_h
            y -= height
            when = time.strftime("%H:%M", time.localtime(start))
            body.append(
                f'<rect class="o-{outcome}" x="{x + 1:.1f}" y="{y:.1f}" '
                f'width="{max(slot - 2, 1):.1f}" height="{height:.1f}">'
                f"<title>{when} {outcome}: {_number(value)}</title></rect>"
            )
    if minutes:
        ends = ((0, "start"), (len(minutes) // 2, "middle"), (len(minutes) - 1, "end"))
        for index, anchor in ends:
            label = time.strftime("%H:%M", time.localtime(minutes[index][0]))
            x = (
                LEFT
                + index * slot
                + (slot if anchor == "end" else 0 if anchor == "start" else slot / 2)
            )
            body.append(
                f'<text class="tick" x="{x:.1f}" y="{HEIGHT - 8}" text-anchor="{anchor}">'
                f"{label}</text>"
            )
    return _svg("Callbacks per minute, by outcome", body)


def buckets_from(cumulative: dict[str, float]) -> list[Bucket]:
    """Per-bucket counts from Prometheus-style cumulative ``le`` counts."""
    edges = [*ANSWER_BUCKETS, float("inf")]
    result, below, lower = [], 0.0, 0.0
    for edge in edges:
        key = "+Inf" if edge == float("inf") else repr(float(edge))
        at_or_below = cumulative.get(key, below)
        label = f"> {lower:g} s" if edge == float("inf") else f"≤ {edge:g} s"
        result.append(Bucket(label, edge, max(at_or_below - below, 0.0)))
        below, lower = max(at_or_below, below), edge
    return result


def answer_times(buckets: Sequence[Bucket], deadline: float) -> Markup:
    """Bars per answer-time bucket; buckets past 5 s are drawn as late, with the window and the
    configured reply deadline marked."""
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    top = max([b.count for b in buckets] + [1])
    slot = plot_w / max(len(buckets), 1)
    body = _axis(top, plot_h)
    for index, bucket in enumerate(buckets):
        height = bucket.count / top * plot_h
        x = LEFT + index * slot
        css = "late" if bucket.late else "in-time"
        body.append(
            f'<rect class="{css}" x="{x + 2:.1f}" y="{TOP + plot_h - height:.1f}" '
            f'width="{max(slot - 4, 1):.1f}" height="{height:.1f}">'
            f"<title>{escape(bucket.label)}: {_number(bucket.count)}</title></rect>"
        )
        body.append(
            f'<text class="tick" x="{x + slot / 2:.1f}" y="{HEIGHT - 8}" '
            f'text-anchor="middle">{escape(bucket.label.replace(" s", ""))}</text>'
        )
    marks = [(5.0, "window", "5 s window"), (deadline, "deadline", f"deadline {deadline:g} s")]
    for seconds, css, text in marks:
        index = next((i for i, b in enumerate(buckets) if b.upper >= seconds), len(buckets) - 1)
        x = LEFT + (index + 1) * slot
        body.append(
            f'<line class="{css}" x1="{x:.1f}" y1="{TOP}" x2="{x:.1f}" y2="{TOP + plot_h}"/>'
        )
        body.append(
            f'<text class="mark {css}" x="{x - 3:.1f}" y="{TOP + 12 + (css == "deadline") * 14}" '
            f'text-anchor="end">{escape(text)}</text>'
        )
    return _svg("Answer times against the 5-second window", body)


def shares(parts: Sequence[tuple[str, float]]) -> Markup:
    """One horizontal bar split into the parts' shares (e.g. passive, late, failed)."""
    total = sum(value for _, value in parts)
    height, bar_h = 56, 28
    body = []
    x = 0.0
    for name, value in parts:
        if total <= 0 or value <= 0:
            continue
        width = value / total * WIDTH
        body.append(
            f'<rect class="o-{escape(name)}" x="{x:.1f}" y="4" width="{width:.1f}" '
            f'height="{bar_h}"><title>{escape(name)}: {value / total:.1%}</title></rect>'
        )
        if width > 60:
            body.append(
                f'<text class="share" x="{x + 6:.1f}" y="{4 + bar_h - 9}">'
                f"{escape(name)} {value / total:.0%}</text>"
            )
        x += width
    if total <= 0:
        body.append(f'<text class="tick" x="4" y="{4 + bar_h - 9}">no callbacks yet</text>')
    return _svg("Shares of answered callbacks", body, height)


def horizontal_bars(rows: Sequence[tuple[str, float, str]]) -> Markup:
    """One bar per (label, value, css class) row, longest first as given."""
    row_h = 24
    height = max(len(rows), 1) * row_h + 8
    top = max([value for _, value, _ in rows] + [1])
    label_w = 200
    body = []
    for index, (label, value, css) in enumerate(rows):
        y = 4 + index * row_h
        width = value / top * (WIDTH - label_w - 60)
        body.append(f'<text class="tick" x="4" y="{y + 16}">{escape(label)}</text>')
        body.append(
            f'<rect class="{escape(css)}" x="{label_w}" y="{y + 3}" width="{max(width, 1):.1f}" '
            f'height="{row_h - 8}"/>'
        )
        body.append(
            f'<text class="tick" x="{label_w + width + 6:.1f}" y="{y + 16}">{_number(value)}</text>'
        )
    if not rows:
        body.append('<text class="tick" x="4" y="20">no deliveries through the API yet</text>')
    return _svg("Deliveries through the API, by result and errcode", body, height)
