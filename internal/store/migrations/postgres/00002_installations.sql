-- +goose Up
-- Account Data (statement: "data ... required for license validation,
-- contract administration, and communication with the customer instance"):
-- exactly the allowlisted fields of a Connect installed callback, one row per
-- Jira site. tenant_id is a random id, not the clientKey, so that the tenant
-- can be crypto-shredded independently of Atlassian's identifiers.
-- shared_secret is AEAD ciphertext under the tenant key; installed_by is a
-- keyed pseudonym of the installing user's accountId.
CREATE TABLE installations (
    tenant_id          TEXT PRIMARY KEY,
    addon_key          TEXT NOT NULL,
    product_type       TEXT NOT NULL,
    client_key         TEXT NOT NULL UNIQUE,
    base_url           TEXT NOT NULL,
    site_host          TEXT NOT NULL, -- lower-case host of base_url, for the egress allowlist
    display_url        TEXT NOT NULL DEFAULT '',
    description        TEXT NOT NULL DEFAULT '',
    sen                TEXT NOT NULL DEFAULT '',
    entitlement_id     TEXT NOT NULL DEFAULT '',
    entitlement_number TEXT NOT NULL DEFAULT '',
    oauth_client_id    TEXT NOT NULL DEFAULT '',
    installation_id    TEXT NOT NULL DEFAULT '',
    shared_secret      BYTEA NOT NULL,
    installed_by       TEXT NOT NULL DEFAULT '',
    state              TEXT NOT NULL CHECK (state IN ('active', 'disabled', 'pending_deletion')),
    created_at         TIMESTAMPTZ NOT NULL,
    installed_at       TIMESTAMPTZ NOT NULL,
    updated_at         TIMESTAMPTZ NOT NULL,
    disabled_at        TIMESTAMPTZ,
    uninstalled_at     TIMESTAMPTZ
);
CREATE INDEX installations_site_host ON installations (site_host);

-- +goose Down
DROP TABLE installations;
