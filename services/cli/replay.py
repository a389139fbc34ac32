"""`tollgate replay FILE`: send CloudEvents (JSON lines or array) over HTTP ingest or straight to Kafka."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from services.clients.replay import check_events, load_events, replay_http, replay_kafka
from services.core import topics
from services.core.errors import SettingsError
from services.core.security import KafkaSecurity


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the `replay` sub-command."""
    parser = subparsers.add_parser("replay", help="send CloudEvents from FILE (JSON lines or array)")
    parser.add_argument("file", type=Path)
    target = parser.add_mutually_exclusive_group()
    target.add_argument(
        "--url",
        default=os.environ.get("TOLLGATE_INGEST_URL", ""),
        help="ingest base URL (default: $TOLLGATE_INGEST_URL)",
    )
    target.add_argument("--kafka", metavar="BOOTSTRAP", default="", help="produce straight to Kafka instead")
    parser.add_argument(
        "--token",
        default=os.environ.get("TOLLGATE_INGEST_TOKEN", ""),
        help="ingest bearer token (default: $TOLLGATE_INGEST_TOKEN)",
    )
    parser.add_argument("--batch", type=int, default=500, help="events per request (default 500)")
    parser.add_argument("--topic", default=topics.API_CALLS, help="topic for --kafka")
    parser.add_argument(
        "--allow-invalid",
        action="store_true",
        help="with --kafka, send schema-invalid events too (they go to the DLQ)",
    )
    parser.set_defaults(func=_replay)


def _replay(args: argparse.Namespace) -> int:
    events = load_events(args.file)
    if not 1 <= args.batch <= 1000:
        print("--batch must be between 1 and 1000", file=sys.stderr)
        return 2
    if args.kafka:
        if not args.allow_invalid:
            check_events(events)
        try:
            security = KafkaSecurity.from_env(os.environ)  # the CLI edge reads TOLLGATE_KAFKA_*
        except SettingsError as exc:
            print(exc, file=sys.stderr)
            return 2
        result = replay_kafka(events, args.kafka, args.topic, security=security)
    elif args.url and args.token:
        result = replay_http(events, args.url, args.token, args.batch)
    else:
        print(
            "give --url and --token (or $TOLLGATE_INGEST_URL and $TOLLGATE_INGEST_TOKEN), or --kafka",
            file=sys.stderr,
        )
        return 2
    print(
        f"sent {result.sent}, accepted {result.accepted}, duplicates {result.duplicates}, "
        f"retries {result.retries}"
    )
    return 0
