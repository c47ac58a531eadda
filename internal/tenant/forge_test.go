package tenant_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"ferry/internal/apperr"
	"ferry/internal/store"
	"ferry/internal/store/storetest"
	"ferry/internal/tenant"
)

const (
	cloudA = "11111111-2222-4333-8444-555555555555"
	cloudB = "99999999-2222-4333-8444-555555555555"
)

func installationARI(n int) string {
	return fmt.Sprintf("ari:cloud:ecosystem::installation/00000000-0000-4000-8000-%012d", n)
}

func contact(id int, cloud string, token string, expires time.Time, jti string) tenant.ForgeContact {
	c := tenant.ForgeContact{InstallationID: installationARI(id), CloudID: cloud,
		APIBaseURL: "https://api.atlassian.com/ex/jira/" + cloud, AddonKey: "ferry-bi-connector",
		License: tenant.LicenseActive, SystemTokenExpires: expires}
	if token != "" {
		c.SystemToken = []byte(token)
	}
	if jti != "" {
		c.Nonce = tenant.Nonce{Digest: "fit-" + jti, Expires: time.Now().Add(time.Minute)}
	}
	return c
}

// snapshot is every column of every installation and every used token: what
// "nothing changed" compares.
func snapshot(t *testing.T, db *store.DB) string {
	t.Helper()
	var b bytes.Buffer
	for _, q := range []string{`SELECT * FROM installations ORDER BY tenant_id`, `SELECT * FROM seen_tokens ORDER BY digest`, `SELECT tenant_id FROM tenant_keys ORDER BY tenant_id`} {
		rows, err := db.SQL.Query(q)
		if err != nil {
			t.Fatal(err)
		}
		cols, _ := rows.Columns()
		for rows.Next() {
			vals := make([]any, len(cols))
			ptrs := make([]any, len(cols))
			for i := range vals {
				ptrs[i] = &vals[i]
			}
			if err := rows.Scan(ptrs...); err != nil {
				t.Fatal(err)
			}
			fmt.Fprintln(&b, vals...)
		}
		rows.Close()
	}
	return b.String()
}

func TestContractForgeOnlyTenantIsNeverFoundByAConnectLookup(t *testing.T) {
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		s, _ := newStore(t, db)
		exp := time.Now().Add(2 * time.Hour).UTC().Truncate(time.Second)
		inst, created, err := s.Contact(ctx, contact(1, cloudA, "system-token-one", exp, "a"))
		if err != nil || !created {
			t.Fatalf("contact: created=%v err=%v", created, err)
		}
		if inst.Connect || inst.InstallationID != installationARI(1) || inst.CloudID != cloudA || !inst.OnForge() || !inst.SourcesInForge() {
			t.Fatalf("a Forge-only tenant: %+v", inst)
		}
		if inst.ForgeLicense != tenant.LicenseActive || inst.ForgeLicenseAt.IsZero() || inst.ForgeContactAt.IsZero() {
			t.Fatalf("licence and contact must be remembered with their time: %+v", inst)
		}
		// Its client_key holds the installationId; no Connect JWT naming it
		// as issuer finds the row, and it has no shared secret to verify with.
		if _, err := s.ByClientKey(ctx, installationARI(1)); !errors.Is(err, tenant.ErrNotFound) {
			t.Fatalf("ByClientKey found a Forge-only tenant: %v", err)
		}
		got, err := s.ByInstallationID(ctx, installationARI(1))
		if err != nil || got.TenantID != inst.TenantID {
			t.Fatalf("ByInstallationID = %+v, %v", got, err)
		}
		// A second invocation finds the same tenant.
		again, created, err := s.Contact(ctx, contact(1, cloudA, "", time.Time{}, "b"))
		if err != nil || created || again.TenantID != inst.TenantID {
			t.Fatalf("second contact: %+v created=%v err=%v", again, created, err)
		}
	})
}

