package backup

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"testing"
	"time"

	"ferry/internal/store/storetest"
)

// keepByBuckets is an independent statement of the schedule: group the
// backups into day, ISO-week and month buckets, take the n most recent
// buckets of each kind, and keep the newest backup in each.
func keepByBuckets(times []time.Time, r Retention) map[time.Time]bool {
	keep := map[time.Time]bool{}
	for _, rule := range []struct {
		n   int
		key func(time.Time) string
	}{
		{r.Daily, func(t time.Time) string { return t.UTC().Format("2006-01-02") }},
		{r.Weekly, func(t time.Time) string { y, w := t.UTC().ISOWeek(); return fmt.Sprintf("%04d-%02d", y, w) }},
		{r.Monthly, func(t time.Time) string { return t.UTC().Format("2006-01") }},
	} {
		newest := map[string]time.Time{}
		for _, t := range times {
			k := rule.key(t)
			if cur, ok := newest[k]; !ok || t.After(cur) {
				newest[k] = t
			}
		}
		var buckets []string
		for k := range newest {
			buckets = append(buckets, k)
		}
		sort.Sort(sort.Reverse(sort.StringSlice(buckets)))
		for i, k := range buckets {
			if i < rule.n {
				keep[newest[k]] = true
			}
		}
	}
	return keep
}

// TestKeepMatchesTheScheduleOnGeneratedHistories compares Keep with the
// bucket formulation on generated histories: bursts, gaps of weeks, several
// backups a day, years across ISO-week boundaries.
func TestKeepMatchesTheScheduleOnGeneratedHistories(t *testing.T) {
	rnd := newRand(t)
	for trial := range 300 {
		r := DefaultRetention()
		if trial%3 == 1 {
			r = Retention{Daily: rnd.IntN(20), Weekly: rnd.IntN(10), Monthly: rnd.IntN(15)}
		}
		var times []time.Time
		at := time.Date(2023, 12, 20+rnd.IntN(10), 0, 0, 0, 0, time.UTC)
		for range 1 + rnd.IntN(900) {
			switch rnd.IntN(10) {
			case 0:
				at = at.Add(time.Duration(1+rnd.IntN(40*24)) * time.Hour) // a gap
			case 1, 2:
				at = at.Add(time.Duration(1+rnd.IntN(180)) * time.Minute) // same day again
			default:
				at = at.Add(24*time.Hour + time.Duration(rnd.IntN(120)-60)*time.Minute)
			}
			times = append(times, at)
		}
		slices.Reverse(times) // newest first, as List returns them
		got := Keep(times, r)
		want := keepByBuckets(times, r)
		for i, tm := range times {
			if got[i] != want[tm] {
				t.Fatalf("trial %d, %+v: backup at %s kept=%v, the schedule says %v", trial, r, tm, got[i], want[tm])
			}
		}
		n := 0
		for _, k := range got {
			if k {
				n++
			}
		}
		if n > r.Daily+r.Weekly+r.Monthly {
			t.Fatalf("trial %d: kept %d > %d", trial, n, r.Daily+r.Weekly+r.Monthly)
		}
	}
}

