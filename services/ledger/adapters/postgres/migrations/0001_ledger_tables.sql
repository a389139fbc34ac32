-- The ledger's tables. Money is always bigint minor units of `currency`; never float.
-- Placeholders: {schema} (the owner's current schema) and {app_role} (the service role).

-- Agreements, versioned and append-only: a changed document for the same start is a new version;
-- the latest loaded version of each (licensee_id, effective_from) is the one in force.
CREATE TABLE agreements (
    agreement_version bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    licensee_id text NOT NULL,
    effective_from timestamptz NOT NULL,
    effective_to timestamptz,
    document jsonb NOT NULL,
    digest text NOT NULL,
    loaded_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT agreements_one_version UNIQUE (licensee_id, effective_from, digest),
    CONSTRAINT agreements_dates CHECK (effective_to IS NULL OR effective_to > effective_from)
);

-- Metered usage: one row per billable usage_id, whatever the number of deliveries.
CREATE TABLE usage_entries (
    usage_id text PRIMARY KEY,
    licensee_id text NOT NULL,
    app_id text NOT NULL,
    period_start timestamptz NOT NULL,
    period_end timestamptz NOT NULL,
    occurred_at timestamptz,
    calls bigint NOT NULL CHECK (calls >= 0),
    records bigint NOT NULL CHECK (records >= 0),
    org_id text,
    org_type text,
    source_event_source text,
    source_event_id text,
    kafka_topic text NOT NULL,
    kafka_partition integer NOT NULL,
    kafka_offset bigint NOT NULL,
    recorded_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT usage_entries_period CHECK (period_end > period_start)
);
CREATE INDEX usage_entries_licensee_period ON usage_entries (licensee_id, period_start);
CREATE INDEX usage_entries_period ON usage_entries (period_start, licensee_id);
CREATE INDEX usage_entries_government ON usage_entries (licensee_id, org_id) WHERE org_type = 'government';

-- Invoices: one per licensee and month, never changed once issued.
CREATE TABLE invoices (
    invoice_id text PRIMARY KEY,
    licensee_id text NOT NULL,
    month date NOT NULL CHECK (extract(day FROM month) = 1),
    currency text NOT NULL,
    total_minor bigint NOT NULL,
    issued_at timestamptz NOT NULL,
    pricing_rules text NOT NULL,
    CONSTRAINT invoices_one_per_month UNIQUE (licensee_id, month)
);

CREATE TABLE invoice_lines (
    invoice_id text NOT NULL REFERENCES invoices (invoice_id),
    line_no integer NOT NULL CHECK (line_no >= 1),
    kind text NOT NULL CHECK (kind IN ('fee', 'usage', 'unagreed_usage', 'late_usage', 'adjustment')),
    description text NOT NULL,
    usage_month date,
    calls bigint NOT NULL DEFAULT 0,
    records bigint NOT NULL DEFAULT 0,
    amount_minor bigint NOT NULL,
    reference text NOT NULL,
    PRIMARY KEY (invoice_id, line_no)
);
-- A posted adjustment lands on exactly one invoice.
CREATE UNIQUE INDEX invoice_lines_adjustment_once ON invoice_lines (reference) WHERE kind = 'adjustment';

-- The money journal. Every entry says what produced it (`reference`) and why (`reason`).
CREATE TABLE ledger_entries (
    entry_id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    licensee_id text NOT NULL,
    kind text NOT NULL CHECK (kind IN ('usage', 'invoice_line', 'adjustment')),
    amount_minor bigint NOT NULL,
    currency text NOT NULL,
    reference text NOT NULL,
    reason text NOT NULL,
    invoice_id text REFERENCES invoices (invoice_id),
    idempotency_key text,
    created_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT ledger_entries_idempotent UNIQUE (licensee_id, idempotency_key)
);
CREATE INDEX ledger_entries_licensee_time ON ledger_entries (licensee_id, created_at);

-- Kafka positions, written in the same transaction as the rows they produced.
CREATE TABLE consumer_offsets (
    consumer_group text NOT NULL,
    topic text NOT NULL,
    kafka_partition integer NOT NULL,
    next_offset bigint NOT NULL CHECK (next_offset >= 0),
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (consumer_group, topic, kafka_partition)
);

CREATE TABLE dead_letters (
    dead_letter_id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    topic text NOT NULL,
    kafka_partition integer NOT NULL,
    kafka_offset bigint NOT NULL,
    reason text NOT NULL,
    payload bytea,
    recorded_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT dead_letters_once UNIQUE (topic, kafka_partition, kafka_offset)
);
