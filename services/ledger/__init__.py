"""The ledger: an exact, append-only billing ledger in PostgreSQL, invoices, finance and audit APIs.

- `domain` (pure: no driver, Kafka client, HTTP framework or `os`): `pricing` (fees, allowances and overage
  per licensee and calendar month, UTC), `invoice_math`, `reports`, `exposure`, the hash `chain`, and the
  `codec`/`fastpath` that check billable deltas (per call, or aggregated per hour, app and org).
- `adapters.postgres`: the stores, `invoices` (one invoice per licensee and month once it is closed plus a
  grace period) and `migrate`; `adapters.kafka`: the consumers, offsets in the same transaction as the rows;
  `adapters.http`: the finance/audit API; `adapters.pdf`.
- `main.run` wires everything into `tollgate serve ledger`. The module map is in services/ledger/README.md.
"""
