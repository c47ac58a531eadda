package tenant_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"ferry/internal/apperr"
	"ferry/internal/keys"
	"ferry/internal/store"
	"ferry/internal/store/storetest"
	"ferry/internal/tenant"
)

func newStore(t *testing.T, db *store.DB) (*tenant.Store, *keys.Ring) {
	t.Helper()
	kek, err := keys.OpenLocalKEK(filepath.Join(t.TempDir(), "kek.json"))
	if err != nil {
		t.Fatal(err)
	}
	ring := keys.NewRing(db, kek)
	return tenant.NewStore(db, ring), ring
}

func install(clientKey, secret, base string) tenant.Install {
	return tenant.Install{AddonKey: "ferry-bi-connector", ProductType: "jira", ClientKey: clientKey,
		BaseURL: base, DisplayURL: base, SharedSecret: []byte(secret), OAuthClientID: "oauth-" + clientKey,
		ServiceEntitlementNumber: "12345", InstallerAccountID: "557058:f1d2c3b4-0000-4000-a000-000000000001"}
}

func TestContractFirstInstallCreatesTenantWithRandomIDAndEncryptedSecret(t *testing.T) {
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		s, _ := newStore(t, db)
		inst, created, err := s.Install(ctx, install("ck-1", "secret-number-one-0123456789abcdef", "https://a.atlassian.net"))
		if err != nil || !created {
			t.Fatalf("install: created=%v err=%v", created, err)
		}
		if inst.TenantID == "ck-1" || inst.TenantID == "" || inst.State != tenant.Active {
			t.Fatalf("tenant id must be a fresh random id and state active: %+v", inst)
		}
		if inst.InstalledBy == "" || inst.InstalledBy == "557058:f1d2c3b4-0000-4000-a000-000000000001" || len(inst.InstalledBy) != keys.PseudonymLen {
			t.Fatalf("installer must be a pseudonym, got %q", inst.InstalledBy)
		}
		var ct []byte
		if err := db.SQL.QueryRow(`SELECT shared_secret FROM installations WHERE tenant_id = $1`, inst.TenantID).Scan(&ct); err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(ct, []byte("secret-number-one")) {
			t.Fatal("shared secret stored in clear")
		}
		got, err := s.SharedSecret(ctx, inst.TenantID)
		if err != nil || string(got) != "secret-number-one-0123456789abcdef" {
			t.Fatalf("SharedSecret = %q, %v", got, err)
		}
	})
}

func TestContractReinstallReplacesSecretAndRevivesPendingTenant(t *testing.T) {
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		s, _ := newStore(t, db)
		first, _, err := s.Install(ctx, install("ck-1", "old-secret-0123456789abcdef0123456789", "https://a.atlassian.net"))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.Uninstall(ctx, first.TenantID); err != nil {
			t.Fatal(err)
		}
		if s.KnownSite(ctx, "a.atlassian.net:443") {
			t.Fatal("a site pending deletion must not be reachable through egress")
		}
		again, created, err := s.Install(ctx, install("ck-1", "new-secret-0123456789abcdef0123456789", "https://A.atlassian.net/"))
		if err != nil || created {
			t.Fatalf("reinstall: created=%v err=%v", created, err)
		}
		if again.TenantID != first.TenantID || again.State != tenant.Active || !again.UninstalledAt.IsZero() {
			t.Fatalf("reinstall must reactivate the same tenant: %+v", again)
		}
		got, _ := s.SharedSecret(ctx, first.TenantID)
		if string(got) != "new-secret-0123456789abcdef0123456789" {
			t.Fatalf("secret not replaced: %q", got)
		}
		var n int
		db.SQL.QueryRow(`SELECT COUNT(*) FROM installations`).Scan(&n)
		if n != 1 {
			t.Fatalf("%d installation rows, want 1", n)
		}
	})
}

