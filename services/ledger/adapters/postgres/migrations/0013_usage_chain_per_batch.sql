-- The usage chain linked once per batch instead of once per row (issue 16 item 4: the write path within
-- 10% of the one without chains). The row trigger of 0005/0006/0008 cost about 20 us a row on the bench
-- machine, half of PostgreSQL's whole write: a PL/pgSQL call per row with its SET timezone/datestyle
-- (saved and restored per call), the chain tail parsed from and written back to a setting, and a head
-- lookup (a merge over every month partition) per licensee and statement. The link itself, the row's
-- text form and its SHA-256, is the cheaper part.
--
-- ledger_append_usage() stores the consumer's staged batch in one call: the same rows as the consumer's
-- INSERT (each usage_id once, the earliest offset; stored ones left out; licensee order), each licensee's
-- advisory lock of the trigger (same keys, licensee order, so trigger and function writers serialise and
-- cannot deadlock), every head in one query, then each row linked exactly as ledger_chain_link links it:
-- chain_seq, prev_hash, and row_hash = sha256('usage_entries' LF fold(row text with row_hash NULL)), in
-- UTC and ISO. recorded_at is now(), as the column default gives. SECURITY DEFINER, so its INSERT runs
-- as this migration's role: the row trigger now skips rows that arrive linked from that role only
-- (WHEN below). Any other role's INSERT is linked by the trigger as before, whatever chain values it
-- sends, so no client writes a chain value of its choosing; the owner could already disable the trigger.
-- The staging table is the caller's own temporary table (the consumer grants SELECT on it to this role);
-- pg_temp is searched last, so no temporary object can stand in for a ledger table.

CREATE FUNCTION ledger_append_usage() RETURNS bigint LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = {schema}, pg_temp SET timezone TO 'UTC' SET datestyle TO 'ISO, YMD' AS $$
DECLARE
    r usage_entries;
    linked usage_entries[] := ARRAY[]::usage_entries[];
    licensees text[];
    seqs bigint[];
    hashes text[];
    i integer := 0;
    seq bigint;
    prev text;
    content bytea;
BEGIN
    licensees := ARRAY(SELECT DISTINCT licensee_id FROM pg_temp.ledger_usage_staging ORDER BY 1);
    FOR j IN 1 .. coalesce(array_length(licensees, 1), 0) LOOP
        PERFORM pg_advisory_xact_lock(hashtext('usage_entries'), hashtext(licensees[j]));
    END LOOP;
    -- Read after the locks: every earlier writer of these chains has committed. A head may be archived (0008).
    SELECT array_agg(CASE WHEN a.last_seq > coalesce(h.chain_seq, 0) THEN a.last_seq
                          ELSE coalesce(h.chain_seq, 0) END ORDER BY l.n),
           array_agg(CASE WHEN a.last_seq > coalesce(h.chain_seq, 0) THEN a.last_row_hash
                          ELSE coalesce(h.row_hash, repeat('0', 64)) END ORDER BY l.n)
        INTO seqs, hashes
        FROM unnest(licensees) WITH ORDINALITY AS l (id, n)
        LEFT JOIN LATERAL (SELECT u.chain_seq, u.row_hash FROM usage_entries u WHERE u.licensee_id = l.id
                           ORDER BY u.chain_seq DESC LIMIT 1) AS h ON true
        LEFT JOIN LATERAL (SELECT x.last_seq, x.last_row_hash FROM usage_archived_links x
                           WHERE x.licensee_id = l.id ORDER BY x.last_seq DESC LIMIT 1) AS a ON true;
    -- The columns in the table's order (chain columns NULL until linked below).
    FOR r IN
        SELECT s.usage_id, s.licensee_id, s.app_id, s.period_start, s.period_end, s.occurred_at, s.calls,
               s.records, s.org_id, s.org_type, s.source_event_source, s.source_event_id, s.kafka_topic,
               s.kafka_partition, s.kafka_offset, now(), NULL::bigint, NULL::text, NULL::text, s.first_event_at,
               s.last_event_at, s.government_notified, s.source_topic, s.source_partition,
               s.source_first_offset, s.source_last_offset
        FROM (SELECT DISTINCT ON (usage_id) * FROM pg_temp.ledger_usage_staging
              ORDER BY usage_id, kafka_partition, kafka_offset) AS s
        WHERE NOT EXISTS (SELECT 1 FROM usage_entries u WHERE u.usage_id = s.usage_id)
        ORDER BY s.licensee_id, s.kafka_partition, s.kafka_offset
    LOOP
        IF i = 0 OR licensees[i] <> r.licensee_id THEN  -- the next licensee: its head
            i := i + 1;
            WHILE licensees[i] <> r.licensee_id LOOP  -- licensees whose rows were all stored already
                i := i + 1;
            END LOOP;
            seq := seqs[i];
            prev := hashes[i];
        END IF;
        seq := seq + 1;
        r.chain_seq := seq;
        r.prev_hash := prev;
        content := convert_to('usage_entries' || E'\n' || r::text, 'UTF8');
        -- The fold of 0006: the text ends in ',)' exactly when its last column is NULL. On bytes (',' and
        -- ')' are single bytes in UTF-8): text's right() and left() count characters from the start.
        IF r.source_last_offset IS NULL THEN
            content := rtrim(substr(content, 1, length(content) - 1), '\x2c'::bytea) || '\x2c29'::bytea;
        END IF;
        prev := encode(sha256(content), 'hex');
        r.row_hash := prev;
        linked := linked || r;
    END LOOP;
    INSERT INTO usage_entries SELECT * FROM unnest(linked);
    RETURN cardinality(linked);
END;
$$;
REVOKE ALL ON FUNCTION ledger_append_usage() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION ledger_append_usage() TO {app_role};

-- The link trigger of 0008, skipping only rows this role's INSERT brings linked (ledger_append_usage's).
DROP TRIGGER usage_entries_chain_link ON usage_entries;
DO $$
BEGIN
    EXECUTE format('CREATE TRIGGER usage_entries_chain_link BEFORE INSERT ON usage_entries FOR EACH ROW '
                   'WHEN (NEW.row_hash IS NULL OR current_user <> %L) '
                   'EXECUTE FUNCTION ledger_chain_link(''usage_entries'')', current_user);
END;
$$;
