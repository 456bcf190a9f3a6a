"""Figures as rows of a table: name, measured value, target, and whether the target is met."""

from __future__ import annotations

import statistics
from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class Row:
    scenario: str
    figure: str
    value: str
    target: str = ""
    met: bool | None = None


def median_ms(samples: list[float]) -> float:
    return statistics.median(samples) * 1000


def p95_ms(samples: list[float]) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))] * 1000


def render(rows: list[Row]) -> str:
    header = ("scenario", "figure", "value", "target", "met")
    cells = [header] + [
        (r.scenario, r.figure, r.value, r.target, {True: "yes", False: "MISSED", None: ""}[r.met])
        for r in rows
    ]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) for row in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def as_json(rows: list[Row]) -> list[dict[str, object]]:
    return [asdict(r) for r in rows]
