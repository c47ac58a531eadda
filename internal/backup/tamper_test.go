package backup

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"ferry/internal/keys"
	"ferry/internal/store/storetest"
)

// TestTamperedBackupsAreNeverGood changes what an attacker with write access
// to the target (but without the KEK) can change, one thing at a time, and
// checks that the backup stops being good, that a restore refuses it, and
// that the previous good backup stays the newest good one.
func TestTamperedBackupsAreNeverGood(t *testing.T) {
	ctx := context.Background()
	cases := []struct {
		name  string
		do    func(t *testing.T, f *fixture, victim, other Manifest)
		state State
	}{
		{"a byte of the data object flipped", func(t *testing.T, f *fixture, v, _ Manifest) {
			p := filepath.Join(f.target.root, v.Data.Name)
			b, _ := os.ReadFile(p)
			b[len(b)/2] ^= 1
			os.WriteFile(p, b, 0o600)
		}, StateDrillFailed},
		{"data object truncated", func(t *testing.T, f *fixture, v, _ Manifest) {
			os.Truncate(filepath.Join(f.target.root, v.Data.Name), v.Data.Size-1)
		}, StateDamaged},
		{"data object replaced by another backup's", func(t *testing.T, f *fixture, v, o Manifest) {
			b, _ := os.ReadFile(filepath.Join(f.target.root, o.Data.Name))
			os.WriteFile(filepath.Join(f.target.root, v.Data.Name), b, 0o600)
		}, StateDamaged},
		{"manifest payload edited", func(t *testing.T, f *fixture, v, _ Manifest) {
			p := filepath.Join(f.target.root, manifestObject(v.ID))
			b, _ := os.ReadFile(p)
			os.WriteFile(p, bytes.Replace(b, []byte(`"payload": "ey`), []byte(`"payload": "eX`), 1), 0o600)
		}, StateInvalid},
		{"manifest of another backup copied over", func(t *testing.T, f *fixture, v, o Manifest) {
			b, _ := os.ReadFile(filepath.Join(f.target.root, manifestObject(o.ID)))
			os.WriteFile(filepath.Join(f.target.root, manifestObject(v.ID)), b, 0o600)
		}, StateInvalid},
		{"manifest re-signed by a key under another KEK", func(t *testing.T, f *fixture, v, _ Manifest) {
			otherKEK, err := keys.OpenLocalKEK(filepath.Join(t.TempDir(), "kek.json"))
			if err != nil {
				t.Fatal(err)
			}
			k, _ := newBackupKey(time.Now())
			rec, _ := k.wrap(otherKEK)
			kb, _ := marshalKeyRecord(rec)
			f.target.Put(ctx, identityObject(k.ID), bytes.NewReader(kb))
			forged := v
			forged.Tables = map[string]int64{"installations": 1}
			b, _ := seal(k, "manifest", forged)
			f.target.Put(ctx, manifestObject(v.ID), bytes.NewReader(b))
		}, StateInvalid},
		{"identity record replaced by one under another KEK", func(t *testing.T, f *fixture, v, _ Manifest) {
			otherKEK, _ := keys.OpenLocalKEK(filepath.Join(t.TempDir(), "kek.json"))
			k, _ := newBackupKey(time.Now())
			k.ID = v.KeyID
			rec, _ := k.wrap(otherKEK)
			kb, _ := marshalKeyRecord(rec)
			f.target.Put(ctx, identityObject(v.KeyID), bytes.NewReader(kb))
			// and the server lost its database copy, as after a disaster
			f.db.SQL.Exec(`DELETE FROM backup_keys`)
		}, StateInvalid},
		{"drill record of another backup copied over", func(t *testing.T, f *fixture, v, o Manifest) {
			f.svc.o.Target.Delete(ctx, drillObject(v.ID))
			b, _ := os.ReadFile(filepath.Join(f.target.root, drillObject(o.ID)))
			os.WriteFile(filepath.Join(f.target.root, drillObject(v.ID)), b, 0o600)
		}, StateInvalid},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			db := storetest.SQLite(t)
			f := newFixture(t, db)
			f.install(t, 1, "secret")
			now := time.Date(2026, 2, 1, 1, 0, 0, 0, time.UTC)
			db.SetClock(func() time.Time { return now })
			first, err := f.svc.Run(ctx)
			if err != nil {
				t.Fatal(err)
			}
			now = now.Add(24 * time.Hour) // another day: retention keeps both
			victim, err := f.svc.Run(ctx)
			if err != nil {
				t.Fatal(err)
			}
			tc.do(t, f, victim.Manifest, first.Manifest)
			f.svc = f.service(t, f.target, nil) // no cached keys
			list, err := f.svc.List(ctx)
			if err != nil {
				t.Fatal(err)
			}
			var got *Backup
			for i := range list {
				if list[i].ID == victim.Manifest.ID {
					got = &list[i]
				}
			}
			if tc.state == StateDrillFailed {
				// Size and name still match: only the drill, which checks the
				// digest, can tell. Run it as the job would.
				if got == nil || got.State != StateGood {
					t.Fatalf("before the drill: %+v", got)
				}
				d, err := f.svc.Drill(ctx, victim.Manifest.ID)
				if err != nil || d.OK || !strings.Contains(d.Error, "does not match its manifest") {
					t.Fatalf("drill of the tampered backup: %+v, %v", d, err)
				}
				list, _ = f.svc.List(ctx)
				got = &list[0]
			}
			if got == nil || got.State != tc.state {
				t.Fatalf("tampered backup is %+v, want %s", got, tc.state)
			}
			if b, ok := NewestGood(list); ok && b.ID == victim.Manifest.ID {
				t.Fatal("the tampered backup is the newest good one")
			}
			if tc.state != StateInvalid || tc.name != "identity record replaced by one under another KEK" {
				if b, ok := NewestGood(list); !ok || b.ID != first.Manifest.ID {
					t.Errorf("newest good should be the untouched %s, is %+v", first.Manifest.ID, b)
				}
			}
			_, err = f.svc.Restore(ctx, victim.Manifest.ID, RestoreOptions{To: filepath.Join(t.TempDir(), "r.db"), KeysFrom: first.Manifest.ID})
			if strings.HasPrefix(tc.name, "drill record") {
				// The backup itself is intact (signed manifest, matching
				// objects): it restores; only its record of a drill is void.
				if err != nil {
					t.Fatalf("restore of an intact backup with a forged drill record: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatal("restore of the tampered backup succeeded")
			}
			if !errors.Is(err, ErrDigest) && !errors.Is(err, ErrSignature) {
				t.Errorf("restore error %v: want a digest or signature error", err)
			}
		})
	}
}

