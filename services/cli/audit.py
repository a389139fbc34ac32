"""`tollgate report audit`: the audit evidence report of one licensee and period, as HTML or PDF (`.pdf`)."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from services.core.clock import SystemClock
from services.core.errors import TollgateError


def register_audit(report: argparse.ArgumentParser, database_url: str) -> None:
    """Add `report audit --licensee X --from F --to T -o FILE` under `report`."""
    kinds = report.add_subparsers(dest="kind", metavar="{audit}")
    audit = kinds.add_parser("audit", help="the audit evidence report as an HTML or PDF document")
    audit.add_argument("--licensee", required=True, help="the licensee id")
    audit.add_argument("--from", dest="start", required=True, help="YYYY-MM-DD, YYYY-MM or RFC 3339")
    audit.add_argument("--to", dest="end", required=True, help="exclusive, like --from")
    audit.add_argument(
        "-o",
        "--output",
        type=Path,
        required=True,
        help="the file to write: PDF (headless Chromium) when it ends in .pdf, else HTML",
    )
    audit.add_argument("--database-url", default=database_url, help="default: $TOLLGATE_APP_DATABASE_URL")
    catalogue = os.environ.get("TOLLGATE_LEDGER_PRICE_CATALOGUE")
    audit.add_argument("--price-catalogue", type=Path, default=catalogue,
                       help="published tiers for the exposure section; default: "
                            "$TOLLGATE_LEDGER_PRICE_CATALOGUE, else the shipped catalogue")  # fmt: skip
    audit.set_defaults(func=_audit)


def _audit(args: argparse.Namespace) -> int:
    import psycopg

    from services.ledger.adapters import pdf
    from services.ledger.adapters.postgres import audit_data
    from services.ledger.domain import audit_html, params
    from services.ledger.domain.catalogue import DEFAULT_CATALOGUE, load_catalogue
    from services.ledger.errors import BadParameter

    if not args.database_url:
        return _fail("no database: pass --database-url or set TOLLGATE_APP_DATABASE_URL")
    try:
        licensee = params.licensee(args.licensee)
        start, end = params.required_range({"from": args.start, "to": args.end})
        catalogue = load_catalogue(Path(args.price_catalogue or DEFAULT_CATALOGUE))
        with psycopg.connect(args.database_url) as conn:
            facts = audit_data.audit_facts(conn, licensee, start, end, catalogue)
    except BadParameter as exc:
        return _fail(f"--{exc.field.replace('licensee_id', 'licensee')}: {exc.reason}")
    except (psycopg.Error, TollgateError) as exc:
        return _fail(f"audit report failed: {exc}")
    document = audit_html.render(facts, SystemClock().now())
    if args.output.suffix.lower() == ".pdf":
        chromium = os.environ.get("TOLLGATE_LEDGER_CHROMIUM", "").strip() or "chromium"
        try:
            args.output.write_bytes(pdf.html_to_pdf(document, chromium))
        except pdf.PdfUnavailable as exc:
            return _fail(f"no PDF written: {exc}")
    else:
        args.output.write_text(document, encoding="utf-8")
    print(f"audit report of {licensee} for {start:%Y-%m-%d} to {end:%Y-%m-%d} written to {args.output}")
    return 0


def _fail(message: str) -> int:
    sys.stderr.write(message + "\n")
    return 2
