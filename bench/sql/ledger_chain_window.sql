-- ledger_append_usage() linked set-based: the chain as a window aggregate over each licensee's new rows, the
-- row text cut around prev_hash. bench/ledger_chain_variants.py puts the INSERT below in place of 0015's
-- loop (0015's locks, duplicate check and heads stay) and times it against that loop. Same links.
CREATE OR REPLACE FUNCTION ledger_chain_step(prev text, head text, before text, after text) RETURNS text
    LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
    RETURN encode(sha256(convert_to(before || coalesce(prev, head) || after, 'UTF8')), 'hex');
END;
$$;
DROP AGGREGATE IF EXISTS ledger_chain(text, text, text);
CREATE AGGREGATE ledger_chain(text, text, text) (SFUNC = ledger_chain_step, STYPE = text);
-- INSERT
    INSERT INTO usage_entries
    SELECT usage_id, licensee_id, app_id, period_start, period_end, occurred_at, calls, records, org_id,
           org_type, source_event_source, source_event_id, kafka_topic, kafka_partition, kafka_offset,
           recorded_at, chain_seq, coalesce(lag(link) OVER w, head), link, first_event_at, last_event_at,
           government_notified, source_topic, source_partition, source_first_offset, source_last_offset
    FROM (
        SELECT c.*, ledger_chain(c.head, c.before, c.after) OVER w AS link
        FROM (
            SELECT n.*,
                   'usage_entries' || E'\n' || left(ROW(n.usage_id, n.licensee_id, n.app_id, n.period_start,
                       n.period_end, n.occurred_at, n.calls, n.records, n.org_id, n.org_type,
                       n.source_event_source, n.source_event_id, n.kafka_topic, n.kafka_partition,
                       n.kafka_offset, n.recorded_at, n.chain_seq)::text, -1) || ',' AS before,
                   CASE WHEN n.source_last_offset IS NULL THEN rtrim(left(n.tail, -1), ',') || ',)'
                        ELSE n.tail END AS after
            FROM (
                SELECT s.*, now() AS recorded_at, hd.seq + row_number() OVER w AS chain_seq, hd.hash AS head,
                       ',,' || substr(ROW(s.first_event_at, s.last_event_at, s.government_notified,
                           s.source_topic, s.source_partition, s.source_first_offset,
                           s.source_last_offset)::text, 2) AS tail
                FROM (SELECT DISTINCT ON (st.usage_id) st.usage_id, st.licensee_id, st.app_id, st.period_start,
                             st.period_end, st.occurred_at, st.calls, st.records, st.org_id, st.org_type,
                             st.source_event_source, st.source_event_id, st.kafka_topic, st.kafka_partition,
                             st.kafka_offset, st.first_event_at, st.last_event_at, st.government_notified,
                             st.source_topic, st.source_partition, st.source_first_offset, st.source_last_offset
                      FROM pg_temp.ledger_usage_staging st
                      ORDER BY st.usage_id, st.kafka_partition, st.kafka_offset) AS s
                JOIN unnest(licensees, seqs, hashes) AS hd (licensee_id, seq, hash) USING (licensee_id)
                WHERE NOT EXISTS (SELECT 1 FROM unnest(stored) AS d (usage_id) WHERE d.usage_id = s.usage_id)
                WINDOW w AS (PARTITION BY s.licensee_id ORDER BY s.kafka_partition, s.kafka_offset, s.usage_id)
            ) AS n
        ) AS c
        WINDOW w AS (PARTITION BY c.licensee_id ORDER BY c.kafka_partition, c.kafka_offset, c.usage_id
                     ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW)
    ) AS linked
    WINDOW w AS (PARTITION BY licensee_id ORDER BY kafka_partition, kafka_offset, usage_id)
    ORDER BY licensee_id, kafka_partition, kafka_offset, usage_id;
