"""Audit report sections beyond the usage evidence: alerts raised, chain heads (exposure: audit_exposure)."""

from __future__ import annotations

from collections.abc import Mapping
from html import escape
from typing import Any

from services.ledger.domain.audit_html import table, text, verdict

CHAIN_NOTE = (
    "Each table's rows for this licensee form a SHA-256 hash chain (each row hashes its content and the "
    "row before it). Keep these heads: running `tollgate ledger verify --licensee ID` later, or asking "
    "GET /v1/licensees/{id}/ledger/verify, must show the same rows and hashes at these positions, and any "
    "edited row is named as the first break."
)
ALERTS_NOTE = (
    "Each alert the processor raised for a window that overlaps this period, as the ledger stored it from "
    "the topic tollgate.alerts.v1 (once per alert id: a rule, window, level and subject fires once). "
    "Evidence: the first offending event ids, with their app, requester org and event time."
)
ALERT_HEADERS = ("detected", "rule", "severity", "window", "subject", "observed", "limit", "evidence events",
                 "app", "org", "event time")  # fmt: skip


def alerts_raised(facts: Mapping[str, Any]) -> str:
    """The alerts raised in the period with their evidence, oldest window first."""
    rows = [[a["detected_at"], a["rule"], verdict(a["severity"] != "critical", a["severity"], a["severity"]),
             ("html", f"{text(a['window_start'])} to {text(a['window_end'])}"), a["subject"] or "-",
             a["observed"], a["limit"], _event_ids(a["evidence"]["event_ids"]), a["evidence"]["app_id"],
             _org(a["evidence"]), a["evidence"]["event_time"]] for a in facts["alerts"]]  # fmt: skip
    counts = _counts(facts["alerts"])
    truncated = "<p class=\"bad\">Only the first alerts are listed: narrow the period.</p>" if facts.get(
        "alerts_truncated") else ""  # fmt: skip
    return (f"<h2>Alerts raised</h2><p>{escape(ALERTS_NOTE)}</p><p>{escape(counts)}</p>{truncated}"
            + table(ALERT_HEADERS, rows, "No alert was raised for this period."))  # fmt: skip


def _counts(alerts: list[dict[str, Any]]) -> str:
    by_rule: dict[str, int] = {}
    for alert in alerts:
        by_rule[alert["rule"]] = by_rule.get(alert["rule"], 0) + 1
    listed = ", ".join(f"{rule}: {count:,}" for rule, count in sorted(by_rule.items()))
    return f"{len(alerts):,} alerts" + (f" ({listed})." if listed else ".")


def _event_ids(ids: list[str]) -> tuple[str, str]:
    return ("html", "<br>".join(f"<code>{escape(i)}</code>" for i in ids) or "-")


def _org(evidence: Mapping[str, Any]) -> str:
    org, kind = evidence["org_id"], evidence["org_type"]
    return f"{org} ({kind})" if org and kind else org or "-"


def chain_heads(facts: Mapping[str, Any]) -> str:
    """The head of each of the licensee's hash chains when the report was generated."""
    rows = [[h["table"], h["head_seq"], ("html", f"<code>{escape(h['head_hash'] or 'empty')}</code>")]
            for h in facts["chain_heads"]]  # fmt: skip
    return (f"<h2>Ledger hash chain heads</h2><p>{escape(CHAIN_NOTE)}</p>"
            + table(["table", "rows (head position)", "head row_hash"], rows))  # fmt: skip
