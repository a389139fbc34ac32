"""Every Kafka client takes the same KafkaSecurity: option builders (kafka-python, aiokafka,
librdkafka), settings, wiring."""

from __future__ import annotations

import ssl
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

import confluent_kafka
import kafka
import pytest

from services import cli
from services.clients.agreements import publish_agreements
from services.clients.replay import replay_kafka
from services.core.errors import SettingsError
from services.core.security import PLAINTEXT, KafkaSecurity, librdkafka_options
from services.demo.observe import read_topic
from services.ingest.settings import IngestSettings
from services.ledger.adapters.kafka import dead_letters, fetch
from services.ledger.settings import LedgerSettings
from services.processor.app import connection
from services.processor.main import group_less_consumer, view_consumer
from services.processor.settings import ProcessorSettings
from services.stack.config import REPO_ROOT

PASSWORD = "k7-long-random-pw"  # noqa: S105 - a test value, never a real secret
SCRAM = KafkaSecurity("SASL_SSL", "SCRAM-SHA-512", "metering", PASSWORD)
PLAIN_SASL = KafkaSecurity("SASL_PLAINTEXT", "PLAIN", "metering", PASSWORD)
TLS_ONLY = KafkaSecurity("SSL")
SASL_ENV = {
    "TOLLGATE_KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
    "TOLLGATE_KAFKA_SASL_USERNAME": "metering",
    "TOLLGATE_KAFKA_SASL_PASSWORD": PASSWORD,
}
DEFAULT_MECHANISM = KafkaSecurity("SASL_SSL", None, "metering", PASSWORD)
SECURITIES = [PLAINTEXT, TLS_ONLY, SCRAM, PLAIN_SASL, DEFAULT_MECHANISM]


def _without_tls(options: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in options.items() if not k.startswith("ssl_")}


@pytest.mark.parametrize("security", SECURITIES, ids=repr)
def test_kafka_python_and_aiokafka_get_the_same_protocol_and_sasl_options(security: KafkaSecurity) -> None:
    assert _without_tls(security.kafka_python()) == _without_tls(security.aiokafka())


@pytest.mark.parametrize(("security", "tls_keys"), [
    (PLAINTEXT, set()),
    (PLAIN_SASL, set()),
    (TLS_ONLY, {"ssl_context"}),
    (SCRAM, {"ssl_context"}),
])  # fmt: skip
def test_aiokafka_gets_a_tls_context_only_when_the_protocol_is_tls(
    security: KafkaSecurity, tls_keys: set[str]
) -> None:
    options = security.aiokafka()
    assert set(options) - set(_without_tls(options)) == tls_keys
    if tls_keys:
        context = options["ssl_context"]
        assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname


MTLS = KafkaSecurity(
    "SSL", cafile="/ca.pem", certfile="/client.pem", keyfile="/client.key", key_password=PASSWORD
)


@pytest.mark.parametrize(("security", "want"), [
    (PLAINTEXT, {"security.protocol": "plaintext"}),
    (PLAIN_SASL, {"security.protocol": "sasl_plaintext", "sasl.mechanism": "PLAIN",
                  "sasl.username": "metering", "sasl.password": PASSWORD}),
    (DEFAULT_MECHANISM, {"security.protocol": "sasl_ssl", "sasl.mechanism": "SCRAM-SHA-256",
                         "sasl.username": "metering", "sasl.password": PASSWORD,
                         "ssl.endpoint.identification.algorithm": "https"}),
    (SCRAM, {"security.protocol": "sasl_ssl", "sasl.mechanism": "SCRAM-SHA-512", "sasl.username": "metering",
             "sasl.password": PASSWORD, "ssl.endpoint.identification.algorithm": "https"}),
    (TLS_ONLY, {"security.protocol": "ssl", "ssl.endpoint.identification.algorithm": "https"}),
    (MTLS, {"security.protocol": "ssl", "ssl.endpoint.identification.algorithm": "https",
            "ssl.ca.location": "/ca.pem", "ssl.certificate.location": "/client.pem",
            "ssl.key.location": "/client.key", "ssl.key.password": PASSWORD}),
], ids=["plaintext", "sasl-plain-without-tls", "sasl-ssl-default-mechanism", "sasl-ssl-scram-512", "tls-only",
        "mutual-tls"])  # fmt: skip
