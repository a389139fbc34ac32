"""The processor's exceptions."""

from services.core.errors import TollgateError


class ProcessorError(TollgateError):
    """Root of every processor error."""


class AgreementsNotReady(ProcessorError):
    """The agreements topic could not be read to its end in time."""


class PoisonRecord(ProcessorError):
    """A record whose processing raised twice; it is dead-lettered instead of stopping the worker."""
