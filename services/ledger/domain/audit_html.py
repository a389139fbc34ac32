"""The audit evidence report as one self-contained HTML document (pure).

Every value shown passes through `html.escape`: names, app ids and use cases are licensee-provided. The
document carries its own Content-Security-Policy (no scripts, no fetches), and the API sends it too.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date, datetime
from html import escape
from typing import Any

from services.core.events import format_time
from services.ledger.domain.audit_svg import bar_chart, timeline

CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; form-action 'none'"
LINE_HEADERS = ("#", "kind", "description", "usage month", "calls", "records", "amount", "reference")
ZERO_DECIMAL = frozenset({"JPY", "KRW", "VND", "CLP", "ISK", "XXX"})
STYLE = """body{font:14px/1.4 sans-serif;margin:2em;color:#111}h1{font-size:22px}h2{margin-top:1.6em}
table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #bbb;padding:3px 8px;text-align:left}
td.n{text-align:right;font-variant-numeric:tabular-nums}.bad{color:#a00;font-weight:bold}.ok{color:#060}
svg text{font:12px sans-serif}.chart-title{font-weight:bold}.bar{fill:#4a7bb7}.axis{stroke:#888}
.access{fill:#e0a030}.mark{fill:#333}.notice{fill:#060}code{white-space:nowrap}
@page{size:A4 landscape;margin:12mm}@media print{body{margin:0;font-size:11px}h2{break-after:avoid}}"""


def text(value: Any) -> str:
    """One value as escaped text: times in RFC 3339 UTC, integers with thousands separators."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, datetime):
        return escape(format_time(value))
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, int):
        return f"{value:,}"
    return escape(str(value))


def money(minor: int, currency: str) -> str:
    """Integer minor units as `USD 1,234.56` (no decimals for zero-decimal currencies)."""
    if currency in ZERO_DECIMAL:
        return f"{escape(currency)} {minor:,}"
    sign, whole, cents = "-" if minor < 0 else "", abs(minor) // 100, abs(minor) % 100
    return f"{escape(currency)} {sign}{whole:,}.{cents:02d}"


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]], empty: str = "none") -> str:
    """An HTML table; numbers right-aligned. A cell given as ("html", markup) is already escaped markup."""
    if not rows:
        return f"<p>{escape(empty)}</p>"
    head = "".join(f"<th>{escape(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(_td(cell) for cell in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _td(cell: Any) -> str:
    if isinstance(cell, tuple) and cell[:1] == ("html",):
        return f"<td>{cell[1]}</td>"
    numeric = isinstance(cell, int) and not isinstance(cell, bool)
    return f'<td class="n">{text(cell)}</td>' if numeric else f"<td>{text(cell)}</td>"


def verdict(ok: bool, yes: str = "yes", no: str = "NO") -> tuple[str, str]:
    """A marked yes/no cell."""
    css, label = ("ok", yes) if ok else ("bad", no)
    return ("html", f'<span class="{css}">{escape(label)}</span>')


def render(facts: Mapping[str, Any], generated_at: datetime) -> str:
    """The whole document."""
    from services.ledger.domain import (  # they build on these helpers
        audit_exposure,
        audit_groups,
        audit_sections,
    )

    title = f"Audit evidence report: {facts['name']} ({facts['licensee_id']})"
    sections = [_terms(facts), _usage(facts), audit_groups.group_section(facts),
                audit_groups.shared_orgs_section(facts), _without_use_case(facts), _government(facts),
                audit_sections.alerts_raised(facts),
                _invoices(facts), _cross_check(facts), audit_exposure.exposure_section(facts),
                audit_sections.chain_heads(facts)]  # fmt: skip
    period = f"{text(facts['from'])} to {text(facts['to'])} (exclusive)"
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}"><title>{escape(title)}</title>'
        f"<style>{STYLE}</style></head><body><h1>{escape(title)}</h1>"
        f'<p>Period: <span id="period">{period}</span>. Generated {text(generated_at)} by Tollgate from its '
        "ledger. Times are UTC; amounts are exact (integer minor units).</p>"
        + "".join(sections) + "</body></html>"
    )


def _terms(facts: Mapping[str, Any]) -> str:
    rows = []
    for a in facts["agreements"]:
        plan, limits = a["plan"], a["limits"]
        notices = "; ".join(f"{n['org_id']} at {n['notified_at']}" for n in a["notices"]) or "none"
        rows.append([a["version"], a["loaded_at"], verdict(a["in_force"], "in force", "superseded"),
                     a["effective_from"], a["effective_to"] or "open-ended",
                     ("html", money(plan["monthly_fee_minor"], plan["currency"]) + " a month, "
                      + money(plan["annual_fee_minor"], plan["currency"]) + " a year"),
                     plan["included_records"], ("html", money(plan["overage_per_1000_records_minor"],
                                                              plan["currency"])),
                     _caps(limits), a["government_use"], notices])  # fmt: skip
    headers = ["version", "loaded", "status", "from", "to (exclusive)", "fees", "included records",
               "overage per 1,000 records", "caps", "government use", "government notices"]  # fmt: skip
    return "<h2>Agreement terms in force</h2>" + table(headers, rows, "no agreement covers this period")


