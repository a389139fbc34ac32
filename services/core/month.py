"""The calendar month (UTC): one type for the processor's month windows and the ledger's pricing."""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime

# ASCII digits only: \d would also take fullwidth and Arabic-Indic digits, which int() reads.
_MONTH = re.compile(r"^([0-9]{4})-(0[1-9]|1[0-2])\Z")


@dataclass(frozen=True, slots=True, order=True)
class Month:
    """A calendar month in UTC."""

    year: int
    month: int

    @classmethod
    def parse(cls, text: str) -> Month:
        """Parse `YYYY-MM`; raise ValueError otherwise."""
        match = _MONTH.match(text)
        if not match or not int(match.group(1)) >= 1:
            raise ValueError(f"expected YYYY-MM, got {text!r}")
        return cls(int(match.group(1)), int(match.group(2)))

    @classmethod
    def of(cls, moment: datetime | date) -> Month:
        """The month an instant (taken in UTC) or a date falls in."""
        if isinstance(moment, datetime):
            moment = moment.astimezone(UTC)
        return cls(moment.year, moment.month)

    @property
    def start(self) -> datetime:
        """The first instant of the month."""
        return datetime(self.year, self.month, 1, tzinfo=UTC)

    @property
    def end(self) -> datetime:
        """The first instant of the next month (exclusive end)."""
        return self.next().start

    @property
    def days(self) -> int:
        """Number of days in the month."""
        return calendar.monthrange(self.year, self.month)[1]

    def next(self) -> Month:
        """The following month."""
        return Month(self.year + self.month // 12, self.month % 12 + 1)

    def __str__(self) -> str:
        return f"{self.year:04d}-{self.month:02d}"
