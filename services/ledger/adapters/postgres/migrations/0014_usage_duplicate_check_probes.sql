-- The batch's duplicate check as index probes, whatever the statistics (0013's NOT EXISTS). Its plan is
-- made when a consumer's session first calls ledger_append_usage and kept until the usage tables' statistics
-- change, so a plan made while the table (or this month's partition) was empty or not yet analyzed stayed a
-- hash anti-join over a sequential scan of every usage partition, run again on every batch as the table grew
-- (seen for the first ~60,000 rows of a fresh schema, and for a new month until autovacuum analyses it).
-- Without hash and merge joins, sequential and bitmap scans, the only plan left probes each attached month's
-- primary key (usage_id leads it) once per staged usage_id: the batch's size times the months attached,
-- never the rows stored. The rule is unchanged: a usage_id stored in any attached month is left out, not
-- only in the row's own month. Function-level settings hold for the call only and are restored after it;
-- nothing else in the function scans a usage table (the heads are index lookups, the INSERT reads an array,
-- the rollup trigger its transition table), and the staging table is read by its one path, a scan. That
-- scan's disabled-path cost would lift every plan of the call past jit_above_cost, and JIT compiling took
-- about 200 ms a batch: jit is off for the call, as for the ledger's reads (README "Operations").
ALTER FUNCTION ledger_append_usage() SET enable_hashjoin TO off;
ALTER FUNCTION ledger_append_usage() SET enable_mergejoin TO off;
ALTER FUNCTION ledger_append_usage() SET enable_seqscan TO off;
ALTER FUNCTION ledger_append_usage() SET enable_bitmapscan TO off;
ALTER FUNCTION ledger_append_usage() SET jit TO off;
