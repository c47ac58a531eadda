-- +goose Up
-- Backups (statement: "backup data is securely stored", P11). The server keeps
-- only public parts in the clear: each backup key is an age restore identity
-- and an Ed25519 manifest-signing key, both wrapped by the KEK with the key id
-- as associated data, so reading or forging a backup needs the KEK (with a
-- KMS: KMS permission). Operators' offline recipients live in configuration.
CREATE TABLE backup_keys (
    id               TEXT PRIMARY KEY,
    recipient        TEXT NOT NULL, -- age1…: public recipient of the restore identity
    identity_wrapped BYTEA NOT NULL,
    signing_public   BYTEA NOT NULL, -- Ed25519 public key, 32 bytes
    signing_wrapped  BYTEA NOT NULL, -- Ed25519 seed
    created_at       TIMESTAMPTZ NOT NULL
);

-- One row per backup attempt: what the console and the metrics read. The
-- backup target (its signed manifests and drill records) stays the source of
-- truth for what can be restored.
CREATE TABLE backup_runs (
    id           TEXT PRIMARY KEY, -- also the objects' name stem
    started_at   TIMESTAMPTZ NOT NULL,
    finished_at  TIMESTAMPTZ,
    state        TEXT NOT NULL CHECK (state IN ('running', 'complete', 'failed')),
    error        TEXT NOT NULL DEFAULT '',
    data_bytes   BIGINT NOT NULL DEFAULT 0,
    drill_state  TEXT NOT NULL DEFAULT 'pending' CHECK (drill_state IN ('pending', 'passed', 'failed')),
    drill_at     TIMESTAMPTZ,
    drill_error  TEXT NOT NULL DEFAULT ''
);
CREATE INDEX backup_runs_started ON backup_runs (started_at);

-- +goose Down
DROP TABLE backup_runs;
DROP TABLE backup_keys;
