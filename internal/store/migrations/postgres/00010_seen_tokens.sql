-- +goose Up
-- Lifecycle tokens already presented. A validly signed Connect lifecycle
-- token works once: Connect does not sign the callback's body, so a replayed
-- token could carry any body (another shared secret, another site). The row
-- lives in the database, not in memory, so that every replica refuses the
-- replay. digest is SHA-256 over the token's jti (with its issuer) or, when
-- it has none, over its signed part; never the token itself. Rows past
-- expires_at (the token's exp plus the clock skew Ferry allows) are deleted
-- by the tenant.seen-tokens job: by then the token is refused as expired.
CREATE TABLE seen_tokens (
    digest     TEXT PRIMARY KEY,
    expires_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX seen_tokens_expires_at ON seen_tokens (expires_at);

-- +goose Down
DROP TABLE seen_tokens;
