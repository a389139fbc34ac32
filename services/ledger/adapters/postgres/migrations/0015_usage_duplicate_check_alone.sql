-- The batch's duplicate check pinned to index probes by a function of its own, and the rest of the batch's
-- write under the session's planner settings (issue 13 item 3, issue 16 item 4). 0014 put enable_hashjoin,
-- enable_mergejoin, enable_seqscan and enable_bitmapscan off on the whole of ledger_append_usage(): they held
-- for every statement of the call and for the triggers its INSERT fires (the rollup's upsert among them),
-- not only for the one check that needed them.
--
-- ledger_usage_stored(ids) returns those of `ids` that an attached month partition holds. It probes each
-- partition's primary key (usage_id leads it) with the whole array as its key, one index scan per partition
-- and one descent per id in it: the batch's size times the months, never the rows stored. A partition that
-- has never held a row (pg_relation_size 0: next month's, usually the DEFAULT one) is skipped; each probe of
-- an empty index still cost about 1.2 us an id. The settings leave each partition's scan no other path
-- whatever the statistics (0014's reason: a plan made while a month was empty or not yet analysed read the
-- whole table; per-batch planning alone does not help, since an unanalysed usage_id is assumed to have 200
-- distinct values and the planner then hashes a sequential scan of the table), and they hold for this
-- function only. jit is off for it and for the batch's call: the disabled paths' cost would turn JIT on,
-- about 200 ms a batch of compiling (as for the ledger's reads, README "Operations").
-- The rule is 0008's: a usage_id stored in any attached month is left out, not only in the row's own month.
CREATE FUNCTION ledger_usage_stored(ids text[]) RETURNS text[] LANGUAGE plpgsql STABLE
    SET search_path = {schema}, pg_temp SET enable_seqscan TO off SET enable_bitmapscan TO off
    SET jit TO off AS $$
DECLARE
    part regclass;
    found text[];
    stored text[] := ARRAY[]::text[];
BEGIN
    FOR part IN SELECT inhrelid::regclass FROM pg_inherits WHERE inhparent = 'usage_entries'::regclass LOOP
        CONTINUE WHEN pg_relation_size(part) = 0;
        EXECUTE format('SELECT array_agg(usage_id) FROM %s WHERE usage_id = ANY ($1)', part)
            INTO found USING ids;
        stored := stored || coalesce(found, ARRAY[]::text[]);
    END LOOP;
    RETURN stored;
END;
$$;
REVOKE ALL ON FUNCTION ledger_usage_stored(text[]) FROM PUBLIC;

-- 0013's function otherwise (CREATE OR REPLACE replaces 0014's settings): the same rows, locks, heads and
-- links. The batch's rows are matched against the (usually empty) stored list by a join, so a replayed
-- batch costs a hash of its ids, not a search of the list per row.
CREATE OR REPLACE FUNCTION ledger_append_usage() RETURNS bigint LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = {schema}, pg_temp SET timezone TO 'UTC' SET datestyle TO 'ISO, YMD' SET jit TO off AS $$
DECLARE
    r usage_entries;
    linked usage_entries[] := ARRAY[]::usage_entries[];
    licensees text[];
    stored text[];
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
    stored := ledger_usage_stored(ARRAY(SELECT usage_id FROM pg_temp.ledger_usage_staging));
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
    -- The columns in the table's order (chain columns NULL until linked below), without the stored ids.
    FOR r IN
        SELECT s.usage_id, s.licensee_id, s.app_id, s.period_start, s.period_end, s.occurred_at, s.calls,
               s.records, s.org_id, s.org_type, s.source_event_source, s.source_event_id, s.kafka_topic,
               s.kafka_partition, s.kafka_offset, now(), NULL::bigint, NULL::text, NULL::text, s.first_event_at,
               s.last_event_at, s.government_notified, s.source_topic, s.source_partition,
               s.source_first_offset, s.source_last_offset
        FROM (SELECT DISTINCT ON (usage_id) * FROM pg_temp.ledger_usage_staging
              ORDER BY usage_id, kafka_partition, kafka_offset) AS s
        WHERE NOT EXISTS (SELECT 1 FROM unnest(stored) AS d (usage_id) WHERE d.usage_id = s.usage_id)
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
