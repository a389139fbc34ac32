"""Kafka TLS/SASL options and PostgreSQL TLS checks built from `TOLLGATE_*` variables."""

from __future__ import annotations

import ssl
from pathlib import Path
from typing import Any

import pytest

from services.core.errors import SettingsError
from services.core.security import (
    KafkaSecurity,
    aiokafka_client_options,
    database_tls,
    kafka_client_options,
)
from services.core.settings import database_url
from services.ingest.kafka_publisher import KafkaPublisher
from services.ingest.settings import IngestSettings

SASL = {"TOLLGATE_KAFKA_SASL_USERNAME": "metering", "TOLLGATE_KAFKA_SASL_PASSWORD": "k7-long-random-pw"}


@pytest.mark.parametrize(("environ", "options"), [
    ({}, {"security_protocol": "PLAINTEXT"}),
    ({"TOLLGATE_KAFKA_SECURITY_PROTOCOL": "plaintext"}, {"security_protocol": "PLAINTEXT"}),
    ({"TOLLGATE_KAFKA_SECURITY_PROTOCOL": "SSL"}, {"security_protocol": "SSL", "ssl_check_hostname": True}),
    ({"TOLLGATE_KAFKA_SECURITY_PROTOCOL": "SSL", "TOLLGATE_KAFKA_SSL_CAFILE": "/etc/kafka/ca.pem",
      "TOLLGATE_KAFKA_SSL_CERTFILE": "/c.pem", "TOLLGATE_KAFKA_SSL_KEYFILE": "/k.pem"},
     {"security_protocol": "SSL", "ssl_check_hostname": True, "ssl_cafile": "/etc/kafka/ca.pem",
      "ssl_certfile": "/c.pem", "ssl_keyfile": "/k.pem"}),
    ({"TOLLGATE_KAFKA_SECURITY_PROTOCOL": "SASL_SSL", **SASL},
     {"security_protocol": "SASL_SSL", "sasl_mechanism": "SCRAM-SHA-256", "sasl_plain_username": "metering",
      "sasl_plain_password": "k7-long-random-pw", "ssl_check_hostname": True}),
    ({"TOLLGATE_KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT", "TOLLGATE_KAFKA_SASL_MECHANISM": "plain", **SASL},
     {"security_protocol": "SASL_PLAINTEXT", "sasl_mechanism": "PLAIN", "sasl_plain_username": "metering",
      "sasl_plain_password": "k7-long-random-pw"}),
    ({"TOLLGATE_KAFKA_SECURITY_PROTOCOL": "SASL_SSL", "TOLLGATE_KAFKA_SASL_MECHANISM": "SCRAM-SHA-512",
      "TOLLGATE_REQUIRE_TLS": "true", **SASL},
     {"security_protocol": "SASL_SSL", "sasl_mechanism": "SCRAM-SHA-512", "sasl_plain_username": "metering",
      "sasl_plain_password": "k7-long-random-pw", "ssl_check_hostname": True}),
])  # fmt: skip
def test_kafka_client_options_are_built_from_the_environment(
    environ: dict[str, str], options: dict[str, Any]
) -> None:
    assert kafka_client_options(environ) == options


@pytest.mark.parametrize(("environ", "named"), [
    ({"TOLLGATE_KAFKA_SECURITY_PROTOCOL": "TLS"}, "TOLLGATE_KAFKA_SECURITY_PROTOCOL"),
    ({"TOLLGATE_KAFKA_SECURITY_PROTOCOL": "SASL_SSL"}, "TOLLGATE_KAFKA_SASL_USERNAME"),
    ({"TOLLGATE_KAFKA_SECURITY_PROTOCOL": "SASL_SSL", "TOLLGATE_KAFKA_SASL_USERNAME": "u"},
     "TOLLGATE_KAFKA_SASL_PASSWORD"),
    ({"TOLLGATE_KAFKA_SECURITY_PROTOCOL": "SASL_SSL", "TOLLGATE_KAFKA_SASL_USERNAME": "u",
      "TOLLGATE_KAFKA_SASL_PASSWORD": "changeme"}, "TOLLGATE_KAFKA_SASL_PASSWORD"),
    ({"TOLLGATE_KAFKA_SECURITY_PROTOCOL": "SASL_SSL", "TOLLGATE_KAFKA_SASL_USERNAME": "u",
      "TOLLGATE_KAFKA_SASL_PASSWORD": "Admin"}, "TOLLGATE_KAFKA_SASL_PASSWORD"),
    ({"TOLLGATE_KAFKA_SECURITY_PROTOCOL": "SASL_SSL", "TOLLGATE_KAFKA_SASL_MECHANISM": "GSSAPI", **SASL},
     "TOLLGATE_KAFKA_SASL_MECHANISM"),
    ({**SASL}, "TOLLGATE_KAFKA_SASL_"),
    ({"TOLLGATE_KAFKA_SSL_CAFILE": "/ca.pem"}, "TOLLGATE_KAFKA_SSL_"),
    ({"TOLLGATE_KAFKA_SECURITY_PROTOCOL": "SSL", "TOLLGATE_KAFKA_SSL_CERTFILE": "/c.pem"},
     "TOLLGATE_KAFKA_SSL_CERTFILE"),
    ({"TOLLGATE_REQUIRE_TLS": "true"}, "TOLLGATE_REQUIRE_TLS"),
    ({"TOLLGATE_REQUIRE_TLS": "true", "TOLLGATE_KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT", **SASL},
     "TOLLGATE_REQUIRE_TLS"),
    ({"TOLLGATE_REQUIRE_TLS": "maybe"}, "TOLLGATE_REQUIRE_TLS"),
])  # fmt: skip
def test_an_unsafe_or_incomplete_kafka_setting_is_refused_naming_the_variable(
    environ: dict[str, str], named: str
) -> None:
    with pytest.raises(SettingsError, match=named) as refused:
        kafka_client_options(environ)
    assert "changeme" not in str(refused.value) and "k7-long-random-pw" not in str(refused.value)


