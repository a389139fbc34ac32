"""Root exceptions shared by every Tollgate package."""


class TollgateError(Exception):
    """Root of every Tollgate error."""


class ValidationFailed(TollgateError):
    """A message or document broke its schema; `problems` names each field."""

    def __init__(self, problems: list[dict[str, object]]) -> None:
        self.problems = problems
        summary = "; ".join(f"{p.get('field')}: {p.get('reason')}" for p in problems[:5])
        super().__init__(summary or "invalid")


class SettingsError(TollgateError):
    """A service's settings are missing, malformed or insecure."""
