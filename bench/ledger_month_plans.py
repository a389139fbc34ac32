"""The reads of bench.ledger_month: the API's answers on the loaded month, timed, and EXPLAIN ANALYZE of
the SQL behind each (partitions scanned, index-only or not, execution time)."""

from __future__ import annotations

import re
import statistics
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
from starlette.testclient import TestClient

from services.core.agreements import parse_agreement
from services.core.clock import FixedClock
from services.core.tokens import InMemoryTokenStore
from services.ledger.adapters.http.api import create_app
from services.ledger.adapters.postgres import usage_query, usage_sums
from services.ledger.adapters.postgres.agreements_store import insert_agreement
from services.ledger.adapters.postgres.db import url_connector
from services.ledger.adapters.postgres.invoices import Invoicer
from services.ledger.domain.pricing import Month
from services.ledger.settings import LedgerSettings

BASE = "/v1/licensees/{l}"
MONTH = ("2026-09-01T00:00:00Z", "2026-10-01T00:00:00Z")
START, END = datetime(2026, 9, 1, tzinfo=UTC), datetime(2026, 10, 1, tzinfo=UTC)
USAGE_QUERIES: tuple[tuple[str, dict[str, str]], ...] = (
    ("usage_month", {}),
    ("usage_day_by_app_org", {"window": "day", "group_by": "app,org"}),
    ("usage_hour_by_app", {"window": "hour", "group_by": "app"}),
)
_PARTITION = re.compile(r" on (usage_entries_\w+)")


def agreement(licensee_id: str) -> dict[str, Any]:
    """The licensee's agreement: a monthly fee, records overage, its 8 apps, government after notice."""
    return {
        "licensee_id": licensee_id, "name": "Bench Month", "effective_from": "2026-01-01T00:00:00Z",
        "effective_to": None, "government_use": "notice_required",
        "plan": {"monthly_fee_minor": 15_000_000, "annual_fee_minor": 0, "currency": "USD",
                 "included_records": 1_000_000_000, "overage_per_1000_records_minor": 25},
        "limits": {"calls_per_month": 70_000_000, "records_per_month": 2_000_000_000,
                   "calls_per_minute": 5_000, "warning_ratio": 0.8, "severe_ratio": 1.5},
        "apps": [{"app_id": f"app-{a}", "use_case": "Bench" if a < 6 else None} for a in range(8)],
        "government_notices": [{"org_id": f"{licensee_id}-org-9", "notified_at": "2026-08-01T00:00:00Z",
                                "use_case": "Statistics"}],
    }  # fmt: skip


def _median_ms(call: Callable[[], Any], repeat: int, runs: dict[str, list[float]], name: str) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        call()
        times.append(round((time.perf_counter() - started) * 1000, 1))
    runs[name] = times
    return round(statistics.median(times), 1)


def _get(client: TestClient, path: str, headers: dict[str, str], **params: str) -> Callable[[], Any]:
    def call() -> Any:
        answer = client.get(path, headers=headers, params=params)
        assert answer.status_code == 200, (path, answer.status_code, answer.text[:300])
        return answer

    return call


def explain(conn: psycopg.Connection, query: Any, params: Any) -> dict[str, Any]:
    """EXPLAIN (ANALYZE, BUFFERS) of one query: partitions it touched, its scans and its time."""
    conn.execute(usage_sums.READ_SETTINGS)  # as the API's reads do
    text = [row[0] for row in conn.execute(psycopg.sql.SQL("EXPLAIN (ANALYZE, BUFFERS) ") + query, params)]
    conn.rollback()
    scans = sorted({m.group(0).strip() for line in text for m in [re.search(r"(Parallel )?[\w ]*Scan", line)]
                    if m and "usage_entries" in line})  # fmt: skip
    took = next((line for line in text if line.startswith("Execution Time")), "")
    return {"partitions": sorted({m for line in text for m in _PARTITION.findall(line)}), "scans": scans,
            "execution_ms": float(took.split(":")[1].split()[0]) if took else None, "plan": text}  # fmt: skip


def plans(conn: psycopg.Connection, licensee: str) -> dict[str, Any]:
    """The SQL of the invoice, the report (app months and government split) and /v1/usage, explained."""
    segments = {"lo": [START], "hi": [END], "licensee": licensee, "start": START, "end": END}
    query = usage_query.parse_query({"licensee": licensee, "from": MONTH[0], "to": MONTH[1],
                                     "window": "day", "group_by": "app,org", "limit": "10000"})  # fmt: skip
    values = {"licensee": licensee, "start": START, "end": END, "limit": 10001}
    notices = ([f"{licensee}-org-9"], [datetime(2026, 8, 1, tzinfo=UTC)])
    sql = psycopg.sql.SQL
    return {
        "invoice_usage_by_segment": explain(conn, sql(usage_sums.USAGE_BY_SEGMENT), segments),
        "report_app_months": explain(conn, sql(usage_sums.APP_MONTHS), (licensee, START, END)),
        "report_government": explain(conn, sql(usage_sums.GOVERNMENT), (*notices, licensee, START, END)),
        "usage_day_by_app_org": explain(conn, usage_query.statement(query), values),
    }