// TestContractASiteMovesOnlyByARenameThatKeepsTheSecret: Atlassian renames a
// site with an installed callback that carries the new baseUrl and the
// shared secret Ferry already holds. A reinstall that moves the site and
// brings any other secret is refused, and so is one that changes the site's
// oauthClientId or installationId; an installationId may appear where there
// was none.
func TestContractASiteMovesOnlyByARenameThatKeepsTheSecret(t *testing.T) {
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		s, _ := newStore(t, db)
		const secret = "site-secret-0123456789abcdef0123456789"
		first, _, err := s.Install(ctx, install("ck", secret, "https://a.atlassian.net"))
		if err != nil {
			t.Fatal(err)
		}
		type row struct{ Base, OAuth, Installation, Secret string }
		read := func() row {
			in, err := s.ByID(ctx, first.TenantID)
			if err != nil {
				t.Fatal(err)
			}
			sec, _ := s.SharedSecret(ctx, first.TenantID)
			return row{in.BaseURL, in.OAuthClientID, in.InstallationID, string(sec)}
		}
		refused := func(name, field string, in tenant.Install) {
			t.Helper()
			before := read()
			_, _, err := s.Install(ctx, in)
			var ae *apperr.Error
			if !errors.Is(err, tenant.ErrIdentityChanged) || !errors.As(err, &ae) || ae.Code != apperr.ECONFLICT || ae.Field != field {
				t.Errorf("%s: %v, want a conflict on %s", name, err, field)
			}
			if after := read(); after != before {
				t.Errorf("%s changed the installation: %+v → %+v", name, before, after)
			}
		}
		for _, base := range []string{"https://b.atlassian.net", "https://a.atlassian.net:8443", "http://a.atlassian.net"} {
			refused("move to "+base+" with a new secret", "baseUrl", install("ck", "other-secret-0123456789abcdef01234567", base))
		}
		moved := install("ck", "other-secret-0123456789abcdef01234567", "https://b.atlassian.net")
		moved.OAuthClientID = "oauth-ck"
		refused("move with a new secret and the same ids", "baseUrl", moved)
		otherOAuth := install("ck", secret, "https://a.atlassian.net")
		otherOAuth.OAuthClientID = "oauth-someone-else"
		refused("another oauthClientId", "oauthClientId", otherOAuth)

		// The rename: new host, same secret.
		if _, _, err := s.Install(ctx, install("ck", secret, "https://renamed.atlassian.net")); err != nil {
			t.Fatalf("rename keeping the secret: %v", err)
		}
		if r := read(); r.Base != "https://renamed.atlassian.net" || !s.KnownSite(ctx, "renamed.atlassian.net") || s.KnownSite(ctx, "a.atlassian.net") {
			t.Fatalf("after the rename: %+v", r)
		}
		// Connect → Forge: the installationId appears, then stays.
		forge := install("ck", "forge-secret-0123456789abcdef012345678", "https://renamed.atlassian.net")
		forge.InstallationID = "ari:cloud:ecosystem::installation/f1"
		if _, _, err := s.Install(ctx, forge); err != nil {
			t.Fatalf("an installationId appearing: %v", err)
		}
		other := forge
		other.InstallationID = "ari:cloud:ecosystem::installation/f2"
		refused("another installationId", "installationId", other)
		without := install("ck", "later-secret-0123456789abcdef0123456789", "https://renamed.atlassian.net")
		without.OAuthClientID = ""
		if _, _, err := s.Install(ctx, without); err != nil {
			t.Fatal(err)
		}
		if r := read(); r.Installation != forge.InstallationID || r.OAuth != "oauth-ck" {
			t.Fatalf("a payload without ids must keep the stored ones: %+v", r)
		}
	})
}

