package backup

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"

	"modernc.org/sqlite"
)

// KeyTables are left out of the main backup and backed up separately with
// short retention: a tenant shredded (or a log day destroyed) is unreadable
// in every older backup once the key backups of the time before have expired.
// kek_versions travels with them: the keys name their KEK version, and the
// versions must be those of the keys restored, not of an older main backup.
// It comes first, as the others refer to it.
var KeyTables = []string{"kek_versions", "tenant_keys", "log_day_keys"}

func isKeyTable(name string) bool { return slices.Contains(KeyTables, name) }

// snapshotInfo is what a snapshot learnt about the database it read.
type snapshotInfo struct {
	SchemaVersion int64
	Tables        map[string]int64
	KeyTables     map[string]int64
}

// sqliteSnapshot streams one consistent snapshot of the SQLite database: a
// read transaction under WAL sees a single point in time while writers go on.
// The main dump goes to data (key tables: schema only), the key tables' rows
// to keys. Nothing is written to disk: both writers are age encryptors.
//
// Why not VACUUM INTO or the backup API: both produce a plaintext database
// file (or a full in-memory copy), and a key-less copy would need rewriting
// afterwards. Reading rows in one transaction gives the same consistency,
// bounded memory and a stream that can go straight into the encryptor.
func sqliteSnapshot(ctx context.Context, db *sql.DB, data, keys io.Writer) (snapshotInfo, error) {
	info := snapshotInfo{}
	// A read-only transaction is a deferred BEGIN even though Ferry's DSN
	// makes write transactions immediate: it takes no write lock.
	tx, err := db.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return info, err
	}
	defer tx.Rollback()
	type obj struct{ typ, name, tbl, sql string }
	var objs []obj
	rows, err := tx.QueryContext(ctx, `SELECT type, name, tbl_name, COALESCE(sql, '') FROM sqlite_master ORDER BY rowid`)
	if err != nil {
		return info, fmt.Errorf("read schema: %w", err)
	}
	for rows.Next() {
		var o obj
		if err := rows.Scan(&o.typ, &o.name, &o.tbl, &o.sql); err != nil {
			rows.Close()
			return info, err
		}
		objs = append(objs, o)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return info, err
	}
	var uv, appID int64
	tx.QueryRowContext(ctx, `PRAGMA user_version`).Scan(&uv)
	tx.QueryRowContext(ctx, `PRAGMA application_id`).Scan(&appID)
	if err := tx.QueryRowContext(ctx, `SELECT COALESCE(MAX(version_id), 0) FROM goose_db_version WHERE is_applied`).Scan(&info.SchemaVersion); err != nil {
		return info, fmt.Errorf("read schema version: %w", err)
	}
	dw, err := newDumpWriter(data, dumpHeader{Dialect: "sqlite", Kind: "main", UserVersion: uv, ApplicationID: appID})
	if err != nil {
		return info, err
	}
	kw, err := newDumpWriter(keys, dumpHeader{Dialect: "sqlite", Kind: "keys"})
	if err != nil {
		return info, err
	}
	var post []string
	hasSeq := false
	for _, o := range objs {
		switch {
		case o.typ == "table" && o.name == "sqlite_sequence":
			hasSeq = true
		case o.typ == "table" && strings.HasPrefix(o.name, "sqlite_"):
			// sqlite_stat*: statistics, rebuilt by ANALYZE.
		case o.typ == "table":
			t, err := sqliteTable(ctx, tx, o.name, o.sql)
			if err != nil {
				return info, err
			}
			if isKeyTable(o.name) {
				if err := dw.beginTable(t); err != nil {
					return info, err
				}
				if err := dw.endTable(); err != nil {
					return info, err
				}
				t.SQL = "" // the table exists once the main dump is restored
				if err := copySQLiteRows(ctx, tx, t, kw); err != nil {
					return info, err
				}
				continue
			}
			if err := copySQLiteRows(ctx, tx, t, dw); err != nil {
				return info, err
			}
		case o.sql != "": // index, trigger, view; automatic indexes have no SQL
			post = append(post, o.sql)
		}
	}
	if hasSeq {
		// Last: creating AUTOINCREMENT tables and loading their rows moves the
		// counters, which must end where they were.
		t := dumpTable{Name: "sqlite_sequence", Columns: []string{"name", "seq"}}
		if err := copySQLiteRows(ctx, tx, t, dw); err != nil {
			return info, err
		}
	}
	if err := dw.post(post); err != nil {
		return info, err
	}
	if info.Tables, err = dw.close(); err != nil {
		return info, err
	}
	if info.KeyTables, err = kw.close(); err != nil {
		return info, err
	}
	return info, nil
}

