package keys_test

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
	"ferry/internal/store"
	"ferry/internal/store/storetest"
)

func newRing(t *testing.T, db *store.DB) (*keys.Ring, *keys.LocalKEK) {
	t.Helper()
	kek, err := keys.OpenLocalKEK(filepath.Join(t.TempDir(), "kek.json"))
	if err != nil {
		t.Fatal(err)
	}
	return keys.NewRing(db, kek), kek
}

// Boundary sizes around AES block and GCM tag sizes, and a large value.
var sizes = []int{0, 1, 15, 16, 17, 31, 32, 33, 255, 256, 4096, 65536, 1 << 20}

func TestContractEncryptRoundTripsOverBoundarySizes(t *testing.T) {
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		r, _ := newRing(t, db)
		if err := r.EnsureTenant(ctx, "t1"); err != nil {
			t.Fatal(err)
		}
		for _, n := range sizes {
			pt := bytes.Repeat([]byte{byte(n)}, n)
			ct, err := r.Encrypt(ctx, "t1", []byte("installations/shared_secret/1"), pt)
			if err != nil {
				t.Fatalf("size %d: %v", n, err)
			}
			if n >= 16 && bytes.Contains(ct, pt) {
				t.Fatalf("size %d: plaintext visible in ciphertext", n)
			}
			got, err := r.Decrypt(ctx, "t1", []byte("installations/shared_secret/1"), ct)
			if err != nil || !bytes.Equal(got, pt) {
				t.Fatalf("size %d: round trip failed: %v", n, err)
			}
		}
	})
}

func TestContractWrongTenantOrAssociatedDataFails(t *testing.T) {
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		r, _ := newRing(t, db)
		for _, tn := range []string{"t1", "t2", "t"} {
			if err := r.EnsureTenant(ctx, tn); err != nil {
				t.Fatal(err)
			}
		}
		ct, err := r.Encrypt(ctx, "t1", []byte("col/1"), []byte("secret"))
		if err != nil {
			t.Fatal(err)
		}
		cases := []struct {
			name, tenant, ad string
			want             error
		}{
			{"other tenant", "t2", "col/1", keys.ErrDecrypt},
			{"other row", "t1", "col/2", keys.ErrDecrypt},
			{"tenant/ad boundary shifted", "t", "1col/1", keys.ErrDecrypt},
			{"unknown tenant", "nobody", "col/1", keys.ErrNoTenantKey},
		}
		for _, c := range cases {
			if _, err := r.Decrypt(ctx, c.tenant, []byte(c.ad), ct); !errors.Is(err, c.want) {
				t.Errorf("%s: err = %v, want %v", c.name, err, c.want)
			}
		}
	})
}

func TestContractPseudonymsAreFixedLengthAndPerTenant(t *testing.T) {
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		r, _ := newRing(t, db)
		r.EnsureTenant(ctx, "t1")
		r.EnsureTenant(ctx, "t2")
		a1, _ := r.Pseudonym(ctx, "t1", "5b10a2844c20165700ede21g")
		a2, _ := r.Pseudonym(ctx, "t1", "5b10a2844c20165700ede21g")
		b1, _ := r.Pseudonym(ctx, "t2", "5b10a2844c20165700ede21g")
		c1, _ := r.Pseudonym(ctx, "t1", "")
		if a1 != a2 {
			t.Fatal("pseudonym not stable within a tenant")
		}
		if a1 == b1 {
			t.Fatal("pseudonym links users across tenants")
		}
		for _, p := range []string{a1, b1, c1} {
			if len(p) != keys.PseudonymLen || strings.Trim(p, "0123456789abcdef") != "" {
				t.Fatalf("pseudonym %q is not %d hex characters", p, keys.PseudonymLen)
			}
		}
	})
}

