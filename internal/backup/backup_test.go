package backup

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"filippo.io/age"

	"ferry/internal/keys"
	"ferry/internal/store"
	"ferry/internal/store/storetest"
)

// TestContractBackupRestoreRoundTripReproducesEveryTable backs up a database
// holding Ferry's own data (tenants with encrypted secrets and pseudonyms,
// request logs with their day keys) and generated edge cases of every value
// kind, restores it into a new database, and compares every table with the
// source through the engine itself.
func TestContractBackupRestoreRoundTripReproducesEveryTable(t *testing.T) {
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		f := newFixture(t, db)
		rnd := newRand(t)
		tenants := f.populate(t, rnd)

		res, err := f.svc.Run(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if !res.Drill.OK {
			t.Fatalf("drill failed: %+v", res.Drill)
		}
		for _, c := range res.Drill.Checks {
			t.Logf("drill check %s: %v %s", c.Name, c.OK, c.Detail)
		}
		// Changes after the backup must not show up in the restore.
		f.install(t, 99, "installed-after-the-backup")

		to := filepath.Join(t.TempDir(), "restored.db")
		if db.Dialect == store.Postgres {
			to = emptyPGDatabase(t)
		}
		rr, err := f.svc.Restore(ctx, res.Manifest.ID, RestoreOptions{To: to})
		if err != nil {
			t.Fatal(err)
		}
		if rr.KeysFrom != res.Manifest.ID {
			t.Errorf("keys restored from %s, want the backup's own %s", rr.KeysFrom, res.Manifest.ID)
		}
		// Undo the post-backup install in the source so both should match.
		if _, err := db.SQL.ExecContext(ctx, `DELETE FROM installations WHERE client_key LIKE 'client-99-%'`); err != nil {
			t.Fatal(err)
		}
		if _, err := db.SQL.ExecContext(ctx, `DELETE FROM tenant_keys WHERE tenant_id NOT IN (SELECT tenant_id FROM installations)`); err != nil {
			t.Fatal(err)
		}
		if db.Dialect == store.Postgres {
			assertSamePG(t, f.url, to)
		} else {
			assertSameSQLite(t, db.SQL, to)
		}
		// The restored server opens every tenant's secret with the same KEK.
		rdb := openRestored(t, db.Dialect, to)
		// backup_runs was left out of the comparison: the snapshot caught this
		// run as running, and so must the restore.
		var state string
		if err := rdb.SQL.QueryRowContext(ctx, `SELECT state FROM backup_runs WHERE id = $1`, res.Manifest.ID).Scan(&state); err != nil || state != "running" {
			t.Errorf("restored run row: state %q, %v; want running (as at the snapshot)", state, err)
		}
		ring := keys.NewRing(rdb, f.kek)
		for _, id := range tenants {
			if _, err := ring.Pseudonym(ctx, id, "x"); err != nil {
				t.Errorf("tenant %s unreadable after restore: %v", id, err)
			}
		}
	})
}

func openRestored(t testing.TB, d store.Dialect, to string) *store.DB {
	t.Helper()
	o := store.Options{SQLitePath: to}
	if d == store.Postgres {
		o = store.Options{DatabaseURL: to}
	}
	db, err := store.Open(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// TestContractBackupObjectsAreUnreadableWithoutAnIdentity reads every object
// the backup wrote: none holds a tenant's secret, a table name or a row in
// the clear, age refuses them without an identity and with a wrong one, and
// an operator's offline identity alone (no KEK) opens them.
func TestContractBackupObjectsAreUnreadableWithoutAnIdentity(t *testing.T) {
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		f := newFixture(t, db)
		offline, err := age.GenerateX25519Identity()
		if err != nil {
			t.Fatal(err)
		}
		svc := f.service(t, f.target, func(o *Options) { o.Recipients = []age.Recipient{offline.Recipient()} })
		const canary = "canary-secret-8c1f2e0d"
		f.install(t, 1, canary)
		if _, err := db.SQL.ExecContext(ctx, `CREATE TABLE canary_table (v TEXT)`); err != nil {
			t.Fatal(err)
		}
		if _, err := db.SQL.ExecContext(ctx, `INSERT INTO canary_table VALUES ('`+canary+`')`); err != nil {
			t.Fatal(err)
		}
		m, err := svc.Backup(ctx)
		if err != nil {
			t.Fatal(err)
		}
		stranger, _ := age.GenerateX25519Identity()
		for _, p := range []Part{m.Data, m.Keys} {
			raw := readObject(t, f.target, p.Name)
			for _, needle := range []string{canary, "canary_table", "tenant_keys", "installations", "FERRYDUMP", "PGDMP"} {
				if bytes.Contains(raw, []byte(needle)) {
					t.Errorf("%s holds %q in the clear", p.Name, needle)
				}
			}
			if _, err := age.Decrypt(bytes.NewReader(raw)); err == nil {
				t.Errorf("%s decrypts without an identity", p.Name)
			}
			if _, err := age.Decrypt(bytes.NewReader(raw), stranger); !errors.As(err, new(*age.NoIdentityMatchError)) {
				t.Errorf("%s with a stranger's identity: %v, want NoIdentityMatchError", p.Name, err)
			}
			r, err := age.Decrypt(bytes.NewReader(raw), offline)
			if err != nil {
				t.Fatalf("%s: the offline identity cannot open it: %v", p.Name, err)
			}
			plain, err := io.ReadAll(r)
			if err != nil {
				t.Fatal(err)
			}
			if p == m.Data && !bytes.Contains(plain, []byte("canary_table")) {
				t.Errorf("decrypted %s lacks the canary table: the check above proves nothing", p.Name)
			}
		}
		// Nothing in the clear on disk outside the target either: the work
		// directory holds no plaintext dump.
		filepath.Walk(filepath.Join(f.dir, "work"), func(p string, info os.FileInfo, err error) error {
			if err == nil && !info.IsDir() {
				b, _ := os.ReadFile(p)
				if bytes.Contains(b, []byte(canary)) {
					t.Errorf("%s holds the canary in the clear", p)
				}
			}
			return nil
		})
		// The offline identity restores without the server's identity.
		to := filepath.Join(t.TempDir(), "offline.db")
		if db.Dialect == store.Postgres {
			to = emptyPGDatabase(t)
		}
		if _, err := svc.Drill(ctx, m.ID); err != nil {
			t.Fatal(err)
		}
		if _, err := svc.Restore(ctx, m.ID, RestoreOptions{To: to, Identities: []age.Identity{offline}}); err != nil {
			t.Fatalf("restore with the offline identity: %v", err)
		}
		if _, err := svc.Restore(ctx, m.ID, RestoreOptions{To: to + "-2", Identities: []age.Identity{stranger}}); err == nil {
			t.Error("restore with a stranger's identity succeeded")
		}
	})
}

