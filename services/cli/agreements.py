"""`tollgate agreements load FILE`: validate agreements and publish them to the compacted topic.

Publishing is all `load` does: the processor and the ledger both read the topic (the ledger stores each
version in PostgreSQL itself, services/ledger/adapters/kafka/agreement_consumer.py), so the topic is the one
source of truth.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

from services.clients.agreements import AgreementsPublishError, publish_agreements
from services.core import topics
from services.core.agreements import Agreement, load_agreements
from services.core.errors import SettingsError, ValidationFailed
from services.core.security import KafkaSecurity

log = logging.getLogger(__name__)


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the `agreements` sub-command."""
    parser = subparsers.add_parser("agreements", help="manage licensee agreements")
    actions = parser.add_subparsers(dest="action", required=True)
    load = actions.add_parser("load", help="validate FILE and publish it to the agreements topic")
    load.add_argument("file", type=Path)
    load.add_argument(
        "--bootstrap",
        default=os.environ.get("TOLLGATE_KAFKA_BOOTSTRAP", ""),
        help="Kafka bootstrap servers (default: $TOLLGATE_KAFKA_BOOTSTRAP)",
    )
    load.add_argument("--topic", default=topics.AGREEMENTS, help=argparse.SUPPRESS)
    load.set_defaults(func=_load)
    validate = actions.add_parser("validate", help="check FILE as `load` would, without publishing it")
    validate.add_argument("file", type=Path)
    validate.set_defaults(func=_validate)


def _read(path: Path) -> list[Agreement] | None:
    """The file's agreements, or None after writing each problem (index, field, reason) to stderr."""
    try:
        return load_agreements(path)
    except ValidationFailed as exc:
        for problem in exc.problems:
            sys.stderr.write(
                f"agreement {problem.get('index', '-')}: {problem.get('field')}: {problem.get('reason')}\n"
            )
    except OSError as exc:
        sys.stderr.write(f"cannot read {path}: {exc}\n")
    return None


def _validate(args: argparse.Namespace) -> int:
    agreements = _read(args.file)
    if agreements is None:
        return 2
    for a in agreements:
        until = a.effective_to.isoformat() if a.effective_to else "open-ended"
        sys.stdout.write(f"ok  {a.licensee_id}: from {a.effective_from.isoformat()} until {until}\n")
    sys.stdout.write(f"{len(agreements)} agreements valid; nothing published\n")
    return 0


def _load(args: argparse.Namespace) -> int:
    agreements = _read(args.file)
    if agreements is None:
        return 2
    if not args.bootstrap:
        sys.stderr.write("no Kafka: pass --bootstrap or set TOLLGATE_KAFKA_BOOTSTRAP\n")
        return 2
    try:
        security = KafkaSecurity.from_env(os.environ)  # the CLI edge reads TOLLGATE_KAFKA_*
    except SettingsError as exc:
        sys.stderr.write(f"{exc}\n")
        return 2
    logging.getLogger("kafka").setLevel(logging.WARNING)  # kafka-python logs every metadata refresh
    try:
        publish_agreements(args.bootstrap, agreements, args.topic, security)
    except AgreementsPublishError as exc:
        sys.stderr.write(f"{exc}\n")
        return 1
    log.info("published %d agreements to %s; the processor and the ledger read them from there",
             len(agreements), args.topic)  # fmt: skip
    return 0