// TestRestoreRefusesStatementsBeyondCreate feeds the SQLite loader dumps
// that try to reach outside the new database: ATTACH (which creates any
// file), PRAGMA, statements chained after a CREATE. Even though a dump is
// only parsed after its digest matched a signed manifest, the loader itself
// must refuse them.
func TestRestoreRefusesStatementsBeyondCreate(t *testing.T) {
	dir := t.TempDir()
	evil := filepath.Join(dir, "evil.db")
	for _, tc := range []struct {
		name  string
		table string
		post  []string
	}{
		{"attach chained after create table", `CREATE TABLE x (a); ATTACH DATABASE '` + evil + `' AS e; CREATE TABLE e.t (a)`, nil},
		{"pragma chained after create table", `CREATE TABLE x (a); PRAGMA writable_schema = 1`, nil},
		{"table record that is not a create", `ATTACH DATABASE '` + evil + `' AS e`, nil},
		{"post statement that is not a create", `CREATE TABLE x (a)`, []string{`ATTACH DATABASE '` + evil + `' AS e`}},
		{"attach chained after create index", `CREATE TABLE x (a)`, []string{`CREATE INDEX i ON x (a); ATTACH DATABASE '` + evil + `' AS e`}},
		{"temp trigger", `CREATE TABLE x (a)`, []string{`CREATE TEMP TRIGGER tr AFTER INSERT ON x BEGIN SELECT 1; END`}},
		{"virtual table", `CREATE VIRTUAL TABLE x USING fts5(a)`, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var buf bytes.Buffer
			w, _ := newDumpWriter(&buf, dumpHeader{Dialect: "sqlite", Kind: "main"})
			w.beginTable(dumpTable{Name: "x", SQL: tc.table, Columns: []string{"a"}})
			w.row([]any{int64(1)})
			w.endTable()
			w.post(tc.post)
			w.close()
			to := filepath.Join(dir, strings.ReplaceAll(tc.name, " ", "-")+".db")
			r, err := newSQLiteRestore(context.Background(), to)
			if err != nil {
				t.Fatal(err)
			}
			_, err = r.load(context.Background(), "main", &buf)
			if err == nil {
				r.finish(context.Background())
				t.Fatal("loaded")
			}
			r.abort()
			if _, err := os.Stat(evil); err == nil {
				t.Fatal("the dump created a file outside the restore")
			}
			if _, err := os.Stat(to); err == nil {
				t.Fatal("a failed restore left its database behind")
			}
		})
	}
}

