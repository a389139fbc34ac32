"""Transport security settings: Kafka TLS/SASL client options for every client library we use
(kafka-python, aiokafka, librdkafka) and PostgreSQL TLS checks (pure).
Read from `TOLLGATE_*` variables passed in as a mapping (never `os.environ` here):
- `TOLLGATE_KAFKA_SECURITY_PROTOCOL`: `PLAINTEXT` (default, the local stack), `SSL`, `SASL_PLAINTEXT`,
  `SASL_SSL`;
- `TOLLGATE_KAFKA_SASL_MECHANISM`: `PLAIN`, `SCRAM-SHA-256` (default with SASL) or `SCRAM-SHA-512`;
- `TOLLGATE_KAFKA_SASL_USERNAME`, `TOLLGATE_KAFKA_SASL_PASSWORD`: required with SASL; a well-known
  default password is refused;
- `TOLLGATE_KAFKA_SSL_CAFILE`, `TOLLGATE_KAFKA_SSL_CERTFILE`, `TOLLGATE_KAFKA_SSL_KEYFILE`,
  `TOLLGATE_KAFKA_SSL_KEY_PASSWORD`: the CA bundle, and a client certificate for mutual TLS;
- `TOLLGATE_REQUIRE_TLS=true`: refuse any plaintext transport (Kafka `PLAINTEXT`/`SASL_PLAINTEXT`,
  a PostgreSQL URL whose `sslmode` does not require TLS).
"""

from __future__ import annotations

import ssl
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

from services.core.errors import SettingsError

PROTOCOLS = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")
MECHANISMS = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512")
# PostgreSQL sslmodes that refuse to talk without TLS.
TLS_SSLMODES = ("require", "verify-ca", "verify-full")
# Secrets that ship in examples and must never reach a running service.
DEFAULT_SECRETS = frozenset(
    {"", "changeme", "change-me", "secret", "password", "postgres", "admin", "tollgate", "kafka"}
)
_TRUE = ("1", "true", "yes", "on")


def _get(environ: Mapping[str, str], name: str) -> str:
    return environ.get(name, "").strip()


def require_tls(environ: Mapping[str, str]) -> bool:
    """Whether `TOLLGATE_REQUIRE_TLS` asks every connection to be encrypted."""
    raw = _get(environ, "TOLLGATE_REQUIRE_TLS").lower()
    if raw not in ("", "0", "false", "no", "off", *_TRUE):
        raise SettingsError(f"TOLLGATE_REQUIRE_TLS must be true or false, got {raw!r}")
    return raw in _TRUE


@dataclass(frozen=True, slots=True)
class KafkaSecurity:
    """How a Kafka client authenticates and encrypts; build it with `from_env`."""

    protocol: str = "PLAINTEXT"
    mechanism: str | None = None
    username: str | None = None
    password: str | None = None
    cafile: str | None = None
    certfile: str | None = None
    keyfile: str | None = None
    key_password: str | None = None

    @property
    def uses_ssl(self) -> bool:
        """Whether the connection is TLS."""
        return self.protocol in ("SSL", "SASL_SSL")

    @property
    def uses_sasl(self) -> bool:
        """Whether the client authenticates with SASL."""
        return self.protocol.startswith("SASL_")

    def __repr__(self) -> str:
        # Never show the secrets, whoever logs this object.
        shown = f"protocol={self.protocol!r}, mechanism={self.mechanism!r}, username={self.username!r}"
        return f"KafkaSecurity({shown})"

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> KafkaSecurity:
        """Read and validate; SettingsError names the first bad variable (never its secret value)."""
        protocol = _get(environ, "TOLLGATE_KAFKA_SECURITY_PROTOCOL").upper() or "PLAINTEXT"
        if protocol not in PROTOCOLS:
            raise SettingsError(f"TOLLGATE_KAFKA_SECURITY_PROTOCOL must be one of {', '.join(PROTOCOLS)}")
        if require_tls(environ) and protocol not in ("SSL", "SASL_SSL"):
            raise SettingsError(
                "TOLLGATE_REQUIRE_TLS is true, so TOLLGATE_KAFKA_SECURITY_PROTOCOL must be SSL or SASL_SSL"
            )
        security = cls(
            protocol=protocol,
            mechanism=_get(environ, "TOLLGATE_KAFKA_SASL_MECHANISM").upper() or None,
            username=_get(environ, "TOLLGATE_KAFKA_SASL_USERNAME") or None,
            password=environ.get("TOLLGATE_KAFKA_SASL_PASSWORD") or None,
            cafile=_get(environ, "TOLLGATE_KAFKA_SSL_CAFILE") or None,
            certfile=_get(environ, "TOLLGATE_KAFKA_SSL_CERTFILE") or None,
            keyfile=_get(environ, "TOLLGATE_KAFKA_SSL_KEYFILE") or None,
            key_password=environ.get("TOLLGATE_KAFKA_SSL_KEY_PASSWORD") or None,
        )
        security.check()
        return security

    def check(self) -> None:
        """Refuse combinations that would connect without the protection asked for."""
        sasl_set = [v for v in (self.mechanism, self.username, self.password) if v]
        if not self.uses_sasl and sasl_set:
            raise SettingsError(
                "TOLLGATE_KAFKA_SASL_* is set but TOLLGATE_KAFKA_SECURITY_PROTOCOL is "
                f"{self.protocol}; use SASL_SSL (or SASL_PLAINTEXT)"
            )
        tls_set = [v for v in (self.cafile, self.certfile, self.keyfile) if v]
        if not self.uses_ssl and tls_set:
            raise SettingsError(
                "TOLLGATE_KAFKA_SSL_* is set but TOLLGATE_KAFKA_SECURITY_PROTOCOL is "
                f"{self.protocol}; use SSL or SASL_SSL"
            )
        if self.uses_sasl:
            if self.mechanism is not None and self.mechanism not in MECHANISMS:
                raise SettingsError(f"TOLLGATE_KAFKA_SASL_MECHANISM must be one of {', '.join(MECHANISMS)}")
            if not self.username:
                raise SettingsError(f"TOLLGATE_KAFKA_SASL_USERNAME is required with {self.protocol}")
            if not self.password:
                raise SettingsError(f"TOLLGATE_KAFKA_SASL_PASSWORD is required with {self.protocol}")
            if self.password.strip().lower() in DEFAULT_SECRETS:
                raise SettingsError("TOLLGATE_KAFKA_SASL_PASSWORD is a well-known default; set a real secret")
        if bool(self.certfile) != bool(self.keyfile):
            raise SettingsError(
                "TOLLGATE_KAFKA_SSL_CERTFILE and TOLLGATE_KAFKA_SSL_KEYFILE go together (mutual TLS)"
            )

    @property
    def sasl_mechanism(self) -> str:
        """The SASL mechanism in force (SCRAM-SHA-256 unless told otherwise)."""
        return self.mechanism or "SCRAM-SHA-256"

    def _options(self, tls: Callable[[], dict[str, Any]]) -> dict[str, Any]:
        """Options both client libraries share (same names in kafka-python and aiokafka), plus `tls()`."""
        options: dict[str, Any] = {"security_protocol": self.protocol}
        if self.uses_sasl:
            options.update(
                sasl_mechanism=self.sasl_mechanism,
                sasl_plain_username=self.username,
                sasl_plain_password=self.password,
            )
        if self.uses_ssl:
            # Called only with TLS on: building a context reads the CA and key files.
            options.update(tls())
        return options

    def kafka_python(self) -> dict[str, Any]:
        """kafka-python options (KafkaProducer, KafkaConsumer, KafkaAdminClient)."""
        files = (
            ("ssl_cafile", self.cafile),
            ("ssl_certfile", self.certfile),
            ("ssl_keyfile", self.keyfile),
            ("ssl_password", self.key_password),
        )
        return self._options(lambda: {"ssl_check_hostname": True, **{k: v for k, v in files if v}})

    def ssl_context(self) -> ssl.SSLContext | None:
        """A verifying TLS context (hostname checked) for aiokafka and faust; None without TLS."""
        if not self.uses_ssl:
            return None
        context = ssl.create_default_context(cafile=self.cafile)
        if self.certfile:
            context.load_cert_chain(self.certfile, self.keyfile, self.key_password)
        return context

    def aiokafka(self) -> dict[str, Any]:
        """aiokafka options (AIOKafkaProducer, AIOKafkaConsumer); the TLS context is built here."""
        return self._options(lambda: {"ssl_context": self.ssl_context()})


