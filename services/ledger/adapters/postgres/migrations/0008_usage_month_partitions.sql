-- usage_entries partitioned by month (issue 13 item 2): PostgreSQL declarative RANGE partitions on
-- period_start, one per UTC month (usage_entries_YYYY_MM) and a DEFAULT partition as a safety net, so a closed
-- month can be detached and archived while every guarantee holds for the rest:
--   * append-only: the row triggers of 0002 are defined on the parent and cloned onto every partition;
--     statement triggers (TRUNCATE, the chain tail reset) are not cloned, so every partition gets its own;
--     the service role is granted on the parent only (partitions are reached through it, never directly).
--   * hash chains (0005/0006): a licensee's chain runs across months in arrival order. The trigger now takes
--     the chained table's name from its argument (inside a partition TG_TABLE_NAME is the partition's name)
--     and, when a month is detached, `ledger_detach_usage_month` records in usage_archived_links every run
--     of consecutive links the month held (first seq and prev_hash, last seq and row_hash), so verify steps
--     over them and the trigger continues a chain whose tail was archived.
--   * idempotent insert by usage_id: a primary key on a partitioned table must hold the partition key, so it
--     is (usage_id, period_start). A usage_id is derived from its bucket, hour included, so one id never has
--     two period_starts; the consumer's INSERT still filters every stored id across all partitions (not
--     only the row's month), so a repeat is left out even if a producer broke that rule.
-- Months are created ahead of use: this migration creates every month holding rows, the current and the
-- next; the consumer calls ledger_ensure_usage_partitions for each month it has not seen before writing.

ALTER TABLE usage_entries RENAME TO usage_entries_unpartitioned;
-- LIKE keeps the column order, so every row's text form (its hash-chain content) is unchanged.
CREATE TABLE usage_entries (LIKE usage_entries_unpartitioned INCLUDING DEFAULTS INCLUDING CONSTRAINTS)
    PARTITION BY RANGE (period_start);
CREATE TABLE usage_entries_default PARTITION OF usage_entries DEFAULT;

-- Closed months taken out of usage_entries, and the chain links they held (append-only, owner-written).
CREATE TABLE usage_archived_months (
    month date PRIMARY KEY CHECK (extract(day FROM month) = 1),
    partition_name text NOT NULL,
    rows bigint NOT NULL,
    calls numeric NOT NULL,
    records numeric NOT NULL,
    detached_at timestamptz NOT NULL DEFAULT now(),
    detached_by text NOT NULL DEFAULT current_user
);
CREATE TABLE usage_archived_links (
    month date NOT NULL REFERENCES usage_archived_months (month),
    licensee_id text NOT NULL,
    first_seq bigint NOT NULL CHECK (first_seq >= 1),
    last_seq bigint NOT NULL,
    first_prev_hash text NOT NULL,
    last_row_hash text NOT NULL,
    rows bigint NOT NULL,
    PRIMARY KEY (licensee_id, first_seq),
    CONSTRAINT usage_archived_links_run CHECK (last_seq >= first_seq AND rows = last_seq - first_seq + 1)
);
CREATE INDEX usage_archived_links_tail ON usage_archived_links (licensee_id, last_seq);

CREATE FUNCTION ledger_usage_partition_name(month date) RETURNS text LANGUAGE sql IMMUTABLE
    AS $$ SELECT 'usage_entries_' || to_char(month, 'YYYY_MM') $$;

-- The statement triggers a partition needs of its own (row triggers come from the parent).
CREATE FUNCTION ledger_usage_partition_triggers(part text) RETURNS void LANGUAGE plpgsql
    SET search_path = {schema} AS $$
BEGIN
    EXECUTE format('CREATE TRIGGER %I BEFORE TRUNCATE ON %I FOR EACH STATEMENT '
                   'EXECUTE FUNCTION ledger_append_only()', part || '_append_only_truncate', part);
    EXECUTE format('CREATE TRIGGER %I BEFORE INSERT ON %I FOR EACH STATEMENT '
                   'EXECUTE FUNCTION ledger_chain_forget()', part || '_chain_forget', part);
END;
$$;

