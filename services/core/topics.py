"""Kafka topic names: the one place they are spelled."""

API_CALLS = "tollgate.api-calls.v1"
API_CALLS_DLQ = "tollgate.api-calls.v1.dlq"
AGREEMENTS = "tollgate.agreements.v1"
ALERTS = "tollgate.alerts.v1"
BILLABLE = "tollgate.billable.v1"
BILLABLE_DLQ = "tollgate.billable.v1.dlq"

ALL_TOPICS = (API_CALLS, API_CALLS_DLQ, AGREEMENTS, ALERTS, BILLABLE, BILLABLE_DLQ)
COMPACTED_TOPICS = (AGREEMENTS,)
