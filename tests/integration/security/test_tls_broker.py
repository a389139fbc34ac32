"""Tollgate's Kafka clients, and a full processor worker, against a real broker that accepts only TLS
(SASL_SSL and mutual TLS).

The worker helpers come from tests/integration/processor (tests/ is on sys.path: tests/conftest.py)."""

from __future__ import annotations

import contextlib
import dataclasses
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import orjson
import pytest
from aiokafka.errors import KafkaError as AioKafkaError
from ingest_support import INGEST_NOW
from integration.processor.processor_support import (
    Workers,
    create_topics,
    delete_topics,
    demo_agreements,
    expected,
    produce,
    publish,
    read_all,
    summary,
)
from kafka import KafkaConsumer
from kafka.errors import KafkaError

from services import cli
from services.core import topics
from services.core.security import PLAINTEXT, KafkaSecurity
from services.core.tokens import InMemoryTokenStore
from services.demo.observe import read_topic
from services.demo.scenario import demo_calls
from services.ingest.app import create_app
from services.ingest.kafka_publisher import KafkaPublisher
from services.ingest.main import serve_in_thread
from services.ingest.settings import IngestSettings
from services.ledger.adapters.kafka.dead_letters import DeadLetterPublisher
from services.ledger.adapters.kafka.fetch import Fetcher
from services.ledger.settings import LedgerSettings
from services.processor.agreements_view import AgreementsView
from services.processor.main import view_consumer
from services.processor.settings import ProcessorSettings
from services.stack.config import REPO_ROOT
from services.stack.kafka_tls import SecureBroker
from services.stack.ports import free_port

pytestmark = pytest.mark.integration

AGREEMENTS_FILE = REPO_ROOT / "demo" / "agreements.yaml"
# Why the broker refused a login, as its log says it.
BAD_SCRAM = (
    "Authentication failed during authentication due to invalid credentials with SASL mechanism SCRAM-SHA-256"
)
BAD_PLAIN = "Authentication failed: Invalid username or password"
NOT_TLS = "SSL handshake failed"
# Why the client refused the broker (Python's ssl module, logged by either library).
UNTRUSTED = "CERTIFICATE_VERIFY_FAILED"


def _event(tag: str) -> dict[str, Any]:
    return {
        "specversion": "1.0", "id": f"tls-{tag}-{uuid.uuid4().hex[:12]}", "source": "gateway-tls",
        "type": "io.tollgate.api.call.v1", "time": "2026-10-15T10:00:00Z",
        "datacontenttype": "application/json",
        "data": {"licensee_id": "pebble", "app_id": "pebble-web", "endpoint": "/2/users", "method": "GET",
                 "status": 200, "records": 3, "bytes": 512,
                 "requester": {"org_id": "acme", "org_type": "commercial"}},
    }  # fmt: skip


def _env_of(bootstrap: str, security: KafkaSecurity) -> dict[str, str]:
    """The `TOLLGATE_KAFKA_*` variables that make `KafkaSecurity.from_env` return `security`."""
    names = {"protocol": "SECURITY_PROTOCOL", "mechanism": "SASL_MECHANISM", "username": "SASL_USERNAME",
             "password": "SASL_PASSWORD", "cafile": "SSL_CAFILE", "certfile": "SSL_CERTFILE",
             "keyfile": "SSL_KEYFILE"}  # fmt: skip
    fields = dataclasses.asdict(security)
    env = {f"TOLLGATE_KAFKA_{names[k]}": v for k, v in fields.items() if k in names and v}
    return {"TOLLGATE_KAFKA_BOOTSTRAP": bootstrap, **env}


@pytest.fixture
def service_env(secure_kafka: SecureBroker, tmp_path: Path) -> dict[str, str]:
    """What a service process would see: a tokens file and the broker's SASL_SSL variables."""
    tokens = tmp_path / "tokens.json"
    tokens.write_text('{"tokens": []}')
    return {"TOLLGATE_TOKENS_FILE": str(tokens), **secure_kafka.env()}


