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

// newRing opens a ring the way start-up does, with a key file of its own.
func newRing(t *testing.T, db *store.DB) (*keys.Ring, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "kek.json")
	r, err := keys.Open(context.Background(), db, keys.Options{KeyFile: path})
	if err != nil {
		t.Fatal(err)
	}
	return r, path
}

// reopen opens another ring on the same database and key file: a second
// server, a restarted process, or an administrator's command.
func reopen(t *testing.T, db *store.DB, path string) *keys.Ring {
	t.Helper()
	r, err := keys.Open(context.Background(), db, keys.Options{KeyFile: path})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
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
		must(t, r.EnsureTenant(ctx, "t1"))
		must(t, r.EnsureTenant(ctx, "t2"))
		pseudonym := func(tenant, v string) string {
			p, err := r.Pseudonym(ctx, tenant, v)
			must(t, err)
			return p
		}
		a1 := pseudonym("t1", "5b10a2844c20165700ede21g")
		a2 := pseudonym("t1", "5b10a2844c20165700ede21g")
		b1 := pseudonym("t2", "5b10a2844c20165700ede21g")
		c1 := pseudonym("t1", "")
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
		r, path := newRing(t, db)
		must(t, r.EnsureTenant(ctx, "t1"))
		must(t, r.EnsureTenant(ctx, "t2"))
		ct, err := r.Encrypt(ctx, "t1", []byte("ad"), []byte("api token"))
		must(t, err)
		ct2, err := r.Encrypt(ctx, "t2", []byte("ad"), []byte("other tenant"))
		must(t, err)
		if err := r.Shred(ctx, "t1"); err != nil {
			t.Fatal(err)
		}
		// The ciphertext still exists (it may sit in a table or a backup) ...
		if len(ct) == 0 {
			t.Fatal("no ciphertext")
		}
		// ... but neither this ring nor a fresh one (a restarted process or a
		// restored backup with the same KEK) can open it.
		for name, ring := range map[string]*keys.Ring{"same": r, "fresh": reopen(t, db, path)} {
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
		must(t, r.EnsureTenant(ctx, "t1"))
		if _, err := r.Encrypt(ctx, "t1", nil, []byte("x")); !errors.Is(err, keys.ErrShredded) {
			t.Fatalf("after EnsureTenant on shredded tenant: %v", err)
		}
		var n int
		must(t, db.SQL.QueryRow(`SELECT count(*) FROM tenant_keys WHERE tenant_id = 't1' AND aead_keyset IS NULL AND prf_keyset IS NULL`).Scan(&n))
		if n != 1 {
			t.Fatalf("tombstone rows = %d, want 1", n)
		}
	})
}

func TestContractDayKeysAreDestroyed(t *testing.T) {
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		r, path := newRing(t, db)
		d0 := time.Date(2026, 1, 1, 23, 59, 0, 0, time.UTC)
		k0, err := r.DayKey(ctx, d0)
		if err != nil {
			t.Fatal(err)
		}
		ct, err := k0.Encrypt([]byte("GET /odata/x"), []byte("entry-1"))
		must(t, err)
		again, err := r.DayKey(ctx, d0.Add(-time.Hour)) // same UTC day, same key
		must(t, err)
		if _, err := again.Decrypt(ct, []byte("entry-1")); err != nil {
			t.Fatalf("same day, different key: %v", err)
		}
		before, err := r.DayKeysBefore(ctx, d0.AddDate(0, 0, 1))
		must(t, err)
		if len(before) != 1 {
			t.Fatalf("DayKeysBefore = %v", before)
		}
		if err := r.DestroyDayKey(ctx, d0); err != nil {
			t.Fatal(err)
		}
		for name, ring := range map[string]*keys.Ring{"same": r, "fresh": reopen(t, db, path)} {
			if _, err := ring.DayKey(ctx, d0); !errors.Is(err, keys.ErrDayKeyDestroyed) {
				t.Errorf("%s ring: DayKey after destroy: %v", name, err)
			}
		}
		before, err = r.DayKeysBefore(ctx, d0.AddDate(0, 0, 1))
		must(t, err)
		if len(before) != 0 {
			t.Fatalf("destroyed key still listed: %v", before)
		}
	})
}

func TestLocalKeyFileIsPrivate(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	path := filepath.Join(dir, "kek.json")
	if _, err := keys.CreateKeyFile(path); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{dir, path} {
		st, err := os.Stat(p)
		must(t, err)
		want := os.FileMode(0o600)
		if p == dir {
			want = 0o700
		}
		if st.Mode().Perm() != want {
			t.Fatalf("%s mode %04o, want %04o", p, st.Mode().Perm(), want)
		}
	}
	if _, err := keys.LoadKeyFile(path); err != nil {
		t.Fatalf("reopen: %v", err)
	}
	if _, err := keys.CreateKeyFile(path); err == nil {
		t.Fatal("CreateKeyFile replaced an existing key file")
	}
	for _, mode := range []os.FileMode{0o640, 0o604, 0o644} {
		must(t, os.Chmod(path, mode))
		if _, err := keys.LoadKeyFile(path); !errors.Is(err, keys.ErrKeyFileExposed) {
			t.Errorf("mode %04o: err = %v, want ErrKeyFileExposed", mode, err)
		}
	}
	must(t, os.Chmod(path, 0o600))
	must(t, os.WriteFile(path, []byte("not a keyset"), 0o600))
	if _, err := keys.LoadKeyFile(path); err == nil || !strings.Contains(err.Error(), "not a valid keyset") {
		t.Fatalf("corrupt file: %v", err)
	}
	if _, err := keys.LoadKeyFile(filepath.Join(dir, "absent.json")); !errors.Is(err, keys.ErrNoKeyFile) {
		t.Fatalf("absent file: %v", err)
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
