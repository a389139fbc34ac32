"""HTTP serving shared by ingest and the ledger: uvicorn with read timeouts and a connection limit."""
