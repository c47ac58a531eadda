package keys_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"ferry/internal/keys"
	"ferry/internal/store"
	"ferry/internal/store/storetest"
)

// sealed is one ciphertext a test must still be able to open at the end.
type sealed struct {
	tenant string
	ct     []byte
	pt     string
}

// seal makes a tenant (if need be) and encrypts a value for it with r.
func seal(t *testing.T, r *keys.Ring, tenant, value string) sealed {
	t.Helper()
	ctx := context.Background()
	must(t, r.EnsureTenant(ctx, tenant))
	ct, err := r.Encrypt(ctx, tenant, []byte("ad/"+tenant), []byte(value))
	must(t, err)
	return sealed{tenant, ct, value}
}

// opens checks that r, unwrapping afresh, opens every sealed value.
func opens(t *testing.T, who string, r *keys.Ring, all []sealed) {
	t.Helper()
	r.ForgetUnwrapped()
	for _, s := range all {
		got, err := r.Decrypt(context.Background(), s.tenant, []byte("ad/"+s.tenant), s.ct)
		if err != nil || string(got) != s.pt {
			t.Errorf("%s cannot open %s's value: %v", who, s.tenant, err)
		}
	}
}

func versionsOf(t *testing.T, r *keys.Ring) map[int64]keys.Version {
	t.Helper()
	vs, err := r.Versions(context.Background())
	must(t, err)
	out := map[int64]keys.Version{}
	for _, v := range vs {
		out[v.Version] = v
	}
	return out
}

// A server that started before a rotation (holding only the old version in
// memory) keeps reading everything, wraps new tenants and days under the new
// primary, and stays ready; after the old version is retired it still works,
// and so does a process started afresh from the key file.
func TestContractRotationKeepsRunningServersWorking(t *testing.T) {
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		server, path := newRing(t, db)
		all := []sealed{seal(t, server, "t1", "keep me"), seal(t, server, "gone", "shred me")}
		must(t, server.Shred(ctx, "gone"))
		all = all[:1]
		p1, err := server.Pseudonym(ctx, "t1", "acct")
		must(t, err)
		day := time.Date(2026, 3, 3, 0, 0, 0, 0, time.UTC)
		dk, err := server.DayKey(ctx, day)
		must(t, err)
		dct, err := dk.Encrypt([]byte("req"), nil)
		must(t, err)
		oldFile, err := os.ReadFile(path)
		must(t, err)

		admin := reopen(t, db, path) // `ferry keys rotate-kek`, another process
		res, err := admin.Rotate(ctx, "")
		must(t, err)
		if res.Version != 2 || res.TenantKeysets != 1 || res.DayKeysets != 1 {
			t.Fatalf("rotation result %+v, want version 2 with 1 tenant keyset and 1 day key", res)
		}
		if newFile, err := os.ReadFile(path); err != nil || bytes.Equal(oldFile, newFile) {
			t.Fatal("key file unchanged by rotation")
		}
		vs := versionsOf(t, admin)
		if !vs[2].Primary || vs[1].Primary || vs[1].Tenant+vs[1].Day != 0 || vs[2].Tenant != 1 || vs[2].Day != 1 {
			t.Fatalf("versions after rotation: %+v", vs)
		}

		// The pre-rotation server: reads re-wrapped keys (version 2, which it
		// has never seen), and new keys it makes are under version 2.
		must(t, server.Ready(ctx))
		opens(t, "the pre-rotation server", server, all)
		if p, err := server.Pseudonym(ctx, "t1", "acct"); err != nil || p != p1 {
			t.Fatalf("pseudonym after rotation: %q, %v (want %q)", p, err, p1)
		}
		all = append(all, seal(t, server, "t-new", "made after rotation"))
		nextDay, err := server.DayKey(ctx, day.AddDate(0, 0, 1))
		must(t, err)
		nct, err := nextDay.Encrypt([]byte("req2"), nil)
		must(t, err)
		vs = versionsOf(t, admin)
		if vs[1].Tenant+vs[1].Day != 0 || vs[2].Tenant != 2 || vs[2].Day != 2 {
			t.Fatalf("the pre-rotation server wrapped under the old version: %+v", vs)
		}

		// Retire version 1: the key leaves the file; everyone keeps working.
		if _, err := admin.Retire(ctx, 1); err != nil {
			t.Fatal(err)
		}
		if _, ok := versionsOf(t, admin)[1]; ok {
			t.Fatal("version 1 still recorded after retirement")
		}
		f, err := keys.LoadKeyFile(path)
		must(t, err)
		if ids := f.IDs(); len(ids) != 1 {
			t.Fatalf("key file holds %d keys after retirement, want 1", len(ids))
		}
		fresh := reopen(t, db, path)
		for name, r := range map[string]*keys.Ring{"pre-rotation server": server, "fresh process": fresh} {
			must(t, r.Ready(ctx))
			opens(t, name, r, all)
			for d, ct := range map[time.Time][]byte{day: dct, day.AddDate(0, 0, 1): nct} {
				k, err := r.DayKey(ctx, d)
				must(t, err)
				if _, err := k.Decrypt(ct, nil); err != nil {
					t.Errorf("%s: day key of %s after retirement: %v", name, keys.Day(d), err)
				}
			}
		}
		// The old key file (a stale copy) no longer opens this database.
		stale := filepath.Join(t.TempDir(), "kek.json")
		must(t, os.WriteFile(stale, oldFile, 0o600))
		if _, err := keys.Open(ctx, db, keys.Options{KeyFile: stale}); err == nil {
			t.Fatal("the pre-rotation key file still opens the database after retirement")
		}
	})
}

