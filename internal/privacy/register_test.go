package privacy_test

import (
	"bytes"
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"ferry/internal/keys"
	"ferry/internal/privacy"
	"ferry/internal/store"
	"ferry/internal/store/storetest"
)

func ring(t *testing.T, db *store.DB) *keys.Ring {
	t.Helper()
	kek, err := keys.OpenLocalKEK(filepath.Join(t.TempDir(), "kek.json"))
	if err != nil {
		t.Fatal(err)
	}
	return keys.NewRing(db, kek)
}

// TestContractHoldKeepsOneEncryptedCopyPerTenantAndPseudonym: holding an
// account records its accountId once per tenant, encrypted (never in the
// clear), bound to its tenant and pseudonym; replicas agree; bad accountIds
// change nothing.
func TestContractHoldKeepsOneEncryptedCopyPerTenantAndPseudonym(t *testing.T) {
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		r := ring(t, db)
		for _, id := range []string{"ten_a", "ten_b"} {
			if err := r.EnsureTenant(ctx, id); err != nil {
				t.Fatal(err)
			}
		}
		one, two := privacy.NewRegister(db, r), privacy.NewRegister(db, r) // two replicas
		acct := "557058:0c5f3a2e-7d1b-4e0b-9d8a-canary000001"
		for i := 0; i < 3; i++ {
			for _, reg := range []*privacy.Register{one, two} {
				if err := reg.Hold(ctx, "ten_a", acct); err != nil {
					t.Fatal(err)
				}
			}
		}
		if err := one.Hold(ctx, "ten_b", acct); err != nil {
			t.Fatal(err)
		}
		for tenant, want := range map[string]int64{"ten_a": 1, "ten_b": 1} {
			if n, _ := one.Held(ctx, tenant); n != want {
				t.Fatalf("%s holds %d rows, want %d", tenant, n, want)
			}
		}
		var pa, pb string
		var enc []byte
		db.SQL.QueryRow(`SELECT pseudonym, account_enc FROM privacy_accounts WHERE tenant_id = 'ten_a'`).Scan(&pa, &enc)
		db.SQL.QueryRow(`SELECT pseudonym FROM privacy_accounts WHERE tenant_id = 'ten_b'`).Scan(&pb)
		if pa == pb || len(pa) != keys.PseudonymLen || bytes.Contains(enc, []byte("canary000001")) {
			t.Fatalf("pseudonyms %q %q must differ per tenant; the copy must be ciphertext", pa, pb)
		}
		if want, _ := r.Pseudonym(ctx, "ten_a", acct); want != pa {
			t.Fatal("the row is not keyed by the account's pseudonym")
		}
		// The copy is bound to its row: moved to the other tenant's row it does not open.
		if _, err := r.Decrypt(ctx, "ten_b", []byte("privacy_accounts/account_enc/ten_b/"+pb), enc); err == nil {
			t.Fatal("a copy moved to another tenant decrypted")
		}
		before := count(t, db)
		for _, bad := range []string{"", strings.Repeat("x", privacy.MaxAccountIDLen+1), "a\x00b", "a\nb"} {
			if err := one.Hold(ctx, "ten_a", bad); !errors.Is(err, privacy.ErrAccountID) {
				t.Errorf("%q: %v, want ErrAccountID", bad, err)
			}
		}
		if err := one.Hold(ctx, "ten_never", acct); err == nil {
			t.Error("holding for a tenant without keys must fail")
		}
		if after := count(t, db); after != before {
			t.Fatalf("refused holds changed the table: %d → %d", before, after)
		}
		// The purge's deleter.
		if n, _ := one.CountTenant(ctx, "ten_a"); n != 1 {
			t.Fatalf("CountTenant = %d", n)
		}
		if n, err := one.DeleteTenant(ctx, "ten_a"); err != nil || n != 1 {
			t.Fatalf("DeleteTenant = %d, %v", n, err)
		}
		if n, _ := one.Held(ctx, "ten_b"); n != 1 {
			t.Fatal("another tenant's rows went too")
		}
		// Forgotten with its tenant, Hold records again.
		if err := one.Hold(ctx, "ten_a", acct); err != nil {
			t.Fatal(err)
		}
		if n, _ := one.Held(ctx, "ten_a"); n != 1 {
			t.Fatal("a held account was not recorded again after its tenant's rows were deleted")
		}
	})
}

func count(t *testing.T, db *store.DB) int {
	var n int
	if err := db.SQL.QueryRow(`SELECT count(*) FROM privacy_accounts`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}
