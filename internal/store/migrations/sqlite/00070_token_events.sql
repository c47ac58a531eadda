-- +goose Up
-- Access token history for site administrators: when each token was
-- created, revoked or expired, and by whom. Who is kept as a keyed pseudonym
-- (to erase it when Atlassian reports the account closed) and, so that the
-- admin page can show a display name fetched from Jira at view time, as the
-- accountId AEAD-encrypted under the tenant key and bound to the row
-- (actor_enc; NULL when Ferry itself recorded an expiry). The purge deletes
-- the rows and shreds the key. A row is kept until keep_until: the token's
-- expiry as issued plus 90 days (job export.token-history).
CREATE TABLE token_events (
    id              TEXT PRIMARY KEY,
    tenant_id       TEXT NOT NULL,
    token_id        TEXT NOT NULL,
    owner_pseudonym TEXT NOT NULL,
    kind            TEXT NOT NULL CHECK (kind IN ('created', 'revoked', 'expired')),
    actor_pseudonym TEXT,
    actor_enc       BLOB,
    at              TIMESTAMP NOT NULL,
    keep_until      TIMESTAMP NOT NULL
);
CREATE UNIQUE INDEX token_events_once ON token_events (token_id, kind);
CREATE INDEX token_events_tenant ON token_events (tenant_id, at);
CREATE INDEX token_events_keep ON token_events (keep_until);

-- +goose Down
DROP TABLE token_events;