def _caps(limits: Mapping[str, Any]) -> str:
    return (f"{limits['calls_per_month']:,} calls, {limits['records_per_month']:,} records a month, "
            f"{limits['calls_per_minute']:,} calls a minute")  # fmt: skip


def _usage(facts: Mapping[str, Any]) -> str:
    apps = facts["usage"]["apps"]
    rows = [[r["month"], r["app_id"], r["calls"], r["records"], verdict(r["registered"]), r["use_case"]]
            for r in apps]  # fmt: skip
    bars = [(f"{r['month']} {r['app_id']}", r["calls"]) for r in apps]
    record_bars = [(f"{r['month']} {r['app_id']}", r["records"]) for r in apps]
    return ("<h2>Calls and records per month and app</h2>"
            + table(["month", "app", "calls", "records", "registered", "declared use case"], rows)
            + bar_chart("Calls per month and app", bars)
            + bar_chart("Records per month and app", record_bars))  # fmt: skip


def _without_use_case(facts: Mapping[str, Any]) -> str:
    rows = [[a["app_id"], verdict(a["registered"]), a["calls"], a["records"]]
            for a in facts["usage"]["apps_without_use_case"]]  # fmt: skip
    return "<h2>Apps without a registered or declared use case</h2>" + table(
        ["app", "registered", "calls", "records"], rows)  # fmt: skip


def _government(facts: Mapping[str, Any]) -> str:
    parts = ["<h2>Government organisations</h2>"]
    if not facts["government"]:
        parts.append("<p>No government organisation received data in this period.</p>")
    for g in facts["government"]:
        rows = [[g["first_seen"], g["last_seen"], g["notified_at"] or "never", g["calls_before_notice"],
                 g["records_before_notice"], g["calls_after_notice"], g["records_after_notice"],
                 verdict(g["notice_first"]), g["government_use"], verdict(g["rule_kept"])]]  # fmt: skip
        headers = ["first access", "last access", "notified", "calls before notice", "records before notice",
                   "calls after notice", "records after notice", "notice came first", "agreement rule",
                   "rule kept"]  # fmt: skip
        parts += [f'<h3 class="org">{text(g["org_id"])}</h3>', table(headers, rows),
                  timeline(g["first_seen"], g["last_seen"], g["notified_at"])]  # fmt: skip
    return "".join(parts)


def _invoices(facts: Mapping[str, Any]) -> str:
    parts = ["<h2>Invoices and adjustments</h2>"]
    if not facts["invoices"]:
        parts.append("<p>No invoice issued for this period yet.</p>")
    for invoice in facts["invoices"]:
        currency = invoice["currency"]
        rows = [[x["line_no"], x["kind"], x["description"], x["usage_month"], x["calls"], x["records"],
                 ("html", money(x["amount_minor"], currency)), x["reference"]] for x in invoice["lines"]]
        rows.append(["", "total", "", "", "", "", ("html", money(invoice["total_minor"], currency)), ""])
        parts += [f"<h3>{text(invoice['invoice_id'])} ({text(invoice['month'])}), issued "
                  f"{text(invoice['issued_at'])}</h3>",
                  table(LINE_HEADERS, rows)]  # fmt: skip
    adjustments = [[e["entry_id"], e["created_at"], ("html", money(e["amount_minor"], e["currency"])),
                    e["reference"], e["reason"], e["invoice_id"] or "not invoiced yet"]
                   for e in facts["adjustments"]]  # fmt: skip
    parts += ["<h3>Adjustments posted in the period</h3>",
              table(["entry", "posted", "amount", "corrects", "reason", "invoice"], adjustments)]  # fmt: skip
    return "".join(parts)


def _cross_check(facts: Mapping[str, Any]) -> str:
    rows = [[c["month"], c["calls"], c["invoiced_calls"], c["records"], c["invoiced_records"],
             verdict(c["status"] == "matches", c["status"], c["status"])] for c in facts["cross_check"]]
    headers = ["usage month", "metered calls", "invoiced calls", "metered records", "invoiced records",
               "check"]  # fmt: skip
    return "<h2>Totals cross-check: metered usage against invoiced usage</h2>" + table(headers, rows)
