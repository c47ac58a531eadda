package backup

import (
	"context"
	"math"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"ferry/internal/store"
	"ferry/internal/store/storetest"
)

// TestContractSnapshotIsConsistentWhileWritersRun backs up while a writer
// keeps moving money between two accounts in transactions (the total never
// changes) and appending to a ledger in the same transactions. The backup
// must not stop the writer, and the restore must show one moment: the total
// intact and the ledger's length equal to the number of transfers applied.
func TestContractSnapshotIsConsistentWhileWritersRun(t *testing.T) {
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		f := newFixture(t, db)
		blob := "BLOB"
		if db.Dialect == store.Postgres {
			blob = "BYTEA"
		}
		for _, q := range []string{
			`CREATE TABLE accounts (id INTEGER PRIMARY KEY, balance BIGINT NOT NULL)`,
			`INSERT INTO accounts VALUES (1, 1000000), (2, 0)`,
			`CREATE TABLE ledger (n BIGINT PRIMARY KEY, amount BIGINT NOT NULL)`,
			`CREATE TABLE ballast (b ` + blob + `)`,
		} {
			if _, err := db.SQL.ExecContext(ctx, q); err != nil {
				t.Fatal(err)
			}
		}
		// Enough data that the snapshot takes a while.
		big := make([]byte, 1<<20)
		for range 24 {
			if _, err := db.SQL.ExecContext(ctx, `INSERT INTO ballast VALUES ($1)`, big); err != nil {
				t.Fatal(err)
			}
		}
		var transfers, duringBackup atomic.Int64
		var backingUp atomic.Bool
		stop, first := make(chan struct{}), make(chan struct{})
		var once sync.Once
		signal := func() { once.Do(func() { close(first) }) }
		var wg sync.WaitGroup
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer signal() // also if the writer fails before its first commit
			for n := int64(1); ; n++ {
				select {
				case <-stop:
					return
				default:
				}
				err := db.InTx(ctx, func(tx *store.Tx) error {
					if _, err := tx.ExecContext(ctx, `UPDATE accounts SET balance = balance - 1 WHERE id = 1`); err != nil {
						return err
					}
					if _, err := tx.ExecContext(ctx, `UPDATE accounts SET balance = balance + 1 WHERE id = 2`); err != nil {
						return err
					}
					_, err := tx.ExecContext(ctx, `INSERT INTO ledger VALUES ($1, 1)`, n)
					return err
				})
				if err != nil {
					t.Error(err)
					return
				}
				transfers.Add(1)
				signal()
				if backingUp.Load() {
					duringBackup.Add(1)
				}
			}
		}()
		<-first // the snapshot comes after at least one transfer
		backingUp.Store(true)
		m, err := f.svc.Backup(ctx)
		backingUp.Store(false)
		close(stop)
		wg.Wait()
		if err != nil {
			t.Fatal(err)
		}
		if duringBackup.Load() == 0 {
			t.Fatal("no transfer committed while the backup ran: the backup blocked the writer")
		}
		t.Logf("%d transfers committed while the backup ran, %d in all", duringBackup.Load(), transfers.Load())
		to := filepath.Join(t.TempDir(), "consistent.db")
		if db.Dialect == store.Postgres {
			to = emptyPGDatabase(t)
		}
		if _, err := f.svc.Drill(ctx, m.ID); err != nil {
			t.Fatal(err)
		}
		if _, err := f.svc.Restore(ctx, m.ID, RestoreOptions{To: to}); err != nil {
			t.Fatal(err)
		}
		rdb := openRestored(t, db.Dialect, to)
		var total, ledger, moved int64
		if err := rdb.SQL.QueryRowContext(ctx, `SELECT SUM(balance), (SELECT count(*) FROM ledger), (SELECT balance FROM accounts WHERE id = 2) FROM accounts`).Scan(&total, &ledger, &moved); err != nil {
			t.Fatal(err)
		}
		if total != 1000000 || ledger != moved {
			t.Fatalf("restored a torn snapshot: total %d (want 1000000), ledger %d rows but %d moved", total, ledger, moved)
		}
		if m.Tables["ledger"] != ledger && m.Tables["public.ledger"] != ledger {
			t.Errorf("manifest counts %v, restored ledger %d", m.Tables, ledger)
		}
		if ledger == 0 || ledger > transfers.Load() {
			t.Errorf("snapshot at %d of %d transfers: expected a moment inside the run", ledger, transfers.Load())
		}
	})
}

