"""The report's row model and number formatting, shared by bench/run.py and the stage modules."""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

TARGETS = {
    "ingest": ("events/s", 25_000.0),
    "processor": ("events/s per worker", 10_000.0),
    "alert_p99_ms": ("ms", 250.0),
    "ledger": ("calls/s worth", 40_000.0),  # issue 13 item 3: billable deltas worth that many calls
}


def median(values: Sequence[float]) -> float | None:
    """Median of the values that are numbers; None when there are none."""
    numbers = [float(v) for v in values if isinstance(v, int | float) and not isinstance(v, bool)]
    return statistics.median(numbers) if numbers else None


def ratio(value: float | None, baseline: float | None) -> float | None:
    """value / baseline, rounded to 3 places; None when either is missing or the baseline is 0."""
    if value is None or baseline is None or baseline == 0:
        return None
    return round(value / baseline, 3)


def meets(value: float | None, target: float | None, lower_is_better: bool = False) -> bool | None:
    """Whether value reaches the target (or stays under it); None when either is missing."""
    if value is None or target is None:
        return None
    return value <= target if lower_is_better else value >= target


def dig(document: Any, *path: str) -> Any:
    """document[path[0]][path[1]]...; None when any step is missing."""
    for key in path:
        if not isinstance(document, Mapping) or key not in document:
            return None
        document = document[key]
    return document


@dataclass(frozen=True)
class Row:
    """One line of a stage's table."""

    metric: str
    value: float | None
    unit: str
    baseline: str = ""
    baseline_value: float | None = None
    target: float | None = None
    lower_is_better: bool = False
    note: str = ""

    @property
    def ratio(self) -> float | None:
        """value / baseline value."""
        return ratio(self.value, self.baseline_value)

    @property
    def meets(self) -> bool | None:
        """Whether the value reaches the target."""
        return meets(self.value, self.target, self.lower_is_better)

    def as_dict(self) -> dict[str, Any]:
        """JSON form, with the derived ratio and verdict."""
        return {
            "metric": self.metric,
            "value": self.value,
            "unit": self.unit,
            "baseline": self.baseline,
            "baseline_value": self.baseline_value,
            "ratio": self.ratio,
            "target": self.target,
            "meets_target": self.meets,
            "note": self.note,
        }


def _fmt(value: float | None, digits: int = 0) -> str:
    if value is None:
        return "-"
    if abs(value) >= 100 or (digits == 0 and float(value).is_integer()):
        return f"{value:,.0f}"
    return f"{value:,.{max(digits, 1)}f}" if abs(value) >= 1 else f"{value:.3g}"


def _ms(seconds: Any) -> float | None:
    return round(float(seconds) * 1000, 1) if isinstance(seconds, int | float) else None
