-- The requester orgs shared by several licensees in a month (the audit report's and the group report's
-- list, group_store.SHARED): every licensee's use of the orgs the licensees in scope served. No index led by
-- org_id, so that read scanned every rollup row of the period, whoever's it was, once per report: with the
-- platform's hundreds of licensees most of the month's rows and most of the report's time (issue 13). Led by
-- org_id and period_start, it reads only the rows of those orgs in those months.
-- A rollup row's org_id and period_start are part of its key and never change, so the trigger's upserts,
-- which change only the sums and spans, stay HOT updates (no new index entry); a new key adds one entry
-- here. Keys without an org are never shared, so they are left out.
CREATE INDEX usage_rollup_by_org ON usage_rollup (org_id, period_start) WHERE org_id IS NOT NULL;
