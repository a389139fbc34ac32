-- The alerts the processor raised (topic tollgate.alerts.v1, read_committed), one row per alert_id, so the
-- audit report and GET /v1/licensees/ID/alerts can show them with their evidence. Append-only like every
-- ledger table (0002, 0003) and hash-chained per licensee like 0005. kafka_* is the alert record it came in.
CREATE TABLE alerts (
    alert_id uuid PRIMARY KEY,
    licensee_id text NOT NULL,
    rule text NOT NULL,
    severity text NOT NULL CHECK (severity IN ('warning', 'critical')),
    metric text,
    subject text NOT NULL,
    window_start timestamptz NOT NULL,
    window_end timestamptz NOT NULL,
    observed bigint CHECK (observed >= 0),
    limit_value bigint CHECK (limit_value >= 0),
    evidence_event_ids text[] NOT NULL,
    evidence_app_id text,
    evidence_org_id text,
    evidence_org_type text,
    evidence_event_time timestamptz,
    detected_at timestamptz NOT NULL,
    event_source text NOT NULL,
    kafka_topic text NOT NULL,
    kafka_partition integer NOT NULL CHECK (kafka_partition >= 0),
    kafka_offset bigint NOT NULL CHECK (kafka_offset >= 0),
    recorded_at timestamptz NOT NULL DEFAULT now(),
    chain_seq bigint,
    prev_hash text,
    row_hash text,
    CONSTRAINT alerts_window CHECK (window_start < window_end),
    CONSTRAINT alerts_chained CHECK (chain_seq >= 1 AND prev_hash IS NOT NULL AND row_hash IS NOT NULL)
);
CREATE INDEX alerts_by_licensee_window ON alerts (licensee_id, window_start, window_end);
CREATE UNIQUE INDEX alerts_chain ON alerts (licensee_id, chain_seq);

CREATE TRIGGER alerts_append_only_rows BEFORE UPDATE OR DELETE ON alerts
    FOR EACH ROW EXECUTE FUNCTION ledger_append_only();
CREATE TRIGGER alerts_append_only_truncate BEFORE TRUNCATE ON alerts
    FOR EACH STATEMENT EXECUTE FUNCTION ledger_append_only();
GRANT SELECT, INSERT ON alerts TO {app_role};

-- The link as ledger_chain_link (0005, 0006) makes it, in a function of its own so that this table does not
-- depend on that function's list of tables: same advisory lock, same remembered tail, same fold of
-- trailing NULL fields, so services/ledger/chain.py verifies it unchanged.
CREATE FUNCTION alerts_chain_link() RETURNS trigger LANGUAGE plpgsql
    SET timezone TO 'UTC' SET datestyle TO 'ISO, YMD' AS $$
DECLARE
    last_seq bigint;
    last_hash text;
    cached text;
    content text;
    k text := 'alerts' || E'\n' || NEW.licensee_id || E'\n';
BEGIN
    cached := current_setting('tollgate.chain_tail', true);
    IF cached IS NOT NULL AND starts_with(cached, k) THEN
        last_seq := split_part(substr(cached, length(k) + 1), ' ', 1)::bigint;
        last_hash := split_part(substr(cached, length(k) + 1), ' ', 2);
    ELSE
        PERFORM pg_advisory_xact_lock(hashtext('alerts'), hashtext(NEW.licensee_id));
        SELECT a.chain_seq, a.row_hash INTO last_seq, last_hash FROM alerts a
            WHERE a.licensee_id = NEW.licensee_id ORDER BY a.chain_seq DESC LIMIT 1;
    END IF;
    NEW.chain_seq := coalesce(last_seq, 0) + 1;
    NEW.prev_hash := coalesce(last_hash, repeat('0', 64));
    NEW.row_hash := NULL;
    content := NEW::text;
    IF right(content, 2) = ',)' THEN
        content := rtrim(left(content, -1), ',') || ',)';
    END IF;
    NEW.row_hash := encode(sha256(convert_to('alerts' || E'\n' || content, 'UTF8')), 'hex');
    PERFORM set_config('tollgate.chain_tail', k || NEW.chain_seq || ' ' || NEW.row_hash, true);
    RETURN NEW;
END;
$$;

CREATE TRIGGER alerts_chain_link BEFORE INSERT ON alerts
    FOR EACH ROW EXECUTE FUNCTION alerts_chain_link();
CREATE TRIGGER alerts_chain_forget BEFORE INSERT ON alerts
    FOR EACH STATEMENT EXECUTE FUNCTION ledger_chain_forget();
