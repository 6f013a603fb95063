"""Small SVG charts drawn on the server (no JavaScript, no CDN). Every label is escaped."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

from markupsafe import Markup, escape

W, H, PAD_L, PAD_B, PAD_T = 640, 220, 44, 28, 12


def _nice_top(value: int) -> int:
    """A top of the scale divisible by 4, so the five gridlines carry whole numbers."""
    return max(4, -(-value // 4) * 4)


def _axis(max_value: int) -> str:
    parts = []
    for i in range(5):
        value = max_value * i / 4
        y = H - PAD_B - (H - PAD_B - PAD_T) * i / 4
        parts.append(f'<line x1="{PAD_L}" y1="{y:.1f}" x2="{W - 8}" y2="{y:.1f}" class="grid"/>')
        parts.append(f'<text x="{PAD_L - 6}" y="{y + 4:.1f}" text-anchor="end">{value:.0f}</text>')
    return "".join(parts)


def line_chart(series: Sequence[tuple[date, int]], title: str) -> Markup:
    """Open backorders per day as a line with the last value labelled."""
    if not series:
        return Markup("<p>No data yet.</p>")
    top = _nice_top(max(v for _, v in series))
    step = (W - PAD_L - 16) / max(len(series) - 1, 1)
    points = []
    for i, (_, value) in enumerate(series):
        x = PAD_L + i * step
        y = H - PAD_B - (H - PAD_B - PAD_T) * value / top
        points.append(f"{x:.1f},{y:.1f}")
    labels = "".join(
        f'<text x="{PAD_L + i * step:.1f}" y="{H - 8}" text-anchor="middle">{escape(day.strftime("%d %b"))}</text>'
        for i, (day, _) in enumerate(series)
        if i % max(len(series) // 6, 1) == 0 or i == len(series) - 1
    )
    return Markup(
        f'<svg class="chart" viewBox="0 0 {W} {H}" role="img" aria-label="{escape(title)}">'
        f"<title>{escape(title)}</title>{_axis(top)}"
        f'<polyline class="series" fill="none" points="{" ".join(points)}"/>{labels}</svg>'
    )


def bar_chart(bars: Sequence[tuple[str, int]], title: str) -> Markup:
    """One bar per bucket, value on top."""
    if not bars or not any(v for _, v in bars):
        return Markup(f'<p class="muted">{escape(title)}: nothing covered yet.</p>')
    top = _nice_top(max(v for _, v in bars))
    slot = (W - PAD_L - 8) / len(bars)
    parts = [_axis(top)]
    for i, (label, value) in enumerate(bars):
        height = (H - PAD_B - PAD_T) * value / top
        x = PAD_L + i * slot + slot * 0.15
        y = H - PAD_B - height
        parts.append(
            f'<rect class="bar b{i}" x="{x:.1f}" y="{y:.1f}" width="{slot * 0.7:.1f}" height="{height:.1f}"/>'
            f'<text x="{x + slot * 0.35:.1f}" y="{y - 3:.1f}" text-anchor="middle">{value}</text>'
            f'<text x="{x + slot * 0.35:.1f}" y="{H - 8}" text-anchor="middle">{escape(label)}</text>'
        )
    return Markup(
        f'<svg class="chart" viewBox="0 0 {W} {H}" role="img" aria-label="{escape(title)}">'
        f"<title>{escape(title)}</title>{''.join(parts)}</svg>"
    )
