"""`tollgate serve ingest|processor|ledger`: run one service in the foreground."""

from __future__ import annotations

import argparse
import importlib
import os

SERVICES = ("ingest", "processor", "ledger")


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add the `serve` sub-command."""
    parser = subparsers.add_parser("serve", help="run a service (settings from TOLLGATE_* variables)")
    parser.add_argument("service", choices=SERVICES)
    parser.set_defaults(func=_serve)


def _serve(args: argparse.Namespace) -> int:
    # Each service exposes `services.<name>.main.run(environ)`, which blocks until SIGTERM/SIGINT.
    module = importlib.import_module(f"services.{args.service}.main")
    module.run(dict(os.environ))
    return 0
