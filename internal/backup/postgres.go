package backup

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/exec"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// PostgreSQL backups use the PostgreSQL client tools: pg_dump (custom
// format, streamed from its stdout into the encryptor) and pg_restore (fed
// from the decryptor on its stdin). They must be at least the server's major
// version (pg_dump refuses newer servers); Ferry is tested with 15. They
// connect to FERRY_DATABASE_URL's server only; the password reaches them in
// PGPASSWORD, never on a command line.

// pgTool runs a PostgreSQL client tool against connURL with stdin/stdout
// attached, keeping the last part of its stderr for the error message.
func pgTool(ctx context.Context, name, connURL string, stdin io.Reader, stdout io.Writer, args ...string) error {
	conn, password, err := pgConnArgs(connURL)
	if err != nil {
		return err
	}
	path, err := exec.LookPath(name)
	if err != nil {
		return fmt.Errorf("%s not found: PostgreSQL backups need the PostgreSQL client tools (Debian: postgresql-client-15): %w", name, err)
	}
	cmd := exec.CommandContext(ctx, path, append(args, "--dbname="+conn)...)
	cmd.Env = append(os.Environ(), "PGPASSWORD="+password, "PGCONNECT_TIMEOUT=10")
	cmd.Stdin, cmd.Stdout = stdin, stdout
	var stderr tailBuffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		msg := strings.TrimSpace(stderr.String())
		if password != "" {
			msg = strings.ReplaceAll(msg, password, "[redacted]")
		}
		return fmt.Errorf("%s: %w: %s", name, err, msg)
	}
	return nil
}

// pgConnArgs splits a postgres:// URL into one without its password (safe
// on a command line) and the password.
func pgConnArgs(raw string) (string, string, error) {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		return "", "", errors.New("not a postgres:// URL")
	}
	var password string
	if u.User != nil {
		password, _ = u.User.Password()
		u.User = url.User(u.User.Username())
	}
	q := u.Query()
	if p := q.Get("password"); p != "" {
		password = p
		q.Del("password")
		u.RawQuery = q.Encode()
	}
	return u.String(), password, nil
}

// tailBuffer keeps the last 8 KB written to it.
type tailBuffer struct{ b []byte }

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.b = append(t.b, p...)
	if len(t.b) > 8<<10 {
		t.b = t.b[len(t.b)-8<<10:]
	}
	return len(p), nil
}
func (t *tailBuffer) String() string { return string(t.b) }

// pgSnapshot exports one snapshot and reads everything from it: the row
// counts and key tables in this transaction, and the dump by pg_dump, which
// joins the same snapshot (--snapshot). The counts in the manifest are
// therefore exactly the rows the dump holds.
func pgSnapshot(ctx context.Context, pool *pgxpool.Pool, connURL string, data, keys io.Writer) (snapshotInfo, error) {
	info := snapshotInfo{Tables: map[string]int64{}}
	c, err := pool.Acquire(ctx)
	if err != nil {
		return info, err
	}
	defer c.Release()
	tx, err := c.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return info, err
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	var snap, schema string
	if err := tx.QueryRow(ctx, `SELECT pg_export_snapshot(), current_schema()`).Scan(&snap, &schema); err != nil {
		return info, fmt.Errorf("export snapshot: %w", err)
	}
	if err := tx.QueryRow(ctx, `SELECT COALESCE(MAX(version_id), 0) FROM goose_db_version WHERE is_applied`).Scan(&info.SchemaVersion); err != nil {
		return info, fmt.Errorf("read schema version: %w", err)
	}
	tables, err := pgTables(ctx, tx)
	if err != nil {
		return info, err
	}
	for _, t := range tables {
		if t.schema == schema && isKeyTable(t.name) {
			info.Tables[t.qualified()] = 0 // schema only; rows in the key backup
			continue
		}
		var n int64
		if err := tx.QueryRow(ctx, `SELECT count(*) FROM ONLY `+t.sql()).Scan(&n); err != nil {
			return info, fmt.Errorf("count %s: %w", t.qualified(), err)
		}
		info.Tables[t.qualified()] = n
	}
	kw, err := newDumpWriter(keys, dumpHeader{Dialect: "postgres", Kind: "keys"})
	if err != nil {
		return info, err
	}
	for _, name := range KeyTables {
		// One JSON document per row: to_jsonb and jsonb_populate_record are
		// exact inverses for these columns (text, bytea as \x hex,
		// timestamptz with microseconds).
		if err := kw.beginTable(dumpTable{Name: name, Columns: []string{"row"}}); err != nil {
			return info, err
		}
		rows, err := tx.Query(ctx, `SELECT to_jsonb(t)::text FROM ONLY `+quoteIdent(schema)+`.`+quoteIdent(name)+` t`)
		if err != nil {
			return info, fmt.Errorf("read %s: %w", name, err)
		}
		for rows.Next() {
			var doc string
			if err := rows.Scan(&doc); err != nil {
				rows.Close()
				return info, err
			}
			if err := kw.row([]any{doc}); err != nil {
				rows.Close()
				return info, err
			}
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return info, fmt.Errorf("read %s: %w", name, err)
		}
		if err := kw.endTable(); err != nil {
			return info, err
		}
	}
	if err := kw.post(nil); err != nil {
		return info, err
	}
	counts, err := kw.close()
	if err != nil {
		return info, err
	}
	info.KeyTables = map[string]int64{} // qualified, like Tables
	for name, n := range counts {
		info.KeyTables[schema+"."+name] = n
	}
	args := []string{"--format=custom", "--compress=1", "--snapshot=" + snap}
	for _, name := range KeyTables {
		args = append(args, "--exclude-table-data="+schema+"."+name)
	}
	if err := pgTool(ctx, "pg_dump", connURL, nil, data, args...); err != nil {
		return info, err
	}
	return info, nil
}

