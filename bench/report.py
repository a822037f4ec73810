"""Figures, their targets, the printed table and `results.json`."""

from __future__ import annotations

import json
import math
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path


@dataclass(frozen=True)
class Figure:
    """One measured figure against its same-run baseline.

    `ratio` is ours / baseline for throughputs, and for latencies whatever the unit says
    (e.g. p50 at 1M / p50 at 10k); `target` reads against `ratio` unless `unit` says
    otherwise, and `met` is None where no target applies.
    """

    scenario: str
    metric: str
    value: float
    unit: str
    baseline: str
    baseline_value: float | None
    ratio: float | None
    target: str
    met: bool | None

    @classmethod
    def plain(cls, scenario: str, metric: str, value: float, unit: str) -> Figure:
        """A figure shown for what it is: no baseline, no target."""
        return cls(scenario, metric, value, unit, "-", None, None, "-", None)


def ratio(ours: float, baseline: float | None) -> float | None:
    if baseline is None or baseline == 0:
        return None
    return ours / baseline


def percentile(samples: Sequence[float], pct: float) -> float:
    """The `pct` percentile (nearest rank) of `samples`; NaN when there are none."""
    if not samples:
        return math.nan
    ordered = sorted(samples)
    rank = max(1, math.ceil(pct / 100 * len(ordered)))
    return ordered[rank - 1]


def progress(message: str) -> None:
    """A progress line on stderr, stamped with the wall-clock time."""
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def _num(value: float | None) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    return f"{value:.3g}"


def table(figures: Sequence[Figure]) -> str:
    header = ("scenario", "metric", "value", "unit", "baseline", "base", "ratio", "target", "met")
    rows = [header]
    for f in figures:
        met = "-" if f.met is None else ("yes" if f.met else "NO")
        rows.append(
            (
                f.scenario,
                f.metric,
                _num(f.value),
                f.unit,
                f.baseline,
                _num(f.baseline_value),
                _num(f.ratio),
                f.target,
                met,
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)) for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(line.rstrip() for line in lines)


def write(figures: Sequence[Figure], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    clean = [
        {
            k: (None if isinstance(v, float) and not math.isfinite(v) else v)
            for k, v in asdict(f).items()
        }
        for f in figures
    ]
    path.write_text(json.dumps(clean, indent=2) + "\n")
