"""The price catalogue file: the shipped one has the story's tiers; a bad one is refused naming its tier."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from services.core.errors import SettingsError
from services.ledger.domain.catalogue import (
    DEFAULT_CATALOGUE,
    VOLUME_REASON,
    CatalogueError,
    load_catalogue,
    parse_catalogue,
)
from services.ledger.settings import LedgerSettings

APP = "postgresql://svc:s3cret-xyz@127.0.0.1:5432/tollgate"
GOOD: dict[str, Any] = {
    "catalogue_id": "test-2026", "currency": "USD",
    "tiers": [{"tier_id": "basic", "name": "Basic", "monthly_fee_minor": 10_000, "included_calls": 1_000},
              {"tier_id": "big", "name": "Big", "annual_fee_minor": 12, "included_records": 5,
               "overage_per_1000_records_minor": 1}],
}  # fmt: skip


def test_the_shipped_catalogue_has_the_storys_basic_and_enterprise_prices() -> None:
    catalogue = load_catalogue(DEFAULT_CATALOGUE)
    tiers = {t.tier_id: t for t in catalogue.tiers}
    assert catalogue.currency == "USD" and list(tiers) == ["basic", "pro", "enterprise"]
    basic = tiers["basic"]
    assert (basic.monthly_fee_minor, basic.annual_fee_minor) == (10_000, 0)  # USD 100 a month
    enterprise = tiers["enterprise"]
    assert (enterprise.monthly_fee_minor, enterprise.annual_fee_minor) == (0, 200_000_000)  # USD 2M a year
    assert (enterprise.included_calls, enterprise.included_records) == (2_000, 60_000)


def changed(path: tuple[Any, ...], value: Any) -> dict[str, Any]:
    document = copy.deepcopy(GOOD)
    node = document
    for key in path[:-1]:
        node = node[key]
    if value is KeyError:
        del node[path[-1]]
    else:
        node[path[-1]] = value
    return document


@pytest.mark.parametrize(("path", "value", "index", "field", "reason"), [
    (("tiers", 1, "annual_fee_minor"), 12.0, 1, "annual_fee_minor", "integer of minor units"),  # no float
    (("tiers", 0, "monthly_fee_minor"), True, 0, "monthly_fee_minor", "not True"),
    (("tiers", 0, "monthly_fee_minor"), -1, 0, "monthly_fee_minor", "less than the minimum"),
    (("tiers", 0, "included_calls"), KeyError, 0, "(tier)", VOLUME_REASON),
    (("tiers", 0, "included_calls"), None, 0, "(tier)", VOLUME_REASON),  # no limit at all is no tier
    (("tiers", 0, "included_calls"), 1.5, 0, "included_calls", "is not of type"),
    (("tiers", 1, "name"), KeyError, 1, "name", "is a required property"),
    (("tiers", 1, "overage_per_1000_calls"), 5, 1, "(tier)", "Additional properties"),
    (("tiers", 1, "tier_id"), "basic", 1, "tier_id", "is already the id of tier 0"),
    (("currency",), "usd", None, "currency", "does not match"),
    (("tiers",), [], None, "tiers", "should be non-empty"),
    (("catalogue_id",), KeyError, None, "catalogue_id", "is a required property"),
])  # fmt: skip
def test_a_bad_catalogue_is_refused_naming_the_tier_index_and_field(
    path: tuple[Any, ...], value: Any, index: int | None, field: str, reason: str
) -> None:
    with pytest.raises(CatalogueError) as refused:
        parse_catalogue(changed(path, value), "prices.yaml")
    problems = refused.value.problems
    assert [(p["index"], p["field"]) for p in problems] == [(index, field)], problems
    assert reason in problems[0]["reason"]
    where = f"tier {index}: " if index is not None else ""
    assert f"price catalogue prices.yaml: {where}{field}: " in str(refused.value)


@pytest.mark.parametrize(("content", "reason"), [
    (None, "No such file"), ("tiers: [unclosed", "is not valid YAML"),
    ("just text", "is not of type 'object'"),
])  # fmt: skip
def test_an_unreadable_file_is_refused_naming_the_file(
    tmp_path: Path, content: str | None, reason: str
) -> None:
    path = tmp_path / "prices.yaml"
    if content is not None:
        path.write_text(content)
    with pytest.raises(CatalogueError, match=reason):
        load_catalogue(path)


def test_a_catalogue_loads_from_yaml_and_its_path_comes_from_the_ledger_settings(tmp_path: Path) -> None:
    path = tmp_path / "prices.yaml"
    path.write_text(yaml.safe_dump(GOOD))
    tokens = tmp_path / "tokens.json"
    tokens.write_text('{"tokens": []}')
    env = {"TOLLGATE_KAFKA_BOOTSTRAP": "127.0.0.1:9092", "TOLLGATE_APP_DATABASE_URL": APP,
           "TOLLGATE_TOKENS_FILE": str(tokens)}  # fmt: skip
    assert LedgerSettings.from_env(env).price_catalogue == DEFAULT_CATALOGUE
    settings = LedgerSettings.from_env({**env, "TOLLGATE_LEDGER_PRICE_CATALOGUE": str(path)})
    assert [t.tier_id for t in load_catalogue(settings.price_catalogue).tiers] == ["basic", "big"]
    with pytest.raises(SettingsError, match="TOLLGATE_LEDGER_PRICE_CATALOGUE"):
        LedgerSettings.from_env({**env, "TOLLGATE_LEDGER_PRICE_CATALOGUE": str(tmp_path / "missing.yaml")})
