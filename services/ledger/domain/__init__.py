"""The ledger's pure core: pricing, invoice math, usage and group reports, exposure, hash chains, the decoding
of billable and alert records, query parameters and the audit report's HTML. Nothing here imports a database
driver, a Kafka client, an HTTP framework or `os` (tests/unit/ledger/test_ledger_domain_imports.py)."""
