-- +goose Up
-- KEK versions: every key-encryption key that wraps keys in this database.
-- key_ref says where the key lives ("local:<key id>" in the key file, or an
-- aws-kms:// URI) and check_value is a constant sealed under it, so start-up
-- and /readyz can prove a key is this database's without storing the key.
-- Exactly one version is primary: new keysets are wrapped under it.
CREATE TABLE kek_versions (
    version     INTEGER PRIMARY KEY,
    key_ref     TEXT NOT NULL UNIQUE,
    check_value BLOB NOT NULL,
    is_primary  BOOLEAN NOT NULL DEFAULT FALSE,
    created_at  TIMESTAMP NOT NULL
);
CREATE UNIQUE INDEX kek_versions_one_primary ON kek_versions (is_primary) WHERE is_primary;

-- Each wrapped keyset records its KEK version. The foreign key makes
-- retiring a version (deleting its row) impossible while anything is still
-- wrapped under it, also against a replica writing at the same moment.
ALTER TABLE tenant_keys ADD COLUMN kek_version INTEGER REFERENCES kek_versions (version);
ALTER TABLE log_day_keys ADD COLUMN kek_version INTEGER REFERENCES kek_versions (version);
CREATE INDEX tenant_keys_kek_version ON tenant_keys (kek_version);
CREATE INDEX log_day_keys_kek_version ON log_day_keys (kek_version);

-- +goose Down
DROP INDEX log_day_keys_kek_version;
DROP INDEX tenant_keys_kek_version;
ALTER TABLE log_day_keys DROP COLUMN kek_version;
ALTER TABLE tenant_keys DROP COLUMN kek_version;
DROP TABLE kek_versions;
