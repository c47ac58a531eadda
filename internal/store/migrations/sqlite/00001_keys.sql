-- +goose Up
-- Tenant keysets, wrapped by the KEK with the tenant id as associated data.
-- Shredding empties the wrapped columns and keeps the row as a tombstone so
-- that reads fail with ErrShredded rather than "unknown tenant".
CREATE TABLE tenant_keys (
    tenant_id   TEXT PRIMARY KEY,
    aead_keyset BLOB,
    prf_keyset  BLOB,
    created_at  TIMESTAMP NOT NULL,
    shredded_at TIMESTAMP
);

-- Per-day keys for request logs: destroying a day's key makes that day's
-- encrypted requests unreadable everywhere, backups included.
CREATE TABLE log_day_keys (
    day          TEXT PRIMARY KEY, -- YYYY-MM-DD (UTC)
    keyset       BLOB,
    created_at   TIMESTAMP NOT NULL,
    destroyed_at TIMESTAMP
);

-- +goose Down
DROP TABLE log_day_keys;
DROP TABLE tenant_keys;
