package backup

import (
	"context"
	"log/slog"

	"ferry/internal/jobs"
)

// JobName is the backup job's name for `ferry jobs run`.
const JobName = "backup.run"

// Job is the periodic backup. It looks every CheckInterval whether the
// newest completed backup is older than the configured interval and, if so,
// backs up, drills and applies retention. `ferry backup now` backs up
// whatever the time.
func Job(s *Service, log *slog.Logger) jobs.Job {
	return jobs.Job{
		Name:  JobName,
		Doc:   "back up (when due: every " + s.o.Every.String() + "), run the restore drill, apply retention",
		Every: CheckInterval(s.o.Every),
		Run: func(ctx context.Context) error {
			ran, err := s.RunIfDue(ctx)
			if !ran && err == nil && log != nil {
				log.Debug("backup not due")
			}
			return err
		},
	}
}
