"""A throwaway Kafka broker that refuses clients without TLS, with certificates made when it starts.

Listeners, all on 127.0.0.1:
- `SASL_SSL`: TLS plus SASL (SCRAM-SHA-256, SCRAM-SHA-512 or PLAIN) as the client user;
- `MTLS`: TLS with a client certificate the test CA signed, and no SASL;
- `CONTROLLER`: the KRaft quorum inside this one process, plaintext and never advertised to clients.
The local stack stays plaintext on 127.0.0.1; this broker exists to prove the clients' TLS/SASL wiring
against a real broker (tests/integration/security). Certificates come from the `openssl` command.
"""

from __future__ import annotations

import secrets
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from services.core.security import KafkaSecurity
from services.stack.config import StackConfig
from services.stack.errors import PartFailed
from services.stack.kafka import READY_LINE, broker_argv, create_topics, format_storage, server_properties
from services.stack.ports import free_ports
from services.stack.process import log_has, spawn, wait_until

PART = "kafka-tls"
MECHANISMS = ("SCRAM-SHA-256", "SCRAM-SHA-512", "PLAIN")
CLIENT_USER = "metering"
BROKER_USER = "broker"
_DAYS = "2"  # long enough for any test session, short enough to be useless if a file leaks
_LEAF_EXTENSIONS = (
    "basicConstraints=critical,CA:FALSE\n"
    "keyUsage=critical,digitalSignature,keyEncipherment\n"
    "subjectKeyIdentifier=hash\n"
    "authorityKeyIdentifier=keyid,issuer\n"
)


@dataclass(frozen=True)
class Certificates:
    """PEM files: the CA clients trust, the broker's key store, a client pair, and a CA nobody trusts."""

    ca: Path
    broker_keystore: Path
    client_cert: Path
    client_key: Path
    rogue_ca: Path


def _openssl(argv: list[str], directory: Path, openssl: str) -> None:
    try:
        done = subprocess.run(  # noqa: S603 - fixed arguments built here, no user input
            [openssl, *argv], cwd=directory, capture_output=True, check=False, timeout=60
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise PartFailed(PART, f"openssl {argv[0]} failed: {exc}") from exc
    if done.returncode != 0:
        raise PartFailed(PART, f"openssl {' '.join(argv[:2])} failed: {done.stderr.decode(errors='replace')}")


def _ca(name: str, directory: Path, openssl: str) -> None:
    _openssl(
        ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
         "-keyout", f"{name}.key", "-out", f"{name}.pem", "-days", _DAYS, "-subj", f"/CN=tollgate {name}",
         "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign"],
        directory, openssl,
    )  # fmt: skip


def _leaf(name: str, usage: str, directory: Path, openssl: str) -> None:
    """A key (PKCS#8, unencrypted: Kafka's PEM store reads it so) and a certificate the CA signed."""
    extensions = directory / f"{name}.ext"
    extensions.write_text(f"{_LEAF_EXTENSIONS}extendedKeyUsage={usage}\nsubjectAltName=IP:127.0.0.1,DNS:localhost\n")
    _openssl(
        ["req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
         "-keyout", f"{name}.key", "-out", f"{name}.csr", "-subj", f"/CN=tollgate-{name}"],
        directory, openssl,
    )  # fmt: skip
    _openssl(
        ["x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
         "-days", _DAYS, "-extfile", extensions.name, "-out", f"{name}.pem"],
        directory, openssl,
    )  # fmt: skip


def make_certificates(directory: Path, openssl: str = "openssl") -> Certificates:
    """A fresh CA, a broker certificate for 127.0.0.1/localhost, a client certificate and a rogue CA."""
    directory.mkdir(parents=True, exist_ok=True)
    _ca("ca", directory, openssl)
    _ca("rogue", directory, openssl)
    _leaf("broker", "serverAuth", directory, openssl)
    _leaf("client", "clientAuth", directory, openssl)
    keystore = directory / "broker-keystore.pem"
    # Kafka's PEM key store: the private key followed by the certificate chain, in one file.
    keystore.write_text((directory / "broker.key").read_text() + (directory / "broker.pem").read_text())
    for key in directory.glob("*.key"):
        key.chmod(0o600)
    return Certificates(
        ca=directory / "ca.pem",
        broker_keystore=keystore,
        client_cert=directory / "client.pem",
        client_key=directory / "client.key",
        rogue_ca=directory / "rogue.pem",
    )


def _jaas(mechanism: str, broker_password: str, client_password: str) -> str:
    if mechanism == "PLAIN":
        # PLAIN keeps its users in the JAAS line (`user_<name>`); SCRAM keeps them in the metadata log.
        users = f'user_{BROKER_USER}="{broker_password}" user_{CLIENT_USER}="{client_password}"'
        module = "org.apache.kafka.common.security.plain.PlainLoginModule"
        return f'{module} required username="{BROKER_USER}" password="{broker_password}" {users};'
    module = "org.apache.kafka.common.security.scram.ScramLoginModule"
    return f'{module} required username="{BROKER_USER}" password="{broker_password}";'


