"""The ledger: an exact, append-only billing ledger in PostgreSQL, invoices, finance and audit APIs.

- `consumer`: billable deltas from Kafka into `usage_entries`, offsets in the same transaction.
- `pricing` (pure): fees, allowances and overage per licensee and calendar month (UTC).
- `invoices`: issue one invoice per licensee and month once it is closed plus a grace period.
- `api`: the finance/audit HTTP API; `main.run` wires everything into `tollgate serve ledger`.
"""