// sqliteTable describes a table for the dump: its columns (generated
// columns are recomputed, not stored) and whether its rowid must be kept.
func sqliteTable(ctx context.Context, tx *sql.Tx, name, create string) (dumpTable, error) {
	t := dumpTable{Name: name, SQL: create}
	rows, err := tx.QueryContext(ctx, `SELECT name, type, pk, hidden FROM pragma_table_xinfo(?)`, name)
	if err != nil {
		return t, fmt.Errorf("columns of %s: %w", name, err)
	}
	var pks []string
	var pkType string
	for rows.Next() {
		var col, typ string
		var pk, hidden int
		if err := rows.Scan(&col, &typ, &pk, &hidden); err != nil {
			rows.Close()
			return t, err
		}
		if hidden == 2 || hidden == 3 { // generated columns
			continue
		}
		t.Columns = append(t.Columns, col)
		if pk > 0 {
			pks, pkType = append(pks, col), typ
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return t, err
	}
	withoutRowid := false
	if err := tx.QueryRowContext(ctx, `SELECT wr FROM pragma_table_list WHERE schema = 'main' AND name = ?`, name).Scan(&withoutRowid); err != nil {
		return t, fmt.Errorf("table %s: %w", name, err)
	}
	// A single INTEGER PRIMARY KEY is the rowid itself; otherwise the rowid
	// is hidden state that retention code uses, so it is kept explicitly.
	alias := len(pks) == 1 && strings.EqualFold(pkType, "INTEGER")
	t.Rowid = !withoutRowid && !alias
	return t, nil
}

// copySQLiteRows writes every row of t. Each column is read as +"col": an
// expression has no declared type, so the driver hands back SQLite's own
// storage class (a TIMESTAMP column's text stays text, never a time.Time).
func copySQLiteRows(ctx context.Context, tx *sql.Tx, t dumpTable, w *dumpWriter) error {
	if err := w.beginTable(t); err != nil {
		return err
	}
	cols := make([]string, 0, len(t.Columns)+1)
	if t.Rowid {
		cols = append(cols, "rowid")
	}
	for _, c := range t.Columns {
		cols = append(cols, "+"+quoteIdent(c))
	}
	rows, err := tx.QueryContext(ctx, `SELECT `+strings.Join(cols, ", ")+` FROM `+quoteIdent(t.Name))
	if err != nil {
		return fmt.Errorf("read %s: %w", t.Name, err)
	}
	defer rows.Close()
	vals := make([]any, len(cols))
	ptrs := make([]any, len(cols))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	for rows.Next() {
		if err := rows.Scan(ptrs...); err != nil {
			return fmt.Errorf("read %s: %w", t.Name, err)
		}
		for i, v := range vals {
			if b, ok := v.([]byte); ok && b == nil {
				vals[i] = []byte{} // a zero-length blob, not NULL (NULL arrives as untyped nil)
			}
		}
		if err := w.row(vals); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("read %s: %w", t.Name, err)
	}
	return w.endTable()
}

func quoteIdent(s string) string { return `"` + strings.ReplaceAll(s, `"`, `""`) + `"` }

// sqliteFileDSN opens path as a URI with every special character escaped
// (a ? or # in a directory name must not end the path).
func sqliteFileDSN(path string, pragmas ...string) string {
	u := url.URL{Scheme: "file", OmitHost: true, Path: path}
	q := url.Values{}
	for _, p := range pragmas {
		q.Add("_pragma", p)
	}
	return u.String() + "?" + q.Encode()
}

// restoreSQLite loads a main dump (and then, through the returned loader,
// key dumps) into a new database file at path, which must not exist. Until
// it returns nil the file lives under a temporary name next to path.
type sqliteRestore struct {
	path, tmp string
	db        *sql.DB
	conn      *sql.Conn
	tx        *sql.Tx
	hdr       dumpHeader
}

func newSQLiteRestore(ctx context.Context, path string) (*sqliteRestore, error) {
	if _, err := os.Stat(path); err == nil {
		return nil, fmt.Errorf("%s exists; restore writes a new database file and never overwrites one", path)
	}
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".restoring-*")
	if err != nil {
		return nil, err
	}
	f.Close()
	r := &sqliteRestore{path: path, tmp: f.Name()}
	// Loading needs no journal and no fsync per transaction: until the final
	// rename, a crash leaves only a temporary file to throw away.
	r.db, err = sql.Open("sqlite", sqliteFileDSN(r.tmp, "foreign_keys(0)", "journal_mode(OFF)", "synchronous(OFF)"))
	if err != nil {
		r.abort()
		return nil, err
	}
	r.db.SetMaxOpenConns(1)
	if r.conn, err = r.db.Conn(ctx); err != nil {
		r.abort()
		return nil, err
	}
	// What a restore may do is only what a dump needs: create tables,
	// indexes, triggers and views, and insert rows. ATTACH (which could write
	// any file), PRAGMA and virtual tables are refused, so a crafted dump
	// cannot reach past the new database even before its digest is checked.
	if err := r.conn.Raw(func(dc any) error {
		reg, ok := dc.(sqlite.AuthorizerRegisterer)
		if !ok {
			return errors.New("sqlite driver has no authorizer")
		}
		return reg.RegisterAuthorizer(restoreAuthorizer)
	}); err != nil {
		r.abort()
		return nil, err
	}
	if r.tx, err = r.conn.BeginTx(ctx, nil); err != nil {
		r.abort()
		return nil, err
	}
	return r, nil
}

