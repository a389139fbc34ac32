-- usage_rollup (issue 13 item 2): the sums of usage_entries per bucket key, maintained at write, so the
-- invoice, the usage report and /v1/usage of a large licensee read one row per (hour, app, org, notice)
-- instead of one per flushed delta (a 65 M-call month: 57,600 rollup rows for 691,200 deltas).
--   key: licensee_id, period_start, period_end, app_id, org_id, org_type, government_notified (NULLs equal);
--   calls, records, deltas: the sums and the count of the key's rows;
--   at_min, at_max: the least and greatest event time by which reads judge a row against a bound,
--     coalesce(occurred_at, first_event_at, period_start). A read uses a rollup row whole only when no bound
--     it applies (a month, an agreement's segment, a window, a notice) falls inside (at_min, at_max]; any
--     other key it reads from usage_entries row by row, so every figure equals the one the rows give;
--   first_at, last_at: first and last access, min(coalesce(first_event_at, occurred_at, period_start)) and
--     max(coalesce(last_event_at, occurred_at, period_start)).
-- It is derived data, not evidence: the rows stay the append-only, hash-chained record, and `tollgate ledger
-- verify` recomputes the rollup of a licensee from them and names any key that differs. Written only by the
-- statement trigger below (SECURITY DEFINER: the service role has SELECT on it and nothing more), in the
-- inserting statement's transaction, so it commits or rolls back with the rows.
CREATE TABLE usage_rollup (
    licensee_id text NOT NULL,
    period_start timestamptz NOT NULL,
    period_end timestamptz NOT NULL,
    app_id text NOT NULL,
    org_id text,
    org_type text,
    government_notified boolean,
    calls bigint NOT NULL,
    records bigint NOT NULL,
    deltas bigint NOT NULL,
    at_min timestamptz NOT NULL,
    at_max timestamptz NOT NULL,
    first_at timestamptz NOT NULL,
    last_at timestamptz NOT NULL,
    CONSTRAINT usage_rollup_key UNIQUE NULLS NOT DISTINCT
        (licensee_id, period_start, app_id, org_id, org_type, government_notified, period_end)
) WITH (fillfactor = 80);  -- room on each page for the updates of later flushes (HOT: no index changes)

CREATE FUNCTION ledger_usage_rollup() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = {schema} AS $$
BEGIN
    -- Keys in one order for every writer: two statements of one licensee wait, never deadlock (the chain
    -- trigger already serialises a licensee's writers by its advisory lock).
    INSERT INTO usage_rollup AS r (licensee_id, period_start, period_end, app_id, org_id, org_type,
        government_notified, calls, records, deltas, at_min, at_max, first_at, last_at)
    SELECT licensee_id, period_start, period_end, app_id, org_id, org_type, government_notified,
           sum(calls), sum(records), count(*),
           min(coalesce(occurred_at, first_event_at, period_start)),
           max(coalesce(occurred_at, first_event_at, period_start)),
           min(coalesce(first_event_at, occurred_at, period_start)),
           max(coalesce(last_event_at, occurred_at, period_start))
    FROM ledger_new_usage
    GROUP BY licensee_id, period_start, period_end, app_id, org_id, org_type, government_notified
    ORDER BY licensee_id, period_start, app_id, org_id, org_type, government_notified, period_end
    ON CONFLICT ON CONSTRAINT usage_rollup_key DO UPDATE SET
        calls = r.calls + EXCLUDED.calls, records = r.records + EXCLUDED.records,
        deltas = r.deltas + EXCLUDED.deltas,
        at_min = least(r.at_min, EXCLUDED.at_min), at_max = greatest(r.at_max, EXCLUDED.at_max),
        first_at = least(r.first_at, EXCLUDED.first_at), last_at = greatest(r.last_at, EXCLUDED.last_at);
    RETURN NULL;
END;
$$;
REVOKE ALL ON FUNCTION ledger_usage_rollup() FROM PUBLIC;

-- The rows stored so far, then every later statement's (COPY and INSERT alike, into any partition).
INSERT INTO usage_rollup
SELECT licensee_id, period_start, period_end, app_id, org_id, org_type, government_notified,
       sum(calls), sum(records), count(*),
       min(coalesce(occurred_at, first_event_at, period_start)),
       max(coalesce(occurred_at, first_event_at, period_start)),
       min(coalesce(first_event_at, occurred_at, period_start)),
       max(coalesce(last_event_at, occurred_at, period_start))
FROM usage_entries
GROUP BY licensee_id, period_start, period_end, app_id, org_id, org_type, government_notified;
CREATE TRIGGER usage_entries_rollup AFTER INSERT ON usage_entries REFERENCING NEW TABLE AS ledger_new_usage
    FOR EACH STATEMENT EXECUTE FUNCTION ledger_usage_rollup();
GRANT SELECT ON usage_rollup TO {app_role};

-- The detach of 0008, which now also takes the month's keys out of the rollup (its totals stay in
-- usage_archived_months, its rows in the detached table).
CREATE OR REPLACE FUNCTION ledger_detach_usage_month(month date, closed_for interval DEFAULT interval '10 days')
    RETURNS bigint LANGUAGE plpgsql SET search_path = {schema} SET timezone TO 'UTC' AS $$
DECLARE
    part constant text := ledger_usage_partition_name(month);
    stored bigint;
    unbilled text;
BEGIN
    IF extract(day FROM month) <> 1 OR month + interval '1 month' + closed_for > now() THEN
        RAISE EXCEPTION 'month % is not closed for %: it cannot be detached yet', month, closed_for;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_inherits WHERE inhrelid = to_regclass(part) AND inhparent = 'usage_entries'::regclass) THEN
        RAISE EXCEPTION 'usage_entries has no attached partition % for %', part, month;
    END IF;
    EXECUTE format('ALTER TABLE usage_entries DETACH PARTITION %I', part);
    EXECUTE format('SELECT string_agg(DISTINCT licensee_id, '', '') FROM %I u WHERE NOT EXISTS '
                   '(SELECT 1 FROM invoices i WHERE i.licensee_id = u.licensee_id AND i.month = $1)', part)
        INTO unbilled USING month;
    IF unbilled IS NOT NULL THEN
        RAISE EXCEPTION 'month % is not invoiced for %: issue its invoices first', month, left(unbilled, 200);
    END IF;
    EXECUTE format('INSERT INTO usage_archived_months (month, partition_name, rows, calls, records) '
                   'SELECT $1, $2, count(*), coalesce(sum(calls), 0), coalesce(sum(records), 0) FROM %I '
                   'RETURNING rows', part) INTO stored USING month, part;
    EXECUTE format('INSERT INTO usage_archived_links (month, licensee_id, first_seq, last_seq, first_prev_hash, '
                   'last_row_hash, rows) SELECT $1, licensee_id, min(chain_seq), max(chain_seq), '
                   '(array_agg(prev_hash ORDER BY chain_seq))[1], (array_agg(row_hash ORDER BY chain_seq DESC))[1], '
                   'count(*) FROM (SELECT licensee_id, chain_seq, prev_hash, row_hash, chain_seq - row_number() '
                   'OVER (PARTITION BY licensee_id ORDER BY chain_seq) AS run FROM %I) AS s '
                   'GROUP BY licensee_id, run', part) USING month;
    EXECUTE format('CREATE TRIGGER %I BEFORE UPDATE OR DELETE ON %I FOR EACH ROW '
                   'EXECUTE FUNCTION ledger_append_only()', part || '_append_only_rows', part);
    DELETE FROM usage_rollup WHERE period_start >= month AND period_start < month + interval '1 month';
    RETURN stored;
END;
$$;
REVOKE ALL ON FUNCTION ledger_detach_usage_month(date, interval) FROM PUBLIC;