// Servers keep sealing, reading and creating tenants and day keys while
// rotations run one after another in another process; afterwards every
// value ever sealed opens, in every process, and every old version retires.
func TestContractRotationWhileServersWrite(t *testing.T) {
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		first, path := newRing(t, db)
		servers := []*keys.Ring{first, reopen(t, db, path), reopen(t, db, path)}
		var mu sync.Mutex
		var all []sealed
		var failures []string
		var wg sync.WaitGroup
		// fail records a failed operation; those ended by the test stopping
		// the servers are not failures.
		fail := func(what string, err error) {
			if errors.Is(err, context.Canceled) {
				return
			}
			mu.Lock()
			failures = append(failures, what+": "+err.Error())
			mu.Unlock()
		}
		for i, srv := range servers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for n := 0; ctx.Err() == nil; n++ {
					tenant := fmt.Sprintf("s%d-t%d", i, n)
					if err := srv.EnsureTenant(ctx, tenant); err != nil {
						fail("EnsureTenant", err)
						continue
					}
					ct, err := srv.Encrypt(ctx, tenant, []byte("ad/"+tenant), []byte("v"+tenant))
					if err == nil {
						_, err = srv.DayKey(ctx, time.Date(2026, 1, 1+n%28, 0, 0, 0, 0, time.UTC))
					}
					if err != nil {
						fail("seal", err)
						continue
					}
					mu.Lock()
					{
						all = append(all, sealed{tenant, ct, "v" + tenant})
						// Re-read an earlier value, unwrapping afresh.
						old := all[len(all)/2]
						mu.Unlock()
						srv.ForgetUnwrapped()
						if got, err := srv.Decrypt(ctx, old.tenant, []byte("ad/"+old.tenant), old.ct); err != nil {
							fail("read "+old.tenant, err)
						} else if string(got) != old.pt {
							fail("read "+old.tenant, errors.New("wrong plaintext"))
						}
						mu.Lock()
					}
					mu.Unlock()
				}
			}()
		}
		// progress waits until the servers have sealed n more values: each
		// rotation then starts with servers demonstrably at work, and the
		// last one is followed by work under the newest version.
		progress := func(n int) {
			t.Helper()
			mu.Lock()
			goal := len(all) + n
			mu.Unlock()
			for deadline := time.Now().Add(60 * time.Second); ; {
				mu.Lock()
				got, failed := len(all), len(failures)
				mu.Unlock()
				if got >= goal || failed > 0 {
					return
				}
				if time.Now().After(deadline) {
					t.Fatalf("servers sealed %d of %d values", got, goal)
				}
				time.Sleep(5 * time.Millisecond)
			}
		}
		admin := reopen(t, db, path)
		for range 3 {
			progress(5)
			if _, err := admin.Rotate(context.Background(), ""); err != nil {
				t.Errorf("rotate: %v", err)
			}
		}
		progress(5)
		cancel()
		wg.Wait()
		if len(failures) > 0 {
			t.Fatalf("%d server operations failed during rotation, first: %s", len(failures), failures[0])
		}
		for _, v := range []int64{1, 2, 3} {
			if _, err := admin.Retire(context.Background(), v); err != nil {
				t.Fatalf("retire %d: %v", v, err)
			}
		}
		vs := versionsOf(t, admin)
		if len(vs) != 1 || !vs[4].Primary {
			t.Fatalf("after retiring 1–3: %+v", vs)
		}
		for i, srv := range append(servers, reopen(t, db, path)) {
			must(t, srv.Ready(context.Background()))
			opens(t, fmt.Sprintf("process %d", i), srv, all)
		}
	})
}

