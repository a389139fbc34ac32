"""The processor's exceptions."""

from services.core.errors import TollgateError


class ProcessorError(TollgateError):
    """Root of every processor error."""


class AgreementsNotReady(ProcessorError):
    """The agreements topic could not be read to its end in time."""