@contextlib.contextmanager
def _ingest(settings: IngestSettings) -> Iterator[Callable[[str, Any], httpx.Response]]:
    """Ingest served over real HTTP; yields `call(path, events)` (GET when events is None)."""
    tokens = InMemoryTokenStore()
    token = tokens.create("tls-gateway", "ingest")
    publisher = KafkaPublisher(settings)
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/cloudevents-batch+json"}
    try:
        app = create_app(settings, publisher, tokens, INGEST_NOW)
        with (
            serve_in_thread(app, free_port()) as url,
            httpx.Client(base_url=url, timeout=30.0, headers=headers) as client,
        ):
            yield (
                lambda path, events: (
                    client.get(path) if events is None else client.post(path, content=orjson.dumps(events))
                )
            )
    finally:
        publisher.close()


def _fetch_until(
    bootstrap: str, topic: str, security: KafkaSecurity, found: Callable[[Any], bool], timeout: float = 20.0
) -> Any:
    """Read `topic` from the beginning with the ledger's fetcher until a record satisfies `found`."""
    fetcher = Fetcher(bootstrap, topic, None, 1000, security=security)
    try:
        fetcher.open()
        fetcher.seek({})
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for record in fetcher.poll(500, 1000):
                if found(record):
                    return record
        raise AssertionError(f"no matching record on {topic} within {timeout:.0f}s")
    finally:
        fetcher.close()


def _broker_logged(broker: SecureBroker, since: int, reason: str, timeout: float = 10.0) -> bool:
    """Whether the broker logged a refused login for `reason` after byte offset `since`."""
    needle = b"Failed authentication with /127.0.0.1"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        lines = broker.log.read_bytes()[since:].splitlines()
        if any(needle in line and f"({reason})".encode() in line for line in lines):
            return True
        time.sleep(0.2)
    return False


def test_ingest_answers_202_only_after_the_tls_broker_acknowledged_and_the_record_is_on_the_topic(
    secure_kafka: SecureBroker, service_env: dict[str, str]
) -> None:
    settings = IngestSettings.from_env(service_env)
    assert settings.kafka_security.protocol == "SASL_SSL"
    event = _event("ingest")
    with _ingest(settings) as call:
        assert call("/readyz", None).status_code == 200
        answer = call("/v1/events", [event])
    assert (answer.status_code, answer.json()) == (202, {"accepted": 1, "duplicates": 0})
    on_topic = read_topic(settings.kafka_bootstrap, settings.topic, security=settings.kafka_security)
    assert event["id"] in {e["id"] for e in on_topic}


def test_ingest_with_a_wrong_password_answers_503_and_the_broker_logs_the_refused_login(
    secure_kafka: SecureBroker, service_env: dict[str, str]
) -> None:
    wrong = {**service_env, "TOLLGATE_KAFKA_SASL_PASSWORD": f"wrong-{uuid.uuid4().hex}",
             "TOLLGATE_INGEST_PRODUCE_TIMEOUT_SECONDS": "1.5"}  # fmt: skip
    since = secure_kafka.log.stat().st_size
    event = _event("refused")
    with _ingest(IngestSettings.from_env(wrong)) as call:
        answer = call("/v1/events", [event])
        assert call("/readyz", None).status_code == 503
    assert answer.status_code == 503 and answer.headers["Retry-After"]
    assert _broker_logged(secure_kafka, since, BAD_SCRAM)
    on_topic = read_topic(secure_kafka.sasl_bootstrap, topics.API_CALLS, security=secure_kafka.sasl())
    assert event["id"] not in {e["id"] for e in on_topic}


