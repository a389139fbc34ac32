"""The ledger's agreement consumer: how it judges a record of the agreements topic, and its settings."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest

from services.core import topics
from services.core.agreements import load_agreements
from services.core.errors import SettingsError
from services.demo.scenario import AGREEMENTS_FILE
from services.ledger.adapters.kafka.agreement_consumer import agreement_settings, decode
from services.ledger.errors import Rejected
from services.ledger.settings import LedgerSettings


def pebble() -> dict[str, Any]:
    """The demo's pebble agreement as a document."""
    return next(a.raw for a in load_agreements(AGREEMENTS_FILE) if a.licensee_id == "pebble")


def test_a_published_agreement_decodes_to_the_agreement_the_cli_loaded() -> None:
    agreement = next(a for a in load_agreements(AGREEMENTS_FILE) if a.licensee_id == "pebble")
    decoded = decode(orjson.dumps(agreement.to_cloudevent()))
    assert (decoded.licensee_id, decoded.effective_from, decoded.raw) == (
        "pebble", agreement.effective_from, agreement.raw)  # fmt: skip


@pytest.mark.parametrize(("value", "reason"), [
    (None, "tombstone"),
    (b"{not json", "not JSON"),
    (b"[1, 2]", "data: an agreement envelope"),
    (orjson.dumps({"data": "pebble"}), "data: an agreement envelope"),
    (orjson.dumps({"data": {**pebble(), "name": "Pebble\x00Labs"}}), "data: strings must not contain NUL"),
    (orjson.dumps({"data": {**pebble(), "plan": "free"}}), "data.plan"),
    (orjson.dumps({"data": {**pebble(), "effective_to": "2026-02-01"}}), "data.effective_to: must be after"),
    (orjson.dumps({"data": {**pebble(), "effective_from": "2026-09-31"}}), "data.effective_from"),
])  # fmt: skip
def test_a_record_that_is_no_agreement_is_rejected_naming_the_problem(
    value: bytes | None, reason: str
) -> None:
    with pytest.raises(Rejected) as refused:
        decode(value)
    assert str(refused.value).startswith(reason)


def test_the_agreements_topic_is_read_whole_whatever_billable_partitions_the_instance_reads(
    tmp_path: Path,
) -> None:
    base = LedgerSettings(kafka_bootstrap="k:1", app_database_url="postgresql://a@h/d", tokens_file=tmp_path,
                          partitions=(0, 1), agreements_dlq_topic="agreements.dlq")  # fmt: skip
    turned = agreement_settings(base)
    assert (turned.topic, turned.dlq_topic, turned.partitions) == (topics.AGREEMENTS, "agreements.dlq", None)
    assert turned.consumer_group == base.consumer_group


def test_agreement_settings_are_read_and_checked(tmp_path: Path) -> None:
    tokens = tmp_path / "tokens.json"
    tokens.write_text('{"tokens": []}')
    env = {"TOLLGATE_KAFKA_BOOTSTRAP": "127.0.0.1:9092", "TOLLGATE_TOKENS_FILE": str(tokens),
           "TOLLGATE_APP_DATABASE_URL": "postgresql://svc:s3cret-xyz@127.0.0.1:5432/tollgate"}  # fmt: skip
    defaults = LedgerSettings.from_env(env)
    assert (defaults.consume_agreements, defaults.agreements_topic, defaults.agreements_dlq_topic) == (
        True, topics.AGREEMENTS, "")  # fmt: skip
    settings = LedgerSettings.from_env({**env, "TOLLGATE_LEDGER_CONSUME_AGREEMENTS": "no",
        "TOLLGATE_LEDGER_AGREEMENTS_TOPIC": "mine.agreements",
        "TOLLGATE_LEDGER_AGREEMENTS_DLQ_TOPIC": "mine.agreements.dlq"})  # fmt: skip
    assert (settings.consume_agreements, settings.agreements_topic, settings.agreements_dlq_topic) == (
        False, "mine.agreements", "mine.agreements.dlq")  # fmt: skip
    for name, value in (("TOLLGATE_LEDGER_CONSUME_AGREEMENTS", "maybe"),
                        ("TOLLGATE_LEDGER_AGREEMENTS_TOPIC", "bad topic"),
                        ("TOLLGATE_LEDGER_AGREEMENTS_DLQ_TOPIC", "bad/dlq")):  # fmt: skip
        with pytest.raises(SettingsError, match=name):
            LedgerSettings.from_env({**env, name: value})