type pgTable struct{ schema, name string }

func (t pgTable) qualified() string { return t.schema + "." + t.name }
func (t pgTable) sql() string       { return quoteIdent(t.schema) + "." + quoteIdent(t.name) }

// pgTables lists the tables that hold rows (partitions included, their
// partitioned parents not: those hold none of their own).
func pgTables(ctx context.Context, q interface {
	Query(context.Context, string, ...any) (pgx.Rows, error)
}) ([]pgTable, error) {
	rows, err := q.Query(ctx, `SELECT n.nspname, c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE c.relkind = 'r' AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname !~ '^pg_'
		ORDER BY 1, 2`)
	if err != nil {
		return nil, fmt.Errorf("list tables: %w", err)
	}
	defer rows.Close()
	var out []pgTable
	for rows.Next() {
		var t pgTable
		if err := rows.Scan(&t.schema, &t.name); err != nil {
			return nil, err
		}
		out = append(out, t)
	}
	return out, rows.Err()
}

// pgCounts counts the rows of every table of the database at connURL.
func pgCounts(ctx context.Context, conn *pgx.Conn) (map[string]int64, error) {
	tables, err := pgTables(ctx, conn)
	if err != nil {
		return nil, err
	}
	out := map[string]int64{}
	for _, t := range tables {
		var n int64
		if err := conn.QueryRow(ctx, `SELECT count(*) FROM ONLY `+t.sql()).Scan(&n); err != nil {
			return nil, fmt.Errorf("count %s: %w", t.qualified(), err)
		}
		out[t.qualified()] = n
	}
	return out, nil
}

// pgEmpty refuses a restore into a database that already has tables.
func pgEmpty(ctx context.Context, conn *pgx.Conn) error {
	tables, err := pgTables(ctx, conn)
	if err != nil {
		return err
	}
	if len(tables) > 0 {
		return fmt.Errorf("the database already has %d tables (e.g. %s); restore needs an empty database", len(tables), tables[0].qualified())
	}
	return nil
}

// pgKeyLoader inserts a key dump's rows into the restored database.
type pgKeyLoader struct {
	ctx    context.Context
	tx     pgx.Tx
	schema string
	cur    string
}

func (l *pgKeyLoader) header(h dumpHeader) error {
	if h.Dialect != "postgres" || h.Kind != "keys" {
		return fmt.Errorf("%w: a %s %s dump where a postgres keys dump was expected", ErrDumpCorrupt, h.Dialect, h.Kind)
	}
	return nil
}

func (l *pgKeyLoader) table(t dumpTable) error {
	// The table name goes into SQL: only the known key tables are accepted.
	if !isKeyTable(t.Name) || len(t.Columns) != 1 || t.Rowid || t.SQL != "" {
		return fmt.Errorf("%w: key dump holds table %q", ErrDumpCorrupt, t.Name)
	}
	l.cur = t.Name
	return nil
}

func (l *pgKeyLoader) row(vals []any) error {
	doc, ok := vals[0].(string)
	if !ok {
		return fmt.Errorf("%w: key row is not a JSON document", ErrDumpCorrupt)
	}
	q := `INSERT INTO ` + quoteIdent(l.schema) + `.` + quoteIdent(l.cur) + ` SELECT * FROM jsonb_populate_record(NULL::` +
		quoteIdent(l.schema) + `.` + quoteIdent(l.cur) + `, $1::jsonb)`
	if _, err := l.tx.Exec(l.ctx, q, doc); err != nil {
		return fmt.Errorf("restore %s: %w", l.cur, err)
	}
	return nil
}

func (l *pgKeyLoader) endTable(int64) error { return nil }
func (l *pgKeyLoader) post(stmts []string) error {
	if len(stmts) > 0 {
		return fmt.Errorf("%w: key dump carries statements", ErrDumpCorrupt)
	}
	return nil
}

// pgLoadKeys reads a key dump into the database at connURL in one
// transaction.
func pgLoadKeys(ctx context.Context, connURL string, src io.Reader) (map[string]int64, error) {
	conn, err := pgx.Connect(ctx, connURL)
	if err != nil {
		return nil, fmt.Errorf("connect to restored database: %w", scrubPG(err, connURL))
	}
	defer conn.Close(context.WithoutCancel(ctx))
	tx, err := conn.Begin(ctx)
	if err != nil {
		return nil, err
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	var schema string
	if err := tx.QueryRow(ctx, `SELECT current_schema()`).Scan(&schema); err != nil {
		return nil, err
	}
	counts, err := readDump(src, &pgKeyLoader{ctx: ctx, tx: tx, schema: schema})
	if err != nil {
		return nil, err
	}
	return counts, tx.Commit(ctx)
}

// withDatabase returns connURL pointing at another database on the same
// server.
func withDatabase(connURL, name string) (string, error) {
	u, err := url.Parse(connURL)
	if err != nil {
		return "", errors.New("bad postgres URL")
	}
	u.Path = "/" + name
	return u.String(), nil
}

// scrubPG keeps a password out of an error.
func scrubPG(err error, connURL string) error {
	if err == nil {
		return nil
	}
	_, pw, perr := pgConnArgs(connURL)
	if perr != nil || pw == "" {
		return err
	}
	return errors.New(strings.ReplaceAll(err.Error(), pw, "[redacted]"))
}
