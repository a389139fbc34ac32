-- Tamper evidence: every licensee's rows of each append-only ledger table form a SHA-256 hash chain.
-- Row n of (table, licensee) stores chain_seq = n, prev_hash = row_hash of row n-1 (64 zeros for n = 1)
-- and row_hash = sha256(table || LF || the row's text form with row_hash NULL), in lower-case hex; the
-- text holds prev_hash, so each row hashes its content and the row before it. `tollgate ledger verify`
-- recomputes it from the rows alone (services/ledger/chain.py).
-- dead_letters is not chained: it has no licensee, and it records refused messages, not money or usage.

ALTER TABLE agreements ADD COLUMN chain_seq bigint, ADD COLUMN prev_hash text, ADD COLUMN row_hash text;
ALTER TABLE usage_entries ADD COLUMN chain_seq bigint, ADD COLUMN prev_hash text, ADD COLUMN row_hash text;
ALTER TABLE invoices ADD COLUMN chain_seq bigint, ADD COLUMN prev_hash text, ADD COLUMN row_hash text;
-- Lines carry their invoice's licensee so that they chain per licensee like the rest (set by the trigger).
ALTER TABLE invoice_lines ADD COLUMN licensee_id text, ADD COLUMN chain_seq bigint, ADD COLUMN prev_hash text,
    ADD COLUMN row_hash text;
ALTER TABLE ledger_entries ADD COLUMN chain_seq bigint, ADD COLUMN prev_hash text, ADD COLUMN row_hash text;

-- The link of NEW, computed in the database so no client can write a chain value of its choosing.
-- Serialized per (table, licensee) by a transaction advisory lock held until commit. The previous row is
-- read from the table itself once per statement and licensee, then remembered in a transaction-local
-- setting for the statement's next rows (the fast path inserts thousands of rows per licensee in
-- licensee order): the lookup and hashing dominate the write path's cost. A BEFORE STATEMENT trigger
-- forgets it, so a row skipped by ON CONFLICT can only be followed by a fresh lookup in a later statement;
-- the consumer's multi-row INSERT has no ON CONFLICT (it filters stored usage_ids before inserting).
-- SET timezone/datestyle: the row's text renders timestamptz by them, and the hash must not depend on them.
CREATE FUNCTION ledger_chain_link() RETURNS trigger LANGUAGE plpgsql
    SET timezone TO 'UTC' SET datestyle TO 'ISO, YMD' AS $$
DECLARE
    last_seq bigint;
    last_hash text;
    cached text;
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
        -- Static statements per table: PL/pgSQL caches their plans (dynamic SQL would plan every row).
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
    -- The row's own text form (prev_hash in it, row_hash empty): cheaper to build than jsonb.
    NEW.row_hash := encode(sha256(convert_to(TG_TABLE_NAME || E'\n' || NEW::text, 'UTF8')), 'hex');
    PERFORM set_config('tollgate.chain_tail', k || NEW.chain_seq || ' ' || NEW.row_hash, true);
    RETURN NEW;
END;
$$;

CREATE FUNCTION ledger_chain_forget() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM set_config('tollgate.chain_tail', '', true);
    RETURN NULL;
END;
$$;

-- Rows stored before this migration are chained in their order of arrival, as the owner, with the
-- append-only trigger lifted for this transaction only.
DO $$
DECLARE
    t text;
    r record;
    last_lic text;
    seq bigint;
    prev text;
    link text;
    loc tid;
    orders constant text[] := ARRAY['agreement_version', 'recorded_at, kafka_partition, kafka_offset, usage_id',
                                    'issued_at, invoice_id', 'invoice_id, line_no', 'entry_id'];
    tables constant text[] := ARRAY['agreements', 'usage_entries', 'invoices', 'invoice_lines', 'ledger_entries'];
BEGIN
    SET LOCAL timezone TO 'UTC';
    SET LOCAL datestyle TO 'ISO, YMD';
    FOR n IN 1 .. array_length(tables, 1) LOOP
        t := tables[n];
        EXECUTE format('ALTER TABLE %I DISABLE TRIGGER %I', t, t || '_append_only_rows');
        IF t = 'invoice_lines' THEN
            UPDATE invoice_lines l SET licensee_id = v.licensee_id FROM invoices v WHERE v.invoice_id = l.invoice_id;
        END IF;
        last_lic := NULL;
        FOR r IN EXECUTE format('SELECT ctid AS id, licensee_id FROM %I ORDER BY licensee_id, %s', t, orders[n])
        LOOP
            IF last_lic IS DISTINCT FROM r.licensee_id THEN
                seq := 0;
                prev := repeat('0', 64);
                last_lic := r.licensee_id;
            END IF;
            seq := seq + 1;
            EXECUTE format('UPDATE %I SET chain_seq = $1, prev_hash = $2 WHERE ctid = $3 RETURNING ctid', t)
                INTO loc USING seq, prev, r.id;
            EXECUTE format('SELECT encode(sha256(convert_to(%L || E''\n'' || x::text, ''UTF8'')), ''hex'') '
                           'FROM %I x WHERE ctid = $1', t, t) INTO link USING loc;
            EXECUTE format('UPDATE %I SET row_hash = $1 WHERE ctid = $2', t) USING link, loc;
            prev := link;
        END LOOP;
        EXECUTE format('ALTER TABLE %I ENABLE TRIGGER %I', t, t || '_append_only_rows');
        EXECUTE format('ALTER TABLE %I ADD CONSTRAINT %I CHECK (licensee_id IS NOT NULL AND chain_seq >= 1 '
                       'AND prev_hash IS NOT NULL AND row_hash IS NOT NULL)', t, t || '_chained');
        EXECUTE format('CREATE UNIQUE INDEX %I ON %I (licensee_id, chain_seq)', t || '_chain', t);
        EXECUTE format('CREATE TRIGGER %I BEFORE INSERT ON %I FOR EACH ROW EXECUTE FUNCTION ledger_chain_link()',
                       t || '_chain_link', t);
        EXECUTE format('CREATE TRIGGER %I BEFORE INSERT ON %I FOR EACH STATEMENT '
                       'EXECUTE FUNCTION ledger_chain_forget()', t || '_chain_forget', t);
    END LOOP;
END;
$$;
