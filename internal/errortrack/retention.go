package errortrack

import (
	"context"
	"log/slog"
	"time"

	"ferry/internal/jobs"
)

// RetentionJobName is the retention job, for `ferry jobs run`.
const RetentionJobName = "errortrack.retention"

// DefaultRetentionDays is how long scrubbed events are kept locally.
const DefaultRetentionDays = 30

// RetentionJob deletes stored events and outbox rows older than days, every
// hour. An outbox row that old never reached Sentry: that is logged.
func RetentionJob(s *Store, days int, log *slog.Logger) jobs.Job {
	return jobs.Job{
		Name:  RetentionJobName,
		Doc:   "delete scrubbed error events (and unsent outbox items) older than FERRY_ERRORS_RETENTION_DAYS",
		Every: time.Hour,
		Run: func(ctx context.Context) error {
			res, err := s.Expire(ctx, days)
			if err != nil {
				return err
			}
			if res.OutboxUndeliverable > 0 {
				log.Warn("error events expired before the upstream Sentry took them", "count", res.OutboxUndeliverable, "days", days)
			}
			log.Info("error retention", "events_deleted", res.Events, "outbox_rejected_deleted", res.OutboxRejected, "cutoff", res.Cutoff.Format(time.RFC3339))
			return nil
		},
	}
}

// ForwardJob runs one forwarding pass every minute: the in-process
// forwarder is the fast path, this is the backstop (and `ferry jobs run
// errortrack.forward` sends the outbox by hand).
func ForwardJob(f *Forwarder) jobs.Job {
	return jobs.Job{
		Name:  ForwardJobName,
		Doc:   "send queued scrubbed error events to FERRY_SENTRY_UPSTREAM_DSN",
		Every: time.Minute,
		Run: func(ctx context.Context) error {
			_, err := f.RunOnce(ctx)
			return err
		},
	}
}
