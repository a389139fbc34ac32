-- Belt and braces: even a role that holds UPDATE/DELETE (the owner) cannot change ledger rows.
-- Corrections are new rows (adjustments). A deliberate repair must first disable the trigger, as the owner.
CREATE FUNCTION ledger_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'ledger table % is append-only: % is not allowed', TG_TABLE_NAME, TG_OP
        USING ERRCODE = 'insufficient_privilege',
              HINT = 'post an adjustment instead';
END;
$$;

DO $$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['agreements', 'usage_entries', 'invoices', 'invoice_lines', 'ledger_entries',
                             'dead_letters']
    LOOP
        EXECUTE format('CREATE TRIGGER %I BEFORE UPDATE OR DELETE ON %I FOR EACH ROW '
                       'EXECUTE FUNCTION ledger_append_only()', t || '_append_only_rows', t);
        EXECUTE format('CREATE TRIGGER %I BEFORE TRUNCATE ON %I FOR EACH STATEMENT '
                       'EXECUTE FUNCTION ledger_append_only()', t || '_append_only_truncate', t);
    END LOOP;
END;
$$;