def test_librdkafka_gets_the_protocol_sasl_login_tls_files_and_hostname_verification(
    security: KafkaSecurity, want: dict[str, str]
) -> None:
    assert librdkafka_options(security) == want


@pytest.mark.parametrize("security", [SCRAM, PLAIN_SASL, MTLS], ids=["scram", "plain", "mutual-tls"])
def test_the_processor_hands_quix_the_librdkafka_options_and_its_repr_hides_the_secrets(
    security: KafkaSecurity,
) -> None:
    settings = ProcessorSettings(kafka_bootstrap="kafka:9093", kafka_security=security)
    config = connection(settings)
    assert config.as_librdkafka_dict() == {"bootstrap.servers": "kafka:9093", **librdkafka_options(security)}
    for shown in (repr(config), str(config), repr(settings), repr(security)):
        assert PASSWORD not in shown


@pytest.mark.parametrize("security", [SCRAM, PLAIN_SASL, MTLS], ids=["scram", "plain", "mutual-tls"])
def test_the_processor_views_read_committed_records_with_the_librdkafka_options_and_join_no_group(
    security: KafkaSecurity, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[dict[str, Any]] = []
    monkeypatch.setattr(confluent_kafka, "Consumer", lambda config: seen.append(config))
    settings = ProcessorSettings(kafka_bootstrap="kafka:9093", kafka_security=security)
    view_consumer(settings)()
    view_consumer(settings)()
    first, second = seen
    assert first.items() >= {"bootstrap.servers": "kafka:9093", **librdkafka_options(security)}.items()
    assert (first["isolation.level"], first["enable.auto.commit"]) == ("read_committed", False)
    # Each view's consumer has a group id of its own (librdkafka needs one; assign() never joins it).
    assert first["group.id"] != second["group.id"]


def _ingest(environ: dict[str, str]) -> Any:
    return IngestSettings.from_env(environ)


def _ledger(environ: dict[str, str]) -> Any:
    url = "postgresql://svc:s3cret-xyz@db:5432/tollgate"
    return LedgerSettings.from_env({"TOLLGATE_DATABASE_URL": url, **environ})


def _processor(environ: dict[str, str]) -> Any:
    return ProcessorSettings.from_env(environ)


SERVICES = [_ingest, _ledger, _processor]


@pytest.fixture
def base_env(tmp_path: Path) -> dict[str, str]:
    tokens = tmp_path / "tokens.json"
    tokens.write_text('{"tokens": []}')
    return {"TOLLGATE_KAFKA_BOOTSTRAP": "kafka:9093", "TOLLGATE_TOKENS_FILE": str(tokens)}


@pytest.mark.parametrize("settings_of", SERVICES)
def test_every_service_reads_the_kafka_security_into_its_settings_without_showing_the_password(
    settings_of: Callable[[dict[str, str]], Any], base_env: dict[str, str]
) -> None:
    settings = settings_of({**base_env, **SASL_ENV})
    assert settings.kafka_security == KafkaSecurity.from_env(SASL_ENV)
    assert PASSWORD not in repr(settings)
    assert settings_of(base_env).kafka_security == PLAINTEXT


@pytest.mark.parametrize("settings_of", SERVICES)
@pytest.mark.parametrize(("environ", "named"), [
    ({**SASL_ENV, "TOLLGATE_KAFKA_SASL_PASSWORD": "changeme"}, "TOLLGATE_KAFKA_SASL_PASSWORD"),
    ({"TOLLGATE_KAFKA_SECURITY_PROTOCOL": "SASL_SSL"}, "TOLLGATE_KAFKA_SASL_USERNAME"),
    ({"TOLLGATE_REQUIRE_TLS": "true"}, "TOLLGATE_REQUIRE_TLS"),
    ({"TOLLGATE_KAFKA_SSL_CAFILE": "/ca.pem"}, "TOLLGATE_KAFKA_SSL_"),
])  # fmt: skip
def test_every_service_refuses_to_start_with_an_unsafe_kafka_setting(
    settings_of: Callable[[dict[str, str]], Any],
    base_env: dict[str, str],
    environ: dict[str, str],
    named: str,
) -> None:
    with pytest.raises(SettingsError, match=named):
        settings_of({**base_env, **environ})


class _Built(Exception):
    """Raised by a fake client once it has recorded its options, so nothing connects."""


class _FakeClient:
    seen: ClassVar[dict[str, Any]] = {}

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        _FakeClient.seen = kwargs

    async def start(self) -> None:
        raise _Built

    async def stop(self) -> None:
        return None


class _RefusingClient:
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        _FakeClient.seen = kwargs
        raise _Built


def _fetcher(security: KafkaSecurity) -> None:
    fetcher = fetch.Fetcher("kafka:9093", "t", None, 10, security=security)
    try:
        fetcher.open()
    finally:
        fetcher.close()


def _dead_letters(security: KafkaSecurity) -> None:
    dead_letters.DeadLetterPublisher("kafka:9093", "t", security=security)
    raise _Built


def _readiness_check(security: KafkaSecurity) -> None:
    group_less_consumer(ProcessorSettings(kafka_bootstrap="kafka:9093", kafka_security=security))()


CLIENTS = [
    ("ledger fetcher", (fetch, "AIOKafkaConsumer"), _fetcher, "aiokafka"),
    ("ledger dead letters", (dead_letters, "KafkaProducer"), _dead_letters, "kafka_python"),
    ("processor readiness check", (kafka, "KafkaConsumer"), _readiness_check, "kafka_python"),
    ("cli agreements load", (kafka, "KafkaProducer"),
     lambda s: publish_agreements("kafka:9093", [], security=s), "kafka_python"),
    ("cli replay --kafka", (kafka, "KafkaProducer"), lambda s: replay_kafka([], "kafka:9093", security=s),
     "kafka_python"),
    ("demo read_topic", (kafka, "KafkaConsumer"), lambda s: read_topic("kafka:9093", "t", security=s),
     "kafka_python"),
]  # fmt: skip


@pytest.mark.parametrize(("client", "target", "build", "library"), CLIENTS, ids=[c[0] for c in CLIENTS])
def test_each_kafka_client_is_built_with_the_security_options(
    client: str, target: tuple[Any, str], build: Callable[[KafkaSecurity], None], library: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    fake = _FakeClient if library == "aiokafka" else _RefusingClient
    monkeypatch.setattr(*target, fake)
    with pytest.raises(_Built):
        build(SCRAM)
    expected = getattr(SCRAM, library)()
    assert _without_tls(_FakeClient.seen).items() >= _without_tls(expected).items(), client
    assert (_FakeClient.seen.get("ssl_context") is not None) == (library == "aiokafka"), client


@pytest.mark.parametrize("argv", [
    ["agreements", "load", "demo/agreements.yaml"],
    ["replay", "FILE", "--kafka", "kafka:9093"],
])  # fmt: skip
def test_the_cli_refuses_an_unsafe_kafka_setting_before_connecting(
    argv: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    events = tmp_path / "events.jsonl"
    events.write_text("")
    monkeypatch.chdir(REPO_ROOT)
    monkeypatch.setenv("TOLLGATE_KAFKA_BOOTSTRAP", "kafka:9093")
    monkeypatch.setenv("TOLLGATE_KAFKA_SECURITY_PROTOCOL", "SASL_SSL")
    monkeypatch.setenv("TOLLGATE_KAFKA_SASL_USERNAME", "metering")
    monkeypatch.setenv("TOLLGATE_KAFKA_SASL_PASSWORD", "changeme")
    monkeypatch.setattr(kafka, "KafkaProducer", _RefusingClient)  # must not even be built
    assert cli.main([str(events) if a == "FILE" else a for a in argv]) == 2
    assert "TOLLGATE_KAFKA_SASL_PASSWORD" in capsys.readouterr().err
