"""Errors of the local stack."""

from __future__ import annotations

from pathlib import Path

from services.core.errors import TollgateError


class StackError(TollgateError):
    """Root of every local-stack error."""


class PartFailed(StackError):
    """One part of the stack (kafka, postgres, prometheus, alertmanager) could not start or stop."""

    def __init__(self, part: str, reason: str, log_path: Path | str | None = None) -> None:
        self.part = part
        self.reason = reason
        self.log_path = Path(log_path) if log_path is not None else None
        where = f" (log: {self.log_path})" if self.log_path is not None else ""
        super().__init__(f"{part}: {reason}{where}")
