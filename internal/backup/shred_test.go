package backup

import (
	"bytes"
	"context"
	"errors"
	"io"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"filippo.io/age"

	"ferry/internal/keys"
	"ferry/internal/reqlog/reqlogtest"
	"ferry/internal/store"
	"ferry/internal/store/storetest"
	"ferry/internal/tenant"
)

// TestContractShreddedTenantCannotBeDecryptedFromAnOlderBackupOnceKeyBackupsExpire
// walks a fake clock through daily backups. A tenant shredded on day 1 is
// still readable from the day-0 backup while that backup's key object is
// kept (the documented window); once the key objects from before the shred
// have expired, no object in the target holds its keys in any encoding,
// and restoring the day-0 backup leaves its secret unreadable while the
// other tenant's opens.
func TestContractShreddedTenantCannotBeDecryptedFromAnOlderBackupOnceKeyBackupsExpire(t *testing.T) {
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		f := newFixture(t, db)
		const keyDays = 2
		svc := f.service(t, f.target, func(o *Options) { o.Retention = Retention{Daily: 14, Weekly: 8, Monthly: 12, KeyDays: keyDays} })
		now := time.Date(2026, 5, 1, 2, 0, 0, 0, time.UTC)
		db.SetClock(func() time.Time { return now })
		day := func(d int) { now = time.Date(2026, 5, 1, 2, 0, 0, 0, time.UTC).AddDate(0, 0, d) }

		shredded := f.install(t, 1, "secret-of-the-leaving-tenant")
		staying := f.install(t, 2, "secret-of-the-staying-tenant")
		var wrapped []byte // the leaving tenant's wrapped keyset, as it was
		if err := db.SQL.QueryRowContext(ctx, `SELECT aead_keyset FROM tenant_keys WHERE tenant_id = $1`, shredded).Scan(&wrapped); err != nil {
			t.Fatal(err)
		}
		day0, err := svc.Run(ctx)
		if err != nil {
			t.Fatal(err)
		}

		day(1)
		if err := f.ring.Shred(ctx, shredded); err != nil {
			t.Fatal(err)
		}
		if _, err := svc.Run(ctx); err != nil {
			t.Fatal(err)
		}
		// Inside the window: the day-0 key object still opens the tenant.
		// This is the trade-off the README states, and it shows the
		// assertions below can fail.
		secret := restoredSecret(t, svc, f.kek, day0.Manifest.ID, day0.Manifest.ID, shredded)
		if secret != "secret-of-the-leaving-tenant" {
			t.Fatalf("inside the window the day-0 keys should still open the tenant; got %q", secret)
		}
		if !objectsHold(t, svc, f.target, wrapped) {
			t.Fatal("inside the window no object holds the tenant's keys: the search below proves nothing")
		}

		for d := 2; d <= keyDays+2; d++ {
			day(d)
			if _, err := svc.Run(ctx); err != nil {
				t.Fatal(err)
			}
		}
		list, err := svc.List(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var old *Backup
		for i := range list {
			if list[i].ID == day0.Manifest.ID {
				old = &list[i]
			}
		}
		if old == nil || old.State != StateGood || old.KeysKept {
			t.Fatalf("day-0 backup should be kept (daily retention) without its key object; have %+v", old)
		}
		if objectsHold(t, svc, f.target, wrapped) {
			t.Fatal("an object in the target still holds the shredded tenant's keys after the key backups expired")
		}
		// Restore the old backup as an operator would (newest keys):
		// the shredded tenant's secret stays ciphertext, the other opens.
		to := filepath.Join(t.TempDir(), "old.db")
		if db.Dialect == store.Postgres {
			to = emptyPGDatabase(t)
		}
		if _, err := svc.Restore(ctx, day0.Manifest.ID, RestoreOptions{To: to}); err != nil {
			t.Fatal(err)
		}
		rdb := openRestored(t, db.Dialect, to)
		ts := tenant.NewStore(rdb, keys.NewRing(rdb, f.kek))
		if _, err := ts.ByID(ctx, shredded); err != nil {
			t.Fatalf("the old backup should still hold the tenant's (encrypted) row: %v", err)
		}
		if s, err := ts.SharedSecret(ctx, shredded); !errors.Is(err, keys.ErrShredded) {
			t.Errorf("shredded tenant's secret from the old backup: %q, %v; want ErrShredded", s, err)
		}
		if s, err := ts.SharedSecret(ctx, staying); err != nil || string(s) != "secret-of-the-staying-tenant" {
			t.Errorf("staying tenant's secret: %q, %v", s, err)
		}
		// Asking for the day-0 keys explicitly fails: they are gone.
		to2 := filepath.Join(t.TempDir(), "x.db")
		if db.Dialect == store.Postgres {
			to2 = emptyPGDatabase(t)
		}
		if _, err := svc.Restore(ctx, day0.Manifest.ID, RestoreOptions{To: to2, KeysFrom: day0.Manifest.ID}); !errors.Is(err, ErrNotFound) {
			t.Errorf("restore with the expired day-0 key object: %v, want ErrNotFound", err)
		}
	})
}

// restoredSecret restores backup id with the key object of keysFrom into a
// scratch database and returns the tenant's decrypted shared secret ("" if
// it does not open).
func restoredSecret(t *testing.T, svc *Service, kek *keys.LocalKEK, id, keysFrom, tenantID string) string {
	t.Helper()
	ctx := context.Background()
	to := filepath.Join(t.TempDir(), "window.db")
	if svc.o.DB.Dialect == store.Postgres {
		to = emptyPGDatabase(t)
	}
	if _, err := svc.Restore(ctx, id, RestoreOptions{To: to, KeysFrom: keysFrom}); err != nil {
		t.Fatal(err)
	}
	rdb := openRestored(t, svc.o.DB.Dialect, to)
	s, err := tenant.NewStore(rdb, keys.NewRing(rdb, kek)).SharedSecret(ctx, tenantID)
	if err != nil {
		return ""
	}
	return string(s)
}

// objectsHold decrypts every backup object in the target and reports whether
// any holds needle (a wrapped keyset) in any encoding a dump could use.
func objectsHold(t *testing.T, svc *Service, tg Target, needle []byte) bool {
	t.Helper()
	ctx := context.Background()
	objs, err := tg.List(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	var ids []age.Identity
	keyObjs, _ := tg.List(ctx, "identity/")
	for _, o := range keyObjs {
		k, err := svc.backupKey(ctx, strings.TrimSuffix(strings.TrimPrefix(o.Name, "identity/"), ".json"))
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, k.Identity)
	}
	found := false
	for _, o := range objs {
		if !strings.HasSuffix(o.Name, ".age") {
			continue
		}
		r, err := age.Decrypt(bytes.NewReader(readObject(t, tg, o.Name)), ids...)
		if err != nil {
			t.Fatalf("%s: %v", o.Name, err)
		}
		plain, err := io.ReadAll(r)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(o.Name, ".pgdump.") {
			continue // compressed; holds no key table data (TestContractMainBackupHoldsNoKeys)
		}
		for enc, b := range reqlogtest.Encodings(string(needle[len(needle)-40:])) {
			if bytes.Contains(plain, b) {
				t.Logf("%s holds the keyset (%s)", o.Name, enc)
				found = true
			}
		}
	}
	return found
}

func restoredSecretIn(t *testing.T, rdb *store.DB, kek *keys.LocalKEK, tenantID string) string {
	t.Helper()
	s, err := tenant.NewStore(rdb, keys.NewRing(rdb, kek)).SharedSecret(context.Background(), tenantID)
	if err != nil {
		return ""
	}
	return string(s)
}