// Retirement proves nothing is wrapped under the version: the primary cannot
// be retired, an unknown version is named as such, a keyset wrapped under
// the old version after the rotation is moved first, and the database itself
// refuses a key under a retired version.
func TestContractRetireProvesNothingIsWrappedUnderTheVersion(t *testing.T) {
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		r, path := newRing(t, db)
		all := []sealed{seal(t, r, "t1", "one")}
		if _, err := r.Retire(ctx, 1); err == nil || !strings.Contains(err.Error(), "primary") {
			t.Fatalf("retiring the primary: %v", err)
		}
		if _, err := r.Retire(ctx, 9); err == nil || !strings.Contains(err.Error(), "not a version") {
			t.Fatalf("retiring an unknown version: %v", err)
		}
		// A keyset wrapped under version 1 after the rotation, as a server
		// that read the primary just before it changed would leave it.
		straggler := seal(t, r, "late", "wrapped under the old version")
		admin := reopen(t, db, path)
		if _, err := admin.Rotate(ctx, ""); err != nil {
			t.Fatal(err)
		}
		must(t, moveBack(ctx, db, path, "late"))
		if vs := versionsOf(t, admin); vs[1].Tenant != 1 {
			t.Fatalf("set-up: %+v, want one keyset under version 1", vs)
		}
		res, err := admin.Retire(ctx, 1)
		must(t, err)
		if res.TenantKeysets != 1 {
			t.Fatalf("retire re-wrapped %d tenant keysets first, want the 1 straggler", res.TenantKeysets)
		}
		opens(t, "after retirement", reopen(t, db, path), append(all, straggler))
		// The foreign key: no row may name a retired version.
		_, err = db.SQL.ExecContext(ctx, `INSERT INTO tenant_keys (tenant_id, aead_keyset, prf_keyset, kek_version, created_at) VALUES ('x', $1, $1, 1, $2)`, []byte{1}, time.Now())
		if err == nil {
			t.Fatal("the database accepted a keyset under a retired version")
		}
	})
}

// moveBack re-wraps one tenant's keyset from the primary to version 1, the
// way a server that wrapped it under the old primary would have left it.
func moveBack(ctx context.Context, db *store.DB, path, tenant string) error {
	return keys.WrapUnder(ctx, db, keys.Options{KeyFile: path}, tenant, 1)
}

// Start-up refuses a missing or foreign key file next to a database that
// holds wrapped keys, naming FERRY_DATA_DIR, and never creates a key file
// then; a database with no keys gets a new one.
func TestContractStartRefusesAMissingOrForeignKeyFile(t *testing.T) {
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		dir := t.TempDir()
		path := filepath.Join(dir, "kek.json")
		r, err := keys.Open(ctx, db, keys.Options{KeyFile: path}) // empty database: new key file
		must(t, err)
		if _, err := os.Stat(path); err != nil {
			t.Fatalf("no key file created for an empty database: %v", err)
		}
		all := []sealed{seal(t, r, "t1", "one")}

		missing := filepath.Join(t.TempDir(), "kek.json")
		_, err = keys.Open(ctx, db, keys.Options{KeyFile: missing})
		var wrong *keys.WrongKEKError
		if !errors.As(err, &wrong) || wrong.Setting != "FERRY_DATA_DIR" || !strings.Contains(wrong.Reason, "missing") {
			t.Fatalf("missing key file: %v", err)
		}
		if _, err := os.Stat(missing); err == nil {
			t.Fatal("a new key file was created next to a database with keys")
		}

		foreign := filepath.Join(t.TempDir(), "kek.json")
		if _, err := keys.CreateKeyFile(foreign); err != nil {
			t.Fatal(err)
		}
		_, err = keys.Open(ctx, db, keys.Options{KeyFile: foreign})
		if !errors.As(err, &wrong) || wrong.Setting != "FERRY_DATA_DIR" || !strings.Contains(wrong.Reason, "another installation") {
			t.Fatalf("foreign key file: %v", err)
		}
		if strings.Contains(err.Error(), "\n") {
			t.Fatalf("error is more than one line: %q", err)
		}
		opens(t, "the right key file", reopen(t, db, path), all)
	})
}

