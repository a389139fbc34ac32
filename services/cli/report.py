"""`tollgate report` (usage, invoices and government use, read from PostgreSQL) and `tollgate ledger ...`."""

from __future__ import annotations

import argparse
import os
import sys
from datetime import timedelta
from typing import Any

from services.cli.audit import register_audit
from services.cli.verify import register_verify
from services.core.clock import FixedClock, SystemClock
from services.core.errors import TollgateError
from services.core.events import format_time, parse_time
from services.ledger.adapters.postgres.usage_licensees import month_licensees

ZERO_DECIMAL = {"JPY", "KRW", "VND", "CLP", "ISK", "XXX"}


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add the `report` and `ledger` sub-commands."""
    url = os.environ.get("TOLLGATE_APP_DATABASE_URL") or os.environ.get("TOLLGATE_DATABASE_URL", "")
    report = subparsers.add_parser("report", help="usage, invoices and government use per licensee and month")
    report.add_argument(
        "--licensee", help="one licensee (default: every licensee with usage or an agreement)"
    )
    report.add_argument("--month", help="YYYY-MM (default: last month)")
    report.add_argument("--database-url", default=url, help="default: $TOLLGATE_APP_DATABASE_URL")
    report.set_defaults(func=_report)
    register_audit(report, url)
    ledger = subparsers.add_parser("ledger", help="ledger maintenance")
    actions = ledger.add_subparsers(dest="action", required=True)
    migrate = actions.add_parser("migrate", help="apply the ledger's SQL migrations as the owner role")
    migrate.add_argument("--database-url", default=os.environ.get("TOLLGATE_DATABASE_URL", ""),
                         help="owner role URL (default: $TOLLGATE_DATABASE_URL)")  # fmt: skip
    migrate.add_argument("--app-role", default=None, help="service role to grant (default: from "
                         "$TOLLGATE_APP_DATABASE_URL, else tollgate_app)")  # fmt: skip
    migrate.set_defaults(func=_migrate)
    invoice = actions.add_parser("invoice", help="issue every due invoice now (idempotent)")
    invoice.add_argument("--database-url", default=url, help="default: $TOLLGATE_APP_DATABASE_URL")
    grace = int(os.environ.get("TOLLGATE_LEDGER_INVOICE_GRACE_HOURS", "72"))
    invoice.add_argument("--grace-hours", type=int, default=grace, help="default: 72")
    invoice.add_argument("--now", help="RFC 3339 time to invoice as of (default: the wall clock)")
    invoice.set_defaults(func=_invoice)
    register_verify(actions, url)


def _fail(message: str) -> int:
    sys.stderr.write(message + "\n")
    return 2


def _migrate(args: argparse.Namespace) -> int:
    from services.ledger.adapters.postgres.migrate import apply_migrations
    from services.ledger.settings import DEFAULT_APP_ROLE, role_of

    if not args.database_url:
        return _fail("no database: pass --database-url or set TOLLGATE_DATABASE_URL")
    app_url = os.environ.get("TOLLGATE_APP_DATABASE_URL", "")
    role = args.app_role or (role_of(app_url) if app_url else DEFAULT_APP_ROLE)
    try:
        applied = apply_migrations(args.database_url, role)
    except TollgateError as exc:
        return _fail(str(exc))
    print(
        f"applied {len(applied)} migrations: {', '.join(applied)}"
        if applied
        else "ledger schema is up to date"
    )
    return 0


def _invoice(args: argparse.Namespace) -> int:
    from services.ledger.adapters.postgres.db import url_connector
    from services.ledger.adapters.postgres.invoices import Invoicer

    if not args.database_url:
        return _fail("no database: pass --database-url or set TOLLGATE_APP_DATABASE_URL")
    clock = FixedClock(parse_time(args.now)) if args.now else SystemClock()
    invoicer = Invoicer(url_connector(args.database_url), clock, timedelta(hours=args.grace_hours))
    try:
        issued = invoicer.issue_due()
    except TollgateError as exc:
        return _fail(str(exc))
    print("\n".join(issued) if issued else "no invoice due")
    return 0


def money(minor: int, currency: str) -> str:
    """`150,775.00 USD` from minor units (two decimals except zero-decimal currencies)."""
    if currency in ZERO_DECIMAL:
        return f"{minor:,} {currency}"
    sign = "-" if minor < 0 else ""
    return f"{sign}{abs(minor) // 100:,}.{abs(minor) % 100:02d} {currency}"


def _report(args: argparse.Namespace) -> int:
    import psycopg

    from services.core.month import Month

    if not args.database_url:
        return _fail("no database: pass --database-url or set TOLLGATE_APP_DATABASE_URL")
    try:
        month = Month.parse(args.month) if args.month else _last_month()
    except ValueError as exc:
        return _fail(f"--month: {exc}")
    try:
        with psycopg.connect(args.database_url) as conn:
            for licensee in [args.licensee] if args.licensee else month_licensees(conn, month):
                print("\n".join(_section(conn, licensee, month)) + "\n")
    except (psycopg.Error, TollgateError) as exc:
        return _fail(f"report failed: {exc}")
    return 0


def _last_month() -> Any:
    from services.core.month import Month

    now = SystemClock().now()
    return Month.of(now.replace(day=1) - timedelta(days=1))


def _table(headers: list[str], rows: list[list[Any]]) -> list[str]:
    cells = [[str(c) for c in row] for row in [headers, *rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    lines = []
    for row in cells:
        # Numbers right-aligned so that amounts line up; text left-aligned.
        padded = [
            c.rjust(w) if c[:1].isdigit() or c[:1] == "-" else c.ljust(w)
            for c, w in zip(row, widths, strict=True)
        ]
        lines.append(("  " + "  ".join(padded)).rstrip())
    return lines


def _section(conn: Any, licensee: str, month: Any) -> list[str]:
    from services.ledger.adapters.postgres import repository

    report = repository.report(conn, licensee, month.start, month.end)
    out = [f"== {licensee}, {month}", "usage:"]
    out += _table(["app", "calls", "records", "use case"],
                  [[r["app_id"], f"{r['calls']:,}", f"{r['records']:,}", r["use_case"] or "(none registered)"]
                   for r in report["apps"]]) or ["  none"]  # fmt: skip
    invoice = repository.invoice(conn, licensee, month)
    if invoice is None:
        out.append("invoice: not issued yet (`tollgate ledger invoice` issues due invoices)")
    else:
        currency = invoice["currency"]
        out.append(f"invoice {invoice['invoice_id']}, issued {format_time(invoice['issued_at'])}:")
        lines = [
            [x["line_no"], x["kind"], x["description"], money(x["amount_minor"], currency)]
            for x in invoice["lines"]
        ]
        out += _table(
            ["#", "kind", "description", "amount"],
            [*lines, ["", "total", "", money(invoice["total_minor"], currency)]],
        )
    out.append("government use:")
    orgs = [
        [g["org_id"], format_time(g["first_seen"]), format_time(g["last_seen"]), g["calls"],
         g["calls_before_notice"], g["calls_after_notice"], g["records"],
         "yes" if g["notice_first"] else "NO"]
        for g in report["government"]
    ]  # fmt: skip
    headers = ["org", "first seen", "last seen", "calls", "before notice", "after notice", "records",
               "notice first"]  # fmt: skip
    out += _table(headers, orgs) if orgs else ["  none"]
    return out
