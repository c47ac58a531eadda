// Package store opens Ferry's database — SQLite (embedded default) or
// PostgreSQL (scale engine) — applies the embedded per-dialect migrations and
// runs work in transactions whose clock can be replaced, so retention and
// expiry are testable with a fake Now.
//
// Both engines take the same SQL with $1-style placeholders; where the
// dialects differ (BLOB vs BYTEA, partitions), each area keeps one statement
// per dialect. Every area's store tests run on both engines through the
// contract suite in storetest.
package store

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"
	_ "modernc.org/sqlite" // pure Go, so the binary stays static
)

// Dialect names the engine behind a DB.
type Dialect string

const (
	SQLite   Dialect = "sqlite"
	Postgres Dialect = "postgres"
)

//go:embed migrations
var migrations embed.FS

// DB is an open, migrated database.
type DB struct {
	SQL     *sql.DB
	Dialect Dialect
	Pool    *pgxpool.Pool // PostgreSQL only: the pool behind SQL, for drivers that need pgx
	Path    string        // SQLite only: the database file

	now      atomic.Pointer[func() time.Time]
	provider *goose.Provider
}

// Options says which database to open.
type Options struct {
	DatabaseURL string // postgres://… or empty for SQLite
	SQLitePath  string
	// ConnectTimeout bounds each PostgreSQL connection attempt, TLS and
	// authentication included; zero means DefaultConnectTimeout. A
	// connect_timeout in DatabaseURL takes precedence.
	ConnectTimeout time.Duration
	// Dial opens PostgreSQL connections (the egress gate's Database
	// category); nil dials directly. Host names reach it unresolved, so the
	// gate checks the name and every address it resolves to.
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)
}

// Open opens the database but does not migrate it; call Migrate.
func Open(ctx context.Context, o Options) (*DB, error) {
	db := &DB{}
	wait := connectTimeout(o)
	if o.DatabaseURL != "" {
		pcfg, err := PostgresConfig(o)
		if err != nil {
			return nil, err
		}
		wait = pcfg.ConnConfig.ConnectTimeout
		pool, err := pgxpool.NewWithConfig(ctx, pcfg)
		if err != nil {
			return nil, fmt.Errorf("open postgres: %w", scrubURL(err, o.DatabaseURL))
		}
		db.Pool, db.SQL, db.Dialect = pool, stdlib.OpenDBFromPool(pool), Postgres
	} else {
		if err := os.MkdirAll(filepath.Dir(o.SQLitePath), 0o700); err != nil {
			return nil, fmt.Errorf("create data directory: %w", err)
		}
		// Create the file owner-only: SQLite gives the -wal and -shm files the
		// database file's permissions, so this covers all three.
		if f, err := os.OpenFile(o.SQLitePath, os.O_RDWR|os.O_CREATE, 0o600); err == nil {
			f.Close()
		} else {
			return nil, fmt.Errorf("create database file: %w", err)
		}
		sqldb, err := sql.Open("sqlite", SQLiteDSN(o.SQLitePath))
		if err != nil {
			return nil, fmt.Errorf("open sqlite: %w", err)
		}
		// Writers queue on SQLite's single write lock through busy_timeout;
		// a small pool keeps readers concurrent under WAL.
		sqldb.SetMaxOpenConns(8)
		db.SQL, db.Dialect, db.Path = sqldb, SQLite, o.SQLitePath
	}
	// The first ping connects: bounded by the connect timeout, plus a little
	// for the query itself.
	pctx, cancel := context.WithTimeout(ctx, wait+5*time.Second)
	defer cancel()
	if err := db.SQL.PingContext(pctx); err != nil {
		db.Close()
		if db.Dialect == SQLite && sqliteDamaged(err) {
			return nil, fmt.Errorf("%s: %w (%v); restore it from a backup", o.SQLitePath, ErrCorrupt, err)
		}
		return nil, fmt.Errorf("connect to %s: %w", db.Dialect, scrubURL(err, o.DatabaseURL))
	}
	if db.Dialect == SQLite {
		if err := db.quickCheck(ctx); err != nil {
			db.Close()
			return nil, err
		}
	}
	sub, _ := fs.Sub(migrations, "migrations/"+string(db.Dialect))
	gd := goose.DialectSQLite3
	if db.Dialect == Postgres {
		gd = goose.DialectPostgres
	}
	p, err := goose.NewProvider(gd, db.SQL, sub)
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("load migrations: %w", err)
	}
	db.provider = p
	return db, nil
}