func TestContractShredLeavesCiphertextUnreadable(t *testing.T) {
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		r, kek := newRing(t, db)
		r.EnsureTenant(ctx, "t1")
		r.EnsureTenant(ctx, "t2")
		ct, _ := r.Encrypt(ctx, "t1", []byte("ad"), []byte("api token"))
		ct2, _ := r.Encrypt(ctx, "t2", []byte("ad"), []byte("other tenant"))
		if err := r.Shred(ctx, "t1"); err != nil {
			t.Fatal(err)
		}
		// The ciphertext still exists (it may sit in a table or a backup) ...
		if len(ct) == 0 {
			t.Fatal("no ciphertext")
		}
		// ... but neither this ring nor a fresh one (a restarted process or a
		// restored backup with the same KEK) can open it.
		for name, ring := range map[string]*keys.Ring{"same": r, "fresh": keys.NewRing(db, kek)} {
			if _, err := ring.Decrypt(ctx, "t1", []byte("ad"), ct); !errors.Is(err, keys.ErrShredded) {
				t.Errorf("%s ring: Decrypt err = %v, want ErrShredded", name, err)
			}
			if _, err := ring.Pseudonym(ctx, "t1", "x"); !errors.Is(err, keys.ErrShredded) {
				t.Errorf("%s ring: Pseudonym err = %v, want ErrShredded", name, err)
			}
			if got, err := ring.Decrypt(ctx, "t2", []byte("ad"), ct2); err != nil || string(got) != "other tenant" {
				t.Errorf("%s ring: other tenant affected: %v", name, err)
			}
		}
		// A shredded tenant is not revived by EnsureTenant.
		r.EnsureTenant(ctx, "t1")
		if _, err := r.Encrypt(ctx, "t1", nil, []byte("x")); !errors.Is(err, keys.ErrShredded) {
			t.Fatalf("after EnsureTenant on shredded tenant: %v", err)
		}
		var n int
		db.SQL.QueryRow(`SELECT count(*) FROM tenant_keys WHERE tenant_id = 't1' AND aead_keyset IS NULL AND prf_keyset IS NULL`).Scan(&n)
		if n != 1 {
			t.Fatalf("tombstone rows = %d, want 1", n)
		}
	})
}

func TestContractDayKeysAreDestroyed(t *testing.T) {
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		r, kek := newRing(t, db)
		d0 := time.Date(2026, 1, 1, 23, 59, 0, 0, time.UTC)
		k0, err := r.DayKey(ctx, d0)
		if err != nil {
			t.Fatal(err)
		}
		ct, _ := k0.Encrypt([]byte("GET /odata/x"), []byte("entry-1"))
		again, _ := r.DayKey(ctx, d0.Add(-time.Hour)) // same UTC day, same key
		if _, err := again.Decrypt(ct, []byte("entry-1")); err != nil {
			t.Fatalf("same day, different key: %v", err)
		}
		before, _ := r.DayKeysBefore(ctx, d0.AddDate(0, 0, 1))
		if len(before) != 1 {
			t.Fatalf("DayKeysBefore = %v", before)
		}
		if err := r.DestroyDayKey(ctx, d0); err != nil {
			t.Fatal(err)
		}
		for name, ring := range map[string]*keys.Ring{"same": r, "fresh": keys.NewRing(db, kek)} {
			if _, err := ring.DayKey(ctx, d0); !errors.Is(err, keys.ErrDayKeyDestroyed) {
				t.Errorf("%s ring: DayKey after destroy: %v", name, err)
			}
		}
		before, _ = r.DayKeysBefore(ctx, d0.AddDate(0, 0, 1))
		if len(before) != 0 {
			t.Fatalf("destroyed key still listed: %v", before)
		}
	})
}

func TestContractRotateKEKKeepsDataReadable(t *testing.T) {
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		path := filepath.Join(t.TempDir(), "kek.json")
		kek, err := keys.OpenLocalKEK(path)
		if err != nil {
			t.Fatal(err)
		}
		r := keys.NewRing(db, kek)
		r.EnsureTenant(ctx, "t1")
		r.EnsureTenant(ctx, "gone")
		r.Shred(ctx, "gone")
		ct, _ := r.Encrypt(ctx, "t1", []byte("ad"), []byte("keep me"))
		p1, _ := r.Pseudonym(ctx, "t1", "acct")
		day := time.Date(2026, 3, 3, 0, 0, 0, 0, time.UTC)
		dk, _ := r.DayKey(ctx, day)
		dct, _ := dk.Encrypt([]byte("req"), nil)
		oldFile, _ := os.ReadFile(path)

		next, res, err := keys.RotateLocalKEK(ctx, db, kek)
		if err != nil {
			t.Fatal(err)
		}
		if res.TenantKeysets != 1 || res.DayKeysets != 1 {
			t.Fatalf("rotation result %+v", res)
		}
		newFile, _ := os.ReadFile(path)
		if bytes.Equal(oldFile, newFile) {
			t.Fatal("key file unchanged by rotation")
		}
		// A process started after rotation reads the new file and everything.
		reopened, err := keys.OpenLocalKEK(path)
		if err != nil {
			t.Fatal(err)
		}
		for name, k := range map[string]keys.KEK{"returned": next, "reopened": reopened} {
			r2 := keys.NewRing(db, k)
			got, err := r2.Decrypt(ctx, "t1", []byte("ad"), ct)
			if err != nil || string(got) != "keep me" {
				t.Fatalf("%s: decrypt after rotation: %v", name, err)
			}
			if p2, _ := r2.Pseudonym(ctx, "t1", "acct"); p2 != p1 {
				t.Fatalf("%s: pseudonym changed by rotation", name)
			}
			dk2, err := r2.DayKey(ctx, day)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := dk2.Decrypt(dct, nil); err != nil {
				t.Fatalf("%s: day key after rotation: %v", name, err)
			}
		}
		// The old KEK no longer opens the re-wrapped keysets.
		if _, err := keys.NewRing(db, kek).Decrypt(ctx, "t1", []byte("ad"), ct); err == nil {
			t.Fatal("old KEK still unwraps tenant keys after rotation")
		}
	})
}

