"""Ids, timestamps, agreements and tokens behave as the contract says."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from services.core import ids
from services.core.agreements import load_agreements, parse_agreement
from services.core.errors import SettingsError, ValidationFailed
from services.core.events import ApiCall, format_time, parse_time
from services.core.settings import database_url, integer, tokens_file
from services.core.tokens import FileTokenStore, InMemoryTokenStore
from services.demo.scenario import AGREEMENTS_FILE, demo_calls

OCT = datetime(2026, 10, 1, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-10-01T00:00:00Z", OCT),
        ("2026-10-01T02:00:00+02:00", OCT),
        ("2026-09-30T19:00:00-05:00", OCT),
        ("2026-10-01T00:00:00.000001z", OCT.replace(microsecond=1)),
    ],
)
def test_timestamps_are_read_as_utc_whatever_their_offset(text: str, expected: datetime) -> None:
    assert parse_time(text) == expected


def test_a_timestamp_without_offset_is_refused() -> None:
    with pytest.raises(ValueError, match="no UTC offset"):
        parse_time("2026-10-01T00:00:00")


def test_formatting_a_time_gives_rfc3339_with_z() -> None:
    assert format_time(OCT) == "2026-10-01T00:00:00Z"


def test_usage_and_alert_ids_are_deterministic_and_distinct() -> None:
    assert ids.usage_id("gw", "1") == ids.usage_id("gw", "1")
    assert ids.usage_id("gw", "1") != ids.usage_id("gw2", "1")
    first = ids.alert_id("volume.breach", "omnisoft", OCT, "critical", "calls")
    assert first == ids.alert_id("volume.breach", "omnisoft", OCT, "critical", "calls")
    assert first != ids.alert_id("volume.breach", "omnisoft", OCT, "critical", "records")


def test_an_api_call_survives_a_round_trip_through_its_envelope() -> None:
    call = demo_calls()[42]
    assert ApiCall.from_cloudevent(call.to_cloudevent()) == call


@pytest.mark.parametrize(
    ("org", "at", "allowed"),
    [
        ("gov-statistics-office", datetime(2026, 9, 2, tzinfo=UTC), True),
        ("gov-statistics-office", datetime(2026, 9, 1, tzinfo=UTC), False),
        ("gov-statistics-office", datetime(2026, 8, 1, tzinfo=UTC), False),
        ("gov-intel-agency", datetime(2026, 10, 2, tzinfo=UTC), False),
    ],
)
def test_a_government_call_needs_a_notice_dated_before_it(org: str, at: datetime, allowed: bool) -> None:
    omnisoft = load_agreements(AGREEMENTS_FILE)[0]
    assert omnisoft.government_call_allowed(org, at) is allowed


def test_an_ended_agreement_is_not_active_after_its_end() -> None:
    oldco = load_agreements(AGREEMENTS_FILE)[2]
    assert oldco.is_active(datetime(2026, 9, 30, 23, 59, tzinfo=UTC))
    assert not oldco.is_active(OCT)


def test_apps_without_a_declared_use_case_are_listed() -> None:
    omnisoft = load_agreements(AGREEMENTS_FILE)[0]
    assert omnisoft.apps_without_use_case() == ["omni-cloud", "omni-devtools", "omni-research"]


def test_an_agreements_file_with_errors_lists_every_bad_entry(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("agreements:\n  - {licensee_id: a}\n  - {licensee_id: b, name: B}\n")
    with pytest.raises(ValidationFailed) as caught:
        load_agreements(path)
    assert {p["index"] for p in caught.value.problems} == {0, 1}


def test_an_agreement_ending_before_it_starts_is_refused() -> None:
    raw = dict(load_agreements(AGREEMENTS_FILE)[2].raw, effective_to="2024-01-01T00:00:00Z")
    with pytest.raises(ValidationFailed, match="effective_to"):
        parse_agreement(raw)


def test_a_token_verifies_only_in_full_and_until_revoked(tmp_path: Path) -> None:
    store = FileTokenStore(tmp_path / "tokens.json", reload_seconds=0)
    token = store.create("gateway", "ingest", ["gw-1"])
    principal = store.verify(token)
    assert principal is not None and principal.may_send("gw-1") and not principal.may_send("gw-2")
    assert store.verify(token[:-1]) is None
    assert token not in (tmp_path / "tokens.json").read_text()
    assert store.revoke(principal.token_id)
    assert FileTokenStore(tmp_path / "tokens.json").verify(token) is None


def test_a_finance_token_may_not_send_events() -> None:
    store = InMemoryTokenStore()
    principal = store.verify(store.create("cfo", "finance"))
    assert principal is not None and not principal.may_send("anything")


@pytest.mark.parametrize(
    "url",
    ["postgresql://u:changeme@db/x", "postgresql://u@db/x", "mysql://u:s3cret-x@db/x"],
)
def test_settings_refuse_default_or_missing_database_secrets(url: str) -> None:
    with pytest.raises(SettingsError, match="TOLLGATE_DATABASE_URL"):
        database_url({"TOLLGATE_DATABASE_URL": url})


def test_settings_name_the_variable_that_is_wrong(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="TOLLGATE_X must be an integer"):
        integer({"TOLLGATE_X": "ten"}, "TOLLGATE_X", 1)
    with pytest.raises(SettingsError, match="does not exist"):
        tokens_file({"TOLLGATE_TOKENS_FILE": str(tmp_path / "none.json")})