func gauge(t *testing.T, name string) float64 {
	t.Helper()
	forgetStatus()
	mfs, err := prometheus.DefaultGatherer.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			return mf.GetMetric()[0].GetGauge().GetValue()
		}
	}
	t.Fatalf("metric %s not exported", name)
	return 0
}

// TestMetricsShowTheNewestGoodBackupAndTheLastDrill: the age of the newest
// good backup and the last drill's result follow the runs, on a fake clock.
func TestMetricsShowTheNewestGoodBackupAndTheLastDrill(t *testing.T) {
	ctx := context.Background()
	db := storetest.SQLite(t)
	f := newFixture(t, db)
	now := time.Date(2026, 4, 1, 0, 0, 0, 0, time.UTC)
	db.SetClock(func() time.Time { return now })
	if v := gauge(t, "ferry_backup_newest_good_age_seconds"); !math.IsInf(v, 1) {
		t.Errorf("age with no backup: %v, want +Inf", v)
	}
	if v := gauge(t, "ferry_backup_last_drill_success"); v != -1 {
		t.Errorf("drill result with none run: %v, want -1", v)
	}
	first, err := f.svc.Run(ctx)
	if err != nil {
		t.Fatal(err)
	}
	now = now.Add(90 * time.Minute)
	if v := gauge(t, "ferry_backup_newest_good_age_seconds"); v != 5400 {
		t.Errorf("age 90 minutes after the backup: %v s", v)
	}
	if v := gauge(t, "ferry_backup_last_drill_success"); v != 1 {
		t.Errorf("last drill: %v, want 1", v)
	}
	// The next backup's data object is damaged before its drill: the drill
	// fails, the gauge says so, and the newest good backup is still the
	// first one, now older.
	now = now.Add(24 * time.Hour)
	m, err := f.svc.Backup(ctx)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(f.target.root, m.Data.Name)
	b, _ := os.ReadFile(p)
	b[100] ^= 0xff
	os.WriteFile(p, b, 0o600)
	d, err := f.svc.Drill(ctx, m.ID)
	if err != nil || d.OK {
		t.Fatalf("drill of a damaged backup: %+v, %v", d, err)
	}
	if v := gauge(t, "ferry_backup_last_drill_success"); v != 0 {
		t.Errorf("last drill after a failure: %v, want 0", v)
	}
	if v := gauge(t, "ferry_backup_newest_good_age_seconds"); v != now.Sub(first.Manifest.CreatedAt).Seconds() {
		t.Errorf("age: %v, want that of the first backup (%v)", v, now.Sub(first.Manifest.CreatedAt).Seconds())
	}
	st, err := f.svc.Status(ctx)
	if err != nil || st.NewestGoodID != first.Manifest.ID || st.LastDrillID != m.ID || st.LastDrillOK {
		t.Errorf("status %+v, %v", st, err)
	}
	var n int
	db.SQL.QueryRowContext(ctx, `SELECT count(*) FROM backup_runs`).Scan(&n)
	if n != 2 {
		t.Errorf("%d runs recorded, want 2", n)
	}
}

// TestRestoreReportsProgress: a restore reports each phase's bytes up to the
// object's size, never past it and never backwards.
func TestRestoreReportsProgress(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, storetest.SQLite(t))
	f.populate(t, newRand(t))
	m, err := f.svc.Backup(ctx)
	if err != nil {
		t.Fatal(err)
	}
	last := map[string]int64{}
	var order []string
	_, err = f.svc.Restore(ctx, m.ID, RestoreOptions{To: filepath.Join(t.TempDir(), "p.db"), KeysFrom: m.ID,
		Progress: func(phase string, done, total int64) {
			if _, ok := last[phase]; !ok {
				order = append(order, phase)
			}
			if done < last[phase] || done > total || total != m.Data.Size {
				t.Errorf("%s: %d of %d after %d", phase, done, total, last[phase])
			}
			last[phase] = done
		}})
	if err != nil {
		t.Fatal(err)
	}
	if len(order) != 2 || order[0] != "verify" || order[1] != "restore" || last["verify"] != m.Data.Size || last["restore"] != m.Data.Size {
		t.Errorf("phases %v, last %v, size %d", order, last, m.Data.Size)
	}
}
