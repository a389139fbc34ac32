"""Issue 17's attacks on the finance API process and its database: digits that are not ASCII, a reused
Idempotency-Key, concurrent posts with one key, and Kafka offsets moved backwards by the service role.
After each attack a valid request is still answered."""

from __future__ import annotations

import uuid
from concurrent.futures import ThreadPoolExecutor
from threading import Barrier
from typing import Any
from urllib.parse import quote

import httpx
import psycopg
import pytest
from security_support import LICENSEE, Targets, adjustment, assert_refused, call

pytestmark = pytest.mark.integration

# Superscript two (isdigit() but not int()), fullwidth, Arabic-Indic and mathematical digits.
OTHER_DIGITS = ["\u00b2", "\uff11\uff10", "\u0661\u0660", "1\u00b2", "\U0001d7d9"]
ADJUSTMENTS = f"/v1/licensees/{LICENSEE}/adjustments"


def a_valid_request_still_works(http: httpx.Client, targets: Targets) -> None:
    answer = call(
        http, targets, "GET", f"/v1/licensees/{LICENSEE}/ledger", role="auditor", params={"limit": 5}
    )
    assert answer.status_code == 200, answer.text


def post(
    http: httpx.Client, targets: Targets, body: dict[str, Any], key: str | None = None
) -> httpx.Response:
    headers = {"Idempotency-Key": key} if key is not None else {}
    return call(http, targets, "POST", ADJUSTMENTS, json=body, headers=headers)


@pytest.mark.parametrize("digits", OTHER_DIGITS)
def test_a_limit_of_non_ascii_digits_is_a_400_naming_it(
    http: httpx.Client, targets: Targets, digits: str
) -> None:
    answer = call(http, targets, "GET", f"/v1/licensees/{LICENSEE}/ledger?limit={quote(digits)}")
    assert_refused(answer, 400, "limit")
    a_valid_request_still_works(http, targets)


@pytest.mark.parametrize("value", ["\uff12\uff10\uff12\uff16-10-01", "2026-10-0\u0661", "2026-1\u0660",
                                   "2026-10-01T00:00:00.\u0661Z"])  # fmt: skip
@pytest.mark.parametrize("name", ["from", "to"])
def test_a_time_bound_of_non_ascii_digits_is_a_400_naming_it(
    http: httpx.Client, targets: Targets, name: str, value: str
) -> None:
    answer = call(http, targets, "GET", f"/v1/licensees/{LICENSEE}/usage-report", params={name: value})
    assert_refused(answer, 400, name)
    a_valid_request_still_works(http, targets)


@pytest.mark.parametrize("reference", OTHER_DIGITS)
def test_a_reference_of_non_ascii_digits_is_a_400_naming_it_and_stores_nothing(
    http: httpx.Client, targets: Targets, invoice_id: str, reference: str
) -> None:
    before = targets.table_counts()
    assert_refused(post(http, targets, adjustment(invoice_id, reference=reference)), 400, "reference")
    assert targets.table_counts() == before
    assert post(http, targets, adjustment(invoice_id)).status_code == 201


CHANGES = [{"amount_minor": -501}, {"reason": "another reason"}, {"currency": "EUR"}]


@pytest.mark.parametrize("change", CHANGES)
def test_an_idempotency_key_reused_for_another_adjustment_is_a_422_naming_it(
    http: httpx.Client, targets: Targets, invoice_id: str, change: dict[str, Any]
) -> None:
    key = f"reuse-{uuid.uuid4()}"
    first = post(http, targets, adjustment(invoice_id), key)
    assert first.status_code == 201, first.text
    before = targets.table_counts()
    assert_refused(post(http, targets, adjustment(invoice_id, **change), key), 422, "Idempotency-Key")
    assert targets.table_counts() == before
    again = post(http, targets, adjustment(invoice_id), key)  # the same request is still a retry
    assert (again.status_code, again.json()) == (200, first.json())


def test_twenty_concurrent_posts_with_one_key_store_one_entry_and_all_get_it(
    http: httpx.Client, targets: Targets, invoice_id: str
) -> None:
    key, body, start = f"race-{uuid.uuid4()}", adjustment(invoice_id, amount_minor=-7), Barrier(20)
    before = targets.table_counts()["ledger_entries"]

    def one(_: int) -> httpx.Response:
        with httpx.Client(timeout=30) as client:
            start.wait()
            return post(client, targets, body, key)

    with ThreadPoolExecutor(20) as pool:
        answers = list(pool.map(one, range(20)))
    assert sorted(a.status_code for a in answers) == [200] * 19 + [201], [a.text for a in answers]
    assert len({a.json()["entry_id"] for a in answers}) == 1
    assert targets.table_counts()["ledger_entries"] == before + 1
    assert post(http, targets, adjustment(invoice_id)).status_code == 201


def test_the_service_role_moves_kafka_offsets_only_forward_and_the_owner_may_reset(targets: Targets) -> None:
    group = f"attack-{uuid.uuid4().hex[:8]}"
    with psycopg.connect(targets.app_url, autocommit=True) as app:
        app.execute("INSERT INTO consumer_offsets (consumer_group, topic, kafka_partition, next_offset) "
                    "VALUES (%s, 't', 0, 10)", (group,))  # fmt: skip
        for attack in ("SET next_offset = 9", "SET next_offset = 0", "SET kafka_partition = 1"):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                app.execute(f"UPDATE consumer_offsets {attack} WHERE consumer_group = %s", (group,))
        app.execute("UPDATE consumer_offsets SET next_offset = 11 WHERE consumer_group = %s", (group,))
    with psycopg.connect(targets.owner_url, autocommit=True) as owner:
        owner.execute("UPDATE consumer_offsets SET next_offset = 0 WHERE consumer_group = %s", (group,))
        row = owner.execute("SELECT next_offset FROM consumer_offsets WHERE consumer_group = %s", (group,))
        assert row.fetchone() == (0,)
    with httpx.Client(timeout=30) as http:
        a_valid_request_still_works(http, targets)