func TestLocalKEKFileIsPrivate(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	path := filepath.Join(dir, "kek.json")
	if _, err := keys.OpenLocalKEK(path); err != nil {
		t.Fatal(err)
	}
	st, _ := os.Stat(path)
	if st.Mode().Perm() != 0o600 {
		t.Fatalf("key file mode %04o, want 0600", st.Mode().Perm())
	}
	if _, err := keys.OpenLocalKEK(path); err != nil {
		t.Fatalf("reopen: %v", err)
	}
	for _, mode := range []os.FileMode{0o640, 0o604, 0o644} {
		os.Chmod(path, mode)
		if _, err := keys.OpenLocalKEK(path); !errors.Is(err, keys.ErrKeyFileExposed) {
			t.Errorf("mode %04o: err = %v, want ErrKeyFileExposed", mode, err)
		}
	}
	os.Chmod(path, 0o600)
	os.WriteFile(path, []byte("not a keyset"), 0o600)
	if _, err := keys.OpenLocalKEK(path); err == nil || !strings.Contains(err.Error(), "not a valid keyset") {
		t.Fatalf("corrupt file: %v", err)
	}
}

func TestKMSURIValidation(t *testing.T) {
	good := "aws-kms://arn:aws:kms:us-west-2:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"
	if r, err := keys.KMSRegion(good); err != nil || r != "us-west-2" {
		t.Fatalf("KMSRegion(good) = %q, %v", r, err)
	}
	for _, bad := range []string{
		"aws-kms://arn:aws:kms:us-west-2:1111:key/x",      // short account
		"gcp-kms://projects/p/locations/l/keyRings/r",     // other provider
		"aws-kms://arn:aws:s3:us-west-2:111122223333:b/x", // not KMS
		"aws-kms://arn:aws:kms:uswest2:111122223333:key/x",
		"",
	} {
		if _, err := keys.KMSRegion(bad); err == nil {
			t.Errorf("KMSRegion(%q) accepted", bad)
		}
	}
}

// A scan of the keysets to re-wrap that ends early (rows.Next false, the
// reason only in rows.Err) must fail the rotation: otherwise the keysets it
// never saw stay under the old key, which rotation then deletes.
func TestRotateKEKFailsWhenTheScanIsCutShort(t *testing.T) {
	ctx := context.Background()
	db := storetest.SQLite(t)
	path := filepath.Join(t.TempDir(), "kek.json")
	kek, err := keys.OpenLocalKEK(path)
	if err != nil {
		t.Fatal(err)
	}
	r := keys.NewRing(db, kek)
	secrets := map[string][]byte{}
	for _, tn := range []string{"t1", "t2", "t3"} {
		if err := r.EnsureTenant(ctx, tn); err != nil {
			t.Fatal(err)
		}
		ct, err := r.Encrypt(ctx, tn, []byte("ad"), []byte("secret of "+tn))
		if err != nil {
			t.Fatal(err)
		}
		secrets[tn] = ct
	}
	faulty, cut := cutShortDB(t, db, "FROM tenant_keys", 1)
	defer func() {
		if cut.cutCount() == 0 {
			t.Error("the scan was never cut short: the test tested nothing")
		}
	}()
	if _, _, err := keys.RotateLocalKEK(ctx, faulty, kek); !errors.Is(err, errCutShort) {
		t.Errorf("rotation over a cut-short scan: err = %v, want %v", err, errCutShort)
	}
	// Whatever happened, the key file on disk still opens every tenant.
	reopened, err := keys.OpenLocalKEK(path)
	if err != nil {
		t.Fatal(err)
	}
	fresh := keys.NewRing(db, reopened)
	for tn, ct := range secrets {
		if got, err := fresh.Decrypt(ctx, tn, []byte("ad"), ct); err != nil || string(got) != "secret of "+tn {
			t.Errorf("tenant %s unreadable after the failed rotation: %v", tn, err)
		}
	}
}
