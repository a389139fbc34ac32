"""`tollgate agreements load` publishes only, and the ledger service shows what it published: a loaded
agreement is in the finance API within seconds, a renewal stands beside it, and a restarted ledger re-reads
nothing (it resumes at the offsets it stored with the rows)."""

from __future__ import annotations

import logging
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from ledger_support import LedgerDb, wait_for
from test_ledger_agreements import first_term, renewal

from services.core.tokens import FileTokenStore
from services.stack.ports import free_ports

pytestmark = pytest.mark.integration
log = logging.getLogger(__name__)
REPORT = "/v1/licensees/pebble/audit-report?from=2026-10-01&to=2027-03-01"
ROOT = Path(__file__).resolve().parents[3]


class Ledger:
    """`tollgate serve ledger` on the test's schema and agreements topic, restartable."""

    def __init__(self, db: LedgerDb, bootstrap: str, topics: dict[str, str], work: Path) -> None:
        port, metrics = free_ports(2)
        self.url = f"http://127.0.0.1:{port}"
        self.log = work / "ledger.log"
        tokens = work / "tokens.json"
        self.token = FileTokenStore(tokens).create("finance", "finance")
        self.env = {"PATH": os.environ.get("PATH", ""), "TOLLGATE_KAFKA_BOOTSTRAP": bootstrap,
                    "TOLLGATE_APP_DATABASE_URL": db.app_url, "TOLLGATE_TOKENS_FILE": str(tokens),
                    "TOLLGATE_LEDGER_PORT": str(port), "TOLLGATE_LEDGER_METRICS_PORT": str(metrics),
                    "TOLLGATE_LEDGER_TOPIC": topics["billable"], "TOLLGATE_LEDGER_DLQ_TOPIC": topics["dlq"],
                    "TOLLGATE_LEDGER_AGREEMENTS_TOPIC": topics["agreements"],
                    "TOLLGATE_LEDGER_CONSUME_ALERTS": "false",
                    "TOLLGATE_LEDGER_INVOICE_INTERVAL_SECONDS": "3600"}  # fmt: skip
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        """Start the service and wait until it answers /readyz."""
        with self.log.open("ab") as log:
            self.process = subprocess.Popen([sys.executable, "-m", "services.cli", "serve", "ledger"],
                                            env=self.env, stdout=log, stderr=subprocess.STDOUT)  # fmt: skip
        wait_for(self._ready, 60, "the ledger to be ready")

    def stop(self) -> None:
        """SIGTERM, and the service exits 0."""
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)
        assert self.process.wait(timeout=30) == 0, self.log.read_text()[-3000:]

    def versions(self) -> list[dict[str, Any]]:
        """The agreement versions the finance API shows for pebble's late 2026 and early 2027."""
        headers = {"Authorization": f"Bearer {self.token}", "Accept": "application/json"}
        response = httpx.get(self.url + REPORT, headers=headers, timeout=10)
        response.raise_for_status()
        return list(response.json()["agreements"])

    def _ready(self) -> bool:
        assert self.process is not None and self.process.poll() is None, self.log.read_text()[-3000:]
        try:
            return httpx.get(self.url + "/readyz", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False


@pytest.fixture
def ledger(
    ledger_db: LedgerDb, kafka_bootstrap: str, new_topic: Callable[..., str], tmp_path: Path
) -> Iterator[Ledger]:
    """The ledger service on fresh billable, dead-letter and (compacted) agreements topics."""
    topics = {"billable": new_topic(partitions=2, suffix="billable"),
              "dlq": new_topic(partitions=1, suffix="dlq"),
              "agreements": new_topic(partitions=3, compacted=True, suffix="agreements")}  # fmt: skip
    service = Ledger(ledger_db, kafka_bootstrap, topics, tmp_path)
    service.start()
    try:
        yield service
    finally:
        if service.process is not None and service.process.poll() is None:
            service.process.kill()


def load(ledger: Ledger, db: LedgerDb, work: Path, *documents: dict[str, Any]) -> float:
    """`tollgate agreements load` of `documents` (with a PostgreSQL URL in its environment, which it must not
    use); return when it returned, by the monotonic clock."""
    path = work / f"agreements-{time.monotonic_ns()}.json"
    path.write_bytes(orjson.dumps({"agreements": list(documents)}))
    env = {**ledger.env, "TOLLGATE_DATABASE_URL": db.owner_url}
    command = [sys.executable, "-m", "services.cli", "agreements", "load", str(path),
               "--topic", ledger.env["TOLLGATE_LEDGER_AGREEMENTS_TOPIC"]]  # fmt: skip
    done = subprocess.run(command, env=env, cwd=ROOT, capture_output=True, timeout=60, check=False)  # noqa: S603
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    return time.monotonic()


def test_a_loaded_agreement_and_its_renewal_show_in_the_finance_api_within_seconds_and_survive_a_restart(
    ledger: Ledger, ledger_db: LedgerDb, tmp_path: Path
) -> None:
    loaded = load(ledger, ledger_db, tmp_path, first_term())
    wait_for(lambda: len(ledger.versions()) == 1, 5, "the loaded agreement in the finance API", interval=0.05)
    seen = time.monotonic() - loaded
    loaded = load(ledger, ledger_db, tmp_path, renewal())
    wait_for(lambda: len(ledger.versions()) == 2, 5, "the renewal in the finance API", interval=0.05)
    log.info("agreement in the API %.2fs after load returned, renewal %.2fs", seen, time.monotonic() - loaded)
    first, second = ledger.versions()
    assert (first["effective_from"], first["plan"]["monthly_fee_minor"], first["in_force"]) == (
        "2026-03-01T00:00:00Z", 10_000, True)  # fmt: skip
    assert (second["effective_from"], second["plan"]["monthly_fee_minor"], second["in_force"]) == (
        "2027-01-01T00:00:00Z", 12_000, True)  # fmt: skip
    # Every row came through the consumer, with its record: the CLI wrote nothing to PostgreSQL.
    sources = ledger_db.rows("SELECT kafka_topic, kafka_offset IS NOT NULL FROM agreements")
    assert sources == [(ledger.env["TOLLGATE_LEDGER_AGREEMENTS_TOPIC"], True)] * 2
    ledger.stop()
    ledger.start()
    load(ledger, ledger_db, tmp_path, renewal())  # the same document again: nothing new
    topic = ledger.env["TOLLGATE_LEDGER_AGREEMENTS_TOPIC"]
    query = "SELECT sum(next_offset) FROM consumer_offsets WHERE topic = %s"
    wait_for(lambda: ledger_db.scalar(query, (topic,)) == 3, 10, "the restarted ledger to read the re-load")
    assert ledger_db.scalar("SELECT count(*) FROM agreements") == 2
    assert len(ledger.versions()) == 2
    text = ledger.log.read_text()
    assert text.count(" stored (") == 2, "a version was stored twice"
    # The restarted agreement consumer resumed where the first one stored its offsets, not at the start.
    assert re.search(r"positioned at \{\d+: 2\}", text), text[-3000:]
