package backup

import (
	"bytes"
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"filippo.io/age"
	"github.com/jackc/pgx/v5"

	"ferry/internal/keys"
	"ferry/internal/store"
)

// Progress is told how far a long step has come (bytes of ciphertext read).
type Progress func(phase string, done, total int64)

// RestoreOptions says where and how to restore.
type RestoreOptions struct {
	// To is a new SQLite file (it must not exist) or the postgres:// URL of
	// an existing, empty database.
	To string
	// Identities decrypt the backup; empty means the server's restore
	// identity (which needs the KEK). An operator's offline identity works
	// without it.
	Identities []age.Identity
	// KeysFrom names the backup whose key object is restored; empty means
	// the newest one kept (so keys destroyed since stay destroyed).
	KeysFrom string
	Progress Progress
}

// RestoreResult says what was restored.
type RestoreResult struct {
	ID       string
	KeysFrom string
	Tables   map[string]int64 // rows per table, counted in the restored database
}

// ErrMismatch: a restored database does not hold what the manifest says.
var ErrMismatch = errors.New("backup: restored database does not match the manifest")

// Restore restores backup id into a new database and checks that every
// table holds the rows the manifest records.
func (s *Service) Restore(ctx context.Context, id string, o RestoreOptions) (RestoreResult, error) {
	res := RestoreResult{ID: id}
	m, err := s.Manifest(ctx, id)
	if err != nil {
		return res, err
	}
	km, err := s.keyManifest(ctx, m, o.KeysFrom)
	if err != nil {
		return res, err
	}
	res.KeysFrom = km.ID
	unlock, err := s.lockWork()
	if err != nil {
		return res, err
	}
	defer unlock()
	isPG := strings.HasPrefix(o.To, "postgres://") || strings.HasPrefix(o.To, "postgresql://")
	if (m.Dialect == "postgres") != isPG {
		return res, fmt.Errorf("backup %s is a %s backup; --to must be %s", id, m.Dialect,
			map[bool]string{true: "a postgres:// URL of an empty database", false: "the path of a new SQLite file"}[m.Dialect == "postgres"])
	}
	if err := s.restoreInto(ctx, m, km, o); err != nil {
		return res, err
	}
	counts, err := countRows(ctx, m.Dialect, o.To)
	if err != nil {
		return res, err
	}
	res.Tables = counts
	if err := compareCounts(expectedCounts(m, km), counts); err != nil {
		return res, err
	}
	return res, nil
}

