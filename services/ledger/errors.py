"""The ledger's exceptions, all under `LedgerError`."""

from __future__ import annotations

from services.core.errors import TollgateError


class LedgerError(TollgateError):
    """Root of every ledger error."""


class MigrationError(LedgerError):
    """The schema could not be brought up to date."""


class PricingError(LedgerError):
    """A month cannot be priced as asked (for example, two currencies in one invoice)."""


class InvoiceNotDue(LedgerError):
    """The month is not closed plus its grace period yet, so no invoice can be issued."""


class BadParameter(LedgerError):
    """A request parameter is invalid; `field` names it."""

    def __init__(self, field: str, reason: str) -> None:
        self.field = field
        self.reason = reason
        super().__init__(f"{field}: {reason}")


class Rejected(LedgerError):
    """A billable message that cannot be recorded; it goes to the dead-letter table and topic."""


class Fenced(LedgerError):
    """A batch touched partitions another instance has claimed since: it is refused and rolled back."""

    def __init__(self, partitions: frozenset[int]) -> None:
        self.partitions = partitions
        super().__init__(f"partitions {sorted(partitions)} were claimed by another instance")


class NothingToInvoice(LedgerError):
    """The month has no agreement in force, no usage and no pending adjustment for the licensee."""


class IdempotencyConflict(LedgerError):
    """An `Idempotency-Key` already posted a different adjustment: the new request is refused, not dropped."""

    def __init__(self, key: str) -> None:
        self.key = key
        super().__init__(f"Idempotency-Key {key!r} was used for a different adjustment")