func readObject(t testing.TB, tg Target, name string) []byte {
	t.Helper()
	rc, err := tg.Get(context.Background(), name)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestContractMainBackupHoldsNoKeys decrypts the main object and finds no
// row of tenant_keys or log_day_keys, and no wrapped keyset of any tenant.
func TestContractMainBackupHoldsNoKeys(t *testing.T) {
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		f := newFixture(t, db)
		f.populate(t, newRand(t))
		m, err := f.svc.Backup(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, kt := range KeyTables {
			name := kt
			if db.Dialect == store.Postgres {
				name = "public." + kt
			}
			if n, ok := m.Tables[name]; !ok || n != 0 {
				t.Errorf("main manifest: %s has %d rows (present %v), want 0", name, n, ok)
			}
			if m.KeyTables[name] == 0 {
				t.Errorf("key manifest: %s has no rows; populate made some", name)
			}
		}
		k, err := f.svc.backupKey(ctx, m.KeyID)
		if err != nil {
			t.Fatal(err)
		}
		r, err := age.Decrypt(bytes.NewReader(readObject(t, f.target, m.Data.Name)), k.Identity)
		if err != nil {
			t.Fatal(err)
		}
		plain, _ := io.ReadAll(r)
		if db.Dialect == store.Postgres {
			// pg_dump's table of contents: data entries for every table
			// but the key tables.
			var toc bytes.Buffer
			if err := pgTool(ctx, "pg_restore", f.url, bytes.NewReader(plain), &toc, "--list"); err != nil {
				// --list ignores --dbname but pgTool always passes one.
				t.Fatal(err)
			}
			if !strings.Contains(toc.String(), "TABLE DATA public installations") {
				t.Fatalf("pg_restore --list shows no installations data:\n%s", toc.String())
			}
			for _, kt := range KeyTables {
				if strings.Contains(toc.String(), "TABLE DATA public "+kt) {
					t.Errorf("main backup holds the data of %s", kt)
				}
			}
			return
		}
		rec := &countingSink{}
		counts, err := readDump(bytes.NewReader(plain), rec)
		if err != nil {
			t.Fatal(err)
		}
		if counts["installations"] == 0 {
			t.Fatal("main dump has no installations: the checks below prove nothing")
		}
		for _, kt := range KeyTables {
			if counts[kt] != 0 {
				t.Errorf("main dump holds %d rows of %s", counts[kt], kt)
			}
		}
		rows, err := db.SQL.QueryContext(ctx, `SELECT aead_keyset FROM tenant_keys UNION ALL SELECT keyset FROM log_day_keys`)
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for rows.Next() {
			var w []byte
			rows.Scan(&w)
			if bytes.Contains(plain, w[len(w)-32:]) {
				t.Errorf("a wrapped key is in the main backup")
			}
			n++
		}
		rows.Close()
		if n == 0 {
			t.Fatal("no keys to look for")
		}
	})
}

// countingSink reads a dump and keeps nothing.
type countingSink struct{}

func (countingSink) header(dumpHeader) error { return nil }
func (countingSink) table(dumpTable) error   { return nil }
func (countingSink) row([]any) error         { return nil }
func (countingSink) endTable(int64) error    { return nil }
func (countingSink) post([]string) error     { return nil }