// lockWork serializes drills and restores on this machine and then removes
// what a killed one left in the work directory: a drill database is a
// plaintext copy (with keys, which may since have been shredded), so it must
// not outlive the drill that made it.
func (s *Service) lockWork() (func(), error) {
	if err := os.MkdirAll(s.o.WorkDir, 0o700); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(filepath.Join(s.o.WorkDir, "lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		return nil, err
	}
	for _, pat := range []string{"drill-*", ".drill-*", "download-*"} {
		left, _ := filepath.Glob(filepath.Join(s.o.WorkDir, pat))
		for _, p := range left {
			os.Remove(p)
		}
	}
	return func() { syscall.Flock(int(f.Fd()), syscall.LOCK_UN); f.Close() }, nil
}

// keyManifest finds the manifest of the key object to restore with m.
func (s *Service) keyManifest(ctx context.Context, m Manifest, from string) (Manifest, error) {
	if from != "" {
		km, err := s.Manifest(ctx, from)
		if err != nil {
			return km, fmt.Errorf("key backup: %w", err)
		}
		if km.Dialect != m.Dialect {
			return km, fmt.Errorf("key backup %s is %s, backup %s is %s", from, km.Dialect, m.ID, m.Dialect)
		}
		return km, nil
	}
	list, err := s.List(ctx)
	if err != nil {
		return Manifest{}, err
	}
	kb, ok := newestKeys(list, m.Dialect)
	if !ok {
		return Manifest{}, fmt.Errorf("no good %s backup with a kept key object: tenant keys cannot be restored", m.Dialect)
	}
	return *kb.Manifest, nil
}

func expectedCounts(m, km Manifest) map[string]int64 {
	want := maps.Clone(m.Tables)
	for t, n := range km.KeyTables {
		want[t] = n
	}
	return want
}

func compareCounts(want, got map[string]int64) error {
	var diffs []string
	for t, n := range want {
		if g, ok := got[t]; !ok {
			diffs = append(diffs, fmt.Sprintf("%s missing (want %d rows)", t, n))
		} else if g != n {
			diffs = append(diffs, fmt.Sprintf("%s has %d rows, want %d", t, g, n))
		}
	}
	for t, g := range got {
		if _, ok := want[t]; !ok {
			diffs = append(diffs, fmt.Sprintf("%s (%d rows) is not in the manifest", t, g))
		}
	}
	if len(diffs) > 0 {
		slices.Sort(diffs)
		return fmt.Errorf("%w: %s", ErrMismatch, strings.Join(diffs, "; "))
	}
	return nil
}

// restoreInto decrypts and loads m's data object and km's key object.
func (s *Service) restoreInto(ctx context.Context, m, km Manifest, o RestoreOptions) error {
	ids := o.Identities
	if len(ids) == 0 {
		k, err := s.backupKey(ctx, m.KeyID)
		if err != nil {
			return fmt.Errorf("restore identity: %w", err)
		}
		ids = []age.Identity{k.Identity}
		if km.KeyID != m.KeyID {
			kk, err := s.backupKey(ctx, km.KeyID)
			if err != nil {
				return fmt.Errorf("restore identity: %w", err)
			}
			ids = append(ids, kk.Identity)
		}
	}
	data, err := s.fetchVerified(ctx, m.Data, o.Progress)
	if err != nil {
		return err
	}
	defer data.Close()
	keyObj, err := s.fetchVerified(ctx, km.Keys, nil)
	if err != nil {
		return err
	}
	defer keyObj.Close()
	var src io.Reader = data
	if o.Progress != nil {
		src = &progressReader{r: data, total: m.Data.Size, phase: "restore", fn: o.Progress}
	}
	plain, err := age.Decrypt(src, ids...)
	if err != nil {
		return fmt.Errorf("decrypt %s: %w", m.Data.Name, err)
	}
	kplain, err := age.Decrypt(keyObj, ids...)
	if err != nil {
		return fmt.Errorf("decrypt %s: %w", km.Keys.Name, err)
	}
	if m.Dialect == "postgres" {
		conn, err := pgx.Connect(ctx, o.To)
		if err != nil {
			return fmt.Errorf("connect to %s: %w", redactPG(o.To), scrubPG(err, o.To))
		}
		err = pgEmpty(ctx, conn)
		conn.Close(ctx)
		if err != nil {
			return err
		}
		if err := pgTool(ctx, "pg_restore", o.To, plain, io.Discard, "--no-owner", "--no-privileges", "--exit-on-error", "--single-transaction"); err != nil {
			return err
		}
		if _, err := pgLoadKeys(ctx, o.To, kplain); err != nil {
			return fmt.Errorf("restore key tables: %w", err)
		}
		return nil
	}
	r, err := newSQLiteRestore(ctx, o.To)
	if err != nil {
		return err
	}
	if _, err := r.load(ctx, "main", plain); err != nil {
		r.abort()
		return fmt.Errorf("restore %s: %w", m.Data.Name, err)
	}
	if _, err := r.load(ctx, "keys", kplain); err != nil {
		r.abort()
		return fmt.Errorf("restore %s: %w", km.Keys.Name, err)
	}
	return r.finish(ctx)
}

// ErrDigest: a stored object is not what its manifest says.
var ErrDigest = errors.New("backup: object does not match its manifest")

// fetchVerified checks an object's size and SHA-256 against its manifest
// before anything parses it, and returns it positioned at the start. A local
// file is hashed in place and read again through the same descriptor;
// anything else is copied (ciphertext only) into the work directory first,
// so what is parsed is exactly what was checked.
func (s *Service) fetchVerified(ctx context.Context, p Part, progress Progress) (io.ReadCloser, error) {
	rc, err := s.o.Target.Get(ctx, p.Name)
	if err != nil {
		return nil, err
	}
	var f *os.File
	var cleanup func()
	if lf, ok := rc.(*os.File); ok {
		f, cleanup = lf, func() { lf.Close() }
	} else {
		defer rc.Close()
		if err := os.MkdirAll(s.o.WorkDir, 0o700); err != nil {
			return nil, err
		}
		tmp, err := os.CreateTemp(s.o.WorkDir, "download-*.age")
		if err != nil {
			return nil, err
		}
		f, cleanup = tmp, func() { tmp.Close(); os.Remove(tmp.Name()) }
		var src io.Reader = rc
		if progress != nil {
			src = &progressReader{r: rc, total: p.Size, phase: "download", fn: progress}
		}
		if _, err := io.Copy(tmp, io.LimitReader(ctxReader{ctx, src}, p.Size+1)); err != nil {
			cleanup()
			return nil, fmt.Errorf("download %s: %w", p.Name, err)
		}
		if _, err := tmp.Seek(0, io.SeekStart); err != nil {
			cleanup()
			return nil, err
		}
	}
	h := sha256.New()
	var src io.Reader = f
	if progress != nil {
		src = &progressReader{r: f, total: p.Size, phase: "verify", fn: progress}
	}
	n, err := io.Copy(h, io.LimitReader(ctxReader{ctx, src}, p.Size+1))
	if err != nil {
		cleanup()
		return nil, fmt.Errorf("read %s: %w", p.Name, err)
	}
	if n != p.Size || hex.EncodeToString(h.Sum(nil)) != p.SHA256 {
		cleanup()
		return nil, fmt.Errorf("%w: %s is %d bytes with another SHA-256 (manifest: %d bytes, %s…)", ErrDigest, p.Name, n, p.Size, p.SHA256[:12])
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		cleanup()
		return nil, err
	}
	return closerFunc{Reader: io.LimitReader(f, p.Size), close: cleanup}, nil
}

type closerFunc struct {
	io.Reader
	close func()
}

func (c closerFunc) Close() error { c.close(); return nil }

type progressReader struct {
	r       io.Reader
	done    int64
	total   int64
	phase   string
	fn      Progress
	last    time.Time
	started bool
}

func (p *progressReader) Read(b []byte) (int, error) {
	n, err := p.r.Read(b)
	p.done += int64(n)
	if now := time.Now(); !p.started || now.Sub(p.last) >= 100*time.Millisecond || err == io.EOF {
		p.started, p.last = true, now
		p.fn(p.phase, p.done, p.total)
	}
	return n, err
}

// countRows counts every table of a restored database.
func countRows(ctx context.Context, dialect, to string) (map[string]int64, error) {
	if dialect == "postgres" {
		conn, err := pgx.Connect(ctx, to)
		if err != nil {
			return nil, scrubPG(err, to)
		}
		defer conn.Close(context.WithoutCancel(ctx))
		return pgCounts(ctx, conn)
	}
	db, err := sql.Open("sqlite", sqliteFileDSN(to, "query_only(1)"))
	if err != nil {
		return nil, err
	}
	defer db.Close()
	return sqliteCounts(ctx, db)
}

func sqliteCounts(ctx context.Context, db *sql.DB) (map[string]int64, error) {
	rows, err := db.QueryContext(ctx, `SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite\_stat%' ESCAPE '\'`)
	if err != nil {
		return nil, err
	}
	var names []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			rows.Close()
			return nil, err
		}
		names = append(names, n)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	out := map[string]int64{}
	for _, n := range names {
		var c int64
		if err := db.QueryRowContext(ctx, `SELECT count(*) FROM `+quoteIdent(n)).Scan(&c); err != nil {
			return nil, fmt.Errorf("count %s: %w", n, err)
		}
		out[n] = c
	}
	return out, nil
}

