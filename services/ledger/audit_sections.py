"""Audit report sections beyond the usage evidence: the ledger's chain heads (exposure: audit_exposure.py)."""

from __future__ import annotations

from collections.abc import Mapping
from html import escape
from typing import Any

from services.ledger.audit_html import table

CHAIN_NOTE = (
    "Each table's rows for this licensee form a SHA-256 hash chain (each row hashes its content and the "
    "row before it). Keep these heads: running `tollgate ledger verify --licensee ID` later, or asking "
    "GET /v1/licensees/{id}/ledger/verify, must show the same rows and hashes at these positions, and any "
    "edited row is named as the first break."
)


def chain_heads(facts: Mapping[str, Any]) -> str:
    """The head of each of the licensee's hash chains when the report was generated."""
    rows = [[h["table"], h["head_seq"], ("html", f"<code>{escape(h['head_hash'] or 'empty')}</code>")]
            for h in facts["chain_heads"]]  # fmt: skip
    return (f"<h2>Ledger hash chain heads</h2><p>{escape(CHAIN_NOTE)}</p>"
            + table(["table", "rows (head position)", "head row_hash"], rows))  # fmt: skip