// quickCheck runs SQLite's quick_check: every page and record is read and its
// structure verified (it skips only the index-to-table cross-check of
// integrity_check, which is much slower on a large request log). A damaged
// file is refused here, at start, rather than found later by one request
// after another while /readyz says ready.
func (db *DB) quickCheck(ctx context.Context) error {
	rows, err := db.SQL.QueryContext(ctx, `PRAGMA quick_check(5)`)
	if err != nil {
		if sqliteDamaged(err) {
			return fmt.Errorf("%s: %w (%v); restore it from a backup", db.Path, ErrCorrupt, err)
		}
		return fmt.Errorf("integrity check of %s: %w", db.Path, err)
	}
	defer rows.Close()
	var problems []string
	for rows.Next() {
		var line string
		if err := rows.Scan(&line); err != nil {
			return fmt.Errorf("integrity check of %s: %w", db.Path, err)
		}
		if line != "ok" {
			problems = append(problems, strings.ReplaceAll(line, "\n", "; "))
		}
	}
	if err := rows.Err(); err != nil {
		if sqliteDamaged(err) {
			return fmt.Errorf("%s: %w (%v); restore it from a backup", db.Path, ErrCorrupt, err)
		}
		return fmt.Errorf("integrity check of %s: %w", db.Path, err)
	}
	if len(problems) > 0 {
		return fmt.Errorf("%s: %w: %s; restore it from a backup", db.Path, ErrCorrupt, strings.Join(problems, "; "))
	}
	return nil
}

// sqliteDamaged recognises SQLite's SQLITE_CORRUPT and SQLITE_NOTADB errors.
func sqliteDamaged(err error) bool {
	s := err.Error()
	return strings.Contains(s, "malformed") || strings.Contains(s, "not a database") || strings.Contains(s, "(11)") || strings.Contains(s, "(26)")
}

// DefaultConnectTimeout bounds a PostgreSQL connection attempt when neither
// the URL (connect_timeout) nor Options say otherwise: a server that accepts
// and never answers must not hang start-up or a request.
const DefaultConnectTimeout = 10 * time.Second

func connectTimeout(o Options) time.Duration {
	if o.ConnectTimeout > 0 {
		return o.ConnectTimeout
	}
	return DefaultConnectTimeout
}

// PostgresConfig parses DatabaseURL into the pool configuration Open uses.
func PostgresConfig(o Options) (*pgxpool.Config, error) {
	pcfg, err := pgxpool.ParseConfig(o.DatabaseURL)
	if err != nil {
		return nil, fmt.Errorf("open postgres: %w", scrubURL(err, o.DatabaseURL))
	}
	if pcfg.ConnConfig.ConnectTimeout == 0 {
		pcfg.ConnConfig.ConnectTimeout = connectTimeout(o)
	}
	if o.Dial != nil {
		pcfg.ConnConfig.DialFunc = o.Dial
		pcfg.ConnConfig.LookupFunc = func(_ context.Context, host string) ([]string, error) { return []string{host}, nil }
	}
	return pcfg, nil
}

// PostgresHosts lists the servers a PostgreSQL URL names, as host:port (a
// unix socket directory as its path), fallbacks included.
func PostgresHosts(databaseURL string) ([]string, error) {
	pcfg, err := pgxpool.ParseConfig(databaseURL)
	if err != nil {
		return nil, scrubURL(err, databaseURL)
	}
	cc := pcfg.ConnConfig
	hostport := func(host string, port uint16) string {
		if strings.HasPrefix(host, "/") {
			return host
		}
		return net.JoinHostPort(host, strconv.Itoa(int(port)))
	}
	out := []string{hostport(cc.Host, cc.Port)}
	for _, f := range cc.Fallbacks {
		if h := hostport(f.Host, f.Port); !slices.Contains(out, h) {
			out = append(out, h)
		}
	}
	return out, nil
}

// SQLiteDSN is the connection string for the embedded database. Each pragma
// is there for a reason:
//   - journal_mode(WAL): readers never block the writer, and exports keep
//     reading while request logs are written;
//   - foreign_keys(1): SQLite leaves them off by default, and deletes must cascade
//     exactly as they do on PostgreSQL;
//   - busy_timeout(10000): a writer waits for the lock instead of failing at once;
//   - synchronous(NORMAL): with WAL this is durable across application crashes
//     and much faster than FULL;
//   - _txlock=immediate: write transactions take the lock at BEGIN, so two
//     transactions never deadlock upgrading read locks.
//
// The path is escaped for SQLite's URI syntax: a "?", "#" or "%" in the data
// directory would otherwise start the query, cut the path short or be decoded,
// and the database would open somewhere else, without these pragmas.
func SQLiteDSN(path string) string {
	p := sqliteURIPath.Replace(filepath.ToSlash(path))
	if strings.HasPrefix(p, "/") {
		p = "//" + p // empty authority: a path starting "//" is not read as a host
	}
	return "file:" + p + "?_pragma=journal_mode(WAL)&_pragma=foreign_keys(1)&_pragma=busy_timeout(10000)&_pragma=synchronous(NORMAL)&_txlock=immediate"
}

