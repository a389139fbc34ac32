"""Ledger settings from the environment."""

from __future__ import annotations

from pathlib import Path

import pytest

from services.core.errors import SettingsError
from services.ledger.settings import LedgerSettings

APP = "postgresql://svc:s3cret-xyz@127.0.0.1:5432/tollgate"
OWNER = "postgresql://tollgate_owner:0wner-xyz@127.0.0.1:5432/tollgate"


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    tokens = tmp_path / "tokens.json"
    tokens.write_text('{"tokens": []}')
    return {"TOLLGATE_KAFKA_BOOTSTRAP": "127.0.0.1:9092", "TOLLGATE_APP_DATABASE_URL": APP,
            "TOLLGATE_DATABASE_URL": OWNER, "TOLLGATE_TOKENS_FILE": str(tokens)}  # fmt: skip


def test_settings_have_documented_defaults_and_take_the_service_role_from_its_url(
    env: dict[str, str],
) -> None:
    settings = LedgerSettings.from_env(env)
    assert (settings.port, settings.metrics_port, settings.invoice_grace_hours) == (8081, 9103, 72)
    assert (settings.app_role, settings.owner_database_url, settings.partitions) == ("svc", OWNER, None)


def test_without_a_service_url_the_owner_url_serves() -> None:
    assert LedgerSettings(kafka_bootstrap="k:1", app_database_url=OWNER, tokens_file=Path("t")).app_role == (
        "tollgate_owner")  # fmt: skip


@pytest.mark.parametrize(("name", "value", "message"), [
    ("TOLLGATE_APP_DATABASE_URL", "postgresql://tollgate_app:postgres@127.0.0.1/tollgate",
        "default password"),
    ("TOLLGATE_DATABASE_URL", "postgresql://o:changeme@127.0.0.1/tollgate", "default password"),
    ("TOLLGATE_LEDGER_INVOICE_GRACE_HOURS", "-1", "GRACE_HOURS"),
    ("TOLLGATE_LEDGER_METRICS_PORT", "8081", "must differ"),
    ("TOLLGATE_LEDGER_PARTITIONS", "0,x", "PARTITIONS"),
    ("TOLLGATE_LEDGER_BILLING_START", "2026-13", "BILLING_START"),
    ("TOLLGATE_TOKENS_FILE", "/nonexistent/tokens.json", "TOKENS_FILE"),
    ("TOLLGATE_KAFKA_BOOTSTRAP", "", "KAFKA_BOOTSTRAP"),
])  # fmt: skip
def test_bad_or_default_settings_are_refused_naming_the_variable(
    env: dict[str, str], name: str, value: str, message: str
) -> None:
    with pytest.raises(SettingsError, match=message):
        LedgerSettings.from_env({**env, name: value})


def test_partitions_can_be_listed_for_static_assignment(env: dict[str, str]) -> None:
    assert LedgerSettings.from_env({**env, "TOLLGATE_LEDGER_PARTITIONS": "3, 1,1"}).partitions == (1, 3)
