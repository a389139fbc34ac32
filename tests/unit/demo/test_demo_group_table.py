"""The demo's licensee-group table and its alerts' "about" column read right, to the character."""

from demo_expectations import HALCYON, HALCYON_TABLE

from services.core.agreements import load_agreements
from services.demo import tell
from services.demo.scenario import AGREEMENTS_FILE


def test_the_group_table_shows_each_member_against_its_own_caps_and_the_sum_against_the_groups() -> None:
    table = tell.group_table(load_agreements(AGREEMENTS_FILE), {"group": HALCYON}, "2026-10")
    assert table == HALCYON_TABLE


def test_a_group_month_without_use_shows_an_empty_table_and_no_note() -> None:
    table = tell.group_table(load_agreements(AGREEMENTS_FILE), {"group": HALCYON}, "2026-11")
    assert table.splitlines()[3:] == ["(none)"]


def test_a_group_alert_is_about_the_group_and_its_metric() -> None:
    alert = {"licensee_id": "halcyon", "rule": "volume.breach", "severity": "critical", "subject": "halcyon",
             "metric": "calls", "observed": 500, "limit": 500, "window_start": "2026-10-01T00:00:00Z",
             "evidence": {"event_ids": ["halcyon-tv-000249"], "member_id": "halcyon-tv"}}  # fmt: skip
    row = tell.alerts_table([alert]).splitlines()[3]
    assert row == ("halcyon   volume.breach  critical  halcyon calls  500/500         2026-10-01T00:00"
                   "  halcyon-tv-000249")


def test_a_licensee_volume_alert_is_about_its_metric_alone() -> None:
    alert = {"licensee_id": "omnisoft", "rule": "volume.breach", "severity": "critical", "subject": "calls",
             "metric": "calls", "observed": 2000, "limit": 2000, "window_start": "2026-10-01T00:00:00Z",
             "evidence": {"event_ids": ["omnisoft-001999"]}}  # fmt: skip
    assert "omnisoft  volume.breach  critical  calls  2000/2000" in tell.alerts_table([alert])