// sqliteURIPath escapes what SQLite's URI parser would read as syntax.
var sqliteURIPath = strings.NewReplacer("%", "%25", "?", "%3f", "#", "%23")

// Migrate applies every pending migration.
func (db *DB) Migrate(ctx context.Context) error {
	if err := db.CheckNotNewer(ctx); err != nil {
		return err
	}
	if _, err := db.provider.Up(ctx); err != nil {
		return fmt.Errorf("migrate %s: %w", db.Dialect, err)
	}
	return nil
}

// ErrCorrupt: the SQLite file failed its integrity check.
var ErrCorrupt = errors.New("database file is damaged")

// NewerSchemaError: the database was migrated by a newer Ferry than this one.
// Running on it could misread or overwrite what the newer version wrote.
type NewerSchemaError struct {
	Database int64 // highest migration applied to the database
	Binary   int64 // highest migration this binary knows
}

func (e *NewerSchemaError) Error() string {
	return fmt.Sprintf("the database is at migration %d, newer than this ferry (which knows migrations up to %d): run the newer ferry, or restore a backup taken before the upgrade", e.Database, e.Binary)
}

// LatestMigration is the highest migration version this binary carries.
func (db *DB) LatestMigration() (int64, error) {
	srcs := db.provider.ListSources()
	if len(srcs) == 0 {
		return 0, errors.New("no migrations embedded")
	}
	return srcs[len(srcs)-1].Version, nil
}

// CheckNotNewer fails with *NewerSchemaError when the database carries a
// migration this binary does not know. It writes nothing.
func (db *DB) CheckNotNewer(ctx context.Context) error {
	latest, err := db.LatestMigration()
	if err != nil {
		return err
	}
	var exists bool
	q := `SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'goose_db_version')`
	if db.Dialect == Postgres {
		q = `SELECT to_regclass('goose_db_version') IS NOT NULL`
	}
	if err := db.SQL.QueryRowContext(ctx, q).Scan(&exists); err != nil {
		return fmt.Errorf("read migration version: %w", err)
	}
	if !exists {
		return nil // a new, empty database
	}
	var v sql.NullInt64
	if err := db.SQL.QueryRowContext(ctx, `SELECT max(version_id) FROM goose_db_version`).Scan(&v); err != nil {
		return fmt.Errorf("read migration version: %w", err)
	}
	if v.Int64 > latest {
		return &NewerSchemaError{Database: v.Int64, Binary: latest}
	}
	return nil
}

// Pending reports whether migrations remain to be applied (for /readyz).
func (db *DB) Pending(ctx context.Context) (bool, error) {
	return db.provider.HasPending(ctx)
}

// Close releases the database.
func (db *DB) Close() error {
	err := db.SQL.Close()
	if db.Pool != nil {
		db.Pool.Close()
	}
	return err
}

// SetClock replaces the clock that transactions see; nil restores time.Now.
func (db *DB) SetClock(now func() time.Time) {
	if now == nil {
		db.now.Store(nil)
		return
	}
	db.now.Store(&now)
}

// Now is the database's idea of the current time, in UTC.
func (db *DB) Now() time.Time {
	if p := db.now.Load(); p != nil {
		return (*p)().UTC()
	}
	return time.Now().UTC()
}

// Tx is a transaction with a fixed Now, taken once at its start so that every
// row it writes carries the same time.
type Tx struct {
	*sql.Tx
	Dialect Dialect
	now     time.Time
}

// Now is the transaction's time.
func (tx *Tx) Now() time.Time { return tx.now }

// InTx runs fn in a transaction, committing when fn returns nil and rolling
// back otherwise.
func (db *DB) InTx(ctx context.Context, fn func(tx *Tx) error) error {
	sqltx, err := db.SQL.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	tx := &Tx{Tx: sqltx, Dialect: db.Dialect, now: db.Now()}
	if err := fn(tx); err != nil {
		_ = sqltx.Rollback()
		return err
	}
	if err := sqltx.Commit(); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}

// scrubURL keeps the database password out of error text.
func scrubURL(err error, dsn string) error {
	if err == nil || dsn == "" {
		return err
	}
	u, perr := url.Parse(dsn)
	if perr != nil || u.User == nil {
		return err
	}
	if pw, ok := u.User.Password(); ok && pw != "" {
		return errors.New(strings.ReplaceAll(err.Error(), pw, "[redacted]"))
	}
	return err
}
