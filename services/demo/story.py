"""The demo story: stack up, services up, agreements loaded, the scenario replayed, the results told."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from services.clients.agreements import publish_agreements
from services.clients.replay import replay_http
from services.core import topics
from services.core.agreements import Agreement, load_agreements
from services.core.month import Month
from services.core.tokens import FileTokenStore
from services.demo.launcher import RunningService, ServiceLauncher
from services.demo.observe import metric_sum, unique_alerts
from services.demo.scenario import AGREEMENTS_FILE, demo_calls
from services.stack.state import StackInfo

log = logging.getLogger(__name__)
DEMO_MONTH = "2026-10"
SCRAPE_JOBS = {"ingest": "tollgate-ingest", "processor": "tollgate-processor", "ledger": "tollgate-ledger"}


@dataclass
class DemoRun:
    """A running demo: the stack, the three services, and the tokens minted for them."""

    stack: StackInfo
    launcher: ServiceLauncher
    tokens: dict[str, str]
    services: dict[str, RunningService] = field(default_factory=dict)
    agreements: list[Agreement] = field(default_factory=list)

    @property
    def ledger_url(self) -> str:
        """Base URL of the finance/audit API."""
        return self.services["ledger"].url

    def stop(self) -> None:
        """Stop the services (the stack is the caller's)."""
        self.launcher.stop_all()


def mint_tokens(path: Path) -> dict[str, str]:
    """Fresh tokens for the demo gateways, finance and the auditor (stored hashed in `path`)."""
    path.unlink(missing_ok=True)
    store = FileTokenStore(path)
    sources = sorted({call.source for call in demo_calls()})
    return {
        "ingest": store.create("demo-gateways", "ingest", sources),
        "finance": store.create("demo-finance", "finance"),
        "auditor": store.create("demo-auditor", "auditor"),
    }


def start(stack: StackInfo, workdir: Path, app_id: str = "tollgate-processor") -> DemoRun:
    """Start ledger, processor and ingest against `stack`, and have Prometheus scrape them."""
    workdir.mkdir(parents=True, exist_ok=True)
    tokens_file = workdir / "tokens.json"
    run = DemoRun(stack, ServiceLauncher(stack, workdir, tokens_file), mint_tokens(tokens_file))
    try:
        run.services["ledger"] = run.launcher.start_ledger()
        run.services["processor"] = run.launcher.start_processor(app_id=app_id)
        run.services["ingest"] = run.launcher.start_ingest()
    except Exception:
        run.stop()
        raise
    for name, service in run.services.items():
        stack.register_scrape_target(SCRAPE_JOBS[name], service.metrics_address)
    return run


def load_demo_agreements(
    run: DemoRun, path: Path = AGREEMENTS_FILE, timeout: float = 60.0
) -> list[Agreement]:
    """Validate the agreements, publish them to the compacted topic, and wait until the ledger stored them."""
    from services.ledger.adapters.postgres.agreements_store import wait_consumed

    agreements = load_agreements(path)
    ends = publish_agreements(run.stack.kafka_bootstrap, agreements)
    wait_consumed(run.stack.database_url, topics.AGREEMENTS, ends, timeout)
    run.agreements = agreements
    return agreements


def replay(run: DemoRun, on_progress: Callable[[int, int], None] | None = None) -> int:
    """Send the scenario's calls through the HTTP ingest; return how many were accepted."""
    events = [call.to_cloudevent() for call in demo_calls()]
    result = replay_http(events, run.services["ingest"].url, run.tokens["ingest"], 500, on_progress)
    return result.accepted


def processed(run: DemoRun) -> int:
    """Events the processor has taken a decision on (counted, duplicate, replayed, late or invalid)."""
    return int(metric_sum(run.services["processor"].metrics_address, "tollgate_processor_events_total"))


def alerts_so_far(run: DemoRun) -> int:
    """Alerts the processor has emitted."""
    return int(metric_sum(run.services["processor"].metrics_address, "tollgate_alerts_emitted_total"))


def open_usage_partitions(run: DemoRun) -> int:
    """Input partitions where the processor holds usage buckets not yet sent as billable deltas."""
    address = run.services["processor"].metrics_address
    return int(metric_sum(address, "tollgate_processor_open_usage_partitions"))


def ledger_calls(run: DemoRun) -> int:
    """Calls the ledger's usage entries add up to (each aggregated delta holds many)."""
    import psycopg

    with psycopg.connect(run.stack.database_url) as conn:
        row = conn.execute("SELECT coalesce(sum(calls), 0) FROM usage_entries").fetchone()
    return int(row[0]) if row else 0


def wait_until_settled(run: DemoRun, expected: int, timeout: float = 180.0) -> None:
    """Wait until the processor has handled every expected event and sent all its usage buckets, and
    the ledger's usage adds up to every expected call (the buckets flush every few seconds)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if processed(run) >= expected and open_usage_partitions(run) == 0 and ledger_calls(run) >= expected:
            return
        time.sleep(0.5)
    raise TimeoutError(
        f"after {timeout:.0f}s: processor handled {processed(run)} (usage open in"
        f" {open_usage_partitions(run)} partitions), ledger holds {ledger_calls(run)} calls"
        f" of {expected} events; logs in {run.launcher.workdir}"
    )


def alerts(run: DemoRun) -> list[dict[str, Any]]:
    """Every alert raised, once each."""
    return unique_alerts(run.stack.kafka_bootstrap, topics.ALERTS)


def _api(run: DemoRun, method: str, path: str, role: str) -> Any:
    response = httpx.request(
        method, run.ledger_url + path, headers={"Authorization": f"Bearer {run.tokens[role]}"}, timeout=30.0
    )
    response.raise_for_status()
    return response.json()


def accounts(run: DemoRun) -> list[Agreement]:
    """The licensees that are billed: every agreement but a group's own record (it only caps a sum)."""
    return [a for a in run.agreements if not a.is_group]


def groups(run: DemoRun) -> list[Agreement]:
    """The licensee groups' own records."""
    return [a for a in run.agreements if a.is_group]


def invoices(run: DemoRun, month: str = DEMO_MONTH) -> dict[str, dict[str, Any]]:
    """Issue (idempotently) and fetch each billed licensee's invoice for `month`."""
    return {
        a.licensee_id: _api(run, "POST", f"/v1/licensees/{a.licensee_id}/invoices/{month}", "finance")
        for a in accounts(run)
    }


def usage_report(run: DemoRun, licensee_id: str) -> dict[str, Any]:
    """The auditor's usage report of one licensee."""
    return dict(_api(run, "GET", f"/v1/licensees/{licensee_id}/usage-report", "auditor"))


def exposure(run: DemoRun, licensee_id: str, month: str = DEMO_MONTH) -> dict[str, Any]:
    """A licensee's month at published list price against what its agreement billed."""
    return dict(_api(run, "GET", f"/v1/licensees/{licensee_id}/exposure/{month}", "finance"))


def audit_report_url(run: DemoRun, licensee_id: str, month: str = DEMO_MONTH) -> str:
    """Where an auditor reads a licensee's evidence report for the demo month."""
    start = Month.parse(month)
    return f"{run.ledger_url}/v1/licensees/{licensee_id}/audit-report?from={start}&to={start.next()}"
