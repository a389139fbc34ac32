"""The serving package's exceptions."""

from __future__ import annotations

from services.core.errors import TollgateError


class ServingError(TollgateError):
    """Root of every serving error."""


class BodyTimeout(ServingError):
    """The client did not send its whole request body within the body read timeout."""