def test_the_kafka_settings_never_show_the_password_when_printed() -> None:
    security = KafkaSecurity.from_env({"TOLLGATE_KAFKA_SECURITY_PROTOCOL": "SASL_SSL", **SASL})
    assert "k7-long-random-pw" not in repr(security)
    settings = IngestSettings("127.0.0.1:9", Path("t"), kafka_security=security)
    assert "k7-long-random-pw" not in repr(settings)


def test_aiokafka_options_carry_a_verifying_tls_context() -> None:
    options = aiokafka_client_options({"TOLLGATE_KAFKA_SECURITY_PROTOCOL": "SASL_SSL", **SASL})
    context = options.pop("ssl_context")
    assert isinstance(context, ssl.SSLContext)
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname
    assert options == {"security_protocol": "SASL_SSL", "sasl_mechanism": "SCRAM-SHA-256",
                       "sasl_plain_username": "metering",
                       "sasl_plain_password": "k7-long-random-pw"}  # fmt: skip
    assert aiokafka_client_options({}) == {"security_protocol": "PLAINTEXT"}


def test_ingest_reads_the_kafka_security_settings_and_hands_them_to_its_producer(tmp_path: Path) -> None:
    tokens = tmp_path / "tokens.json"
    tokens.write_text('{"tokens": []}')
    environ = {"TOLLGATE_KAFKA_BOOTSTRAP": "kafka:9093", "TOLLGATE_TOKENS_FILE": str(tokens),
               "TOLLGATE_KAFKA_SECURITY_PROTOCOL": "SASL_SSL", **SASL}  # fmt: skip
    config = KafkaPublisher(IngestSettings.from_env(environ))._config()
    assert config["security_protocol"] == "SASL_SSL"
    assert (config["sasl_plain_username"], config["sasl_plain_password"]) == ("metering", "k7-long-random-pw")
    assert config["acks"] == "all"


URL = "postgresql://svc:s3cret-xyz@db.internal:5432/tollgate"


@pytest.mark.parametrize(("url", "environ", "refused"), [
    (URL, {}, False),
    (URL + "?sslmode=disable", {}, False),
    (URL + "?sslmode=disable", {"TOLLGATE_REQUIRE_TLS": "true"}, True),
    (URL, {"TOLLGATE_REQUIRE_TLS": "true"}, True),
    (URL + "?sslmode=prefer", {"TOLLGATE_REQUIRE_TLS": "1"}, True),
    (URL + "?sslmode=allow", {"TOLLGATE_REQUIRE_TLS": "yes"}, True),
    (URL + "?sslmode=require", {"TOLLGATE_REQUIRE_TLS": "true"}, False),
    (URL + "?sslmode=verify-full&sslrootcert=/etc/ca.pem", {"TOLLGATE_REQUIRE_TLS": "true"}, False),
    (URL + "?sslmode=verify-full&sslmode=disable", {"TOLLGATE_REQUIRE_TLS": "true"}, True),
    (URL, {"TOLLGATE_REQUIRE_TLS": "true", "PGSSLMODE": "verify-ca"}, False),
])  # fmt: skip
def test_postgresql_without_tls_is_refused_when_tls_is_required(
    url: str, environ: dict[str, str], refused: bool
) -> None:
    full = {"TOLLGATE_DATABASE_URL": url, **environ}
    if refused:
        with pytest.raises(SettingsError, match="sslmode") as caught:
            database_url(full)
        assert "s3cret-xyz" not in str(caught.value)
    else:
        assert database_url(full) == url
        assert database_tls(url, environ) == url