func TestContractSystemTokenIsSealedAndTheLongestLivedWins(t *testing.T) {
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		s, _ := newStore(t, db)
		now := time.Now().UTC().Truncate(time.Second)
		inst, _, err := s.Contact(ctx, contact(1, cloudA, "token-lives-two-hours", now.Add(2*time.Hour), "a"))
		if err != nil {
			t.Fatal(err)
		}
		var ct []byte
		if err := db.SQL.QueryRow(`SELECT forge_system_token FROM installations WHERE tenant_id = $1`, inst.TenantID).Scan(&ct); err != nil {
			t.Fatal(err)
		}
		if len(ct) == 0 || bytes.Contains(ct, []byte("token-lives")) {
			t.Fatalf("the system token must be stored only as ciphertext: %q", ct)
		}
		// A token that dies sooner does not replace it; one that lives longer does.
		if _, _, err := s.Contact(ctx, contact(1, cloudA, "token-lives-one-hour", now.Add(time.Hour), "b")); err != nil {
			t.Fatal(err)
		}
		tok, exp, _, err := s.SystemToken(ctx, inst.TenantID)
		if err != nil || string(tok) != "token-lives-two-hours" || !exp.Equal(now.Add(2*time.Hour)) {
			t.Fatalf("SystemToken = %q %v %v", tok, exp, err)
		}
		if _, _, err := s.Contact(ctx, contact(1, cloudA, "token-lives-three-hours", now.Add(3*time.Hour), "c")); err != nil {
			t.Fatal(err)
		}
		if tok, _, _, _ := s.SystemToken(ctx, inst.TenantID); string(tok) != "token-lives-three-hours" {
			t.Fatalf("the longer-lived token must win, got %q", tok)
		}
		// Concurrent invocations: whatever the order, the longest-lived stays.
		var wg sync.WaitGroup
		for i := range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, _, err := s.Contact(ctx, contact(1, cloudA, fmt.Sprintf("concurrent-%d", i), now.Add(time.Duration(4+i)*time.Hour), fmt.Sprintf("p%d", i)))
				if err != nil {
					t.Error(err)
				}
			}()
		}
		wg.Wait()
		if tok, _, _, _ := s.SystemToken(ctx, inst.TenantID); string(tok) != "concurrent-7" {
			t.Fatalf("after concurrent invocations the longest-lived token must be kept, got %q", tok)
		}
		// A ciphertext moved to another tenant's row does not open there.
		other, _, err := s.Contact(ctx, contact(2, cloudB, "other-token", now.Add(time.Hour), "d"))
		if err != nil {
			t.Fatal(err)
		}
		if err := db.InTx(ctx, func(tx *store.Tx) error {
			_, err := tx.ExecContext(ctx, `UPDATE installations SET forge_system_token = (SELECT forge_system_token FROM installations WHERE tenant_id = $1) WHERE tenant_id = $2`, inst.TenantID, other.TenantID)
			return err
		}); err != nil {
			t.Fatal(err)
		}
		if tok, _, _, err := s.SystemToken(ctx, other.TenantID); err == nil {
			t.Fatalf("a token copied to another tenant's row must not decrypt, got %q", tok)
		}
	})
}

