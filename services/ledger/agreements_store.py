"""Agreements in PostgreSQL: versioned and append-only; readers pick the version in force."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from datetime import datetime

import orjson
import psycopg
from psycopg.types.json import Jsonb

from services.core.agreements import Agreement, parse_agreement
from services.ledger.errors import LedgerError
from services.ledger.pricing import agreement_at, in_force


def digest(agreement: Agreement) -> str:
    """A stable fingerprint of an agreement's document: the same document is the same version."""
    return hashlib.sha256(orjson.dumps(agreement.raw, option=orjson.OPT_SORT_KEYS)).hexdigest()


def save_agreements(database_url: str, agreements: Sequence[Agreement]) -> int:
    """Store each agreement as a new version unless already stored; return how many are new."""
    try:
        with psycopg.connect(database_url) as conn, conn.transaction():
            return sum(insert_agreement(conn, agreement) for agreement in agreements)
    except psycopg.Error as exc:
        raise LedgerError(f"storing agreements failed: {exc}") from exc


def insert_agreement(conn: psycopg.Connection, agreement: Agreement) -> int:
    """Insert one version on an open connection; 1 if it was new, 0 if already stored."""
    cursor = conn.execute(
        """INSERT INTO agreements (licensee_id, effective_from, effective_to, document, digest)
           VALUES (%s, %s, %s, %s, %s)
           ON CONFLICT ON CONSTRAINT agreements_one_version DO NOTHING""",
        (
            agreement.licensee_id,
            agreement.effective_from,
            agreement.effective_to,
            Jsonb(agreement.raw),
            digest(agreement),
        ),
    )
    return cursor.rowcount


def versions(conn: psycopg.Connection, licensee_id: str) -> list[Agreement]:
    """Every stored version of a licensee's agreements, in load order."""
    rows = conn.execute(
        "SELECT document FROM agreements WHERE licensee_id = %s ORDER BY agreement_version", (licensee_id,)
    ).fetchall()
    return [parse_agreement(row[0]) for row in rows]


def agreements_in_force(conn: psycopg.Connection, licensee_id: str) -> list[Agreement]:
    """The version in force of each of a licensee's agreements, by start date."""
    return in_force(versions(conn, licensee_id))


def agreement_active_at(conn: psycopg.Connection, licensee_id: str, at: datetime) -> Agreement | None:
    """The agreement in force for a licensee at instant `at`, if any."""
    return agreement_at(agreements_in_force(conn, licensee_id), at)


def licensees(conn: psycopg.Connection) -> list[str]:
    """Every licensee with a stored agreement."""
    return [row[0] for row in conn.execute("SELECT DISTINCT licensee_id FROM agreements ORDER BY 1")]
