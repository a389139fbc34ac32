"""The ledger: an exact, append-only billing ledger in PostgreSQL, invoices, finance and audit APIs.

- `consumer`: billable deltas from Kafka into `usage_entries`, offsets in the same transaction; `fastpath`
  and `codec` check them. A delta is per call (`occurred_at`, `source_event`) or aggregated per hour,
  app and org (`first_event_at`, `last_event_at`, `government_notified`, the input `reference`; migration
  0006 adds their columns).
- `pricing` (pure): fees, allowances and overage per licensee and calendar month (UTC).
- `invoices`: issue one invoice per licensee and month once it is closed plus a grace period.
- `api`: the finance/audit HTTP API; `main.run` wires everything into `tollgate serve ledger`.
"""