func TestContractConnectTenantGainsItsForgeIdentityAndKeepsItsKeys(t *testing.T) {
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		s, _ := newStore(t, db)
		in := install("ck-1", "secret-number-one-0123456789abcdef", "https://a.atlassian.net")
		in.CloudID = cloudA
		conn, _, err := s.Install(ctx, in)
		if err != nil {
			t.Fatal(err)
		}
		if conn.CloudID != cloudA || !conn.Connect || conn.OnForge() {
			t.Fatalf("a Connect tenant: %+v", conn)
		}
		// The first Forge invocation for the site, before the Connect
		// callback that carries both ids: found by cloudId, not a new tenant.
		exp := time.Now().Add(2 * time.Hour)
		forge, created, err := s.Contact(ctx, contact(7, cloudA, "system-token", exp, "a"))
		if err != nil || created {
			t.Fatalf("contact: created=%v err=%v", created, err)
		}
		if forge.TenantID != conn.TenantID || forge.InstallationID != installationARI(7) || !forge.Connect || !forge.OnForge() {
			t.Fatalf("the Connect tenant must gain the Forge id: %+v", forge)
		}
		if forge.SourcesInForge() {
			t.Fatal("a linked Connect tenant's data sources stay in Connect until they are moved")
		}
		if secret, err := s.SharedSecret(ctx, conn.TenantID); err != nil || string(secret) != "secret-number-one-0123456789abcdef" {
			t.Fatalf("the shared secret must stay: %q %v", secret, err)
		}
		// The Connect callback of the same move now carries both: same tenant.
		in.InstallationID = installationARI(7)
		in.SharedSecret = []byte("secret-number-one-0123456789abcdef")
		again, created, err := s.Install(ctx, in)
		if err != nil || created || again.TenantID != conn.TenantID {
			t.Fatalf("Connect callback: %+v created=%v err=%v", again, created, err)
		}
		if err := s.MarkMigrated(ctx, conn.TenantID); err != nil {
			t.Fatal(err)
		}
		if got, _ := s.ByID(ctx, conn.TenantID); !got.SourcesInForge() {
			t.Fatalf("after the move the sources live in Forge storage: %+v", got)
		}
		// Another site's Connect callback claiming that installationId is refused.
		other := install("ck-2", "secret-number-two-0123456789abcdef", "https://b.atlassian.net")
		other.InstallationID = installationARI(7)
		before := snapshot(t, db)
		if _, _, err := s.Install(ctx, other); apperr.CodeOf(err) != apperr.ECONFLICT {
			t.Fatalf("a second tenant with the same installationId: %v", err)
		}
		if after := snapshot(t, db); after != before {
			t.Fatal("a refused install changed the database")
		}
	})
}

func TestContractForgeContactTokenWorksOnceAndUninstalledStaysUninstalled(t *testing.T) {
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		s, _ := newStore(t, db)
		exp := time.Now().Add(time.Hour)
		inst, _, err := s.Contact(ctx, contact(1, cloudA, "token", exp, "once"))
		if err != nil {
			t.Fatal(err)
		}
		before := snapshot(t, db)
		if _, _, err := s.Contact(ctx, contact(1, cloudA, "replayed-token", exp.Add(time.Hour), "once")); !errors.Is(err, tenant.ErrReplayed) {
			t.Fatalf("a replayed jti: %v", err)
		}
		if _, _, err := s.Contact(ctx, contact(2, cloudB, "replayed-token", exp.Add(time.Hour), "once")); !errors.Is(err, tenant.ErrReplayed) {
			t.Fatalf("a replayed jti naming another installation: %v", err)
		}
		// Another installation of the same cloud with a Forge-only tenant
		// there already: the cloud belongs to that tenant's installation.
		if _, _, err := s.Contact(ctx, contact(1, cloudB, "x", exp, "cloud")); apperr.CodeOf(err) != apperr.ECONFLICT {
			t.Fatalf("an installation moving cloud: %v", err)
		}
		if after := snapshot(t, db); after != before {
			t.Fatal("refused contacts changed the database")
		}
		if _, err := s.Uninstalled(ctx, inst.TenantID, tenant.Nonce{Digest: "fit-uninstall", Expires: exp}); err != nil {
			t.Fatal(err)
		}
		before = snapshot(t, db)
		if _, _, err := s.Contact(ctx, contact(1, cloudA, "late-token", exp.Add(time.Hour), "late")); !errors.Is(err, tenant.ErrUninstalled) {
			t.Fatalf("a late invocation of an uninstalled installation: %v", err)
		}
		if after := snapshot(t, db); after != before {
			t.Fatal("an invocation of an uninstalled installation changed the database")
		}
		// preUninstall of an installation Ferry never saw creates nothing.
		c := contact(3, cloudB, "", time.Time{}, "unknown")
		c.NoCreate = true
		if _, _, err := s.Contact(ctx, c); !errors.Is(err, tenant.ErrNotFound) {
			t.Fatalf("NoCreate: %v", err)
		}
		if after := snapshot(t, db); after != before {
			t.Fatal("NoCreate made a tenant")
		}
	})
}
