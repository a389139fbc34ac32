-- Licensee groups (issue 16 item 2): an account's agreement may name its group in `parent_id`, and a group's
-- own record (`kind` 'group') carries caps over the sum of its members. Both come from the document (the
-- consumer fills them); they are columns so reports can roll up by parent without reading every document.
-- Nullable and last, so the hash-chain links of stored rows stay valid (trailing NULLs fold, see 0006);
-- rows stored before this migration are NULL in both (no agreement could name a parent then).
ALTER TABLE agreements
    ADD COLUMN parent_id text,
    ADD COLUMN kind text CHECK (kind IN ('licensee', 'group'));

ALTER TABLE agreements ADD CONSTRAINT agreements_parent_not_self CHECK (parent_id IS DISTINCT FROM licensee_id);

CREATE INDEX agreements_by_parent ON agreements (parent_id, licensee_id) WHERE parent_id IS NOT NULL;
