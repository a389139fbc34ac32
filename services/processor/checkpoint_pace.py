"""quix's processing context, opening each checkpoint with the interval the last commit asked for.

The commit hook (pipeline.py) asks for the catch-up interval while the worker is behind its input
(pace.py). A request holds for one checkpoint only: a checkpoint that expires empty (not one record for
a whole interval, so the worker is not behind) is followed by a short one. A backlog that ends in
silence therefore keeps the long interval for at most one more interval, and a call after that silence
is committed as soon as a kept-up worker's would be.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from quixstreams.processing import ProcessingContext

from services.processor.settings import COMMIT_INTERVAL_SECONDS

log = logging.getLogger(__name__)


class PacedContext(ProcessingContext):
    """A ProcessingContext whose next checkpoint lasts `requested` seconds once, else `short`."""

    # Class defaults: quix builds the context; `install` turns it into this class afterwards.
    short: float = COMMIT_INTERVAL_SECONDS
    requested: float | None = None
    observe: Callable[[float], None] | None = None

    def init_checkpoint(self) -> None:
        """Open the next checkpoint with the requested interval (then forget it), else the short one."""
        interval = self.short if self.requested is None else self.requested
        self.requested = None
        if interval != self.commit_interval:
            log.info("checkpoints every %.2f s", interval)
            self.commit_interval = interval
            if self.observe is not None:
                self.observe(interval)
        super().init_checkpoint()


def install(context: ProcessingContext, short: float, observe: Callable[[float], None]) -> PacedContext:
    """Make quix's context a PacedContext (it adds no state of its own to set up but these values)."""
    context.__class__ = PacedContext
    paced = context
    assert isinstance(paced, PacedContext)  # noqa: S101 - narrows the type after the class swap
    paced.short, paced.observe = short, observe
    paced.commit_interval = short
    observe(short)
    return paced
