package backup

import (
	"context"
	"crypto/rand"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"ferry/internal/store"
	"ferry/internal/store/storetest"
)

// benchMB is the database size for BenchmarkBackupRestore:
// FERRY_BENCH_BACKUP_MB (default 32; docs/benchmarks.md records 1024).
func benchMB(b *testing.B) int {
	if v := os.Getenv("FERRY_BENCH_BACKUP_MB"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n <= 0 {
			b.Fatalf("FERRY_BENCH_BACKUP_MB=%q", v)
		}
		return n
	}
	return 32
}

// fillBench grows db to about mb megabytes with rows shaped like Ferry's:
// mostly ciphertext (incompressible) with some text beside it.
func fillBench(b *testing.B, db *store.DB, mb int) int64 {
	ctx := context.Background()
	blob := "BLOB"
	if db.Dialect == store.Postgres {
		blob = "BYTEA"
	}
	if _, err := db.SQL.ExecContext(ctx, `CREATE TABLE bench_rows (id BIGINT PRIMARY KEY, tenant_id TEXT NOT NULL,
		at TIMESTAMP NOT NULL, route TEXT NOT NULL, status INTEGER NOT NULL, sealed `+blob+` NOT NULL)`); err != nil {
		b.Fatal(err)
	}
	// Rows go in until the database file reaches mb megabytes (SQLite
	// stores a 2 KB blob in its own page, PostgreSQL in TOAST).
	payload := make([]byte, 2048)
	at := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	i := 0
	for dbSize(b, db) < int64(mb)<<20 {
		err := db.InTx(ctx, func(tx *store.Tx) error {
			st, err := tx.PrepareContext(ctx, `INSERT INTO bench_rows VALUES ($1, $2, $3, $4, $5, $6)`)
			if err != nil {
				return err
			}
			defer st.Close()
			for range 5000 {
				rand.Read(payload)
				if _, err := st.ExecContext(ctx, i, fmt.Sprintf("tenant-%03d", i%97), at.Add(time.Duration(i)*time.Second),
					"GET /odata/{source}/Issues", 200, payload); err != nil {
					return err
				}
				i++
			}
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
	}
	return dbSize(b, db)
}

func dbSize(b *testing.B, db *store.DB) int64 {
	ctx := context.Background()
	var size int64
	if db.Dialect == store.Postgres {
		db.SQL.QueryRowContext(ctx, `SELECT pg_database_size(current_database())`).Scan(&size)
	} else {
		db.SQL.ExecContext(ctx, `PRAGMA wal_checkpoint(TRUNCATE)`)
		db.SQL.QueryRowContext(ctx, `SELECT page_count * page_size FROM pragma_page_count, pragma_page_size`).Scan(&size)
	}
	return size
}

// BenchmarkBackupRestore measures, per engine, backup (consistent snapshot,
// age, directory target with SHA-256) and restore (digest check, decrypt,
// load, row counts) throughput in MB/s of database size.
//
//	FERRY_BENCH_BACKUP_MB=1024 go test -run '^$' -bench BackupRestore -benchtime 1x -timeout 60m ./internal/backup/
func BenchmarkBackupRestore(b *testing.B) {
	engines := map[string]func(testing.TB) *store.DB{"sqlite": storetest.SQLite}
	if os.Getenv(storetest.EnvPostgres) != "" {
		engines["postgres"] = storetest.Postgres
	}
	for _, name := range []string{"sqlite", "postgres"} {
		open, ok := engines[name]
		if !ok {
			continue
		}
		b.Run(name, func(b *testing.B) {
			ctx := context.Background()
			db := open(b)
			f := newFixture(b, db)
			f.install(b, 1, "bench")
			size := fillBench(b, db, benchMB(b))
			b.Logf("%s database: %.1f MB", name, float64(size)/(1<<20))
			var last Manifest
			b.Run("backup", func(b *testing.B) {
				b.SetBytes(size)
				for b.Loop() {
					m, err := f.svc.Backup(ctx)
					if err != nil {
						b.Fatal(err)
					}
					last = m
				}
				b.ReportMetric(float64(last.Data.Size)/(1<<20), "stored-MB")
			})
			if _, err := f.svc.Drill(ctx, last.ID); err != nil {
				b.Fatal(err)
			}
			b.Run("restore", func(b *testing.B) {
				b.SetBytes(size)
				for b.Loop() {
					to := filepath.Join(b.TempDir(), "restored.db")
					if name == "postgres" {
						to = emptyPGDatabase(b)
					}
					if _, err := f.svc.Restore(ctx, last.ID, RestoreOptions{To: to}); err != nil {
						b.Fatal(err)
					}
				}
			})
		})
	}
}
