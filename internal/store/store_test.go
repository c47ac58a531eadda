package store_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"ferry/internal/store"
	"ferry/internal/store/storetest"
)

func TestContractMigrationsAreCurrent(t *testing.T) {
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		pending, err := db.Pending(context.Background())
		if err != nil || pending {
			t.Fatalf("pending=%v err=%v after Migrate", pending, err)
		}
	})
}

func TestContractTxUsesInjectedClock(t *testing.T) {
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		fake := time.Date(2031, 2, 3, 4, 5, 6, 0, time.UTC)
		db.SetClock(func() time.Time { return fake })
		err := db.InTx(ctx, func(tx *store.Tx) error {
			if !tx.Now().Equal(fake) {
				t.Errorf("tx.Now = %v, want %v", tx.Now(), fake)
			}
			_, err := tx.ExecContext(ctx, `INSERT INTO log_day_keys (day, created_at) VALUES ($1, $2)`, "2031-02-03", tx.Now())
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		var got time.Time
		if err := db.SQL.QueryRowContext(ctx, `SELECT created_at FROM log_day_keys WHERE day = $1`, "2031-02-03").Scan(&got); err != nil {
			t.Fatal(err)
		}
		if !got.Equal(fake) {
			t.Fatalf("stored %v, want %v", got, fake)
		}
	})
}

func TestContractTxRollsBackOnError(t *testing.T) {
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		boom := errors.New("boom")
		err := db.InTx(ctx, func(tx *store.Tx) error {
			if _, err := tx.ExecContext(ctx, `INSERT INTO log_day_keys (day, created_at) VALUES ($1, $2)`, "2030-01-01", tx.Now()); err != nil {
				return err
			}
			return boom
		})
		if !errors.Is(err, boom) {
			t.Fatalf("err = %v, want boom", err)
		}
		var n int
		db.SQL.QueryRowContext(ctx, `SELECT count(*) FROM log_day_keys`).Scan(&n)
		if n != 0 {
			t.Fatalf("%d rows after rollback, want 0", n)
		}
	})
}

func TestContractPlaceholdersRepeat(t *testing.T) {
	// Both engines must accept a $N used twice: areas rely on it.
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		var a, b string
		if err := db.SQL.QueryRow(`SELECT $1, $1 || $2`, "x", "y").Scan(&a, &b); err != nil {
			t.Fatal(err)
		}
		if a != "x" || b != "xy" {
			t.Fatalf("got %q %q", a, b)
		}
	})
}

func TestSQLiteFilesAreOwnerOnly(t *testing.T) {
	db := storetest.SQLite(t)
	if _, err := db.SQL.Exec(`INSERT INTO log_day_keys (day, created_at) VALUES ('2030-01-01', CURRENT_TIMESTAMP)`); err != nil {
		t.Fatal(err)
	}
	for _, suffix := range []string{"", "-wal", "-shm"} {
		st, err := os.Stat(db.Path + suffix)
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode().Perm() != 0o600 {
			t.Errorf("%s mode %04o, want 0600", filepath.Base(db.Path+suffix), st.Mode().Perm())
		}
	}
}

// A data directory whose name holds URI syntax must not move the database:
// before the path was escaped, "?" started the query (the file landed beside
// the data directory with mode 0644 and without WAL) and "#" cut it short.
func TestSQLitePathWithURICharactersStaysInTheDataDirectory(t *testing.T) {
	for _, name := range []string{"data?mode=ro", "data#frag", "data%3Fx", "a b&c=d", "d%", "x?_pragma=journal_mode(DELETE)"} {
		t.Run(name, func(t *testing.T) {
			root := t.TempDir()
			dir := filepath.Join(root, name)
			path := filepath.Join(dir, "ferry.db")
			ctx := context.Background()
			db, err := store.Open(ctx, store.Options{SQLitePath: path})
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			if err := db.Migrate(ctx); err != nil {
				t.Fatal(err)
			}
			if _, err := db.SQL.Exec(`INSERT INTO log_day_keys (day, created_at) VALUES ('2030-01-01', CURRENT_TIMESTAMP)`); err != nil {
				t.Fatal(err)
			}
			var mode string
			if err := db.SQL.QueryRow(`PRAGMA journal_mode`).Scan(&mode); err != nil || mode != "wal" {
				t.Fatalf("journal_mode = %q, %v; want wal", mode, err)
			}
			var file string
			if err := db.SQL.QueryRow(`SELECT file FROM pragma_database_list WHERE name = 'main'`).Scan(&file); err != nil {
				t.Fatal(err)
			}
			if file != path {
				t.Fatalf("database file is %q, want %q", file, path)
			}
			for _, suffix := range []string{"", "-wal", "-shm"} {
				st, err := os.Stat(path + suffix)
				if err != nil {
					t.Fatal(err)
				}
				if st.Mode().Perm() != 0o600 {
					t.Errorf("%s mode %04o, want 0600", filepath.Base(path+suffix), st.Mode().Perm())
				}
			}
			entries, _ := os.ReadDir(root)
			if len(entries) != 1 || entries[0].Name() != name {
				var names []string
				for _, e := range entries {
					names = append(names, e.Name())
				}
				t.Fatalf("files beside the data directory: %q", names)
			}
		})
	}
}

