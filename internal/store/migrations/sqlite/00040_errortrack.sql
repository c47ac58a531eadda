-- +goose Up
-- Error tracking (statement: Real-time Error Tracking Data, P5). Only events
-- already scrubbed by internal/scrub reach these tables: error type and
-- message, stack frames, browser and OS, release, environment and a keyed
-- pseudonym of the user — no email, IP address, token, cookie or request
-- body. error_events is the local store the console lists (kept
-- FERRY_ERRORS_RETENTION_DAYS, default 30); error_outbox holds what is still
-- to be sent to the upstream Sentry (FERRY_SENTRY_UPSTREAM_DSN).
CREATE TABLE error_events (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id    TEXT NOT NULL,           -- 32 hex digits, Sentry's id
    project     TEXT NOT NULL,
    received_at TIMESTAMP NOT NULL,
    level       TEXT NOT NULL,
    release     TEXT NOT NULL DEFAULT '',
    environment TEXT NOT NULL DEFAULT '',
    platform    TEXT NOT NULL DEFAULT '',
    title       TEXT NOT NULL DEFAULT '', -- "Type: message", scrubbed
    browser     TEXT NOT NULL DEFAULT '',
    os          TEXT NOT NULL DEFAULT '',
    payload     BLOB NOT NULL,            -- the scrubbed event JSON
    UNIQUE (project, event_id)            -- an SDK's retry is stored once
);
CREATE INDEX error_events_received ON error_events (received_at);

-- One row per scrubbed item still to deliver; deleted once Sentry accepts
-- it. A claimed row is leased (next_attempt_at moves ahead), so a crash
-- mid-delivery only delays it.
CREATE TABLE error_outbox (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    item_type       TEXT NOT NULL,        -- event | session | sessions
    event_id        TEXT NOT NULL DEFAULT '',
    payload         BLOB NOT NULL,
    created_at      TIMESTAMP NOT NULL,
    next_attempt_at TIMESTAMP NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    last_error      TEXT NOT NULL DEFAULT '',
    state           TEXT NOT NULL DEFAULT 'pending' -- pending | rejected (Sentry refused it for good)
);
CREATE INDEX error_outbox_due ON error_outbox (state, next_attempt_at);

-- The key of the pseudonyms kept of users and sessions, wrapped by the KEK.
CREATE TABLE error_pseudonym_key (
    id         INTEGER PRIMARY KEY CHECK (id = 1),
    wrapped    BLOB NOT NULL,
    created_at TIMESTAMP NOT NULL
);

-- +goose Down
DROP TABLE error_pseudonym_key;
DROP TABLE error_outbox;
DROP TABLE error_events;
