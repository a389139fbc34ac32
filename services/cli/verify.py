"""`tollgate ledger verify [--licensee X]`: recompute the ledger's hash chains and name the first break."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any


def register_verify(actions: argparse._SubParsersAction, database_url: str) -> None:  # type: ignore[type-arg]
    """Add `ledger verify` under `ledger`."""
    verify = actions.add_parser("verify", help="recompute the hash chains; exit 1 naming the first break")
    verify.add_argument("--licensee", help="one licensee (default: every licensee)")
    verify.add_argument("--json", action="store_true", help="print the full answer as JSON")
    verify.add_argument("--database-url", default=database_url, help="default: $TOLLGATE_APP_DATABASE_URL")
    verify.set_defaults(func=_verify)


def _verify(args: argparse.Namespace) -> int:
    import psycopg

    from services.ledger.adapters.postgres import chain_store
    from services.ledger.domain import params
    from services.ledger.errors import BadParameter

    if not args.database_url:
        return _fail("no database: pass --database-url or set TOLLGATE_APP_DATABASE_URL")
    try:
        licensee = params.licensee(args.licensee) if args.licensee is not None else None
        with psycopg.connect(args.database_url) as conn:
            found = chain_store.verify(conn, licensee)
    except BadParameter as exc:
        return _fail(f"--licensee: {exc.reason}")
    except psycopg.Error as exc:
        return _fail(f"verify failed: {exc}")
    print(json.dumps(found, indent=2) if args.json else "\n".join(lines(found)))
    return 0 if found["intact"] else 1


def lines(found: dict[str, Any]) -> list[str]:
    """The verdict for a terminal: the first break, or the chains' heads."""
    broken = found["first_break"]
    if broken is not None:
        return [f"BROKEN: {broken['table']} row {broken['key']} of {broken['licensee_id']} "
                f"(chain_seq {broken['chain_seq']}): {broken['reason']}",
                f"{len(found['breaks'])} chain(s) broken; {found['rows_checked']} rows checked"]  # fmt: skip
    out = [f"intact: {found['rows_checked']} rows in {len(found['chains'])} chains"]
    out += [f"  {c['table']:<15} {c['licensee_id']:<24} {c['rows']:>9} rows  head {c['head_seq']} "
            f"{c['head_hash']}" for c in found["chains"]]  # fmt: skip
    return out


def _fail(message: str) -> int:
    sys.stderr.write(message + "\n")
    return 2
