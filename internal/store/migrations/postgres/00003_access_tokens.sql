-- +goose Up
-- Personal access tokens for feeds. Only a hash of the token is kept; the
-- owner's accountId only encrypted under the tenant key (needed to act as that
-- user in Jira) and as a keyed pseudonym (for listing and limits).
CREATE TABLE access_tokens (
    id              TEXT PRIMARY KEY,
    tenant_id       TEXT NOT NULL REFERENCES installations (tenant_id) ON DELETE CASCADE,
    owner_pseudonym TEXT NOT NULL,
    owner_enc       BYTEA NOT NULL,
    label           TEXT NOT NULL,
    token_hash      TEXT NOT NULL UNIQUE,
    token_hint      TEXT NOT NULL, -- "fry_" and the first 4 characters, to tell tokens apart
    created_at      TIMESTAMPTZ NOT NULL,
    expires_at      TIMESTAMPTZ NOT NULL,
    last_used_day   TEXT,          -- YYYY-MM-DD: a day, not a timestamp, is all the UI needs
    revoked_at      TIMESTAMPTZ
);
CREATE INDEX access_tokens_owner ON access_tokens (tenant_id, owner_pseudonym);

-- +goose Down
DROP TABLE access_tokens;