// A database from before KEK versions (wrapped keys, no versions) is
// adopted with the key file that opens it, and refused with any other.
func TestContractDatabaseFromBeforeKEKVersionsIsAdopted(t *testing.T) {
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		r, path := newRing(t, db)
		all := []sealed{seal(t, r, "t1", "one"), seal(t, r, "t2", "two")}
		_, err := r.DayKey(ctx, time.Date(2026, 5, 5, 0, 0, 0, 0, time.UTC))
		must(t, err)
		// What the database looked like before migration 00015 filled it in.
		for _, q := range []string{`UPDATE tenant_keys SET kek_version = NULL`, `UPDATE log_day_keys SET kek_version = NULL`, `DELETE FROM kek_versions`} {
			if _, err := db.SQL.ExecContext(ctx, q); err != nil {
				t.Fatal(err)
			}
		}
		foreign := filepath.Join(t.TempDir(), "kek.json")
		if _, err := keys.CreateKeyFile(foreign); err != nil {
			t.Fatal(err)
		}
		var wrong *keys.WrongKEKError
		if _, err := keys.Open(ctx, db, keys.Options{KeyFile: foreign}); !errors.As(err, &wrong) || wrong.Setting != "FERRY_DATA_DIR" {
			t.Fatalf("foreign key file on a pre-version database: %v", err)
		}
		if _, err := keys.Open(ctx, db, keys.Options{KeyFile: filepath.Join(t.TempDir(), "none.json")}); !errors.As(err, &wrong) || !strings.Contains(wrong.Reason, "missing") {
			t.Fatalf("missing key file on a pre-version database: %v", err)
		}
		adopted := reopen(t, db, path)
		must(t, adopted.Ready(ctx))
		opens(t, "adopted", adopted, all)
		vs := versionsOf(t, adopted)
		if len(vs) != 1 || !vs[1].Primary || vs[1].Tenant != 2 || vs[1].Day != 1 {
			t.Fatalf("versions after adoption: %+v", vs)
		}
	})
}

// /readyz's check: a process that cannot open a version recorded in the
// database (rotation ran with another copy of the key file) is not ready,
// and becomes ready once its key file has the version.
func TestContractReadyReflectsWhatCanBeUnwrapped(t *testing.T) {
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		server, path := newRing(t, db)
		all := []sealed{seal(t, server, "t1", "one")}
		must(t, server.Ready(ctx))
		copyPath := filepath.Join(t.TempDir(), "kek.json")
		b, err := os.ReadFile(path)
		must(t, err)
		must(t, os.WriteFile(copyPath, b, 0o600))
		elsewhere := reopen(t, db, copyPath)
		if _, err := elsewhere.Rotate(ctx, ""); err != nil {
			t.Fatal(err)
		}
		err = server.Ready(ctx)
		if !errors.Is(err, keys.ErrKEKUnavailable) || !strings.Contains(err.Error(), "version 2") {
			t.Fatalf("Ready with version 2 missing from the key file: %v", err)
		}
		server.ForgetUnwrapped()
		if _, err := server.Decrypt(ctx, "t1", []byte("ad/t1"), all[0].ct); !errors.Is(err, keys.ErrKEKUnavailable) {
			t.Fatalf("Decrypt with version 2 missing: %v", err)
		}
		// The operator copies the rotated key file to this server.
		b, err = os.ReadFile(copyPath)
		must(t, err)
		must(t, os.WriteFile(path, b, 0o600))
		must(t, server.Ready(ctx))
		opens(t, "the server with the new key file", server, all)
	})
}

// A scan of the keysets to re-wrap that ends early (rows.Next false, the
// reason only in rows.Err) must fail the rotation, and the keysets it never
// saw must stay readable: retirement later moves them.
func TestRotateKEKFailsWhenTheScanIsCutShort(t *testing.T) {
	ctx := context.Background()
	db := storetest.SQLite(t)
	r, path := newRing(t, db)
	var all []sealed
	for _, tn := range []string{"t1", "t2", "t3"} {
		all = append(all, seal(t, r, tn, "secret of "+tn))
	}
	faulty, cut := cutShortDB(t, db, "FROM tenant_keys", 1)
	admin, err := keys.Open(ctx, faulty, keys.Options{KeyFile: path})
	must(t, err)
	if _, err := admin.Rotate(ctx, ""); !errors.Is(err, errCutShort) {
		t.Errorf("rotation over a cut-short scan: err = %v, want %v", err, errCutShort)
	}
	if cut.cutCount() == 0 {
		t.Fatal("the scan was never cut short: the test tested nothing")
	}
	fresh := reopen(t, db, path)
	must(t, fresh.Ready(ctx))
	opens(t, "after the failed rotation", fresh, all)
	if _, err := fresh.Retire(ctx, 1); err != nil {
		t.Fatalf("retire after the failed rotation: %v", err)
	}
	opens(t, "after retirement", reopen(t, db, path), all)
}

