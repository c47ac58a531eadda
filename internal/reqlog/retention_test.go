package reqlog_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"ferry/internal/jobs"
	"ferry/internal/keys"
	"ferry/internal/reqlog"
	"ferry/internal/store"
	"ferry/internal/store/storetest"
)

// TestContractRetentionKeepsSixtyDaysAndDestroysDayKeys logs one request a
// day for days 0…70 under a fake clock, runs the retention job on day 70 and
// checks that nothing older than 60 days is left, that the day keys of the
// expired days are gone, and that a backup taken before the job cannot bring
// the expired requests back.
//
// What "restored backup" means here: the database backup (P11) holds the
// request_log rows, and it also holds whatever log_day_keys looked like on
// the day it was taken. The promise holds in backups because the key tables
// (tenant_keys, log_day_keys) are backed up separately with short retention
// and a restore takes its keys from the *current* key tables: so a restored
// copy of the entries meets keys in which every day past the window is
// destroyed. The test shows both halves: entries from the copy + current key
// tables → expired days do not open; entries + the copy's own (stale) key
// tables → they would, which is exactly why the key tables must not be kept
// in the long-retention backup.
func TestContractRetentionKeepsSixtyDaysAndDestroysDayKeys(t *testing.T) {
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		f := newFixture(t, db, reqlog.Options{})
		day0 := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
		dayN := func(n int) time.Time { return day0.AddDate(0, 0, n) }
		var now time.Time
		db.SetClock(func() time.Time { return now })
		ids := map[int]string{}
		for d := 0; d <= 70; d++ {
			now = dayN(d)
			f.do(t, "GET", fmt.Sprintf("/odata/src/Issues?day=%d", d), nil, nil)
			f.flush(t)
			es, err := f.store.List(ctx, "t1", now, 1)
			if err != nil || len(es) != 1 {
				t.Fatalf("day %d: %v %v", d, es, err)
			}
			ids[d] = es[0].ID
		}
		now = dayN(70)

		backup := takeBackup(t, db)

		reg := jobs.NewRegistry()
		reg.Register(reqlog.RetentionJob(f.store, 60, nil))
		if err := reg.RunOnce(ctx, reqlog.RetentionJobName); err != nil {
			t.Fatal(err)
		}

		es, err := f.store.List(ctx, "t1", time.Time{}, 1000)
		if err != nil {
			t.Fatal(err)
		}
		if len(es) != 60 {
			t.Errorf("%d entries kept, want 60 (days 11…70)", len(es))
		}
		for _, e := range es {
			if age := now.Sub(e.At); age >= 60*24*time.Hour {
				t.Errorf("entry of %s is %v old", e.Day(), age)
			}
		}
		var n int
		db.SQL.QueryRow(`SELECT COUNT(*) FROM request_log WHERE at < $1`, reqlog.Cutoff(now, 60)).Scan(&n)
		if n != 0 {
			t.Errorf("%d rows older than the cutoff remain", n)
		}
		if left, _ := f.ring.DayKeysBefore(ctx, reqlog.Cutoff(now, 60)); len(left) != 0 {
			t.Errorf("day keys left before the cutoff: %v", left)
		}
		for d := 0; d <= 10; d++ {
			if _, err := f.ring.DayKey(ctx, dayN(d)); !errors.Is(err, keys.ErrDayKeyDestroyed) {
				t.Errorf("day %d key: %v, want destroyed", d, err)
			}
			_, _, err := f.decrypt(t, f.store, ids[d])
			if !errors.Is(err, reqlog.ErrExpired) {
				t.Errorf("day %d decrypt: %v, want ErrExpired", d, err)
			}
		}
		if _, req, err := f.decrypt(t, f.store, ids[11]); err != nil || req.Query != "day=11" {
			t.Errorf("day 11 (kept): %+v %v", req, err)
		}
		// Running again changes nothing.
		if res, err := f.store.Expire(ctx, 60); err != nil || res.DayKeysDestroyed != 0 || res.RowsDeleted != 0 || res.PartitionsDropped != 0 {
			t.Errorf("second run: %+v %v", res, err)
		}

		restored := backup.restore(t)
		// Restored entries + current key tables: expired days stay sealed.
		withLiveKeys := reqlog.NewStore(restored, f.ring)
		for d := 0; d <= 10; d++ {
			_, _, err := f.decrypt(t, withLiveKeys, ids[d])
			if !errors.Is(err, keys.ErrDayKeyDestroyed) || !errors.Is(err, reqlog.ErrExpired) {
				t.Errorf("restored day %d with current keys: %v, want ErrDayKeyDestroyed", d, err)
			}
		}
		if _, req, err := f.decrypt(t, withLiveKeys, ids[40]); err != nil || req.Query != "day=40" {
			t.Errorf("restored day 40 (kept) with current keys: %+v %v", req, err)
		}
		// Restored entries + the backup's own stale key tables would open:
		// this is why key tables are not part of the long-retention backup.
		withStaleKeys := reqlog.NewStore(restored, keys.NewRing(restored, f.kek))
		if _, req, err := f.decrypt(t, withStaleKeys, ids[5]); err != nil || req.Query != "day=5" {
			t.Errorf("stale key tables: %+v %v (expected to open: the threat the key-table backup policy removes)", req, err)
		}
	})
}

