"""Charts as server-rendered SVG: horizontal bars (Thai labels stay readable on a phone), with
the target as a mark on each bar. No JavaScript; the browser shapes the Thai text."""

from __future__ import annotations

from html import escape

from markupsafe import Markup

ROW_H, LABEL_W, BAR_W, VALUE_W = 28, 120, 150, 110
DONE, TARGET, BACK = "#1f5fbf", "#c0392b", "#e8edf3"


def bar_chart(items: list[tuple[str, int, int | None]], title: str) -> Markup:
    """A bar per (label, value, target); the bar's length is value against the largest of the
    values and targets, the red mark the target, the text 'value/target (percent)'."""
    top = max([1, *[v for _, v, _ in items], *[t or 0 for _, _, t in items]])
    width, height = LABEL_W + BAR_W + VALUE_W, ROW_H * len(items) + 8
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" viewBox="0 0 {width} {height}" '
             f'role="img" aria-label="{escape(title)}" font-family="Sarabun, sans-serif" font-size="14">',
             f"<title>{escape(title)}</title>"]
    for index, (label, value, target) in enumerate(items):
        y = 4 + index * ROW_H
        parts.append(f'<text x="{LABEL_W - 6}" y="{y + 16}" text-anchor="end">{escape(_cut(label))}</text>')
        parts.append(f'<rect x="{LABEL_W}" y="{y + 4}" width="{BAR_W}" height="16" fill="{BACK}"/>')
        parts.append(f'<rect x="{LABEL_W}" y="{y + 4}" width="{BAR_W * value / top:.1f}" height="16" fill="{DONE}"/>')
        if target:
            x = LABEL_W + BAR_W * target / top
            parts.append(f'<rect x="{x - 1:.1f}" y="{y}" width="2" height="24" fill="{TARGET}"/>')
        share = f" ({100 * value / target:.0f}%)" if target else ""
        parts.append(f'<text x="{LABEL_W + BAR_W + 4}" y="{y + 16}">{value}{"/" + str(target) if target else ""}'
                     f"{share}</text>")
    parts.append("</svg>")
    return Markup("".join(parts))


def _cut(label: str, limit: int = 16) -> str:
    return label if len(label) <= limit else label[:limit - 1] + "…"
