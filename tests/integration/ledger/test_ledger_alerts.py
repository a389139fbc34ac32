"""Alerts from the real broker into the ledger: written in Kafka transactions, stored once across a restart
and a failed batch, refused records dead-lettered with their origin, chained, and shown to auditors."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from kafka import KafkaProducer
from ledger_support import LedgerDb, settings_for
from test_ledger_transactions import _end_offsets

from services.core.events import AlertRaised, dumps
from services.ledger.adapters.kafka.alert_consumer import AlertConsumer
from services.ledger.adapters.postgres import chain_store
from services.ledger.settings import LedgerSettings

pytestmark = pytest.mark.integration

OCT = datetime(2026, 10, 1, tzinfo=UTC)
NOV = datetime(2026, 11, 1, tzinfo=UTC)


def omnisoft_alerts(count: int, start: int = 0) -> list[AlertRaised]:
    """`count` distinct alerts: rate breaches in October minutes, each with its offending call."""
    out = []
    for i in range(start, start + count):
        minute = OCT + timedelta(days=19, hours=10, minutes=i)
        out.append(AlertRaised(
            licensee_id="omnisoft" if i % 3 else "pebble", rule="rate.breach", severity="critical",
            window_start=minute, window_end=minute + timedelta(minutes=1),
            detected_at=minute + timedelta(seconds=30), subject="calls", metric="calls", observed=150 + i,
            limit=100, event_ids=(f"omnisoft-{i:06d}",),
            app_id="omni-search", org_id="customer-burst", org_type="commercial",
            event_time=minute))  # fmt: skip
    return out


def produce_in_transactions(bootstrap: str, topic: str, committed: list[bytes], aborted: list[bytes]) -> None:
    """Each committed value in a transaction of up to 4, then the aborted ones in one aborted transaction."""
    producer = KafkaProducer(bootstrap_servers=bootstrap, transactional_id=f"alerts-{uuid.uuid4().hex[:8]}")
    producer.init_transactions()
    for start in range(0, len(committed), 4):
        producer.begin_transaction()
        for value in committed[start : start + 4]:
            producer.send(topic, key=value[-12:], value=value)
        producer.commit_transaction()
    if aborted:
        producer.begin_transaction()
        for value in aborted:
            producer.send(topic, key=b"aborted", value=value)
        producer.flush()
        producer.abort_transaction()
    producer.close()


def values(alerts: list[AlertRaised]) -> list[bytes]:
    """The records the processor publishes for `alerts`."""
    return [dumps(alert.to_cloudevent()) for alert in alerts]


@pytest.fixture
def alert_topics(new_topic: Callable[..., str]) -> tuple[str, str]:
    """A fresh 3-partition alerts topic and its dead-letter topic."""
    return new_topic(partitions=3, suffix="alerts"), new_topic(partitions=1, suffix="alerts-dlq")


def alert_settings_for(bootstrap: str, db: LedgerDb, topics: tuple[str, str]) -> LedgerSettings:
    """Ledger settings whose alerts consumer reads `topics`."""
    return settings_for(bootstrap, db, ("unused.billable", "unused.dlq"), alerts_topic=topics[0],
                        alerts_dlq_topic=topics[1])  # fmt: skip


class FailingOnce(AlertConsumer):
    """Inserts its first batch, then fails before the commit, as a dropped connection would."""

    failed = False

    def _insert(self, cursor: psycopg.Cursor, rows: object) -> int:  # type: ignore[override]
        inserted = super()._insert(cursor, rows)  # type: ignore[arg-type]
        if not self.failed:
            self.failed = True
            raise psycopg.OperationalError("connection lost before commit (test)")
        return inserted


def test_transactional_alerts_are_stored_once_across_a_failed_batch_and_a_restart(
    ledger_db: LedgerDb, kafka_bootstrap: str, alert_topics: tuple[str, str]
) -> None:
    topic, dlq = alert_topics
    first, second = omnisoft_alerts(12), omnisoft_alerts(8, start=12)
    aborted = values(omnisoft_alerts(3, 90))
    produce_in_transactions(kafka_bootstrap, topic, [*values(first), b"{not an alert"], aborted)
    settings = alert_settings_for(kafka_bootstrap, ledger_db, alert_topics)
    consumer = FailingOnce(settings)
    consumer.drain(timeout=60)
    consumer.close()
    assert consumer.failed and ledger_db.scalar("SELECT count(*) FROM alerts") == 12
    # The processor re-sends after a crash: the same alert ids again, then new ones; a new ledger resumes.
    produce_in_transactions(kafka_bootstrap, topic, values(first[:5] + second), [])
    restarted = AlertConsumer(settings)
    restarted.drain(timeout=60)
    restarted.close()
    stored = ledger_db.rows("SELECT alert_id::text, count(*) FROM alerts GROUP BY 1")
    assert sorted(a for a, _ in stored) == sorted(a.alert_id for a in first + second)
    assert {n for _, n in stored} == {1}
    dead = ledger_db.rows("SELECT topic, kafka_partition, kafka_offset, reason FROM dead_letters")
    assert len(dead) == 1 and dead[0][0] == topic and dead[0][3].startswith("not JSON")
    # The DLQ topic is at least once: the failed batch had published the dead letter before it rolled back.
    assert sum(_end_offsets(kafka_bootstrap, dlq).values()) == 2
    offsets = dict(ledger_db.rows(
        "SELECT kafka_partition, next_offset FROM consumer_offsets WHERE topic = %s", (topic,)))  # fmt: skip
    ends = {p: end for p, end in _end_offsets(kafka_bootstrap, topic).items() if end > 0}
    assert {p: offsets.get(p) for p in ends} == ends


def test_stored_alerts_form_an_intact_chain_that_verify_covers_and_names_an_edit(
    ledger_db: LedgerDb, kafka_bootstrap: str, alert_topics: tuple[str, str]
) -> None:
    produce_in_transactions(kafka_bootstrap, alert_topics[0], values(omnisoft_alerts(6)), [])
    consumer = AlertConsumer(alert_settings_for(kafka_bootstrap, ledger_db, alert_topics))
    consumer.drain(timeout=60)
    consumer.close()
    with psycopg.connect(ledger_db.app_url) as conn:
        found = chain_store.verify(conn, "omnisoft")
    chains = {c["table"]: c for c in found["chains"]}
    assert found["intact"] and chains["alerts"]["rows"] == 4  # two of the six are pebble's
    with psycopg.connect(ledger_db.owner_url) as conn:
        conn.execute("ALTER TABLE alerts DISABLE TRIGGER alerts_append_only_rows")
        conn.execute("UPDATE alerts SET observed = 1 WHERE licensee_id = 'omnisoft' AND chain_seq = 2")
        conn.execute("ALTER TABLE alerts ENABLE TRIGGER alerts_append_only_rows")
    with psycopg.connect(ledger_db.app_url) as conn:
        broken = chain_store.verify(conn, "omnisoft")["first_break"]
    assert (broken["table"], broken["chain_seq"]) == ("alerts", 2) and "edited" in broken["reason"]