func redactPG(u string) string {
	conn, _, err := pgConnArgs(u)
	if err != nil {
		return "the database"
	}
	return conn
}

// Drill restores backup id into a scratch database and checks it: the
// objects match the signed manifest, they decrypt and load, every table has
// the manifest's row count, SQLite's integrity check passes, the schema is
// at the recorded migration and this binary's migrations apply on top, and
// every live tenant and log-day key opens with the KEK. The result is
// recorded in the runs table and, signed, beside the backup.
func (s *Service) Drill(ctx context.Context, id string) (DrillResult, error) {
	start := time.Now()
	d := DrillResult{Format: "ferry-backup-drill/1", ID: id, At: s.now()}
	// Only a backup with a verified manifest gets a drill record; anything
	// else is not a backup (and is listed as what it is).
	if _, err := s.Manifest(ctx, id); err != nil {
		return d, err
	}
	check := func(name string, err error, detail string) bool {
		c := Check{Name: name, OK: err == nil, Detail: detail}
		if err != nil {
			c.Detail = err.Error()
			if d.Error == "" {
				d.Error = name + ": " + err.Error()
			}
		}
		d.Checks = append(d.Checks, c)
		return err == nil
	}
	unlock, err := s.lockWork()
	if err != nil {
		return d, err
	}
	d.OK = s.drill(ctx, id, &d, check)
	unlock()
	d.Millis = time.Since(start).Milliseconds()
	if ctx.Err() != nil {
		return d, ctx.Err() // cancelled: nothing learnt, nothing recorded
	}
	s.recordDrill(ctx, d)
	forgetStatus()
	k, err := s.keys.current(ctx)
	if err == nil {
		var sealed []byte
		if sealed, err = seal(k, "drill", d); err == nil {
			_, err = s.o.Target.Put(ctx, drillObject(id), bytes.NewReader(sealed))
		}
	}
	if err != nil {
		return d, fmt.Errorf("record drill of %s: %w", id, err)
	}
	s.o.Log.Info("backup restore drill", "id", id, "ok", d.OK, "error", d.Error, "millis", d.Millis)
	return d, nil
}

