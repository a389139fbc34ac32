"""Shared core: message model, topic names, schemas, ids, agreements, settings, tokens."""
