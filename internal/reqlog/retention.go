package reqlog

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"ferry/internal/jobs"
	"ferry/internal/keys"
	"ferry/internal/store"
)

// RetentionJobName is the job's name for `ferry jobs run`.
const RetentionJobName = "reqlog.retention"

// DeleteBatch is how many SQLite rows one retention transaction deletes.
// Each batch holds the write lock for a few milliseconds; between batches
// the writer and other transactions get their turn.
const DeleteBatch = 5000

// batchPause is the yield between SQLite delete batches.
var batchPause = 5 * time.Millisecond

// Cutoff is the start of the oldest UTC day still kept when keeping days
// days at now: today and the days-1 before it. Right after a run, every kept
// entry is younger than days×24 h.
func Cutoff(now time.Time, days int) time.Time {
	if days <= 0 || days > MaxDays {
		days = MaxDays
	}
	y, m, d := now.UTC().Date()
	return time.Date(y, m, d, 0, 0, 0, 0, time.UTC).AddDate(0, 0, -(days - 1))
}

// ExpireResult says what one retention run did.
type ExpireResult struct {
	Cutoff            time.Time
	DayKeysDestroyed  int
	RowsDeleted       int64 // SQLite
	PartitionsDropped int   // PostgreSQL
}

// Expire enforces the retention window at the database's Now: it destroys
// the day keys of every day before the cutoff first — from that moment the
// sealed requests of those days are unreadable everywhere, in backups too —
// and then deletes their rows (SQLite: in batches of DeleteBatch; PostgreSQL:
// by dropping daily partitions). On PostgreSQL it also creates the next days'
// partitions ahead of the writer.
func (s *Store) Expire(ctx context.Context, days int) (ExpireResult, error) {
	now := s.db.Now()
	res := ExpireResult{Cutoff: Cutoff(now, days)}
	old, err := s.keys.DayKeysBefore(ctx, res.Cutoff)
	if err != nil {
		return res, fmt.Errorf("list day keys: %w", err)
	}
	for _, d := range old {
		if err := s.keys.DestroyDayKey(ctx, d); err != nil {
			return res, fmt.Errorf("destroy day key %s: %w", keys.Day(d), err)
		}
		res.DayKeysDestroyed++
	}
	if s.db.Dialect == store.Postgres {
		n, err := s.dropPartitionsBefore(ctx, res.Cutoff)
		res.PartitionsDropped = n
		if err != nil {
			return res, err
		}
		for i := range 3 {
			if err := s.ensurePartition(ctx, now.AddDate(0, 0, i)); err != nil {
				return res, err
			}
		}
		return res, nil
	}
	cut := keys.Day(res.Cutoff)
	for {
		var n int64
		err := s.db.InTx(ctx, func(tx *store.Tx) error {
			r, err := tx.ExecContext(ctx, `DELETE FROM request_log WHERE rowid IN
				(SELECT rowid FROM request_log WHERE day < $1 LIMIT $2)`, cut, DeleteBatch)
			if err != nil {
				return err
			}
			n, err = r.RowsAffected()
			return err
		})
		if err != nil {
			return res, fmt.Errorf("delete expired request log: %w", err)
		}
		res.RowsDeleted += n
		if n < DeleteBatch {
			return res, nil
		}
		select {
		case <-ctx.Done():
			return res, ctx.Err()
		case <-time.After(batchPause):
		}
	}
}

// partitionName is the PostgreSQL partition holding day t.
func partitionName(t time.Time) string { return "request_log_p" + t.UTC().Format("20060102") }

// ensurePartition creates day t's partition unless this process already
// knows it exists. Two replicas racing to create it is fine: the loser sees
// "already exists" and moves on.
func (s *Store) ensurePartition(ctx context.Context, t time.Time) error {
	name := partitionName(t)
	s.mu.Lock()
	known := s.parts[name]
	s.mu.Unlock()
	if known {
		return nil
	}
	y, m, d := t.UTC().Date()
	from := time.Date(y, m, d, 0, 0, 0, 0, time.UTC)
	// Identifiers and bounds come from a formatted date, never from input.
	q := fmt.Sprintf(`CREATE TABLE IF NOT EXISTS %s PARTITION OF request_log FOR VALUES FROM ('%s') TO ('%s')`,
		name, keys.Day(from), keys.Day(from.AddDate(0, 0, 1)))
	if _, err := s.db.SQL.ExecContext(ctx, q); err != nil {
		var pe *pgconn.PgError
		// 42P07 duplicate_table, 23505 unique_violation (catalog race).
		if !errors.As(err, &pe) || (pe.Code != "42P07" && pe.Code != "23505") {
			return fmt.Errorf("create partition %s: %w", name, err)
		}
	}
	s.mu.Lock()
	s.parts[name] = true
	s.mu.Unlock()
	return nil
}

// dropPartitionsBefore drops every daily partition whose day is before cutoff.
func (s *Store) dropPartitionsBefore(ctx context.Context, cutoff time.Time) (int, error) {
	rows, err := s.db.SQL.QueryContext(ctx, `SELECT c.relname FROM pg_inherits i
		JOIN pg_class c ON c.oid = i.inhrelid JOIN pg_class p ON p.oid = i.inhparent
		WHERE p.relname = 'request_log' AND p.relnamespace = to_regnamespace(current_schema())`)
	if err != nil {
		return 0, fmt.Errorf("list partitions: %w", err)
	}
	var names []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			rows.Close()
			return 0, err
		}
		names = append(names, n)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, err
	}
	dropped := 0
	for _, n := range names {
		t, err := time.Parse("20060102", strings.TrimPrefix(n, "request_log_p"))
		if err != nil || !strings.HasPrefix(n, "request_log_p") || !t.Before(cutoff) {
			continue
		}
		// Dropping a partition removes its file: constant time, no dead rows,
		// no vacuum debt, whatever the day's volume.
		if _, err := s.db.SQL.ExecContext(ctx, `DROP TABLE IF EXISTS `+n); err != nil {
			return dropped, fmt.Errorf("drop partition %s: %w", n, err)
		}
		s.mu.Lock()
		delete(s.parts, n)
		s.mu.Unlock()
		dropped++
	}
	return dropped, nil
}

// RetentionJob is the periodic job that keeps the 60-day promise. It runs
// hourly rather than daily so that no entry outlives days×24 h by more than
// an hour's slack past the day boundary; a run with nothing to do costs two
// small queries.
func RetentionJob(s *Store, days int, log *slog.Logger) jobs.Job {
	return jobs.Job{
		Name:  RetentionJobName,
		Doc:   fmt.Sprintf("delete request logs older than %d days and destroy their day keys", days),
		Every: time.Hour,
		Run: func(ctx context.Context) error {
			res, err := s.Expire(ctx, days)
			if log != nil {
				log.Info("request log retention", "cutoff", keys.Day(res.Cutoff), "day_keys_destroyed", res.DayKeysDestroyed,
					"rows_deleted", res.RowsDeleted, "partitions_dropped", res.PartitionsDropped)
			}
			return err
		},
	}
}