func (s *Service) drill(ctx context.Context, id string, d *DrillResult, check func(string, error, string) bool) bool {
	m, err := s.Manifest(ctx, id)
	if !check("manifest", err, "signature verified") {
		return false
	}
	list, err := s.List(ctx)
	if !check("list", err, "") {
		return false
	}
	km := m
	if i := slices.IndexFunc(list, func(b Backup) bool { return b.ID == id }); i < 0 || !list[i].KeysKept {
		// The key object of an older backup has expired: drill with the
		// newest kept, as a restore would.
		kb, ok := newestKeys(list, m.Dialect)
		if !ok {
			check("keys", errors.New("no key backup is kept"), "")
			return false
		}
		km = *kb.Manifest
	}
	d.KeysFrom = km.ID

	var to string
	var cleanup func()
	if m.Dialect == "postgres" {
		name := "ferry_drill_" + strings.ReplaceAll(newID(time.Now())[16:], "-", "")
		admin, err := pgx.Connect(ctx, s.o.DatabaseURL)
		if err == nil {
			_, err = admin.Exec(ctx, `CREATE DATABASE `+quoteIdent(name))
			admin.Close(ctx)
		}
		if !check("scratch database", scrubPG(err, s.o.DatabaseURL), "created "+name) {
			return false
		}
		to, _ = withDatabase(s.o.DatabaseURL, name)
		cleanup = func() {
			c := context.WithoutCancel(ctx)
			if admin, err := pgx.Connect(c, s.o.DatabaseURL); err == nil {
				admin.Exec(c, `DROP DATABASE IF EXISTS `+quoteIdent(name)+` WITH (FORCE)`)
				admin.Close(c)
			}
		}
	} else {
		to = filepath.Join(s.o.WorkDir, "drill-"+id+".db")
		check("scratch database", nil, to)
		cleanup = func() {
			for _, suf := range []string{"", "-wal", "-shm"} {
				os.Remove(to + suf)
			}
		}
	}
	defer cleanup()

	err = s.restoreInto(ctx, m, km, RestoreOptions{To: to})
	if !check("restore", err, "objects match the manifest (size, SHA-256); decrypted and loaded") {
		return false
	}
	counts, err := countRows(ctx, m.Dialect, to)
	if err == nil {
		err = compareCounts(expectedCounts(m, km), counts)
	}
	if !check("rows", err, fmt.Sprintf("%d tables, row counts as recorded", len(counts))) {
		return false
	}
	so := store.Options{SQLitePath: to}
	if m.Dialect == "postgres" {
		so = store.Options{DatabaseURL: to}
	}
	sdb, err := store.Open(ctx, so)
	if !check("open", err, "") {
		return false
	}
	defer sdb.Close()
	if m.Dialect == "sqlite" {
		var res []string
		rows, err := sdb.SQL.QueryContext(ctx, `PRAGMA integrity_check`)
		if err == nil {
			for rows.Next() {
				var r string
				rows.Scan(&r)
				res = append(res, r)
			}
			rows.Close()
			if len(res) != 1 || res[0] != "ok" {
				err = fmt.Errorf("integrity_check: %s", strings.Join(res, "; "))
			}
		}
		if err == nil {
			var n int
			if err = sdb.SQL.QueryRowContext(ctx, `SELECT count(*) FROM pragma_foreign_key_check`).Scan(&n); err == nil && n > 0 {
				err = fmt.Errorf("foreign_key_check: %d rows violate foreign keys", n)
			}
		}
		if !check("integrity", err, "PRAGMA integrity_check ok; no foreign key violations") {
			return false
		}
	} else {
		check("integrity", nil, "pg_restore --single-transaction --exit-on-error completed")
	}
	var version int64
	err = sdb.SQL.QueryRowContext(ctx, `SELECT COALESCE(MAX(version_id), 0) FROM goose_db_version WHERE is_applied`).Scan(&version)
	if err == nil && version != m.SchemaVersion {
		err = fmt.Errorf("restored schema is at migration %d, manifest says %d", version, m.SchemaVersion)
	}
	if err == nil {
		err = sdb.Migrate(ctx)
	}
	if err == nil {
		var pending bool
		if pending, err = sdb.Pending(ctx); err == nil && pending {
			err = errors.New("migrations still pending after migrating")
		}
	}
	if !check("migrations", err, fmt.Sprintf("at migration %d as recorded; this binary's migrations are current", m.SchemaVersion)) {
		return false
	}
	tenants, days, err := openAllKeys(ctx, sdb, s.o.Keys)
	return check("keys", err, fmt.Sprintf("%d tenant keysets and %d log day keys open with the KEK", tenants, days))
}