-- Creates the month partition of each instant given, unless it exists, was archived, or the DEFAULT
-- partition already holds rows of that month (they stay there; see README "Operations"). Returns how many
-- it created. SECURITY DEFINER: the service role may create months, and nothing else.
CREATE FUNCTION ledger_ensure_usage_partitions(instants timestamptz[]) RETURNS integer LANGUAGE plpgsql
    SECURITY DEFINER SET search_path = {schema} SET timezone TO 'UTC' AS $$
DECLARE
    at timestamptz;
    m date;
    part text;
    made integer := 0;
BEGIN
    FOREACH at IN ARRAY instants LOOP
        m := date_trunc('month', at)::date;
        part := ledger_usage_partition_name(m);
        CONTINUE WHEN to_regclass(part) IS NOT NULL OR EXISTS (SELECT 1 FROM usage_archived_months a WHERE a.month = m);
        PERFORM pg_advisory_xact_lock(hashtext('tollgate.usage_partitions'));
        CONTINUE WHEN to_regclass(part) IS NOT NULL;  -- made by a concurrent caller while we waited
        CONTINUE WHEN EXISTS (SELECT 1 FROM usage_entries_default d
                              WHERE d.period_start >= m AND d.period_start < m + interval '1 month');
        EXECUTE format('CREATE TABLE %I PARTITION OF usage_entries FOR VALUES FROM (%L) TO (%L)',
                       part, m::timestamptz, (m + interval '1 month')::timestamptz);
        PERFORM ledger_usage_partition_triggers(part);
        made := made + 1;
    END LOOP;
    RETURN made;
END;
$$;
REVOKE ALL ON FUNCTION ledger_ensure_usage_partitions(timestamptz[]) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION ledger_ensure_usage_partitions(timestamptz[]) TO {app_role};
REVOKE ALL ON FUNCTION ledger_usage_partition_triggers(text) FROM PUBLIC;

-- Every month that holds rows, this month and the next, then the rows themselves, verbatim (no trigger
-- exists on the new table yet, so each row keeps its chain_seq, prev_hash and row_hash).
SELECT ledger_usage_partition_triggers('usage_entries_default');
SELECT ledger_ensure_usage_partitions(ARRAY(
    SELECT DISTINCT date_trunc('month', period_start, 'UTC') FROM usage_entries_unpartitioned
    UNION SELECT date_trunc('month', now(), 'UTC') UNION SELECT date_trunc('month', now(), 'UTC') + interval '1 month'));
INSERT INTO usage_entries SELECT * FROM usage_entries_unpartitioned;
DROP TABLE usage_entries_unpartitioned;

ALTER TABLE usage_entries ADD PRIMARY KEY (usage_id, period_start);
-- The chain's order and tail lookup; chain_seq is unique per licensee by the trigger's advisory lock (a unique
-- index of a partitioned table would have to hold period_start); verify names any duplicate or gap.
CREATE INDEX usage_entries_chain ON usage_entries (licensee_id, chain_seq);
-- Invoice, usage report and /v1/usage of one licensee: its month, read from the index alone.
CREATE INDEX usage_entries_licensee_period ON usage_entries (licensee_id, period_start)
    INCLUDE (app_id, calls, records, occurred_at, first_event_at);
CREATE INDEX usage_entries_period ON usage_entries (period_start, licensee_id);
CREATE INDEX usage_entries_government ON usage_entries (licensee_id, org_id) WHERE org_type = 'government';

-- The chain link of 0006, with the chained table's name from the trigger's argument and an archived tail.
CREATE OR REPLACE FUNCTION ledger_chain_link() RETURNS trigger LANGUAGE plpgsql
    SET timezone TO 'UTC' SET datestyle TO 'ISO, YMD' AS $$
DECLARE
    chained constant text := coalesce(TG_ARGV[0], TG_TABLE_NAME);
    last_seq bigint;
    last_hash text;
    archived_seq bigint;
    archived_hash text;
    cached text;
    content text;
    k text;
