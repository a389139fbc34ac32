"""Per-licensee state: one plain value per licensee, so one changelog record carries everything."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(slots=True)
class MonthUsage:
    """Counted calls and records of one calendar month, in total and per app."""

    calls: int = 0
    records: int = 0
    calls_by_app: dict[str, int] = field(default_factory=dict)
    records_by_app: dict[str, int] = field(default_factory=dict)

    def add(self, app_id: str, records: int) -> None:
        """Count one call."""
        self.calls += 1
        self.records += records
        self.calls_by_app[app_id] = self.calls_by_app.get(app_id, 0) + 1
        self.records_by_app[app_id] = self.records_by_app.get(app_id, 0) + records

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "calls": self.calls,
            "records": self.records,
            "calls_by_app": self.calls_by_app,
            "records_by_app": self.records_by_app,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> MonthUsage:
        """Inverse of `to_dict`."""
        return cls(
            int(data["calls"]),
            int(data["records"]),
            dict(data.get("calls_by_app", {})),
            dict(data.get("records_by_app", {})),
        )


@dataclass(slots=True)
class FiredAlert:
    """An alert already fired: its envelope, its window and the input position that fired it."""

    rule: str
    window_start: float
    window_end: float
    partition: int
    offset: int
    envelope: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "rule": self.rule,
            "window_start": self.window_start,
            "window_end": self.window_end,
            "partition": self.partition,
            "offset": self.offset,
            "envelope": self.envelope,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FiredAlert:
        """Inverse of `to_dict`."""
        return cls(
            data["rule"],
            float(data["window_start"]),
            float(data["window_end"]),
            int(data["partition"]),
            int(data["offset"]),
            data["envelope"],
        )


@dataclass(slots=True)
class LicenseeState:
    """Everything the processor knows about one licensee.

    `seen` maps an event-key digest to `[partition, offset, event_time]`; `minutes` maps a minute index to
    its call count; `last_offset` maps an input partition to the last offset applied to this state.
    """

    licensee_id: str
    high_watermark: float | None = None
    last_offset: dict[int, int] = field(default_factory=dict)
    months: dict[str, MonthUsage] = field(default_factory=dict)
    minutes: dict[int, int] = field(default_factory=dict)
    fired: dict[str, FiredAlert] = field(default_factory=dict)
    seen: dict[str, list[float]] = field(default_factory=dict)
    evicted: int = 0

    def month(self, key: str) -> MonthUsage:
        """The usage of month `key`, created empty on first use."""
        usage = self.months.get(key)
        if usage is None:
            usage = self.months[key] = MonthUsage()
        return usage

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (object keys become strings)."""
        return {
            "licensee_id": self.licensee_id,
            "high_watermark": self.high_watermark,
            "last_offset": {str(p): o for p, o in self.last_offset.items()},
            "months": {k: m.to_dict() for k, m in self.months.items()},
            "minutes": {str(k): v for k, v in self.minutes.items()},
            "fired": {k: f.to_dict() for k, f in self.fired.items()},
            "seen": self.seen,
            "evicted": self.evicted,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LicenseeState:
        """Inverse of `to_dict`."""
        hwm = data.get("high_watermark")
        return cls(
            licensee_id=data["licensee_id"],
            high_watermark=float(hwm) if hwm is not None else None,
            last_offset={int(p): int(o) for p, o in data.get("last_offset", {}).items()},
            months={k: MonthUsage.from_dict(m) for k, m in data.get("months", {}).items()},
            minutes={int(k): int(v) for k, v in data.get("minutes", {}).items()},
            fired={k: FiredAlert.from_dict(f) for k, f in data.get("fired", {}).items()},
            seen={k: list(v) for k, v in data.get("seen", {}).items()},
            evicted=int(data.get("evicted", 0)),
        )
