"""Kafka topic names: the one place they are spelled."""

API_CALLS = "tollgate.api-calls.v1"
API_CALLS_DLQ = "tollgate.api-calls.v1.dlq"
AGREEMENTS = "tollgate.agreements.v1"
ALERTS = "tollgate.alerts.v1"
BILLABLE = "tollgate.billable.v1"
BILLABLE_DLQ = "tollgate.billable.v1.dlq"

ALL_TOPICS = (API_CALLS, API_CALLS_DLQ, AGREEMENTS, ALERTS, BILLABLE, BILLABLE_DLQ)
COMPACTED_TOPICS = (AGREEMENTS,)


def group_usage(app_id: str) -> str:
    """The processor's internal topic of group members' counted calls, keyed by group: named after its
    consumer group, like quix's changelogs, so each processor app (and each test) has its own."""
    return f"{app_id}.group-usage.v1"
