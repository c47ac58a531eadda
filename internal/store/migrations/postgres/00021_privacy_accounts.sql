-- +goose Up
-- Atlassian's personal data reporting (statement: User-Account Data; DESIGN
-- P6). Ferry stores accountIds only as keyed pseudonyms (access tokens'
-- owners, the installing user, request-log users), and a pseudonym cannot be
-- turned back into the accountId Atlassian asks about. So every account Ferry
-- holds data of has one row here with an encrypted copy of its accountId,
-- kept solely to report it: account_enc is AEAD ciphertext under the tenant
-- key, bound to tenant and pseudonym.
--
-- data_as_of is the updatedAt Ferry reports (when it last took data of the
-- account); next_report_at is the earliest time it may be reported again
-- (Atlassian's Cycle-Period); updated_answered_at records Atlassian's last
-- "updated" answer. A "closed" answer deletes the row with everything linked
-- to the pseudonym.
CREATE TABLE privacy_accounts (
    tenant_id           TEXT NOT NULL,
    pseudonym           TEXT NOT NULL,
    account_enc         BYTEA NOT NULL,
    held_since          TIMESTAMPTZ NOT NULL,
    data_as_of          TIMESTAMPTZ NOT NULL,
    reported_at         TIMESTAMPTZ,
    next_report_at      TIMESTAMPTZ NOT NULL,
    updated_answered_at TIMESTAMPTZ,
    PRIMARY KEY (tenant_id, pseudonym)
);
CREATE INDEX privacy_accounts_due ON privacy_accounts (next_report_at);

-- What each answer did, without saying to whom: 'closed' (with the rows
-- erased per data category) or 'updated'.
CREATE TABLE privacy_account_events (
    id        BIGSERIAL PRIMARY KEY,
    at        TIMESTAMPTZ NOT NULL,
    tenant_id TEXT NOT NULL,
    kind      TEXT NOT NULL CHECK (kind IN ('closed', 'updated')),
    erased    TEXT NOT NULL DEFAULT '' -- JSON object: data category → rows, for 'closed'
);
CREATE INDEX privacy_account_events_tenant ON privacy_account_events (tenant_id, at);

-- App-wide reporting state: the cycle period Atlassian last asked for and,
-- after a 429, the time before which Ferry does not call again.
CREATE TABLE privacy_report_state (
    id            INTEGER PRIMARY KEY CHECK (id = 1),
    cycle_seconds INTEGER NOT NULL,
    paused_until  TIMESTAMPTZ
);

-- +goose Down
DROP TABLE privacy_report_state;
DROP TABLE privacy_account_events;
DROP TABLE privacy_accounts;
