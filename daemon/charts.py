"""Small, pure bar-chart helpers: inline SVG for the HTML report and Unicode bars for a terminal.

No I/O and no state; every text that goes into SVG is escaped. Shared by the session reports (HTML page) and,
if wanted, `report daily --chart`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from html import escape

PALETTE = ("#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2", "#edc948", "#b07aa1", "#ff9da7")
_EIGHTHS = " ▏▎▍▌▋▊▉█"


def text_bar(value: float, top: float, width: int) -> str:
    """Return a bar of Unicode blocks for `value` on a scale where `top` fills `width` cells."""
    if top <= 0 or value <= 0 or width <= 0:
        return ""
    eighths = round(min(value / top, 1.0) * width * 8)
    full, rest = divmod(eighths, 8)
    return "█" * full + (_EIGHTHS[rest] if rest else "")


def text_bars(items: Sequence[tuple[str, float]], width: int = 40, fmt: Callable[[float], str] = str) -> str:
    """Return one line per (label, value): the label, a bar scaled to the largest value, and the value."""
    if not items:
        return ""
    top = max(v for _, v in items)
    pad = max(len(label) for label, _ in items)
    return "\n".join(
        f"{label.ljust(pad)}  {text_bar(v, top, width).ljust(width)}  {fmt(v)}" for label, v in items
    )


def svg_columns(
    items: Sequence[tuple[str, float]],
    *,
    title: str,
    fmt: Callable[[float], str] = lambda v: f"{v:,.2f}",
    width: int = 900,
    height: int = 260,
    color: str = PALETTE[0],
) -> str:
    """Return an SVG chart of vertical bars (one per (label, value), e.g. per day) with a y-axis maximum,
    a label under every n-th bar and a tooltip on every bar."""
    left, right, top, bottom = 70, 10, 30, 40
    plot_w, plot_h = width - left - right, height - top - bottom
    peak = max((v for _, v in items), default=0.0) or 1.0
    n = max(len(items), 1)
    step = plot_w / n
    every = max(1, n // 12)
    parts = [
        _svg_open(width, height, title),
        f'<text x="{left}" y="18" class="title">{escape(title)}</text>',
        f'<line x1="{left}" y1="{top + plot_h}" x2="{left + plot_w}" y2="{top + plot_h}" class="axis"/>',
        f'<text x="{left - 6}" y="{top + 4}" class="tick" text-anchor="end">{escape(fmt(peak))}</text>',
        f'<text x="{left - 6}" y="{top + plot_h}" class="tick" text-anchor="end">0</text>',
    ]
    for i, (label, v) in enumerate(items):
        h = plot_h * max(v, 0.0) / peak
        x = left + i * step + step * 0.1
        parts.append(
            f'<rect x="{x:.1f}" y="{top + plot_h - h:.1f}" width="{step * 0.8:.1f}" height="{h:.1f}" '
            f'fill="{color}"><title>{escape(label)}: {escape(fmt(v))}</title></rect>'
        )
        if i % every == 0:
            parts.append(
                f'<text x="{x + step * 0.4:.1f}" y="{top + plot_h + 16}" class="tick" '
                f'text-anchor="middle">{escape(label)}</text>'
            )
    parts.append("</svg>")
    return "\n".join(parts)


def svg_hbars(
    items: Sequence[tuple[str, float]],
    *,
    title: str,
    fmt: Callable[[float], str] = lambda v: f"{v:,.2f}",
    width: int = 900,
    bar: int = 22,
) -> str:
    """Return an SVG chart of horizontal bars, one row per (label, value), each labelled with its value."""
    label_w, value_w, top = 220, 110, 30
    plot_w = width - label_w - value_w
    height = top + bar * max(len(items), 1) + 10
    peak = max((v for _, v in items), default=0.0) or 1.0
    parts = [_svg_open(width, height, title), f'<text x="0" y="18" class="title">{escape(title)}</text>']
    for i, (label, v) in enumerate(items):
        y = top + i * bar
        w = plot_w * max(v, 0.0) / peak
        shown = label if len(label) <= 30 else label[:29] + "…"
        parts += [
            f'<text x="{label_w - 8}" y="{y + bar * 0.7:.1f}" class="label" '
            f'text-anchor="end">{escape(shown)}</text>',
            f'<rect x="{label_w}" y="{y + 3}" width="{w:.1f}" height="{bar - 6}" '
            f'fill="{PALETTE[i % len(PALETTE)]}">'
            f"<title>{escape(label)}: {escape(fmt(v))}</title></rect>",
            f'<text x="{label_w + w + 6:.1f}" y="{y + bar * 0.7:.1f}" class="label">{escape(fmt(v))}</text>',
        ]
    if not items:
        parts.append(f'<text x="{label_w}" y="{top + 15}" class="label">no data</text>')
    parts.append("</svg>")
    return "\n".join(parts)


def _svg_open(width: int, height: int, title: str) -> str:
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" aria-label="{escape(title)}">'
    )
