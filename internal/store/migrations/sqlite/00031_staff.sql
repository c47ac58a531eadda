-- +goose Up
-- Staff of the vendor who may use the staff console (statement: "Only
-- authorized Alpha Serve employees and subcontractors from our support and
-- development teams have access to Customer Data"). A subcontractor carries
-- its company, contract reference and contract end; access ends with the
-- contract. User names are not email addresses. The password is an argon2id
-- hash; the TOTP secret is wrapped by the KEK; an enrolment token and every
-- session id are kept only as SHA-256 hashes.
CREATE TABLE staff_accounts (
    id               TEXT PRIMARY KEY,
    username         TEXT NOT NULL UNIQUE,
    display_name     TEXT NOT NULL DEFAULT '',
    role             TEXT NOT NULL CHECK (role IN ('admin', 'support', 'developer', 'billing', 'auditor')),
    subcontractor    INTEGER NOT NULL DEFAULT 0,
    company          TEXT NOT NULL DEFAULT '',
    contract_ref     TEXT NOT NULL DEFAULT '',
    contract_end     TEXT NOT NULL DEFAULT '',  -- YYYY-MM-DD: access ends when this UTC day ends
    password_hash    TEXT NOT NULL DEFAULT '',  -- $argon2id$… ('' for single sign-on only)
    totp_secret      BLOB,                      -- wrapped by the KEK
    totp_pending     BLOB,                      -- wrapped by the KEK, until enrolment confirms it
    totp_last_step   INTEGER NOT NULL DEFAULT 0,   -- the last time step used: a code is good once
    oidc_issuer      TEXT NOT NULL DEFAULT '',
    oidc_subject     TEXT NOT NULL DEFAULT '',
    enrol_token_hash TEXT UNIQUE,
    enrol_expires_at TIMESTAMP,
    failed_logins    INTEGER NOT NULL DEFAULT 0,
    locked_until     TIMESTAMP,
    created_at       TIMESTAMP NOT NULL,
    enrolled_at      TIMESTAMP,
    disabled_at      TIMESTAMP
);
CREATE UNIQUE INDEX staff_accounts_oidc ON staff_accounts (oidc_issuer, oidc_subject) WHERE oidc_subject <> '';

-- Server-side console sessions. A row without account_id is a visitor who
-- has not signed in yet (it carries the sign-in form's CSRF token and the
-- single sign-on state); signing in always replaces it with a new row, so a
-- session id planted before sign-in is worth nothing after it.
CREATE TABLE staff_sessions (
    id_hash          TEXT PRIMARY KEY,
    account_id       TEXT REFERENCES staff_accounts (id) ON DELETE CASCADE,
    csrf             TEXT NOT NULL,
    created_at       TIMESTAMP NOT NULL,
    last_seen_at     TIMESTAMP NOT NULL,
    oidc_state       TEXT NOT NULL DEFAULT '',
    oidc_nonce       TEXT NOT NULL DEFAULT '',
    oidc_verifier    TEXT NOT NULL DEFAULT '',
    enrol_token_hash TEXT NOT NULL DEFAULT ''
);
CREATE INDEX staff_sessions_account ON staff_sessions (account_id);

-- +goose Down
DROP TABLE staff_sessions;
DROP TABLE staff_accounts;
