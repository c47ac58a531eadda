package backup

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Keep returns which of times (newest first) the schedule keeps: the newest
// of each of the r.Daily most recent UTC days that have a backup, of the
// r.Weekly most recent ISO weeks, and of the r.Monthly most recent months.
// Counting days that have a backup (not calendar days) means a week of
// failed backups does not eat into the history that remains.
func Keep(times []time.Time, r Retention) []bool {
	keep := make([]bool, len(times))
	rule := func(n int, bucket func(time.Time) string) {
		seen := map[string]bool{}
		for i, t := range times {
			if len(seen) >= n {
				return
			}
			k := bucket(t.UTC())
			if !seen[k] {
				seen[k] = true
				keep[i] = true
			}
		}
	}
	rule(r.Daily, func(t time.Time) string { return t.Format(time.DateOnly) })
	rule(r.Weekly, func(t time.Time) string { y, w := t.ISOWeek(); return fmt.Sprintf("%d-W%02d", y, w) })
	rule(r.Monthly, func(t time.Time) string { return t.Format("2006-01") })
	return keep
}

// ExpireResult says what retention removed.
type ExpireResult struct {
	Expired     []string // backups deleted by the schedule
	KeysExpired []string // backups whose key object was deleted
	Discarded   []string // not-good or unfinished backups removed
	Swept       int      // abandoned partial uploads removed
}

// Expire applies the retention schedule at the database's Now:
//   - good backups outside the schedule are deleted, but never the newest
//     good backup;
//   - key objects older than KeyDays are deleted, except the newest good
//     backup's: once they are gone, a shredded tenant's keys exist in no
//     backup at all;
//   - backups that are not good (drill failed, damaged, invalid) are kept
//     KeyDays for inspection; objects of unfinished backups and abandoned
//     partial uploads are removed after a day.
//
// The manifest goes first, so a half-deleted backup is never listed as good.
func (s *Service) Expire(ctx context.Context) (ExpireResult, error) {
	var res ExpireResult
	list, err := s.List(ctx)
	if err != nil {
		return res, err
	}
	now := s.now()
	newest, hasNewest := NewestGood(list)
	var good []Backup
	var times []time.Time
	for _, b := range list {
		if b.State == StateGood {
			good = append(good, b)
			times = append(times, b.CreatedAt)
		}
	}
	keep := Keep(times, s.o.Retention)
	var errs []error
	for i, b := range good {
		if keep[i] || (hasNewest && b.ID == newest.ID) {
			continue
		}
		if err := s.deleteBackup(ctx, b); err != nil {
			errs = append(errs, err)
			continue
		}
		res.Expired = append(res.Expired, b.ID)
	}
	keyCutoff := now.Add(-time.Duration(s.o.Retention.KeyDays) * 24 * time.Hour)
	for i, b := range good {
		if keep[i] && b.KeysKept && b.CreatedAt.Before(keyCutoff) && b.ID != newest.ID {
			if err := s.o.Target.Delete(ctx, b.Manifest.Keys.Name); err != nil {
				errs = append(errs, err)
				continue
			}
			res.KeysExpired = append(res.KeysExpired, b.ID)
		}
	}
	for _, b := range list {
		var old bool
		switch b.State {
		case StateGood:
			continue
		case StateIncomplete: // may still be running somewhere until the grace has passed
			old = b.CreatedAt.Before(now.Add(-orphanGrace))
		default: // unverified, drill_failed, damaged, invalid: kept for inspection
			old = b.CreatedAt.Before(keyCutoff)
		}
		if !old {
			continue
		}
		if err := s.deleteBackup(ctx, b); err != nil {
			errs = append(errs, err)
			continue
		}
		res.Discarded = append(res.Discarded, b.ID)
	}
	if sw, ok := s.o.Target.(sweeper); ok {
		n, err := sw.Sweep(ctx, time.Now().Add(-orphanGrace))
		res.Swept = n
		if err != nil {
			errs = append(errs, err)
		}
	}
	if len(res.Expired)+len(res.KeysExpired)+len(res.Discarded)+res.Swept > 0 {
		s.o.Log.Info("backup retention", "expired", len(res.Expired), "key_objects_expired", len(res.KeysExpired),
			"discarded", len(res.Discarded), "partial_uploads_swept", res.Swept)
	}
	return res, errors.Join(errs...)
}

// deleteBackup removes every object of b, the manifest first.
func (s *Service) deleteBackup(ctx context.Context, b Backup) error {
	order := []string{manifestObject(b.ID), drillObject(b.ID)}
	for _, o := range b.objects {
		if o != order[0] && o != order[1] {
			order = append(order, o)
		}
	}
	for _, o := range order {
		if err := s.o.Target.Delete(ctx, o); err != nil {
			return fmt.Errorf("delete backup %s: %w", b.ID, err)
		}
	}
	return nil
}