// TestExpireKeepsTheScheduleAndNeverTheNewestGoodBackup runs real daily
// backups for months on a fake clock (some days twice, some skipped) and
// checks after each run what the target holds.
func TestExpireKeepsTheScheduleAndNeverTheNewestGoodBackup(t *testing.T) {
	if testing.Short() {
		t.Skip("months of backups")
	}
	ctx := context.Background()
	db := storetest.SQLite(t)
	f := newFixture(t, db)
	f.install(t, 1, "secret")
	r := Retention{Daily: 5, Weekly: 3, Monthly: 2, KeyDays: 3}
	svc := f.service(t, f.target, func(o *Options) { o.Retention = r })
	rnd := newRand(t)
	now := time.Date(2026, 1, 1, 3, 0, 0, 0, time.UTC)
	db.SetClock(func() time.Time { return now })
	var goodTimes []time.Time
	for day := range 80 {
		now = time.Date(2026, 1, 1, 3, 0, 0, 0, time.UTC).AddDate(0, 0, day)
		if rnd.IntN(6) == 0 {
			continue // no backup that day
		}
		for range 1 + rnd.IntN(2) {
			now = now.Add(time.Duration(rnd.IntN(60)) * time.Minute)
			res, err := svc.Run(ctx)
			if err != nil {
				t.Fatalf("day %d: %v", day, err)
			}
			goodTimes = append([]time.Time{res.Manifest.CreatedAt}, goodTimes...)
		}
		list, err := svc.List(ctx)
		if err != nil {
			t.Fatal(err)
		}
		want := keepByBuckets(goodTimes, r)
		var got []time.Time
		for _, b := range list {
			if b.State != StateGood {
				t.Fatalf("day %d: backup %s is %s: %s", day, b.ID, b.State, b.Problem)
			}
			got = append(got, b.CreatedAt)
			if !want[b.CreatedAt] {
				t.Errorf("day %d: %s kept, the schedule drops it", day, b.ID)
			}
			// Key objects: only within KeyDays, or of the newest good backup.
			if b.KeysKept && now.Sub(b.CreatedAt) > time.Duration(r.KeyDays)*24*time.Hour && b.ID != list[0].ID {
				t.Errorf("day %d: key object of %s (%s old) outlived %d days", day, b.ID, now.Sub(b.CreatedAt), r.KeyDays)
			}
			if !b.KeysKept && now.Sub(b.CreatedAt) <= time.Duration(r.KeyDays)*24*time.Hour {
				t.Errorf("day %d: key object of %s deleted within %d days", day, b.ID, r.KeyDays)
			}
		}
		if len(got) != len(want) {
			t.Errorf("day %d: %d backups kept, the schedule keeps %d", day, len(got), len(want))
		}
		if !got[0].Equal(goodTimes[0]) {
			t.Fatalf("day %d: newest good backup is gone", day)
		}
		goodTimes = got // what was expired stays expired
	}
	// Backups stop for two months: every key object but the newest good
	// backup's expires; the newest good backup keeps its keys.
	now = now.AddDate(0, 2, 0)
	if _, err := svc.Expire(ctx); err != nil {
		t.Fatal(err)
	}
	list, err := svc.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(list) == 0 || !list[0].CreatedAt.Equal(goodTimes[0]) || !list[0].KeysKept {
		t.Fatalf("after two months without backups the newest good backup (with its keys) must remain; have %+v", list)
	}
	for _, b := range list[1:] {
		if b.KeysKept {
			t.Errorf("key object of %s outlived %d days", b.ID, r.KeyDays)
		}
	}
	// A schedule that keeps nothing still keeps the newest good backup.
	none := f.service(t, f.target, func(o *Options) { o.Retention = Retention{KeyDays: 1} })
	if _, err := none.Expire(ctx); err != nil {
		t.Fatal(err)
	}
	list, err = none.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 1 || !list[0].CreatedAt.Equal(goodTimes[0]) || list[0].State != StateGood || !list[0].KeysKept {
		t.Fatalf("with a schedule keeping nothing, want only the newest good backup with its keys; have %+v", list)
	}
	if _, err := none.Restore(ctx, list[0].ID, RestoreOptions{To: t.TempDir() + "/last.db"}); err != nil {
		t.Fatalf("the one backup left does not restore: %v", err)
	}
}

// TestRunIfDueBacksUpOncePerInterval: the job checks often but backs up only
// when the newest completed backup is older than the interval (less the
// check interval, so a check never pushes a backup past the day).
func TestRunIfDueBacksUpOncePerInterval(t *testing.T) {
	ctx := context.Background()
	db := storetest.SQLite(t)
	f := newFixture(t, db)
	now := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	db.SetClock(func() time.Time { return now })
	ran := 0
	for step := time.Duration(0); step <= 72*time.Hour; step += CheckInterval(24 * time.Hour) {
		now = time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC).Add(step)
		did, err := f.svc.RunIfDue(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if did {
			ran++
			runs, _ := f.svc.Runs(ctx, 2)
			if len(runs) == 2 && runs[0].StartedAt.Sub(runs[1].StartedAt) > 24*time.Hour {
				t.Errorf("backups %s apart", runs[0].StartedAt.Sub(runs[1].StartedAt))
			}
		}
	}
	if ran != 4 { // at 0h, ~23h45, ~47h30, ~71h15
		t.Errorf("%d backups in 72 hours of checks, want 4", ran)
	}
	// A run left "running" by a dead process is closed after a while, and
	// does not count as a completed backup.
	if err := f.svc.startRun(ctx, newID(now), now); err != nil {
		t.Fatal(err)
	}
	now = now.Add(3 * time.Hour)
	f.svc.markInterrupted(ctx)
	runs, err := f.svc.Runs(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	if runs[0].State != "failed" || runs[0].Error == "" {
		t.Errorf("stale run: %+v, want failed as interrupted", runs[0])
	}
}
