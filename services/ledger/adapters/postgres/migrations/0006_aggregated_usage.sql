-- Aggregated billable deltas (issue 13): one usage row per licensee, UTC hour, app, requester org and
-- notice per flush of the processor, instead of one per call. Every new column is NULL on a per-call row.
--   first_event_at, last_event_at: event times of the delta's earliest and latest call (inside its hour);
--   government_notified: government org only, whether its notice was dated before every call of the delta;
--   source_topic, source_partition, source_first_offset, source_last_offset: the input the delta covers
--   (the reference that produced it; kafka_* remain the billable record it arrived in).
ALTER TABLE usage_entries
    ADD COLUMN first_event_at timestamptz,
    ADD COLUMN last_event_at timestamptz,
    ADD COLUMN government_notified boolean,
    ADD COLUMN source_topic text,
    ADD COLUMN source_partition integer,
    ADD COLUMN source_first_offset bigint,
    ADD COLUMN source_last_offset bigint,
    ADD CONSTRAINT usage_entries_event_span CHECK (
        (first_event_at IS NULL OR (first_event_at >= period_start AND first_event_at < period_end))
        AND (last_event_at IS NULL OR (last_event_at >= period_start AND last_event_at < period_end))
        AND (first_event_at IS NULL OR last_event_at IS NULL OR first_event_at <= last_event_at)),
    ADD CONSTRAINT usage_entries_notified_government CHECK (
        government_notified IS NULL OR org_type = 'government'),
    ADD CONSTRAINT usage_entries_source_range CHECK (
        num_nulls(source_topic, source_partition, source_first_offset, source_last_offset) IN (0, 4)
        AND (source_partition IS NULL OR source_partition >= 0)
        AND (source_first_offset IS NULL OR (source_first_offset >= 0 AND source_first_offset <= source_last_offset)));

-- The hash chains of 0005 hash each row's whole text form, so a column added to a chained table would
-- change the text of every stored row (",,,,,,," at its end) and break every link already made. From here
-- on a row's chain content is its text form with its trailing NULL fields folded into one empty field:
-- a row whose new columns are all NULL (every row stored before this migration, every per-call row
-- after it) hashes exactly as 0005 hashed it, and a row with a value in them hashes that value too.
-- The fold is one-to-one for a given column list (an empty unquoted field is NULL; "" is the empty string),
-- and services/ledger/chain.py applies the same fold when it verifies.
CREATE OR REPLACE FUNCTION ledger_chain_link() RETURNS trigger LANGUAGE plpgsql
    SET timezone TO 'UTC' SET datestyle TO 'ISO, YMD' AS $$
DECLARE
    last_seq bigint;
    last_hash text;
    cached text;
    content text;
    k text;
BEGIN
    IF TG_TABLE_NAME = 'invoice_lines' THEN
        NEW.licensee_id := (SELECT i.licensee_id FROM invoices i WHERE i.invoice_id = NEW.invoice_id);
    END IF;
    k := TG_TABLE_NAME || E'\n' || NEW.licensee_id || E'\n';
    cached := current_setting('tollgate.chain_tail', true);
    IF cached IS NOT NULL AND starts_with(cached, k) THEN
        last_seq := split_part(substr(cached, length(k) + 1), ' ', 1)::bigint;
        last_hash := split_part(substr(cached, length(k) + 1), ' ', 2);
    ELSE
        PERFORM pg_advisory_xact_lock(hashtext(TG_TABLE_NAME), hashtext(NEW.licensee_id));
        CASE TG_TABLE_NAME
        WHEN 'usage_entries' THEN
            SELECT chain_seq, row_hash INTO last_seq, last_hash FROM usage_entries
                WHERE licensee_id = NEW.licensee_id ORDER BY chain_seq DESC LIMIT 1;
        WHEN 'ledger_entries' THEN
            SELECT chain_seq, row_hash INTO last_seq, last_hash FROM ledger_entries
                WHERE licensee_id = NEW.licensee_id ORDER BY chain_seq DESC LIMIT 1;
        WHEN 'invoices' THEN
            SELECT chain_seq, row_hash INTO last_seq, last_hash FROM invoices
                WHERE licensee_id = NEW.licensee_id ORDER BY chain_seq DESC LIMIT 1;
        WHEN 'invoice_lines' THEN
            SELECT chain_seq, row_hash INTO last_seq, last_hash FROM invoice_lines
                WHERE licensee_id = NEW.licensee_id ORDER BY chain_seq DESC LIMIT 1;
        WHEN 'agreements' THEN
            SELECT chain_seq, row_hash INTO last_seq, last_hash FROM agreements
                WHERE licensee_id = NEW.licensee_id ORDER BY chain_seq DESC LIMIT 1;
        END CASE;
    END IF;
    NEW.chain_seq := coalesce(last_seq, 0) + 1;
    NEW.prev_hash := coalesce(last_hash, repeat('0', 64));
    NEW.row_hash := NULL;
    content := NEW::text;
    IF right(content, 2) = ',)' THEN
        content := rtrim(left(content, -1), ',') || ',)';
    END IF;
    NEW.row_hash := encode(sha256(convert_to(TG_TABLE_NAME || E'\n' || content, 'UTF8')), 'hex');
    PERFORM set_config('tollgate.chain_tail', k || NEW.chain_seq || ' ' || NEW.row_hash, true);
    RETURN NEW;
END;
$$;