def _draft(conn: psycopg.Connection, invoicer: Invoicer, licensee: str) -> None:
    invoicer.draft(conn, licensee, Month.parse("2026-09"))
    conn.rollback()


def reads(conn: psycopg.Connection, url: str, licensee: str, repeat: int) -> dict[str, Any]:
    """Median milliseconds of each answer through the API (starlette TestClient, in process), and plans."""
    insert_agreement(conn, parse_agreement(agreement(licensee)))
    conn.commit()
    tokens = InMemoryTokenStore()
    settings = LedgerSettings(kafka_bootstrap="127.0.0.1:9", app_database_url=url, tokens_file=Path("unused"))
    app = create_app(settings, url_connector(url), tokens, FixedClock(datetime(2026, 10, 5, tzinfo=UTC)))
    auditor = {"Authorization": f"Bearer {tokens.create('a', 'auditor')}"}
    finance = {"Authorization": f"Bearer {tokens.create('f', 'finance')}"}
    base = BASE.format(l=licensee)
    with TestClient(app) as client:
        started = time.perf_counter()
        issued = client.post(f"{base}/invoices/2026-09", headers=finance)
        ms = {"invoice_issue_first": round((time.perf_counter() - started) * 1000, 1)}
        assert issued.status_code == 201, issued.text[:300]
        invoicer = Invoicer(
            url_connector(url), FixedClock(datetime(2026, 10, 5, tzinfo=UTC)), timedelta(hours=72)
        )
        runs: dict[str, list[float]] = {}
        draft = lambda: _draft(conn, invoicer, licensee)  # noqa: E731 - one timed call
        ms["invoice_draft"] = _median_ms(draft, repeat, runs, "invoice_draft")
        invoice = _get(client, f"{base}/invoices/2026-09", auditor)
        ms["invoice_get"] = _median_ms(invoice, repeat, runs, "invoice_get")
        report = _get(client, f"{base}/usage-report", auditor, **{"from": "2026-09", "to": "2026-10"})
        ms["usage_report"] = _median_ms(report, repeat, runs, "usage_report")
        answers: dict[str, Any] = {"invoice": invoice().json(), "report": report().json()}
        for name, extra in USAGE_QUERIES:
            params = {"licensee": licensee, "from": MONTH[0], "to": MONTH[1], "limit": "10000", **extra}
            ms[name] = _median_ms(_get(client, "/v1/usage", auditor, **params), repeat, runs, name)
            answers[name] = _get(client, "/v1/usage", auditor, **params)().json()
    return {"ms": ms, "reads_runs_ms": runs, "answers": summarise(answers), "plans": plans(conn, licensee)}


def summarise(answers: dict[str, Any]) -> dict[str, Any]:
    """The figures of each answer that the generator's totals decide: calls, records, government split."""
    lines = answers["invoice"]["lines"]
    usage = [line for line in lines if line["kind"] in ("usage", "unagreed_usage")]
    orgs = answers["report"]["government"]
    out: dict[str, Any] = {
        "invoice": {"total_minor": answers["invoice"]["total_minor"], "lines": len(lines),
                    "calls": sum(x["calls"] for x in usage), "records": sum(x["records"] for x in usage)},
        "report": {"calls": sum(a["calls"] for a in answers["report"]["apps"]),
                   "records": sum(a["records"] for a in answers["report"]["apps"]),
                   "government_calls_after_notice": sum(o["calls_after_notice"] for o in orgs),
                   "government_calls_before_notice": sum(o["calls_before_notice"] for o in orgs)},
    }  # fmt: skip
    for name, _ in USAGE_QUERIES:
        rows = answers[name]["rows"]
        out[name] = {"rows": len(rows), "calls": sum(r["calls"] for r in rows),
                     "records": sum(r["records"] for r in rows),
                     "truncated": answers[name]["truncated"]}  # fmt: skip
    return out


def exact(reads: dict[str, Any], expected: dict[str, int]) -> dict[str, bool]:
    """Whether every answer's figures equal the generator's: calls, records, all government calls after
    notice (its notice predates the month)."""
    got = reads["answers"]
    checks = {name: got[name]["calls"] == expected["calls"] and got[name]["records"] == expected["records"]
              for name in ("invoice", "report", *(n for n, _ in USAGE_QUERIES))}  # fmt: skip
    checks["government_split"] = (
        got["report"]["government_calls_after_notice"] == expected["government_calls"]
        and got["report"]["government_calls_before_notice"] == 0
    )
    checks["all"] = all(checks.values())
    return checks