def secure_overrides(
    sasl_port: int, mtls_port: int, controller_port: int, certs: Certificates, passwords: tuple[str, str]
) -> dict[str, str]:
    """server.properties entries that replace the plaintext client listener with SASL_SSL and MTLS."""
    broker_password, client_password = passwords
    overrides = {
        "listeners": f"SASL_SSL://127.0.0.1:{sasl_port},MTLS://127.0.0.1:{mtls_port},"
        f"CONTROLLER://127.0.0.1:{controller_port}",
        "advertised.listeners": f"SASL_SSL://127.0.0.1:{sasl_port},MTLS://127.0.0.1:{mtls_port}",
        "listener.security.protocol.map": "CONTROLLER:PLAINTEXT,SASL_SSL:SASL_SSL,MTLS:SSL",
        # The broker talks to itself over TLS too, so no client-facing port is plaintext.
        "inter.broker.listener.name": "SASL_SSL",
        "sasl.mechanism.inter.broker.protocol": "SCRAM-SHA-256",
        "sasl.enabled.mechanisms": ",".join(MECHANISMS),
        "ssl.keystore.type": "PEM",
        "ssl.keystore.location": str(certs.broker_keystore),
        "ssl.truststore.type": "PEM",
        "ssl.truststore.location": str(certs.ca),
        "listener.name.mtls.ssl.client.auth": "required",
    }
    for mechanism in MECHANISMS:
        key = f"listener.name.sasl_ssl.{mechanism.lower()}.sasl.jaas.config"
        overrides[key] = _jaas(mechanism, broker_password, client_password)
    return overrides


@dataclass(frozen=True)
class SecureBroker:
    """A running TLS-only broker: where it listens, its CA and the client user's secret."""

    pid: int
    sasl_bootstrap: str
    mtls_bootstrap: str
    certificates: Certificates
    password: str = field(repr=False)
    log: Path

    def sasl(self, mechanism: str = "SCRAM-SHA-256", password: str | None = None) -> KafkaSecurity:
        """SASL_SSL as the client user, trusting the test CA."""
        secret = self.password if password is None else password
        return KafkaSecurity("SASL_SSL", mechanism, CLIENT_USER, secret, cafile=str(self.certificates.ca))

    def mtls(self) -> KafkaSecurity:
        """SSL with the client certificate, trusting the test CA."""
        certs = self.certificates
        return KafkaSecurity(
            "SSL", cafile=str(certs.ca), certfile=str(certs.client_cert), keyfile=str(certs.client_key)
        )

    def env(self, mechanism: str = "SCRAM-SHA-256") -> dict[str, str]:
        """The `TOLLGATE_KAFKA_*` variables a service reads to reach this broker over SASL_SSL."""
        return {
            "TOLLGATE_KAFKA_BOOTSTRAP": self.sasl_bootstrap,
            "TOLLGATE_KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
            "TOLLGATE_KAFKA_SASL_MECHANISM": mechanism,
            "TOLLGATE_KAFKA_SASL_USERNAME": CLIENT_USER,
            "TOLLGATE_KAFKA_SASL_PASSWORD": self.password,
            "TOLLGATE_KAFKA_SSL_CAFILE": str(self.certificates.ca),
        }


def start_secure(cfg: StackConfig, on_spawn: Callable[[int], None]) -> SecureBroker:
    """Make certificates, format with the SCRAM users, start the broker, create the contract's topics."""
    work = cfg.part_dir(PART)
    data_dir, props, log_path = work / "data", work / "server.properties", cfg.log_path(PART)
    data_dir.mkdir(parents=True, exist_ok=True)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    certs = make_certificates(work / "certs")
    passwords = (secrets.token_urlsafe(18), secrets.token_urlsafe(18))
    sasl_port, mtls_port, controller_port = free_ports(3)
    overrides = secure_overrides(sasl_port, mtls_port, controller_port, certs, passwords)
    props.write_text(server_properties(data_dir, sasl_port, controller_port, cfg.partitions, overrides))
    props.chmod(0o600)  # it holds the broker's JAAS secrets
    # SCRAM users live in the metadata log; KRaft can only seed them when the storage is formatted. The
    # throwaway passwords show on this one command line, acceptable for a test broker.
    scram = [
        arg
        for mechanism in MECHANISMS[:2]
        for user, password in ((BROKER_USER, passwords[0]), (CLIENT_USER, passwords[1]))
        for arg in ("--add-scram", f"{mechanism}=[name={user},password={password}]")
    ]
    format_storage(cfg, props, log_path, scram)
    pid = spawn(PART, broker_argv(cfg, props), log_path)
    on_spawn(pid)
    wait_until(PART, log_has(log_path, READY_LINE), timeout=cfg.ready_timeout, log_path=log_path, pid=pid)
    broker = SecureBroker(
        pid, f"127.0.0.1:{sasl_port}", f"127.0.0.1:{mtls_port}", certs, passwords[1], log_path
    )
    try:
        create_topics(broker.sasl_bootstrap, cfg.partitions, security=broker.sasl())
    except Exception as exc:
        raise PartFailed(PART, f"creating topics over SASL_SSL failed: {exc}", log_path) from exc
    return broker
