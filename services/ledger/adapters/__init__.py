"""The ledger's edges: PostgreSQL (`postgres`), Kafka (`kafka`), the finance/audit HTTP API (`http`) and the
audit report's PDF (`pdf`). They build on `services.ledger.domain`, never the other way round."""
