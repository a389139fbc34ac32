"""The TLS-only test broker's configuration and certificates (no broker started here)."""

from __future__ import annotations

import shutil
import ssl
import subprocess
from pathlib import Path

import pytest

from services.stack.kafka import server_properties
from services.stack.kafka_tls import MECHANISMS, Certificates, make_certificates, secure_overrides

needs_openssl = pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl not installed")


def _properties(certs: Certificates) -> dict[str, str]:
    overrides = secure_overrides(9093, 9094, 9095, certs, ("broker-pw-1", "client-pw-2"))
    text = server_properties(Path("/d"), 9093, 9095, 3, overrides)
    return dict(line.split("=", 1) for line in text.splitlines() if line)


@pytest.fixture
def fake_certs(tmp_path: Path) -> Certificates:
    return Certificates(*(tmp_path / f"{name}.pem" for name in ("ca", "ks", "cc", "ck", "rogue")))


@pytest.mark.parametrize(("key", "value"), [
    ("listeners", "SASL_SSL://127.0.0.1:9093,MTLS://127.0.0.1:9094,CONTROLLER://127.0.0.1:9095"),
    ("advertised.listeners", "SASL_SSL://127.0.0.1:9093,MTLS://127.0.0.1:9094"),
    ("listener.security.protocol.map", "CONTROLLER:PLAINTEXT,SASL_SSL:SASL_SSL,MTLS:SSL"),
    ("inter.broker.listener.name", "SASL_SSL"),
    ("listener.name.mtls.ssl.client.auth", "required"),
    ("ssl.keystore.type", "PEM"),
    ("ssl.truststore.type", "PEM"),
    ("sasl.enabled.mechanisms", "SCRAM-SHA-256,SCRAM-SHA-512,PLAIN"),
    ("controller.listener.names", "CONTROLLER"),
    ("offsets.topic.replication.factor", "1"),
])  # fmt: skip
def test_the_tls_broker_config_overrides_the_plaintext_listener(
    fake_certs: Certificates, key: str, value: str
) -> None:
    assert _properties(fake_certs)[key] == value


def test_no_client_facing_listener_of_the_tls_broker_is_plaintext(fake_certs: Certificates) -> None:
    props = _properties(fake_certs)
    protocols = dict(pair.split(":") for pair in props["listener.security.protocol.map"].split(","))
    advertised = [entry.split("://")[0] for entry in props["advertised.listeners"].split(",")]
    assert advertised and all(protocols[name] in ("SSL", "SASL_SSL") for name in advertised)


@pytest.mark.parametrize("mechanism", MECHANISMS)
def test_each_sasl_mechanism_has_a_login_for_the_broker(fake_certs: Certificates, mechanism: str) -> None:
    jaas = _properties(fake_certs)[f"listener.name.sasl_ssl.{mechanism.lower()}.sasl.jaas.config"]
    assert 'username="broker" password="broker-pw-1"' in jaas and jaas.endswith(";")
    assert ('user_metering="client-pw-2"' in jaas) == (mechanism == "PLAIN")


@needs_openssl
def test_the_made_certificates_chain_to_their_ca_and_not_to_the_rogue_one(tmp_path: Path) -> None:
    certs = make_certificates(tmp_path)
    for leaf in (tmp_path / "broker.pem", certs.client_cert):
        trusted = ["openssl", "verify", "-CAfile", str(certs.ca), str(leaf)]
        rogue = ["openssl", "verify", "-CAfile", str(certs.rogue_ca), str(leaf)]
        assert subprocess.run(trusted, capture_output=True, check=False).returncode == 0  # noqa: S603
        assert subprocess.run(rogue, capture_output=True, check=False).returncode != 0  # noqa: S603
    context = ssl.create_default_context(cafile=str(certs.ca))
    context.load_cert_chain(str(certs.client_cert), str(certs.client_key))
    keystore = certs.broker_keystore.read_text()
    assert keystore.startswith("-----BEGIN " + "PRIVATE KEY-----") and "BEGIN CERTIFICATE" in keystore
    assert all(oct(key.stat().st_mode)[-3:] == "600" for key in tmp_path.glob("*.key"))
