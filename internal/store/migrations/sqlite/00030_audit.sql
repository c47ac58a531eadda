-- +goose Up
-- The audit trail (statement: "Only authorized employees and subcontractors
-- ... have access to Customer Data"): every access to sensitive data and every
-- security decision of the staff console, one row each, hash-chained. Rows are
-- numbered 1, 2, 3… without gaps; hash = SHA-256 over the row's fields and the
-- previous row's hash (internal/audit), so editing, deleting or reordering a
-- row breaks the chain from that row on. Signed checkpoints of the head, kept
-- outside the database, make a cut-off tail detectable too. The tenant is kept
-- only as a pseudonym under the tenant's own key: once the tenant is shredded
-- nobody can tell which site a row was about.
CREATE TABLE audit_trail (
    seq              INTEGER PRIMARY KEY,
    at               TIMESTAMP NOT NULL,
    actor            TEXT NOT NULL,
    role             TEXT NOT NULL,
    action           TEXT NOT NULL,
    category         TEXT NOT NULL,
    tenant_pseudonym TEXT NOT NULL DEFAULT '',
    object           TEXT NOT NULL DEFAULT '',
    reason           TEXT NOT NULL DEFAULT '',
    ticket           TEXT NOT NULL DEFAULT '',
    outcome          TEXT NOT NULL CHECK (outcome IN ('allowed', 'refused')),
    prev_hash        BLOB NOT NULL,
    hash             BLOB NOT NULL
);

-- Append-only for Ferry itself. Someone with the database can drop these
-- triggers; the hash chain and the checkpoints are what catch that.
-- +goose StatementBegin
CREATE TRIGGER audit_trail_no_update BEFORE UPDATE ON audit_trail
BEGIN
    SELECT RAISE(ABORT, 'audit_trail is append-only');
END;
-- +goose StatementEnd
-- +goose StatementBegin
CREATE TRIGGER audit_trail_no_delete BEFORE DELETE ON audit_trail
BEGIN
    SELECT RAISE(ABORT, 'audit_trail is append-only');
END;
-- +goose StatementEnd

-- Ed25519 keys that sign checkpoints. The private key is wrapped by the KEK
-- (associated data: its id), so only a holder of the KEK can sign; the public
-- key is trusted only after the private key unwraps and matches it.
CREATE TABLE audit_keys (
    id              TEXT PRIMARY KEY,
    public_key      BLOB NOT NULL,
    private_wrapped BLOB NOT NULL,
    created_at      TIMESTAMP NOT NULL
);

-- Decryptions recorded by earlier versions in reqlog_access_audit move into
-- the trail: the rows wait here until internal/audit chains them (it does so
-- when Ferry opens the database), then this table is empty.
CREATE TABLE audit_import (
    id        INTEGER PRIMARY KEY,
    at        TIMESTAMP NOT NULL,
    actor     TEXT NOT NULL,
    action    TEXT NOT NULL,
    category  TEXT NOT NULL,
    tenant_id TEXT NOT NULL,
    object    TEXT NOT NULL,
    reason    TEXT NOT NULL
);
INSERT INTO audit_import (id, at, actor, action, category, tenant_id, object, reason)
    SELECT id, at, operator, 'reqlog.decrypt', 'Logs Data', tenant_id, entry_id, reason
    FROM reqlog_access_audit ORDER BY id;
DROP TABLE reqlog_access_audit;

-- +goose Down
CREATE TABLE reqlog_access_audit (
    id        INTEGER PRIMARY KEY AUTOINCREMENT,
    at        TIMESTAMP NOT NULL,
    entry_id  TEXT NOT NULL,
    tenant_id TEXT NOT NULL,
    operator  TEXT NOT NULL,
    reason    TEXT NOT NULL
);
DROP TABLE audit_import;
DROP TABLE audit_keys;
DROP TABLE audit_trail;
