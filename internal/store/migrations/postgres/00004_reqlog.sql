-- +goose Up
-- Request log (statement: Logs Data). Metadata is in the clear and holds no
-- personal data: the route pattern (never the raw path), the tenant id and a
-- keyed per-tenant user pseudonym. The request itself (method, path, query
-- and body with secrets removed, allowlisted headers) is AEAD ciphertext under
-- the day's log key (log_day_keys), bound to id and day. The response is
-- never stored: there is no column for it.
-- One partition per UTC day (request_log_pYYYYMMDD), created ahead by the
-- writer and the retention job; expiry drops whole partitions, which takes
-- the same time for a thousand rows as for ten million.
CREATE TABLE request_log (
    id             TEXT NOT NULL,    -- YYYYMMDD-<32 hex>: the day is part of the id
    day            DATE NOT NULL,    -- UTC, names the day key
    at             TIMESTAMPTZ NOT NULL,
    route          TEXT NOT NULL,
    method         TEXT NOT NULL,
    status         INTEGER NOT NULL,
    duration_us    BIGINT NOT NULL,
    bytes_out      BIGINT NOT NULL,
    error_code     TEXT NOT NULL DEFAULT '',
    tenant_id      TEXT NOT NULL DEFAULT '',
    user_pseudonym TEXT NOT NULL DEFAULT '',
    request        BYTEA NOT NULL,
    PRIMARY KEY (day, id)
) PARTITION BY RANGE (day);
CREATE INDEX request_log_tenant_at ON request_log (tenant_id, at);

-- Every decryption of a logged request, written before the plaintext is shown.
CREATE TABLE reqlog_access_audit (
    id        BIGSERIAL PRIMARY KEY,
    at        TIMESTAMPTZ NOT NULL,
    entry_id  TEXT NOT NULL,
    tenant_id TEXT NOT NULL,
    operator  TEXT NOT NULL,
    reason    TEXT NOT NULL
);

-- +goose Down
DROP TABLE reqlog_access_audit;
DROP TABLE request_log;