// openAllKeys opens every live tenant keyset and log-day key of a restored
// database through a key ring opened as the restored server would open it:
// every KEK version it records must open its check value.
func openAllKeys(ctx context.Context, db *store.DB, o keys.Options) (tenants, days int, err error) {
	ring, err := keys.Open(ctx, db, o)
	if err != nil {
		return 0, 0, err
	}
	rows, err := db.SQL.QueryContext(ctx, `SELECT tenant_id FROM tenant_keys WHERE shredded_at IS NULL`)
	if err != nil {
		return 0, 0, err
	}
	var ids []string
	for rows.Next() {
		var id string
		rows.Scan(&id)
		ids = append(ids, id)
	}
	rows.Close()
	for _, id := range ids {
		if _, err := ring.Pseudonym(ctx, id, "backup-drill"); err != nil {
			return tenants, days, fmt.Errorf("tenant %s: %w", id, err)
		}
		tenants++
	}
	live, err := ring.DayKeysBefore(ctx, time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC))
	if err != nil {
		return tenants, days, err
	}
	for _, day := range live {
		if _, err := ring.DayKey(ctx, day); err != nil {
			return tenants, days, fmt.Errorf("log day %s: %w", keys.Day(day), err)
		}
		days++
	}
	return tenants, days, nil
}
