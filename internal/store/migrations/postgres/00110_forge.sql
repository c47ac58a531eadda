-- +goose Up
-- Ferry on Forge (Forge Remote). One tenant per Jira site whatever the
-- platform: an installation is found by its Forge installationId (an ARI,
-- "the value that any remote storage should be keyed against") as well as
-- by its Connect clientKey. A Forge-only installation has no Connect
-- identity: its client_key holds the installationId (an ARI, never a
-- Connect clientKey, which is a UUID) and its shared_secret is empty; the
-- Connect side never looks such a row up.
--
-- cloud_id: the site's cloudId (from app.apiBaseUrl, or the Connect
-- payload), which lets a Forge installation find the Connect tenant of the
-- same site. api_base_url: app.apiBaseUrl, where product calls go.
-- workspace_ari: the context ARI that offline user impersonation takes.
-- forge_system_token: the latest app system token, AEAD ciphertext under
-- the tenant key (bound to table, column and tenant); its expiry and when
-- it arrived. forge_license: app.license of the latest invocation ('' never
-- seen, 'active', 'inactive', 'none' when the token carried none) and when.
-- forge_contact_at: the latest verified Forge invocation.
-- forge_migrated_at: when the site's data sources moved from Connect app
-- properties into Forge storage (set at creation for a Forge-only tenant).
ALTER TABLE installations ADD COLUMN cloud_id TEXT NOT NULL DEFAULT '';
ALTER TABLE installations ADD COLUMN api_base_url TEXT NOT NULL DEFAULT '';
ALTER TABLE installations ADD COLUMN workspace_ari TEXT NOT NULL DEFAULT '';
ALTER TABLE installations ADD COLUMN forge_system_token BYTEA;
ALTER TABLE installations ADD COLUMN forge_system_token_expires TIMESTAMPTZ;
ALTER TABLE installations ADD COLUMN forge_system_token_at TIMESTAMPTZ;
ALTER TABLE installations ADD COLUMN forge_license TEXT NOT NULL DEFAULT '';
ALTER TABLE installations ADD COLUMN forge_license_at TIMESTAMPTZ;
ALTER TABLE installations ADD COLUMN forge_contact_at TIMESTAMPTZ;
ALTER TABLE installations ADD COLUMN forge_migrated_at TIMESTAMPTZ;
CREATE UNIQUE INDEX installations_installation_id ON installations (installation_id) WHERE installation_id <> '';
CREATE INDEX installations_cloud_id ON installations (cloud_id) WHERE cloud_id <> '';

-- +goose Down
DROP INDEX installations_cloud_id;
DROP INDEX installations_installation_id;
ALTER TABLE installations DROP COLUMN forge_migrated_at;
ALTER TABLE installations DROP COLUMN forge_contact_at;
ALTER TABLE installations DROP COLUMN forge_license_at;
ALTER TABLE installations DROP COLUMN forge_license;
ALTER TABLE installations DROP COLUMN forge_system_token_at;
ALTER TABLE installations DROP COLUMN forge_system_token_expires;
ALTER TABLE installations DROP COLUMN forge_system_token;
ALTER TABLE installations DROP COLUMN workspace_ari;
ALTER TABLE installations DROP COLUMN api_base_url;
ALTER TABLE installations DROP COLUMN cloud_id;
