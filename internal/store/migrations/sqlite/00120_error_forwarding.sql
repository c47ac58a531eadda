-- +goose Up
-- When the upstream Sentry accepted each stored event (NULL: not forwarded —
-- still in the outbox, parked there, or kept locally only), so the staff
-- console can say where an event went once its outbox row is gone; the
-- outbox row's project, so a delivery marks exactly its own event (rows
-- queued before this migration have ''). And an index for the console's
-- occurrence counts of one error (same project and title).
ALTER TABLE error_events ADD COLUMN forwarded_at TIMESTAMP;
ALTER TABLE error_outbox ADD COLUMN project TEXT NOT NULL DEFAULT '';
CREATE INDEX error_events_title ON error_events (project, title);

-- +goose Down
DROP INDEX error_events_title;
ALTER TABLE error_outbox DROP COLUMN project;
ALTER TABLE error_events DROP COLUMN forwarded_at;