func restoreAuthorizer(action sqlite.AuthorizerActionCode, _, _, db, _ string) sqlite.AuthorizerReturnCode {
	switch action {
	case sqlite.AuthCreateTable, sqlite.AuthCreateIndex, sqlite.AuthCreateTrigger, sqlite.AuthCreateView,
		sqlite.AuthInsert, sqlite.AuthUpdate, sqlite.AuthDelete, sqlite.AuthRead, sqlite.AuthSelect, sqlite.AuthFunction,
		sqlite.AuthTransaction, sqlite.AuthRecursive, sqlite.AuthReindex:
		if db != "" && db != "main" {
			return sqlite.AuthorizerDeny
		}
		return sqlite.AuthorizerOK
	}
	return sqlite.AuthorizerDeny
}

// sqliteLoader is the dump sink that inserts into the restoring database.
type sqliteLoader struct {
	r    *sqliteRestore
	ctx  context.Context
	kind string // main | keys
	stmt *sql.Stmt
	cur  dumpTable
}

var createTableRE = regexp.MustCompile(`(?is)^\s*CREATE\s+TABLE\s`)
var createPostRE = regexp.MustCompile(`(?is)^\s*CREATE\s+(UNIQUE\s+)?(INDEX|TRIGGER|VIEW)\s`)

func (l *sqliteLoader) header(h dumpHeader) error {
	if h.Dialect != "sqlite" || h.Kind != l.kind {
		return fmt.Errorf("%w: a %s %s dump where a sqlite %s dump was expected", ErrDumpCorrupt, h.Dialect, h.Kind, l.kind)
	}
	if l.kind == "main" {
		l.r.hdr = h
	}
	return nil
}