// areaSecrets is another area's table of secrets sealed with Ring.KEK (a
// backup key, say), registered so that rotation and retirement include it.
type areaSecrets struct {
	mu   sync.Mutex
	rows map[string][]byte // name → sealed secret
}

func (a *areaSecrets) RewrapKEK(ctx context.Context, kek keys.KEK) (int, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	n := 0
	for name, ct := range a.rows {
		pt, err := kek.Decrypt(ct, []byte(name))
		if err != nil {
			return n, err
		}
		if a.rows[name], err = kek.Encrypt(pt, []byte(name)); err != nil {
			return n, err
		}
		n++
	}
	return n, nil
}

func (a *areaSecrets) Put(name string, ct []byte) {
	a.mu.Lock()
	a.rows[name] = ct
	a.mu.Unlock()
}

func (a *areaSecrets) UnderKEKVersion(ctx context.Context, v int64) (int, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	n := 0
	for _, ct := range a.rows {
		if got, ok := keys.KEKVersionOf(ct); (ok && got == v) || (!ok && v == 0) {
			n++
		}
	}
	return n, nil
}

// Secrets other areas seal with Ring.KEK name their version, open after
// rotation in any process, move to the new primary with the rotation, and
// hold off retirement while one is still under the old version.
func TestContractSecretsSealedWithTheKEKFollowRotation(t *testing.T) {
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		server, path := newRing(t, db)
		area := &areaSecrets{rows: map[string][]byte{}}
		for _, name := range []string{"backup-key", "audit-key"} {
			ct, err := server.KEK().Encrypt([]byte("secret "+name), []byte(name))
			must(t, err)
			if v, ok := keys.KEKVersionOf(ct); !ok || v != 1 {
				t.Fatalf("sealed under version %d (%v), want 1", v, ok)
			}
			area.rows[name] = ct
		}
		if _, err := server.KEK().Decrypt(area.rows["backup-key"], []byte("audit-key")); err == nil {
			t.Fatal("a secret opened under another associated data")
		}
		admin := reopen(t, db, path)
		admin.RegisterWrapped("area", area)
		res, err := admin.Rotate(ctx, "")
		must(t, err)
		if res.Other != 2 {
			t.Fatalf("rotation re-wrapped %d of the area's secrets, want 2", res.Other)
		}
		if n, _ := area.UnderKEKVersion(ctx, 2); n != 2 {
			t.Fatalf("%d secrets under version 2 after rotation, want 2", n)
		}
		// One secret sealed by a server that still read version 1 as primary.
		old, err := keys.Open(ctx, db, keys.Options{KeyFile: path})
		must(t, err)
		must(t, keys.SealUnder(old, 1, "late", area))
		if _, err := admin.Retire(ctx, 1); err != nil {
			t.Fatalf("retire re-wraps the straggler first, then retires: %v", err)
		}
		for name, ct := range area.rows {
			for who, r := range map[string]*keys.Ring{"pre-rotation server": server, "fresh": reopen(t, db, path)} {
				pt, err := r.KEK().Decrypt(ct, []byte(name))
				if err != nil || !strings.HasSuffix(string(pt), name) {
					t.Errorf("%s: %s after retirement: %q %v", who, name, pt, err)
				}
			}
		}
		// An area that cannot re-wrap holds retirement off.
		stuck := &stuckArea{}
		admin.RegisterWrapped("stuck", stuck)
		if _, err := admin.Rotate(ctx, ""); err != nil {
			t.Fatal(err)
		}
		if _, err := admin.Retire(ctx, 2); !errors.Is(err, keys.ErrStillWrapped) {
			t.Fatalf("retire with secrets still under version 2: %v, want ErrStillWrapped", err)
		}
		if _, ok := versionsOf(t, admin)[2]; !ok {
			t.Fatal("version 2 was retired while secrets were still under it")
		}
	})
}

// stuckArea claims one secret under version 2 that it never moves.
type stuckArea struct{}

func (stuckArea) RewrapKEK(context.Context, keys.KEK) (int, error) { return 0, nil }
func (stuckArea) UnderKEKVersion(_ context.Context, v int64) (int, error) {
	if v == 2 {
		return 1, nil
	}
	return 0, nil
}