# The local stack's setting: no TLS, no SASL (a safe default argument: the dataclass is frozen).
PLAINTEXT = KafkaSecurity()


def librdkafka_options(security: KafkaSecurity) -> dict[str, str]:
    """librdkafka (confluent-kafka, under quix-streams) options: protocol, SASL login, verifying TLS."""
    options = {"security.protocol": security.protocol.lower()}
    if security.uses_sasl:
        options["sasl.mechanism"] = security.sasl_mechanism
        options["sasl.username"] = security.username or ""
        options["sasl.password"] = security.password or ""
    if security.uses_ssl:
        # Hostname verification on, like the other clients' verifying contexts.
        options["ssl.endpoint.identification.algorithm"] = "https"
        files = (
            ("ssl.ca.location", security.cafile),
            ("ssl.certificate.location", security.certfile),
            ("ssl.key.location", security.keyfile),
            ("ssl.key.password", security.key_password),
        )
        options.update({name: value for name, value in files if value})
    return options


def kafka_client_options(environ: Mapping[str, str]) -> dict[str, Any]:
    """kafka-python client options for the `TOLLGATE_KAFKA_*` security variables; `{"security_protocol":
    "PLAINTEXT"}` when none is set. Merge it into every KafkaProducer/KafkaConsumer/KafkaAdminClient."""
    return KafkaSecurity.from_env(environ).kafka_python()


def aiokafka_client_options(environ: Mapping[str, str]) -> dict[str, Any]:
    """The same settings as aiokafka options (TLS as an `ssl_context`)."""
    return KafkaSecurity.from_env(environ).aiokafka()


def database_tls(url: str, environ: Mapping[str, str], name: str = "TOLLGATE_DATABASE_URL") -> str:
    """`url`, refused when `TOLLGATE_REQUIRE_TLS` is true and its `sslmode` lets libpq talk in clear.

    PostgreSQL TLS is configured in the URL: `?sslmode=verify-full&sslrootcert=/path/ca.pem` (and
    `sslcert`/`sslkey` for client certificates). `sslmode=disable` is always refused under
    `TOLLGATE_REQUIRE_TLS`; so are `allow`, `prefer` and a missing sslmode (libpq's default, `prefer`,
    silently falls back to plaintext)."""
    if not require_tls(environ):
        return url
    query = parse_qs(urlsplit(url).query)
    mode = (query.get("sslmode") or [environ.get("PGSSLMODE", "")])[-1].strip().lower()
    if mode not in TLS_SSLMODES:
        shown = mode or "(unset, i.e. prefer)"
        raise SettingsError(
            f"TOLLGATE_REQUIRE_TLS is true but {name} has sslmode={shown}; "
            "use sslmode=verify-full&sslrootcert=/path/to/ca.pem"
        )
    return url