func (l *sqliteLoader) table(t dumpTable) error {
	if l.kind == "keys" {
		if !isKeyTable(t.Name) || t.SQL != "" {
			return fmt.Errorf("%w: key dump holds table %q", ErrDumpCorrupt, t.Name)
		}
	} else if t.Name == "sqlite_sequence" {
		if t.SQL != "" || t.Rowid {
			return fmt.Errorf("%w: bad sqlite_sequence record", ErrDumpCorrupt)
		}
		if _, err := l.r.tx.ExecContext(l.ctx, `DELETE FROM sqlite_sequence`); err != nil {
			return fmt.Errorf("restore sqlite_sequence: %w", err)
		}
	} else {
		if !createTableRE.MatchString(t.SQL) {
			return fmt.Errorf("%w: table %q has no CREATE TABLE statement", ErrDumpCorrupt, t.Name)
		}
		if _, err := l.r.tx.ExecContext(l.ctx, t.SQL); err != nil {
			return fmt.Errorf("create table %s: %w", t.Name, err)
		}
	}
	cols := make([]string, 0, len(t.Columns)+1)
	if t.Rowid {
		cols = append(cols, "rowid")
	}
	for _, c := range t.Columns {
		cols = append(cols, quoteIdent(c))
	}
	q := `INSERT INTO ` + quoteIdent(t.Name) + ` (` + strings.Join(cols, ", ") + `) VALUES (?` + strings.Repeat(", ?", len(cols)-1) + `)`
	st, err := l.r.tx.PrepareContext(l.ctx, q)
	if err != nil {
		return fmt.Errorf("restore %s: %w", t.Name, err)
	}
	l.stmt, l.cur = st, t
	return nil
}

func (l *sqliteLoader) row(vals []any) error {
	if _, err := l.stmt.ExecContext(l.ctx, vals...); err != nil {
		return fmt.Errorf("restore %s: %w", l.cur.Name, err)
	}
	return nil
}

func (l *sqliteLoader) endTable(int64) error {
	err := l.stmt.Close()
	l.stmt = nil
	return err
}

func (l *sqliteLoader) post(stmts []string) error {
	if l.kind == "keys" && len(stmts) > 0 {
		return fmt.Errorf("%w: key dump carries statements", ErrDumpCorrupt)
	}
	for _, s := range stmts {
		if !createPostRE.MatchString(s) {
			return fmt.Errorf("%w: statement is not CREATE INDEX, TRIGGER or VIEW", ErrDumpCorrupt)
		}
		if _, err := l.r.tx.ExecContext(l.ctx, s); err != nil {
			return fmt.Errorf("restore schema: %w", err)
		}
	}
	return nil
}

// load reads one dump into the restoring database.
func (r *sqliteRestore) load(ctx context.Context, kind string, src io.Reader) (map[string]int64, error) {
	return readDump(src, &sqliteLoader{r: r, ctx: ctx, kind: kind})
}

// finish commits, switches the new database to WAL and moves it into place.
func (r *sqliteRestore) finish(ctx context.Context) error {
	if err := r.tx.Commit(); err != nil {
		r.abort()
		return err
	}
	r.tx = nil
	err := r.conn.Raw(func(dc any) error { return dc.(sqlite.AuthorizerRegisterer).RegisterAuthorizer(nil) })
	if err == nil {
		_, err = r.conn.ExecContext(ctx, fmt.Sprintf(`PRAGMA user_version = %d`, r.hdr.UserVersion))
	}
	if err == nil {
		_, err = r.conn.ExecContext(ctx, fmt.Sprintf(`PRAGMA application_id = %d`, r.hdr.ApplicationID))
	}
	if err == nil {
		_, err = r.conn.ExecContext(ctx, `PRAGMA journal_mode = WAL`)
	}
	if err != nil {
		r.abort()
		return err
	}
	r.conn.Close()
	if err := r.db.Close(); err != nil {
		r.abort()
		return err
	}
	r.db = nil
	if f, err := os.OpenFile(r.tmp, os.O_RDWR, 0); err == nil {
		f.Sync()
		f.Close()
	}
	if err := os.Chmod(r.tmp, 0o600); err != nil {
		r.abort()
		return err
	}
	if _, err := os.Stat(r.path); err == nil {
		r.abort()
		return fmt.Errorf("%s appeared while restoring; not overwritten", r.path)
	}
	if err := os.Rename(r.tmp, r.path); err != nil {
		r.abort()
		return err
	}
	syncDir(filepath.Dir(r.path))
	return nil
}

// abort throws the half-restored database away.
func (r *sqliteRestore) abort() {
	if r.tx != nil {
		r.tx.Rollback()
		r.tx = nil
	}
	if r.conn != nil {
		r.conn.Close()
		r.conn = nil
	}
	if r.db != nil {
		r.db.Close()
		r.db = nil
	}
	for _, suffix := range []string{"", "-wal", "-shm", "-journal"} {
		os.Remove(r.tmp + suffix)
	}
}
