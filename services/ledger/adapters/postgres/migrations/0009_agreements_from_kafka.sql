-- Agreements come from the compacted agreements topic (services/ledger/agreement_consumer.py), not from the
-- CLI: each row carries the Kafka record it came in (NULL on rows stored before this migration). The columns
-- are nullable and last, so the hash-chain links of stored rows stay valid (trailing NULLs fold, see 0006).
ALTER TABLE agreements
    ADD COLUMN kafka_topic text,
    ADD COLUMN kafka_partition integer CHECK (kafka_partition >= 0),
    ADD COLUMN kafka_offset bigint CHECK (kafka_offset >= 0);

-- A record is stored at most once, whatever the consumer group that reads it.
CREATE UNIQUE INDEX agreements_record_once ON agreements (kafka_topic, kafka_partition, kafka_offset)
    WHERE kafka_topic IS NOT NULL;

-- A version is a new row unless its document is the one already in force for its licensee and start (the
-- latest stored version of that licensee_id and effective_from): a re-published identical document changes
-- nothing, while going back to an earlier document (A, B, then A again) stores A again and puts it back in
-- force, as the processor's view of the topic does (the latest read wins). 0001's unique constraint would
-- refuse that third row, so it goes; the consumer checks under the licensee's chain lock instead.
ALTER TABLE agreements DROP CONSTRAINT agreements_one_version;
CREATE INDEX agreements_by_start ON agreements (licensee_id, effective_from, agreement_version);
