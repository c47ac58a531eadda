// Package storetest is the store contract suite: every area's store tests
// call Run, which runs them on a fresh, migrated SQLite database always and on
// a fresh PostgreSQL database when FERRY_TEST_POSTGRES_URL is set.
package storetest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"os"
	"path/filepath"
	"testing"

	"github.com/jackc/pgx/v5"

	"ferry/internal/store"
)

// EnvPostgres names the variable holding an admin URL of a throwaway server.
const EnvPostgres = "FERRY_TEST_POSTGRES_URL"

// Run calls fn once per engine, each time with its own empty, migrated database.
func Run(t *testing.T, fn func(t *testing.T, db *store.DB)) {
	t.Helper()
	t.Run("sqlite", func(t *testing.T) { db := SQLite(t); record(t, "sqlite"); fn(t, db) })
	t.Run("postgres", func(t *testing.T) { db := Postgres(t); record(t, "postgres"); fn(t, db) })
}

// record appends "engine test" to $FERRY_TEST_ENGINE_LOG so that CI can show
// how many contract tests ran on each engine (go test hides passing output).
func record(t testing.TB, engine string) {
	path := os.Getenv("FERRY_TEST_ENGINE_LOG")
	if path == "" {
		return
	}
	f, err := os.OpenFile(path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o600)
	if err != nil {
		t.Fatalf("FERRY_TEST_ENGINE_LOG: %v", err)
	}
	defer f.Close()
	f.WriteString(engine + " " + t.Name() + "\n")
}

// SQLite opens a fresh, migrated SQLite database in a temp directory.
func SQLite(t testing.TB) *store.DB {
	t.Helper()
	ctx := context.Background()
	db, err := store.Open(ctx, store.Options{SQLitePath: filepath.Join(t.TempDir(), "ferry.db")})
	if err != nil {
		t.Fatalf("open sqlite: %v", err)
	}
	t.Cleanup(func() { db.Close() })
	if err := db.Migrate(ctx); err != nil {
		t.Fatalf("migrate sqlite: %v", err)
	}
	return db
}

// Postgres creates a fresh database on the server named by
// FERRY_TEST_POSTGRES_URL, migrates it and drops it when the test ends. It
// skips, saying how to enable it, when the variable is unset.
func Postgres(t testing.TB) *store.DB {
	t.Helper()
	admin := os.Getenv(EnvPostgres)
	if admin == "" {
		if os.Getenv("FERRY_REQUIRE_INTEROP") == "1" {
			t.Fatal(EnvPostgres + " is unset but FERRY_REQUIRE_INTEROP=1: the PostgreSQL contract tests must run")
		}
		t.Skip("PostgreSQL contract tests skipped: set " + EnvPostgres + "=postgres://user@127.0.0.1:5432/postgres (bash .ci/run starts a throwaway server)")
	}
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, admin)
	if err != nil {
		t.Fatalf("connect to %s: %v", EnvPostgres, err)
	}
	defer conn.Close(ctx)
	b := make([]byte, 6)
	rand.Read(b)
	name := "ferry_test_" + hex.EncodeToString(b)
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatalf("create test database: %v", err)
	}
	u, _ := url.Parse(admin)
	u.Path = "/" + name
	db, err := store.Open(ctx, store.Options{DatabaseURL: u.String()})
	if err != nil {
		t.Fatalf("open postgres: %v", err)
	}
	t.Cleanup(func() {
		db.Close()
		c, err := pgx.Connect(context.Background(), admin)
		if err == nil {
			c.Exec(context.Background(), "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)")
			c.Close(context.Background())
		}
	})
	if err := db.Migrate(ctx); err != nil {
		t.Fatalf("migrate postgres: %v", err)
	}
	return db
}

// PostgresURL creates a fresh, empty (unmigrated) database on the server
// named by FERRY_TEST_POSTGRES_URL and returns its URL; it is dropped when the
// test ends. Tests that run Ferry itself use it, so that no two runs share a
// database. It skips like Postgres when the variable is unset.
func PostgresURL(t testing.TB) string {
	t.Helper()
	admin := os.Getenv(EnvPostgres)
	if admin == "" {
		if os.Getenv("FERRY_REQUIRE_INTEROP") == "1" {
			t.Fatal(EnvPostgres + " is unset but FERRY_REQUIRE_INTEROP=1: the PostgreSQL tests must run")
		}
		t.Skip("PostgreSQL tests skipped: set " + EnvPostgres + "=postgres://user@127.0.0.1:5432/postgres (bash .ci/run starts a throwaway server)")
	}
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, admin)
	if err != nil {
		t.Fatalf("connect to %s: %v", EnvPostgres, err)
	}
	defer conn.Close(ctx)
	b := make([]byte, 6)
	rand.Read(b)
	name := "ferry_test_" + hex.EncodeToString(b)
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatalf("create test database: %v", err)
	}
	t.Cleanup(func() {
		c, err := pgx.Connect(context.Background(), admin)
		if err == nil {
			c.Exec(context.Background(), "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)")
			c.Close(context.Background())
		}
	})
	u, err := url.Parse(admin)
	if err != nil {
		t.Fatalf("%s: %v", EnvPostgres, err)
	}
	u.Path = "/" + name
	return u.String()
}
