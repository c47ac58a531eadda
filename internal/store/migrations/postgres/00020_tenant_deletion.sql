-- +goose Up
-- End of a subscription (statement: "If a customer unsubscribes from our
-- Application we mark stored Customer Data for deletion. However, the
-- customer can contact us to ask for immediate manual deletion.").
--
-- A tenant is marked pending_deletion by an uninstall, by a licence inactive
-- or an app disabled for longer than the configured periods, or by a request
-- for immediate deletion; purge_after says when the tenant.purge job deletes
-- every row of it and shreds its keyset. deletion_cause names what marked it
-- ('uninstalled', 'license-inactive', 'disabled', 'site-admin',
-- 'operator'); deletion_reason and deletion_by are an operator's reason and
-- name. license_inactive_since is when Ferry first saw the licence inactive.
ALTER TABLE installations ADD COLUMN purge_after TIMESTAMPTZ;
ALTER TABLE installations ADD COLUMN deletion_cause TEXT NOT NULL DEFAULT '';
ALTER TABLE installations ADD COLUMN deletion_reason TEXT NOT NULL DEFAULT '';
ALTER TABLE installations ADD COLUMN deletion_by TEXT NOT NULL DEFAULT '';
ALTER TABLE installations ADD COLUMN license_inactive_since TIMESTAMPTZ;
CREATE INDEX installations_purge_after ON installations (state, purge_after);

-- The deletion record: what proves later that a tenant's data was deleted.
-- One row per purged tenant, written when the purge starts (counts_before)
-- and completed when it ends (counts_after, finished_at); a purge that
-- crashed half-way is resumed from here. It holds no personal data: the
-- tenant id is random (not the clientKey), the counts are per data category.
CREATE TABLE tenant_deletions (
    tenant_id     TEXT PRIMARY KEY,
    cause         TEXT NOT NULL,
    reason        TEXT NOT NULL DEFAULT '',
    requested_by  TEXT NOT NULL DEFAULT '',
    marked_at     TIMESTAMPTZ,
    purge_after   TIMESTAMPTZ,
    started_at    TIMESTAMPTZ NOT NULL,
    finished_at   TIMESTAMPTZ,
    counts_before TEXT NOT NULL, -- JSON object: data category → rows
    counts_after  TEXT NOT NULL DEFAULT ''
);

-- +goose Down
DROP TABLE tenant_deletions;
DROP INDEX installations_purge_after;
ALTER TABLE installations DROP COLUMN license_inactive_since;
ALTER TABLE installations DROP COLUMN deletion_by;
ALTER TABLE installations DROP COLUMN deletion_reason;
ALTER TABLE installations DROP COLUMN deletion_cause;
ALTER TABLE installations DROP COLUMN purge_after;