// silentServer accepts connections and never says a word, like a database
// behind a stuck proxy. It returns its address; connections close with it.
func silentServer(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
	})
	return ln.Addr().String()
}

// Start-up against a PostgreSQL server that accepts and never answers must
// end with an error naming the timeout, not hang.
func TestPostgresConnectToASilentServerTimesOut(t *testing.T) {
	addr := silentServer(t)
	done := make(chan error, 1)
	go func() {
		_, err := store.Open(context.Background(), store.Options{
			DatabaseURL:    "postgres://ferry@" + addr + "/ferry?sslmode=disable",
			ConnectTimeout: 200 * time.Millisecond,
		})
		done <- err
	}()
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "timeout") {
			t.Fatalf("Open against a silent server: %v, want a timeout error", err)
		}
		t.Log(err)
	case <-time.After(30 * time.Second):
		t.Fatal("Open against a silent server still hangs after 30 s")
	}
}

// Without connect_timeout in the URL a default applies; with it, the URL wins.
func TestPostgresConnectTimeoutDefaultsAndURLOverride(t *testing.T) {
	for _, c := range []struct {
		url  string
		opt  time.Duration
		want time.Duration
	}{
		{"postgres://u@db.example/ferry", 0, store.DefaultConnectTimeout},
		{"postgres://u@db.example/ferry", 3 * time.Second, 3 * time.Second},
		{"postgres://u@db.example/ferry?connect_timeout=7", 0, 7 * time.Second},
		{"postgres://u@db.example/ferry?connect_timeout=7", time.Second, 7 * time.Second},
	} {
		cfg, err := store.PostgresConfig(store.Options{DatabaseURL: c.url, ConnectTimeout: c.opt})
		if err != nil {
			t.Fatal(err)
		}
		if got := cfg.ConnConfig.ConnectTimeout; got != c.want {
			t.Errorf("%s (option %v): ConnectTimeout %v, want %v", c.url, c.opt, got, c.want)
		}
	}
}

// A damaged SQLite file must stop start-up with a clear error rather than
// open and report ready. The damage is made the way it happens: pages of the
// file overwritten (a bad disk, a copy taken mid-write).
func TestCorruptSQLiteDatabaseIsRefusedAtOpen(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "ferry.db")
	db, err := store.Open(ctx, store.Options{SQLitePath: path})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	for i := range 500 {
		if _, err := db.SQL.Exec(`INSERT INTO log_day_keys (day, keyset, created_at) VALUES ($1, randomblob(200), CURRENT_TIMESTAMP)`, fmt.Sprintf("d%04d", i)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := db.SQL.Exec(`PRAGMA wal_checkpoint(TRUNCATE)`); err != nil {
		t.Fatal(err)
	}
	db.Close()
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	// Leave the schema and the first pages alone (so the file opens and
	// migrates as if nothing were wrong) and scribble over pages in the back
	// half: leaf pages of a table's rows.
	junk := bytes.Repeat([]byte{0xA5, 0x5A, 0x00, 0xFF}, 1024)
	for off := (st.Size() / 2) &^ 4095; off < st.Size(); off += 4096 * 3 {
		if _, err := f.WriteAt(junk, off); err != nil {
			t.Fatal(err)
		}
	}
	f.Close()
	db2, err := store.Open(ctx, store.Options{SQLitePath: path})
	if err == nil {
		db2.Close()
		t.Fatal("a corrupt database opened without complaint")
	}
	if !errors.Is(err, store.ErrCorrupt) || !strings.Contains(err.Error(), path) {
		t.Fatalf("err = %v, want ErrCorrupt naming %s", err, path)
	}
	t.Log(err)
}

// A database migrated by a newer Ferry must not be touched by an older one:
// Migrate refuses before applying anything, on both engines.
func TestContractDatabaseFromANewerVersionIsRefused(t *testing.T) {
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		latest, err := db.LatestMigration()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := db.SQL.ExecContext(ctx, `INSERT INTO goose_db_version (version_id, is_applied) VALUES ($1, true)`, latest+7); err != nil {
			t.Fatal(err)
		}
		before := schemaRows(t, db)
		err = db.Migrate(ctx)
		var newer *store.NewerSchemaError
		if !errors.As(err, &newer) || newer.Database != latest+7 || newer.Binary != latest {
			t.Fatalf("Migrate on a newer schema: %v", err)
		}
		if after := schemaRows(t, db); after != before {
			t.Fatalf("refused Migrate changed the migration table: %d → %d rows", before, after)
		}
		t.Log(err)
	})
}

func schemaRows(t *testing.T, db *store.DB) int {
	t.Helper()
	var n int
	if err := db.SQL.QueryRow(`SELECT count(*) FROM goose_db_version`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}
