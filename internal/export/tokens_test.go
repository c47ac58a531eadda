package export_test

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"ferry/internal/apperr"
	"ferry/internal/export"
	"ferry/internal/keys"
	"ferry/internal/store"
	"ferry/internal/store/storetest"
	"ferry/internal/tenant"
)

func tokenFixture(t *testing.T, db *store.DB) (*export.Tokens, string) {
	t.Helper()
	kek, err := keys.OpenLocalKEK(filepath.Join(t.TempDir(), "kek.json"))
	if err != nil {
		t.Fatal(err)
	}
	ring := keys.NewRing(db, kek)
	inst, _, err := tenant.NewStore(db, ring).Install(context.Background(), tenant.Install{
		AddonKey: "ferry", ProductType: "jira", ClientKey: "ck-1", BaseURL: "https://acme.atlassian.net", SharedSecret: []byte("s"),
	})
	if err != nil {
		t.Fatal(err)
	}
	return &export.Tokens{DB: db, Keys: ring}, inst.TenantID
}

func policy(days int) func(string) int { return func(string) int { return days } }

const alice = "557058:aaaaaaaa-aaaa-aaaa-aaaa-aaaaaaaaaaaa"

func TestContractTokensAreStoredOnlyAsHashes(t *testing.T) {
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		tokens, tid := tokenFixture(t, db)
		plain, tok, err := tokens.Create(ctx, tid, alice, "Power BI", 30, 365)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(plain, export.TokenPrefix) || !strings.HasPrefix(tok.Hint, plain[:8]) {
			t.Fatalf("token %q hint %q", plain[:8], tok.Hint)
		}
		// Neither the token nor the owner's accountId is stored in the clear.
		var n int
		db.SQL.QueryRow(`SELECT count(*) FROM access_tokens WHERE token_hash = $1 OR owner_pseudonym = $2 OR label = $1`, plain, alice).Scan(&n)
		if n != 0 {
			t.Fatal("plaintext token or accountId stored")
		}
		var enc []byte
		db.SQL.QueryRow(`SELECT owner_enc FROM access_tokens`).Scan(&enc)
		if strings.Contains(string(enc), alice) {
			t.Fatal("owner accountId readable in owner_enc")
		}
		o, err := tokens.Authenticate(ctx, plain, policy(365))
		if err != nil || o.AccountID != alice || o.TenantID != tid {
			t.Fatalf("Authenticate = %+v, %v", o, err)
		}
		list, _ := tokens.List(ctx, tid, alice, 365)
		if len(list) != 1 || list[0].LastUsedDay != keys.Day(time.Now()) {
			t.Fatalf("list = %+v", list)
		}
	})
}

func TestContractRevokedExpiredAndUnknownTokensAreRefused(t *testing.T) {
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		tokens, tid := tokenFixture(t, db)
		now := time.Now()
		db.SetClock(func() time.Time { return now })
		revoked, tk, _ := tokens.Create(ctx, tid, alice, "old", 30, 365)
		if err := tokens.Revoke(ctx, tid, alice, tk.ID); err != nil {
			t.Fatal(err)
		}
		short, _, _ := tokens.Create(ctx, tid, alice, "short", 1, 365)
		long, _, _ := tokens.Create(ctx, tid, alice, "long", 300, 365)
		now = now.Add(48 * time.Hour)
		for name, tok := range map[string]string{
			"revoked": revoked, "expired": short, "unknown": "fry_" + strings.Repeat("A", 43),
			"malformed": "Bearer nonsense", "empty": "",
		} {
			_, err := tokens.Authenticate(ctx, tok, policy(365))
			if !errors.Is(err, export.ErrTokenInvalid) || apperr.CodeOf(err) != apperr.EUNAUTHORIZED {
				t.Errorf("%s token: err = %v", name, err)
			}
		}
		// Shortening the policy caps existing tokens: a 300-day token is
		// refused once the site allows only 1 day.
		if _, err := tokens.Authenticate(ctx, long, policy(365)); err != nil {
			t.Fatalf("long token under 365-day policy: %v", err)
		}
		if _, err := tokens.Authenticate(ctx, long, policy(1)); !errors.Is(err, export.ErrTokenInvalid) {
			t.Fatalf("long token under 1-day policy: %v", err)
		}
		// Another user cannot revoke alice's token.
		if err := tokens.Revoke(ctx, tid, "557058:bbbbbbbb-bbbb-bbbb-bbbb-bbbbbbbbbbbb", tk.ID); apperr.CodeOf(err) != apperr.ENOTFOUND {
			t.Fatalf("cross-user revoke: %v", err)
		}
	})
}

func TestContractAtMost25ActiveTokensPerUser(t *testing.T) {
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		tokens, tid := tokenFixture(t, db)
		var last export.Token
		for i := 0; i < export.MaxActiveTokens; i++ {
			var err error
			if _, last, err = tokens.Create(ctx, tid, alice, "t", 10, 365); err != nil {
				t.Fatalf("token %d: %v", i, err)
			}
		}
		if _, _, err := tokens.Create(ctx, tid, alice, "one too many", 10, 365); apperr.CodeOf(err) != apperr.ECONFLICT {
			t.Fatalf("26th token: %v", err)
		}
		tokens.Revoke(ctx, tid, alice, last.ID)
		if _, _, err := tokens.Create(ctx, tid, alice, "after revoke", 10, 365); err != nil {
			t.Fatalf("after revoking one: %v", err)
		}
		if _, _, err := tokens.Create(ctx, tid, alice, "too long", 400, 365); apperr.CodeOf(err) != apperr.EINVALID {
			t.Fatalf("lifetime over policy: %v", err)
		}
		if _, _, err := tokens.Create(ctx, tid, alice, "  ", 10, 365); apperr.CodeOf(err) != apperr.EINVALID {
			t.Fatalf("blank label: %v", err)
		}
	})
}

func TestContractShreddedTenantTokensStopWorking(t *testing.T) {
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		tokens, tid := tokenFixture(t, db)
		plain, _, _ := tokens.Create(ctx, tid, alice, "x", 10, 365)
		tokens.Keys.Shred(ctx, tid)
		if _, err := tokens.Authenticate(ctx, plain, policy(365)); !errors.Is(err, export.ErrTokenInvalid) {
			t.Fatalf("after shred: %v", err)
		}
	})
}
