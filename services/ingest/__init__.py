"""HTTP ingest: authenticated CloudEvents over HTTP into Kafka; nothing accepted is lost."""