func TestContractUninstalledWinsOverDisabledInAnyOrderAndInParallel(t *testing.T) {
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		s, _ := newStore(t, db)
		for round := 0; round < 8; round++ {
			inst, _, err := s.Install(ctx, install(fmt.Sprint("ck-", round), "secret-0123456789abcdef0123456789", "https://a.atlassian.net"))
			if err != nil {
				t.Fatal(err)
			}
			var wg sync.WaitGroup
			start := make(chan struct{})
			errs := make(chan error, 6)
			ops := []func(context.Context, string) (bool, error){s.Disable, s.Uninstall, s.Disable, s.Uninstall, s.Enable, s.Disable}
			if round%2 == 1 {
				ops = []func(context.Context, string) (bool, error){s.Uninstall, s.Disable, s.Enable, s.Uninstall, s.Disable, s.Disable}
			}
			for _, op := range ops {
				wg.Add(1)
				go func() {
					defer wg.Done()
					<-start
					if _, err := op(ctx, inst.TenantID); err != nil {
						errs <- err
					}
				}()
			}
			close(start)
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Fatal(err)
			}
			got, err := s.ByID(ctx, inst.TenantID)
			if err != nil {
				t.Fatal(err)
			}
			if got.State != tenant.PendingDeletion || got.UninstalledAt.IsZero() {
				t.Fatalf("round %d: state %q, uninstalled_at %v; uninstalled must win", round, got.State, got.UninstalledAt)
			}
		}
	})
}

func TestContractLifecycleIsIdempotentAndKeepsFirstUninstallTime(t *testing.T) {
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		s, _ := newStore(t, db)
		now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
		db.SetClock(func() time.Time { return now })
		inst, _, _ := s.Install(ctx, install("ck", "secret-0123456789abcdef0123456789", "https://a.atlassian.net"))
		if ch, _ := s.Disable(ctx, inst.TenantID); !ch {
			t.Fatal("disable of an active tenant must change it")
		}
		if ch, _ := s.Disable(ctx, inst.TenantID); ch {
			t.Fatal("second disable must be a no-op")
		}
		if ch, _ := s.Enable(ctx, inst.TenantID); !ch {
			t.Fatal("enable of a disabled tenant must change it")
		}
		s.Uninstall(ctx, inst.TenantID)
		now = now.Add(time.Hour)
		if ch, _ := s.Uninstall(ctx, inst.TenantID); ch {
			t.Fatal("second uninstall must be a no-op")
		}
		if ch, _ := s.Enable(ctx, inst.TenantID); ch {
			t.Fatal("enable must not revive a tenant pending deletion")
		}
		got, _ := s.ByID(ctx, inst.TenantID)
		if !got.UninstalledAt.Equal(time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)) {
			t.Fatalf("uninstalled_at = %v, want the first uninstall time", got.UninstalledAt)
		}
		active, _ := s.Active(ctx)
		if len(active) != 0 {
			t.Fatalf("Active lists %d installations, want 0", len(active))
		}
	})
}

func TestContractConcurrentFirstInstallsMakeOneTenant(t *testing.T) {
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		s, _ := newStore(t, db)
		var wg sync.WaitGroup
		ids := make([]string, 4)
		for i := range ids {
			wg.Add(1)
			go func() {
				defer wg.Done()
				inst, _, err := s.Install(ctx, install("ck", fmt.Sprintf("secret-%d-0123456789abcdef0123456789", i), "https://a.atlassian.net"))
				if err != nil {
					t.Error(err)
				}
				ids[i] = inst.TenantID
			}()
		}
		wg.Wait()
		for _, id := range ids[1:] {
			if id != ids[0] {
				t.Fatalf("concurrent installs made different tenants: %v", ids)
			}
		}
		if _, err := s.SharedSecret(ctx, ids[0]); err != nil {
			t.Fatalf("the stored secret must decrypt under the surviving tenant: %v", err)
		}
		if _, err := s.ByClientKey(ctx, "nope"); !errors.Is(err, tenant.ErrNotFound) {
			t.Fatalf("unknown clientKey: %v", err)
		}
	})
}