BEGIN
    IF chained = 'invoice_lines' THEN
        NEW.licensee_id := (SELECT i.licensee_id FROM invoices i WHERE i.invoice_id = NEW.invoice_id);
    END IF;
    k := chained || E'\n' || NEW.licensee_id || E'\n';
    cached := current_setting('tollgate.chain_tail', true);
    IF cached IS NOT NULL AND starts_with(cached, k) THEN
        last_seq := split_part(substr(cached, length(k) + 1), ' ', 1)::bigint;
        last_hash := split_part(substr(cached, length(k) + 1), ' ', 2);
    ELSE
        PERFORM pg_advisory_xact_lock(hashtext(chained), hashtext(NEW.licensee_id));
        CASE chained
        WHEN 'usage_entries' THEN
            SELECT chain_seq, row_hash INTO last_seq, last_hash FROM usage_entries
                WHERE licensee_id = NEW.licensee_id ORDER BY chain_seq DESC LIMIT 1;
            SELECT a.last_seq, a.last_row_hash INTO archived_seq, archived_hash FROM usage_archived_links a
                WHERE a.licensee_id = NEW.licensee_id ORDER BY a.last_seq DESC LIMIT 1;
            IF archived_seq > coalesce(last_seq, 0) THEN
                last_seq := archived_seq;
                last_hash := archived_hash;
            END IF;
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
    NEW.row_hash := encode(sha256(convert_to(chained || E'\n' || content, 'UTF8')), 'hex');
    PERFORM set_config('tollgate.chain_tail', k || NEW.chain_seq || ' ' || NEW.row_hash, true);
    RETURN NEW;
END;
$$;

CREATE TRIGGER usage_entries_append_only_rows BEFORE UPDATE OR DELETE ON usage_entries FOR EACH ROW
    EXECUTE FUNCTION ledger_append_only();
CREATE TRIGGER usage_entries_append_only_truncate BEFORE TRUNCATE ON usage_entries FOR EACH STATEMENT
    EXECUTE FUNCTION ledger_append_only();
CREATE TRIGGER usage_entries_chain_link BEFORE INSERT ON usage_entries FOR EACH ROW
    EXECUTE FUNCTION ledger_chain_link('usage_entries');
CREATE TRIGGER usage_entries_chain_forget BEFORE INSERT ON usage_entries FOR EACH STATEMENT
    EXECUTE FUNCTION ledger_chain_forget();
CREATE TRIGGER usage_archived_months_append_only_rows BEFORE UPDATE OR DELETE ON usage_archived_months
    FOR EACH ROW EXECUTE FUNCTION ledger_append_only();
CREATE TRIGGER usage_archived_months_append_only_truncate BEFORE TRUNCATE ON usage_archived_months
    FOR EACH STATEMENT EXECUTE FUNCTION ledger_append_only();
CREATE TRIGGER usage_archived_links_append_only_rows BEFORE UPDATE OR DELETE ON usage_archived_links
    FOR EACH ROW EXECUTE FUNCTION ledger_append_only();
CREATE TRIGGER usage_archived_links_append_only_truncate BEFORE TRUNCATE ON usage_archived_links
    FOR EACH STATEMENT EXECUTE FUNCTION ledger_append_only();

-- Detach a closed month (the owner's job; README "Operations"): the month must have ended `closed_for`
-- ago (past the processor's lateness and the invoice grace) and every licensee with usage in it must hold
-- its invoice. In one transaction: detach (ACCESS EXCLUSIVE on usage_entries for its duration), record the
-- month's totals and chain runs, and keep the detached table append-only on its own.
CREATE FUNCTION ledger_detach_usage_month(month date, closed_for interval DEFAULT interval '10 days')
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
    -- The clones of the parent's row triggers left with DETACH: the archived table stays append-only.
    EXECUTE format('CREATE TRIGGER %I BEFORE UPDATE OR DELETE ON %I FOR EACH ROW '
                   'EXECUTE FUNCTION ledger_append_only()', part || '_append_only_rows', part);
    RETURN stored;
END;
$$;
REVOKE ALL ON FUNCTION ledger_detach_usage_month(date, interval) FROM PUBLIC;

GRANT SELECT, INSERT ON usage_entries TO {app_role};
GRANT SELECT ON usage_archived_months, usage_archived_links TO {app_role};
