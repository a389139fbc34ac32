"""Agreements take plain dates or RFC 3339 instants for their period, in YAML files and on the topic."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from services.core.agreements import (
    BOUND_REASON,
    agreement_from_cloudevent,
    load_agreements,
    parse_agreement,
    parse_bound,
)
from services.core.errors import ValidationFailed
from services.core.schemas import AGREEMENT_TYPE, problems
from services.demo.scenario import AGREEMENTS_FILE


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)


def base(**changes: Any) -> dict[str, Any]:
    """The demo's first agreement's document with some fields changed."""
    return {**load_agreements(AGREEMENTS_FILE)[0].raw, **changes}


@pytest.mark.parametrize(
    ("text", "end", "expected"),
    [
        ("2026-01-01", False, utc(2026, 1, 1)),
        ("2026-09-30", True, utc(2026, 10, 1)),
        ("2026-12-31", True, utc(2027, 1, 1)),
        ("2028-02-28", True, utc(2028, 2, 29)),
        ("2026-09-30T12:00:00Z", True, utc(2026, 9, 30, 12)),
        ("2026-01-01T02:00:00+02:00", False, utc(2026, 1, 1)),
    ],
)
def test_a_bound_is_read_as_the_instant_the_contract_means(text: str, end: bool, expected: datetime) -> None:
    assert parse_bound(text, end=end) == expected


@pytest.mark.parametrize(
    ("effective_from", "effective_to", "inside", "outside"),
    [
        ("2026-01-01", "2026-09-30", [utc(2026, 1, 1), utc(2026, 9, 30, 23, 59, 59, 999999)],
         [utc(2025, 12, 31, 23, 59, 59), utc(2026, 10, 1)]),
        ("2026-01-01T00:00:00Z", "2026-10-01T00:00:00Z", [utc(2026, 9, 30, 23)], [utc(2026, 10, 1)]),
        ("2026-01-01", None, [utc(2030, 1, 1)], [utc(2025, 12, 31, 23)]),
    ],
)  # fmt: skip
def test_an_agreement_with_plain_dates_is_active_through_its_last_day(
    effective_from: str, effective_to: str | None, inside: list[datetime], outside: list[datetime]
) -> None:
    agreement = parse_agreement(base(effective_from=effective_from, effective_to=effective_to))
    assert [agreement.is_active(at) for at in inside] == [True] * len(inside)
    assert [agreement.is_active(at) for at in outside] == [False] * len(outside)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("effective_from", "2026-13-01"),
        ("effective_from", "20260101"),
        ("effective_from", "2026-W01-1"),
        ("effective_from", "\uff12\uff10\uff12\uff16-01-01"),
        ("effective_from", "2026-01-01T00:00:00"),
        ("effective_from", "next monday"),
        ("effective_to", "2026-02-30"),
        ("effective_to", "9999-12-31"),
    ],
)
def test_anything_but_a_date_or_an_instant_is_refused_naming_the_field(field: str, value: str) -> None:
    with pytest.raises(ValidationFailed) as caught:
        parse_agreement(base(**{field: value}))
    assert caught.value.problems == [{"field": field, "reason": BOUND_REASON}]


def test_a_plain_end_date_before_the_start_is_refused() -> None:
    with pytest.raises(ValidationFailed, match="must be after effective_from"):
        parse_agreement(base(effective_from="2026-05-01", effective_to="2026-04-30"))


def test_a_one_day_agreement_from_and_to_the_same_date_covers_that_day() -> None:
    agreement = parse_agreement(base(effective_from="2026-05-01", effective_to="2026-05-01"))
    assert (agreement.effective_from, agreement.effective_to) == (utc(2026, 5, 1), utc(2026, 5, 2))


def test_a_yaml_file_with_unquoted_dates_loads_and_keeps_the_dates_in_its_document(tmp_path: Path) -> None:
    document = base(effective_from="2026-01-01", effective_to="2026-09-30")
    path = tmp_path / "dates.yaml"
    path.write_text(_yaml([document]), encoding="utf-8")
    loaded = load_agreements(path)[0]
    assert (loaded.effective_from, loaded.effective_to) == (utc(2026, 1, 1), utc(2026, 10, 1))
    assert (loaded.raw["effective_from"], loaded.raw["effective_to"]) == ("2026-01-01", "2026-09-30")


def test_a_bad_date_in_a_file_names_the_agreements_index_and_field(tmp_path: Path) -> None:
    good = load_agreements(AGREEMENTS_FILE)[0].raw
    path = tmp_path / "bad.yaml"
    path.write_text(_yaml([good, {**good, "effective_to": "2026-09-31"}]), encoding="utf-8")
    assert "effective_to: 2026-09-31" in path.read_text(encoding="utf-8")  # unquoted, as a person writes it
    with pytest.raises(ValidationFailed) as caught:
        load_agreements(path)
    assert caught.value.problems == [{"index": 1, "field": "effective_to", "reason": BOUND_REASON}]


def test_an_agreement_with_plain_dates_travels_the_topic_and_validates_there() -> None:
    agreement = parse_agreement(base(effective_from="2026-01-01", effective_to="2026-09-30"))
    envelope = agreement.to_cloudevent()
    assert problems(AGREEMENT_TYPE, envelope) == []
    assert agreement_from_cloudevent(envelope).effective_to == utc(2026, 10, 1)


def _yaml(documents: list[dict[str, Any]]) -> str:
    """YAML with the two dates unquoted, as people write contracts."""
    import yaml

    text = yaml.safe_dump({"agreements": documents}, sort_keys=False)
    for day in ("2026-01-01", "2026-09-30", "2026-09-31"):
        text = text.replace(f"'{day}'", day)
    return text
