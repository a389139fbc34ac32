"""The security tier: ingest and the finance API as real processes on the session stack, attacked.

`targets` starts them once per session on a schema and topics of their own (so nothing leaks to or from
other tiers), with tokens minted into a temporary hashed-token file and the demo agreements loaded.
"""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from psycopg import sql
from security_support import LICENSEE, MONTH, Spawned, Targets, call, with_search_path

from services.clients.agreements import publish_agreements
from services.core.agreements import load_agreements
from services.core.tokens import FileTokenStore
from services.demo.launcher import ServiceLauncher, free_port
from services.demo.scenario import AGREEMENTS_FILE
from services.ledger.adapters.postgres.agreements_store import wait_consumed
from services.stack import StackInfo
from services.stack.kafka import create_topics


@pytest.fixture(scope="session")
def targets(stack_info: StackInfo, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Targets]:
    """Ingest and ledger as processes, on a fresh schema and topics, with finance/auditor/ingest tokens."""
    workdir = tmp_path_factory.mktemp("security")
    schema = f"security_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(stack_info.database_url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
    owner_url = with_search_path(stack_info.database_url, schema)
    app_url = with_search_path(stack_info.app_database_url, schema)
    suffix = uuid.uuid4().hex[:8]
    topics = {"ingest": f"security.api-calls.{suffix}", "billable": f"security.billable.{suffix}",
              "dlq": f"security.billable-dlq.{suffix}",
              "agreements": f"security.agreements.{suffix}"}  # fmt: skip
    specs = {t: {"partitions": 3, "configs": {}} for t in topics.values()}
    specs[topics["agreements"]]["configs"] = {"cleanup.policy": "compact"}
    create_topics(stack_info.kafka_bootstrap, 3, specs)
    tokens_file = workdir / "tokens.json"
    store = FileTokenStore(tokens_file)
    tokens = {role: store.create(f"security-{role}", role) for role in ("ingest", "finance", "auditor")}
    endpoints = dataclasses.replace(stack_info, database_url=owner_url, app_database_url=app_url)
    launcher = ServiceLauncher(endpoints, workdir, tokens_file, {
        "TOLLGATE_INGEST_TOPIC": topics["ingest"],
        "TOLLGATE_LEDGER_TOPIC": topics["billable"],
        "TOLLGATE_LEDGER_DLQ_TOPIC": topics["dlq"],
        "TOLLGATE_LEDGER_AGREEMENTS_TOPIC": topics["agreements"],
        "TOLLGATE_LEDGER_CONSUMER_GROUP": f"security-{suffix}",
        # The default, which the launcher widens for the demo's fixed month: this tier attacks the real one.
        "TOLLGATE_INGEST_MAX_EVENT_AGE_SECONDS": "3024000",
    })  # fmt: skip
    try:
        ledger = launcher.start_ledger()
        agreements = load_agreements(AGREEMENTS_FILE)
        ends = publish_agreements(stack_info.kafka_bootstrap, agreements, topics["agreements"])
        wait_consumed(owner_url, topics["agreements"], ends, 60)  # the ledger reads them from the topic
        ingest = launcher.start_ingest()
        yield Targets(ingest.url, ledger.url, tokens, owner_url, app_url, stack_info.kafka_bootstrap,
                      topics["ingest"], [ledger.log_path, ingest.log_path])  # fmt: skip
    finally:
        launcher.stop_all()
        with psycopg.connect(stack_info.database_url, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(schema)))


@pytest.fixture(scope="session")
def http() -> Iterator[httpx.Client]:
    """One HTTP client for the tier."""
    with httpx.Client(timeout=30.0) as client:
        yield client


@pytest.fixture(scope="session")
def invoice_id(http: httpx.Client, targets: Targets) -> str:
    """October's invoice for the licensee, issued (idempotently) by finance: adjustments reference it."""
    answer = call(http, targets, "POST", f"/v1/licensees/{LICENSEE}/invoices/{MONTH}")
    assert answer.status_code in (200, 201), answer.text
    return str(answer.json()["invoice_id"])


@pytest.fixture
def spawn_service(tmp_path: Path) -> Iterator[Callable[..., Spawned]]:
    """Factory: `spawn_service("ledger", env)` runs `tollgate serve <name>` and waits for /healthz."""
    started: list[Spawned] = []

    def spawn(name: str, env: dict[str, Any]) -> Spawned:
        port, metrics = free_port(), free_port()
        upper = name.upper()
        full = {**os.environ, **env, f"TOLLGATE_{upper}_PORT": str(port),
                f"TOLLGATE_{upper}_METRICS_PORT": str(metrics)}  # fmt: skip
        log_path = tmp_path / f"{name}.log"
        with log_path.open("ab") as out:
            process = subprocess.Popen(  # noqa: S603 - our own interpreter and module
                [sys.executable, "-m", "services.cli", "serve", name],
                stdout=out, stderr=subprocess.STDOUT, env=full, start_new_session=True,
            )  # fmt: skip
        service = Spawned(process, f"http://127.0.0.1:{port}", log_path)
        started.append(service)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if process.poll() is not None:
                tail = log_path.read_text()[-2000:]
                raise AssertionError(f"{name} exited with {process.returncode}: {tail}")
            try:
                if httpx.get(f"{service.url}/healthz", timeout=1.0).status_code == 200:
                    return service
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise AssertionError(f"{name} did not answer /healthz: {log_path.read_text()[-2000:]}")

    yield spawn
    for service in started:
        if service.process.poll() is None:
            service.process.terminate()
            try:
                service.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                service.process.kill()
                service.process.wait(timeout=10)
