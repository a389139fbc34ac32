"""`tollgate tokens create|revoke|list`: bearer tokens, stored hashed in a JSON file."""

from __future__ import annotations

import argparse
import os
import sys
from datetime import UTC, datetime
from pathlib import Path

from services.core.tokens import ROLES, FileTokenStore

DEFAULT_FILE = Path(".stack") / "tokens.json"


def default_file() -> Path:
    """`$TOLLGATE_TOKENS_FILE`, else `.stack/tokens.json`."""
    return Path(os.environ.get("TOLLGATE_TOKENS_FILE", "").strip() or DEFAULT_FILE)


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the `tokens` sub-command."""
    parser = subparsers.add_parser("tokens", help="create, revoke and list bearer tokens (stored hashed)")
    parser.add_argument(
        "--file",
        type=Path,
        default=None,
        help=f"token file (default: $TOLLGATE_TOKENS_FILE or {DEFAULT_FILE})",
    )
    actions = parser.add_subparsers(dest="action", required=True)
    create = actions.add_parser("create", help="mint a token; it is printed once and never stored")
    create.add_argument("--name", required=True, help="who holds it, e.g. the gateway's name")
    create.add_argument("--role", required=True, choices=ROLES)
    create.add_argument(
        "--source",
        action="append",
        default=[],
        dest="sources",
        help="CloudEvents source the token may send (repeatable; default: any)",
    )
    create.add_argument("--file", type=Path, default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    create.set_defaults(func=_create)
    revoke = actions.add_parser("revoke", help="revoke a token by its id")
    revoke.add_argument("token_id")
    revoke.add_argument("--file", type=Path, default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    revoke.set_defaults(func=_revoke)
    listing = actions.add_parser("list", help="list tokens (ids, names, roles, sources; never hashes)")
    listing.add_argument("--file", type=Path, default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    listing.set_defaults(func=_list)


def _store(args: argparse.Namespace) -> FileTokenStore:
    return FileTokenStore(args.file or default_file())


def _create(args: argparse.Namespace) -> int:
    if args.sources and args.role != "ingest":
        print("--source only applies to ingest tokens", file=sys.stderr)
        return 2
    store = _store(args)
    token = store.create(args.name, args.role, args.sources)
    print(token)
    print(
        f"token {token.split('_')[1]} for {args.name!r} ({args.role}) saved hashed in {store.path}; "
        "this is the only time it is shown",
        file=sys.stderr,
    )
    return 0


def _revoke(args: argparse.Namespace) -> int:
    store = _store(args)
    if not store.revoke(args.token_id):
        print(f"no token {args.token_id!r} in {store.path}", file=sys.stderr)
        return 1
    print(f"revoked {args.token_id}")
    return 0


def _list(args: argparse.Namespace) -> int:
    store = _store(args)
    print(f"{'id':<14} {'role':<8} {'state':<8} {'created (UTC)':<20} {'name':<24} sources")
    for record in sorted(store.records.values(), key=lambda r: r.created_at):
        created = datetime.fromtimestamp(record.created_at, UTC).strftime("%Y-%m-%d %H:%M:%S")
        state = "revoked" if record.revoked else "active"
        sources = ",".join(record.sources) or "(any)"
        print(f"{record.token_id:<14} {record.role:<8} {state:<8} {created:<20} {record.name:<24} {sources}")
    return 0