def test_the_ledger_dead_letter_producer_and_fetcher_carry_a_record_through_tls(
    service_env: dict[str, str],
) -> None:
    settings = LedgerSettings.from_env(
        {**service_env, "TOLLGATE_DATABASE_URL": "postgresql://svc:s3cret-xyz@127.0.0.1:1/tollgate"}
    )
    reason = f"tls-test-{uuid.uuid4().hex[:8]}"
    bad = SimpleNamespace(topic=settings.topic, partition=0, offset=7, key=b"pebble", value=b"not json")
    security = settings.kafka_security
    publisher = DeadLetterPublisher(settings.kafka_bootstrap, settings.dlq_topic, security=security)
    try:
        publisher.publish([(bad, reason)])
    finally:
        publisher.close()
    record = _fetch_until(
        settings.kafka_bootstrap, settings.dlq_topic, security,
        lambda r: ("tollgate-reason", reason.encode()) in list(r.headers),
    )  # fmt: skip
    assert (record.key, record.value) == (b"pebble", b"not json")


def test_agreements_loaded_by_the_cli_reach_the_processor_agreements_view_through_tls(
    service_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("TOLLGATE_DATABASE_URL", raising=False)  # Kafka only: no PostgreSQL here
    for name, value in service_env.items():
        monkeypatch.setenv(name, value)
    assert cli.main(["agreements", "load", str(AGREEMENTS_FILE)]) == 0
    settings = ProcessorSettings.from_env(service_env)
    view = AgreementsView(view_consumer(settings), settings.agreements_topic)
    view.start()
    try:
        view.wait_ready(30)
    finally:
        view.stop()
    october = datetime(2026, 10, 15, tzinfo=UTC)
    assert all(view.get(name, october) is not None for name in ("omnisoft", "pebble", "oldco"))


WORKER_LOGINS = {
    "SASL_SSL with SCRAM-SHA-512": lambda b: (b.sasl_bootstrap, b.sasl("SCRAM-SHA-512")),
    "a client certificate (mutual TLS)": lambda b: (b.mtls_bootstrap, b.mtls()),
}


@pytest.mark.parametrize("login", list(WORKER_LOGINS))
def test_a_full_processor_worker_meters_exactly_through_tls_when_it_authenticates_by(
    login: str, secure_kafka: SecureBroker, tmp_path: Path
) -> None:
    # A real worker (`tollgate serve processor`) over TLS only: consumer group, RocksDB state with its
    # changelog topics (created by the worker), and one Kafka transaction per checkpoint.
    bootstrap, security = WORKER_LOGINS[login](secure_kafka)
    names = create_topics(bootstrap, "tls-worker", security)
    calls = [c for c in demo_calls() if c.licensee_id in ("pebble", "oldco")]
    agreements = demo_agreements()
    try:
        publish(bootstrap, names, agreements, security)
        produce(bootstrap, names.input, calls, [(b"pebble", b"{not json")], security)
        workers = Workers(bootstrap, names, tmp_path, env=_env_of(bootstrap, security), security=security)
        worker = workers.start("tls")
        try:
            workers.wait_drained(timeout=120)
            assert worker.metric("tollgate_processor_events_total", outcome="counted") == len(calls)
        finally:
            workers.stop_all()
        assert "security.protocol" in worker.log() and security.protocol.lower() in worker.log()
        alerts = read_all(bootstrap, names.alerts, security=security)
        billable = read_all(bootstrap, names.billable, security=security)
        assert summary(alerts, billable) == expected(calls, agreements)
        assert {a["data"]["rule"] for a in alerts} == {"agreement.missing"}  # oldco's ended in September
        dead = read_all(bootstrap, names.dlq, security=security)
        assert [d["reason"] for d in dead] == ["invalid: not JSON"]
        assert secure_kafka.password not in worker.log()
    finally:
        delete_topics(bootstrap, names, security)


AUTHENTICATIONS = {
    "SCRAM-SHA-256": lambda b: (b.sasl_bootstrap, b.sasl("SCRAM-SHA-256")),
    "SCRAM-SHA-512": lambda b: (b.sasl_bootstrap, b.sasl("SCRAM-SHA-512")),
    "PLAIN": lambda b: (b.sasl_bootstrap, b.sasl("PLAIN")),
    "a client certificate (mutual TLS)": lambda b: (b.mtls_bootstrap, b.mtls()),
}


@pytest.mark.parametrize("authentication", list(AUTHENTICATIONS))
def test_cli_replay_and_the_ledger_fetcher_get_through_when_the_client_authenticates_by(
    authentication: str, secure_kafka: SecureBroker, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bootstrap, security = AUTHENTICATIONS[authentication](secure_kafka)
    for name, value in _env_of(bootstrap, security).items():
        monkeypatch.setenv(name, value)
    event = _event("replay")
    events = tmp_path / "events.jsonl"
    events.write_bytes(orjson.dumps(event) + b"\n")
    assert cli.main(["replay", str(events), "--kafka", bootstrap]) == 0
    record = _fetch_until(bootstrap, topics.API_CALLS, security, lambda r: event["id"].encode() in r.value)
    assert orjson.loads(record.value) == event


REFUSALS = {
    "a plaintext client": ("sasl", lambda b: PLAINTEXT, "broker", NOT_TLS),
    "SASL without TLS": (
        "sasl", lambda b: KafkaSecurity("SASL_PLAINTEXT", "SCRAM-SHA-256", "metering", b.password),
        "broker", NOT_TLS,
    ),
    "a wrong SCRAM password": ("sasl", lambda b: b.sasl(password=f"wrong-{b.password}"), "broker", BAD_SCRAM),
    "an unknown PLAIN user": (
        "sasl", lambda b: dataclasses.replace(b.sasl("PLAIN"), username="intruder"), "broker", BAD_PLAIN,
    ),
    "a client without a certificate on the mutual-TLS listener": (
        "mtls", lambda b: dataclasses.replace(b.mtls(), certfile=None, keyfile=None), "broker", NOT_TLS,
    ),
    # The client hangs up before the broker has anything to refuse: the broker's certificate is not trusted.
    "a client that trusts another CA": (
        "sasl", lambda b: dataclasses.replace(b.sasl(), cafile=str(b.certificates.rogue_ca)),
        "client", UNTRUSTED,
    ),
    "a client that trusts only the system CAs": (
        "sasl", lambda b: dataclasses.replace(b.sasl(), cafile=None), "client", UNTRUSTED,
    ),
}  # fmt: skip


def _connect_aiokafka(bootstrap: str, security: KafkaSecurity) -> None:
    fetcher = Fetcher(bootstrap, topics.API_CALLS, None, 10, security=security)
    try:
        fetcher.open()
    finally:
        fetcher.close()


def _connect_kafka_python(bootstrap: str, security: KafkaSecurity) -> None:
    # A short bootstrap wait: a refused client retries until it runs out (30 s by default).
    KafkaConsumer(bootstrap_servers=bootstrap, bootstrap_timeout_ms=1500, **security.kafka_python()).close()


@pytest.mark.parametrize("library", ["aiokafka", "kafka-python"])
@pytest.mark.parametrize("client", list(REFUSALS))
def test_the_connection_is_refused_for(
    client: str, library: str, secure_kafka: SecureBroker, caplog: pytest.LogCaptureFixture
) -> None:
    listener, security_of, refused_by, reason = REFUSALS[client]
    bootstrap = secure_kafka.sasl_bootstrap if listener == "sasl" else secure_kafka.mtls_bootstrap
    connect = _connect_aiokafka if library == "aiokafka" else _connect_kafka_python
    since = secure_kafka.log.stat().st_size
    with pytest.raises((AioKafkaError, KafkaError)):
        connect(bootstrap, security_of(secure_kafka))
    if refused_by == "broker":
        assert _broker_logged(secure_kafka, since, reason), f"the broker did not log {reason!r}"
    else:
        assert reason in caplog.text
