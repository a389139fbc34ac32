-- The service role reads and appends; it never updates or deletes ledger rows. Only its Kafka
-- positions (consumer_offsets) move forward in place.
GRANT USAGE ON SCHEMA {schema} TO {app_role};
GRANT SELECT, INSERT ON agreements, usage_entries, invoices, invoice_lines, ledger_entries, dead_letters
    TO {app_role};
GRANT SELECT, INSERT, UPDATE ON consumer_offsets TO {app_role};
GRANT SELECT ON schema_migrations TO {app_role};