type backup struct {
	db   *store.DB
	path string // SQLite: a copy of the database file
	rows map[string][][]any
}

// takeBackup copies the database as a backup would: on SQLite the file
// itself (VACUUM INTO gives a consistent copy including what is still in the
// WAL); on PostgreSQL the rows of the request log and key tables (with the
// KEK versions their keys name).
func takeBackup(t *testing.T, db *store.DB) *backup {
	t.Helper()
	b := &backup{db: db, rows: map[string][][]any{}}
	if db.Dialect == store.SQLite {
		b.path = filepath.Join(t.TempDir(), "backup.db")
		if _, err := db.SQL.Exec(`VACUUM INTO '` + b.path + `'`); err != nil {
			t.Fatal(err)
		}
		return b
	}
	for _, table := range []string{"kek_versions", "tenant_keys", "log_day_keys", "request_log"} {
		rows, err := db.SQL.Query(`SELECT * FROM ` + table)
		if err != nil {
			t.Fatal(err)
		}
		cols, _ := rows.Columns()
		for rows.Next() {
			vals := make([]any, len(cols))
			ptrs := make([]any, len(cols))
			for i := range vals {
				ptrs[i] = &vals[i]
			}
			if err := rows.Scan(ptrs...); err != nil {
				t.Fatal(err)
			}
			b.rows[table] = append(b.rows[table], vals)
		}
		rows.Close()
		b.rows[table+"/cols"] = [][]any{{strings.Join(cols, ",")}}
	}
	return b
}

// restore opens the backup as its own database.
func (b *backup) restore(t *testing.T) *store.DB {
	t.Helper()
	ctx := context.Background()
	if b.path != "" {
		db, err := store.Open(ctx, store.Options{SQLitePath: b.path})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		if err := db.Migrate(ctx); err != nil {
			t.Fatal(err)
		}
		return db
	}
	db := storetest.Postgres(t)
	for _, table := range []string{"kek_versions", "tenant_keys", "log_day_keys", "request_log"} {
		cols := b.rows[table+"/cols"][0][0].(string)
		n := len(strings.Split(cols, ","))
		ph := make([]string, n)
		for i := range ph {
			ph[i] = fmt.Sprintf("$%d", i+1)
		}
		for _, r := range b.rows[table] {
			if table == "request_log" {
				d := r[1].(time.Time)
				db.SQL.Exec(fmt.Sprintf(`CREATE TABLE IF NOT EXISTS request_log_p%s PARTITION OF request_log FOR VALUES FROM ('%s') TO ('%s')`,
					d.Format("20060102"), keys.Day(d), keys.Day(d.AddDate(0, 0, 1))))
			}
			if _, err := db.SQL.Exec(`INSERT INTO `+table+` (`+cols+`) VALUES (`+strings.Join(ph, ",")+`)`, r...); err != nil {
				t.Fatalf("restore %s: %v", table, err)
			}
		}
	}
	return db
}
