"""Root exceptions shared by every Tollgate package."""

from collections.abc import Mapping, Sequence


class TollgateError(Exception):
    """Root of every Tollgate error."""


class ValidationFailed(TollgateError):
    """A message or document broke its schema; `problems` names each field."""

    def __init__(self, problems: Sequence[Mapping[str, object]]) -> None:
        self.problems = [dict(p) for p in problems]
        summary = "; ".join(f"{p.get('field')}: {p.get('reason')}" for p in problems[:5])
        super().__init__(summary or "invalid")


class SettingsError(TollgateError):
    """A service's settings are missing, malformed or insecure."""
