"""Tollgate: event-driven usage metering for data APIs."""
