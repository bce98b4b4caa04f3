"""Charts as inline SVG, drawn on the server: no JavaScript, no fetched library.

Each function returns SVG markup built only from numbers and from texts escaped here, so the
templates may insert it as it is.
"""

from __future__ import annotations

from collections.abc import Sequence
from html import escape
from typing import Any

__all__ = ["bar_chart", "duration_chart", "human_bytes"]

_W, _H = 720, 180
_LEFT, _BOTTOM, _TOP = 64, 28, 12
_COLORS = {"succeeded": "#2e7d32", "failed": "#c62828", "interrupted": "#ef6c00"}


def human_bytes(value: float) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if abs(value) < 1000 or unit == "TB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    return f"{value:.1f} TB"  # pragma: no cover - the loop returns


def _frame(title: str, top: str, body: list[str], labels: list[str]) -> str:
    return (
        f'<svg class="chart" viewBox="0 0 {_W} {_H}" role="img" aria-label="{escape(title)}"'
        f' xmlns="http://www.w3.org/2000/svg"><title>{escape(title)}</title>'
        f'<line x1="{_LEFT}" y1="{_H - _BOTTOM}" x2="{_W}" y2="{_H - _BOTTOM}" stroke="#999"/>'
        f'<line x1="{_LEFT}" y1="{_TOP}" x2="{_LEFT}" y2="{_H - _BOTTOM}" stroke="#999"/>'
        f'<text x="{_LEFT - 6}" y="{_TOP + 8}" text-anchor="end" font-size="11">{escape(top)}'
        f'</text><text x="{_LEFT - 6}" y="{_H - _BOTTOM}" text-anchor="end" font-size="11">0'
        "</text>" + "".join(body) + "".join(labels) + "</svg>"
    )


def bar_chart(
    title: str, points: Sequence[tuple[str, float]], fmt: str = "count", color: str = "#1565c0"
) -> str:
    """Bars of ``(label, value)``; ``fmt`` "bytes" writes the scale in KB/MB/GB."""
    top = max((v for _, v in points), default=0) or 1
    plot_w = _W - _LEFT - 8
    plot_h = _H - _BOTTOM - _TOP
    step = plot_w / max(len(points), 1)
    body, labels = [], []
    shown = human_bytes if fmt == "bytes" else (lambda v: f"{v:,.0f}")
    every = max(1, len(points) // 8)
    for i, (label, value) in enumerate(points):
        h = plot_h * value / top
        x = _LEFT + 4 + i * step
        body.append(
            f'<rect x="{x:.1f}" y="{_H - _BOTTOM - h:.1f}" width="{max(step - 3, 1):.1f}"'
            f' height="{h:.1f}" fill="{color}"><title>{escape(label)}: {escape(shown(value))}'
            "</title></rect>"
        )
        if i % every == 0:
            labels.append(
                f'<text x="{x:.1f}" y="{_H - 10}" font-size="10">{escape(label[5:])}</text>'
            )
    return _frame(title, shown(top), body, labels)


def duration_chart(title: str, runs: Sequence[dict[str, Any]]) -> str:
    """One dot per run (seconds, coloured by status), oldest to newest, joined by a line."""
    seconds = [float(r["seconds"] or 0) for r in runs]
    top = max(seconds, default=0) or 1
    plot_w = _W - _LEFT - 16
    plot_h = _H - _BOTTOM - _TOP
    step = plot_w / max(len(runs) - 1, 1)
    coords = [
        (_LEFT + 8 + i * step, _H - _BOTTOM - plot_h * s / top) for i, s in enumerate(seconds)
    ]
    body = []
    if len(coords) > 1:
        path = " ".join(f"{x:.1f},{y:.1f}" for x, y in coords)
        body.append(f'<polyline points="{path}" fill="none" stroke="#90a4ae"/>')
    for (x, y), run, s in zip(coords, runs, seconds, strict=True):
        color = _COLORS.get(str(run["status"]), "#555")
        body.append(
            f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3.5" fill="{color}"><title>run {run["id"]:d}'
            f" {escape(str(run['status']))}: {s:.2f} s</title></circle>"
        )
    labels = []
    if runs:
        labels.append(
            f'<text x="{_LEFT + 4}" y="{_H - 10}" font-size="10">'
            f"{escape(str(runs[0]['started'])[:16])}</text>"
        )
        labels.append(
            f'<text x="{_W - 4}" y="{_H - 10}" font-size="10" text-anchor="end">'
            f"{escape(str(runs[-1]['started'])[:16])}</text>"
        )
    return _frame(title, f"{top:.1f} s" if top >= 1 else f"{top:.3f} s", body, labels)