// TestANewServerWithTheSameKEKRestoresFromTheTargetAlone: after a disaster
// the database (with its backup key) is gone; a new server with the same KEK
// and the same target reads the key beside the backups, lists them as good
// and restores them. A server with another KEK can do neither.
func TestANewServerWithTheSameKEKRestoresFromTheTargetAlone(t *testing.T) {
	ctx := context.Background()
	old := newFixture(t, storetest.SQLite(t))
	tenantID := old.install(t, 1, "secret-that-must-survive")
	res, err := old.svc.Run(ctx)
	if err != nil {
		t.Fatal(err)
	}

	fresh := storetest.SQLite(t)
	var n int
	fresh.SQL.QueryRowContext(ctx, `SELECT count(*) FROM backup_keys`).Scan(&n)
	if n != 0 {
		t.Fatal("the new database already has a backup key")
	}
	svc, err := New(Options{DB: fresh, KEK: keys.NewRing(fresh, old.kek).KEK(), Keys: keys.Options{KeyFile: filepath.Join(old.dir, "kek.json")},
		Target: old.target, Region: "us-west-2",
		WorkDir: filepath.Join(t.TempDir(), "work"), Every: 24 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	b, ok, err := svc.NewestGood(ctx)
	if err != nil || !ok || b.ID != res.Manifest.ID {
		t.Fatalf("new server's newest good backup: %+v %v %v", b, ok, err)
	}
	to := filepath.Join(t.TempDir(), "recovered.db")
	if _, err := svc.Restore(ctx, b.ID, RestoreOptions{To: to}); err != nil {
		t.Fatal(err)
	}
	rdb := openRestored(t, "sqlite", to)
	if got := restoredSecretIn(t, rdb, old.kek, tenantID); got != "secret-that-must-survive" {
		t.Fatalf("recovered secret %q", got)
	}

	otherPath := filepath.Join(t.TempDir(), "kek.json")
	otherKEK, err := keys.OpenLocalKEK(otherPath)
	if err != nil {
		t.Fatal(err)
	}
	strangerDB := storetest.SQLite(t)
	stranger, err := New(Options{DB: strangerDB, KEK: keys.NewRing(strangerDB, otherKEK).KEK(), Keys: keys.Options{KeyFile: otherPath},
		Target: old.target, Region: "us-west-2",
		WorkDir: filepath.Join(t.TempDir(), "work"), Every: 24 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	list, err := stranger.List(ctx)
	if err != nil || len(list) != 1 || list[0].State != StateInvalid {
		t.Fatalf("a server with another KEK lists %+v (%v), want the backup invalid", list, err)
	}
	if _, err := stranger.Restore(ctx, b.ID, RestoreOptions{To: filepath.Join(t.TempDir(), "no.db"), KeysFrom: b.ID}); !errors.Is(err, ErrSignature) {
		t.Fatalf("restore with another KEK: %v, want a signature error", err)
	}
}
