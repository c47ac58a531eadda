package atlassian_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"

	"ferry/internal/apperr"
	"ferry/internal/store"
	"ferry/internal/store/storetest"
	"ferry/internal/tenant"
)

const (
	oldSecret = "OLD-shared-secret-0123456789abcdef0123456789abcdef"
	newSecret = "NEW-shared-secret-fedcba9876543210fedcba9876543210"
)

// snapshot is everything an attack must not change.
type snapshot struct {
	Installations, TenantKeys int
	Secret                    []byte
	State, BaseURL            string
	Updated                   time.Time
}

func takeSnapshot(t *testing.T, db *store.DB) snapshot {
	t.Helper()
	var s snapshot
	db.SQL.QueryRow(`SELECT COUNT(*) FROM installations`).Scan(&s.Installations)
	db.SQL.QueryRow(`SELECT COUNT(*) FROM tenant_keys`).Scan(&s.TenantKeys)
	if err := db.SQL.QueryRow(`SELECT shared_secret, state, base_url, updated_at FROM installations WHERE client_key = $1`, victim).
		Scan(&s.Secret, &s.State, &s.BaseURL, &s.Updated); err != nil {
		t.Fatal(err)
	}
	return s
}

func TestLifecycleAttacksAreRefusedAndChangeNothing(t *testing.T) {
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		_, pemBytes := testRSA(t)
		f.install(victim, oldSecret, siteURL)
		f.install(victim, newSecret, siteURL) // reinstall: oldSecret is now dead
		inst := "/lifecycle/installed"
		uninst := "/lifecycle/uninstalled"
		good := func(ev string) map[string]any {
			return payload(ev, victim, "attacker-secret-0123456789abcdef0123456789", siteURL)
		}
		withBase := func(base string) map[string]any {
			return payload("installed", victim, "attacker-secret-0123456789abcdef0123456789", base)
		}
		cases := []struct {
			name   string
			path   string
			token  func() string
			body   map[string]any
			status int
			code   apperr.Code
		}{
			{"unsigned", inst, func() string { return "" }, good("installed"), 401, apperr.EUNAUTHORIZED},
			{"alg none", inst, func() string {
				return encodeJWT(map[string]any{"alg": "none", "kid": testKid}, f.installClaims(inst, victim), nil)
			}, good("installed"), 401, apperr.EUNAUTHORIZED},
			{"alg confusion: HS256 keyed with the RSA public key", inst, func() string {
				return encodeJWT(map[string]any{"alg": "HS256", "kid": testKid}, f.installClaims(inst, victim), hs(pemBytes))
			}, good("installed"), 401, apperr.EUNAUTHORIZED},
			{"HS256 with the current shared secret on installed", inst, func() string {
				return f.tenantToken(inst, victim, []byte(newSecret), nil)
			}, good("installed"), 401, apperr.EUNAUTHORIZED},
			{"bad signature", inst, func() string {
				tok := f.installToken(inst, victim, nil)
				return tok[:len(tok)-6] + "AAAAAA"
			}, good("installed"), 401, apperr.EUNAUTHORIZED},
			{"expired", inst, func() string {
				return f.installToken(inst, victim, func(h, c map[string]any) {
					c["iat"], c["exp"] = f.clock().Unix()-600, f.clock().Unix()-120
				})
			}, good("installed"), 401, apperr.EUNAUTHORIZED},
			{"no exp", inst, func() string { return f.installToken(inst, victim, func(h, c map[string]any) { delete(c, "exp") }) },
				good("installed"), 401, apperr.EUNAUTHORIZED},
			{"wrong qsh", inst, func() string {
				return f.installToken(inst, victim, func(h, c map[string]any) { c["qsh"] = qshFor("POST", uninst, appBase) })
			}, good("installed"), 401, apperr.EUNAUTHORIZED},
			{"context-qsh on installed", inst, func() string {
				return f.installToken(inst, victim, func(h, c map[string]any) { c["qsh"] = "context-qsh" })
			}, good("installed"), 401, apperr.EUNAUTHORIZED},
			{"context-qsh on uninstalled", uninst, func() string {
				return f.installToken(uninst, victim, func(h, c map[string]any) { c["qsh"] = "context-qsh" })
			}, good("uninstalled"), 401, apperr.EUNAUTHORIZED},
			{"context-qsh on disabled", "/lifecycle/disabled", func() string {
				return f.tenantToken("/lifecycle/disabled", victim, []byte(newSecret), func(h, c map[string]any) { c["qsh"] = "context-qsh" })
			}, good("disabled"), 401, apperr.EUNAUTHORIZED},
			{"context-qsh on enabled", "/lifecycle/enabled", func() string {
				return f.tenantToken("/lifecycle/enabled", victim, []byte(newSecret), func(h, c map[string]any) { c["qsh"] = "context-qsh" })
			}, good("enabled"), 401, apperr.EUNAUTHORIZED},
			{"wrong aud", inst, func() string {
				return f.installToken(inst, victim, func(h, c map[string]any) { c["aud"] = []string{"https://attacker.example.com"} })
			}, good("installed"), 401, apperr.EUNAUTHORIZED},
			{"missing kid", inst, func() string { return f.installToken(inst, victim, func(h, c map[string]any) { delete(h, "kid") }) },
				good("installed"), 401, apperr.EUNAUTHORIZED},
			{"unknown kid", inst, func() string { return f.installToken(inst, victim, func(h, c map[string]any) { h["kid"] = "nobody" }) },
				good("installed"), 401, apperr.EUNAUTHORIZED},
			{"kid path traversal", inst, func() string {
				return f.installToken(inst, victim, func(h, c map[string]any) { h["kid"] = "../keys/" + testKid })
			}, good("installed"), 401, apperr.EUNAUTHORIZED},
			{"body clientKey is not iss (forged reinstall)", inst, func() string { return f.installToken(inst, "attacker-site", nil) },
				good("installed"), 403, apperr.EFORBIDDEN},
			{"body clientKey is not iss (forged uninstall)", uninst, func() string { return f.installToken(uninst, "attacker-site", nil) },
				good("uninstalled"), 403, apperr.EFORBIDDEN},
			{"http baseUrl", inst, func() string { return f.installToken(inst, victim, nil) }, withBase("http://victim.atlassian.net"), 403, apperr.EFORBIDDEN},
			{"loopback baseUrl", inst, func() string { return f.installToken(inst, victim, nil) }, withBase("http://127.0.0.1:8080"), 403, apperr.EFORBIDDEN},
			{"https loopback baseUrl", inst, func() string { return f.installToken(inst, victim, nil) }, withBase("https://localhost"), 403, apperr.EFORBIDDEN},
			{"metadata baseUrl", inst, func() string { return f.installToken(inst, victim, nil) }, withBase("https://169.254.169.254"), 403, apperr.EFORBIDDEN},
			{"private IP baseUrl", inst, func() string { return f.installToken(inst, victim, nil) }, withBase("https://10.0.0.7"), 403, apperr.EFORBIDDEN},
			{"decimal IP baseUrl", inst, func() string { return f.installToken(inst, victim, nil) }, withBase("https://2130706433"), 403, apperr.EFORBIDDEN},
			{"non-Atlassian host", inst, func() string { return f.installToken(inst, victim, nil) }, withBase("https://evil.example.com"), 403, apperr.EFORBIDDEN},
			{"look-alike host", inst, func() string { return f.installToken(inst, victim, nil) }, withBase("https://victim.atlassian.net.evil.com"), 403, apperr.EFORBIDDEN},
			{"old shared secret after reinstall (disabled)", "/lifecycle/disabled", func() string {
				return f.tenantToken("/lifecycle/disabled", victim, []byte(oldSecret), nil)
			}, good("disabled"), 401, apperr.EUNAUTHORIZED},
			{"RS256 install token on disabled", "/lifecycle/disabled", func() string { return f.installToken("/lifecycle/disabled", victim, nil) },
				good("disabled"), 401, apperr.EUNAUTHORIZED},
		}
		before := takeSnapshot(t, db)
		for _, tc := range cases {
			w := f.do("POST", tc.path, tc.token(), tc.body)
			var p apperr.Problem
			json.Unmarshal(w.Body.Bytes(), &p)
			if w.Code != tc.status || p.Code != tc.code {
				t.Errorf("%s: HTTP %d %s, want %d %s (%s)", tc.name, w.Code, p.Code, tc.status, tc.code, p.Detail)
			}
			if strings.Contains(w.Body.String(), newSecret) || strings.Contains(w.Body.String(), "eyJ") {
				t.Errorf("%s: error body leaks a secret or token: %s", tc.name, w.Body)
			}
			if after := takeSnapshot(t, db); !reflect.DeepEqual(before, after) {
				t.Errorf("%s: state changed: %+v → %+v", tc.name, before, after)
			}
		}
		// The control: the genuine article is accepted.
		if w := f.do("POST", "/lifecycle/disabled", f.tenantToken("/lifecycle/disabled", victim, []byte(newSecret), nil), good("disabled")); w.Code != 204 {
			t.Fatalf("genuine disabled: %d %s", w.Code, w.Body)
		}
	})
}

func TestInstallKeepsOnlyAllowlistedAccountData(t *testing.T) {
	db := storetest.SQLite(t)
	f := newFixture(t, db)
	got := f.install(victim, newSecret, siteURL)
	want := tenant.Installation{AddonKey: addonKey, ProductType: "jira", ClientKey: victim, BaseURL: siteURL, DisplayURL: siteURL,
		Description: "Atlassian JIRA at " + siteURL, ServiceEntitlementNumber: "SEN-4711", EntitlementID: "ent-1",
		EntitlementNumber: "E-1", OAuthClientID: "oauth-" + victim, InstallationID: "ari:cloud:ecosystem::installation/1", State: tenant.Active}
	got2 := got
	got2.TenantID, got2.InstalledBy, got2.CreatedAt, got2.InstalledAt, got2.UpdatedAt = "", "", time.Time{}, time.Time{}, time.Time{}
	if !reflect.DeepEqual(got2, want) {
		t.Fatalf("stored %+v\nwant   %+v", got2, want)
	}
	if got.InstalledBy == "" || got.InstalledBy == userAcct {
		t.Fatalf("installer must be kept as a pseudonym, got %q", got.InstalledBy)
	}
	db.SQL.Exec(`PRAGMA wal_checkpoint(TRUNCATE)`)
	var all []byte
	for _, p := range []string{db.Path, db.Path + "-wal", db.Path + "-shm"} {
		b, _ := os.ReadFile(p)
		all = append(all, b...)
	}
	for _, never := range []string{"MARKER-PUBLICKEY-7f3a", "MARKER-USERKEY-19bd", "marker.person@example.org", "MARKER-SERVERVERSION-55",
		"MARKER-CLOUDID-a1", newSecret, userAcct} {
		if bytes.Contains(all, []byte(never)) {
			t.Errorf("%q is in the database file", never)
		}
	}
	if !bytes.Contains(all, []byte(victim)) {
		t.Fatal("sanity: the clientKey should be in the database file")
	}
}

func TestLifecycleHappyPathAndSiteRename(t *testing.T) {
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		ctx := context.Background()
		first := f.install(victim, oldSecret, siteURL)
		if w := f.do("POST", "/lifecycle/disabled", f.tenantToken("/lifecycle/disabled", victim, []byte(oldSecret), nil), payload("disabled", victim, "", siteURL)); w.Code != 204 {
			t.Fatalf("disabled: %d %s", w.Code, w.Body)
		}
		if w := f.do("POST", "/lifecycle/enabled", f.tenantToken("/lifecycle/enabled", victim, []byte(oldSecret), nil), payload("enabled", victim, "", siteURL)); w.Code != 204 {
			t.Fatalf("enabled: %d %s", w.Code, w.Body)
		}
		renamed := f.install(victim, newSecret, "https://renamed.atlassian.net")
		if renamed.TenantID != first.TenantID || renamed.BaseURL != "https://renamed.atlassian.net" {
			t.Fatalf("rename: %+v", renamed)
		}
		if w := f.do("POST", "/lifecycle/uninstalled", f.installToken("/lifecycle/uninstalled", victim, nil), payload("uninstalled", victim, "", siteURL)); w.Code != 204 {
			t.Fatalf("uninstalled: %d %s", w.Code, w.Body)
		}
		got, _ := f.tenants.ByID(ctx, first.TenantID)
		if got.State != tenant.PendingDeletion {
			t.Fatalf("state after uninstall: %s", got.State)
		}
		// An uninstall for a site Ferry never saw changes nothing and is 204.
		if w := f.do("POST", "/lifecycle/uninstalled", f.installToken("/lifecycle/uninstalled", "stranger", nil), payload("uninstalled", "stranger", "", siteURL)); w.Code != 204 {
			t.Fatalf("unknown uninstall: %d %s", w.Code, w.Body)
		}
	})
}

func TestDescriptorDeclaresSignedInstallAndPages(t *testing.T) {
	f := newFixture(t, storetest.SQLite(t))
	w := f.do("GET", "/atlassian-connect.json", "", nil)
	var d struct {
		Key            string
		BaseURL        string `json:"baseUrl"`
		Authentication struct{ Type string }
		Lifecycle      map[string]string
		APIMigrations  map[string]bool `json:"apiMigrations"`
		Scopes         []string
		Modules        map[string][]struct{ Key, URL string }
	}
	if err := json.Unmarshal(w.Body.Bytes(), &d); err != nil {
		t.Fatal(err)
	}
	if d.Key != addonKey || d.BaseURL != appBase || d.Authentication.Type != "jwt" || !d.APIMigrations["signed-install"] ||
		d.Lifecycle["installed"] != "/lifecycle/installed" || d.Lifecycle["disabled"] != "/lifecycle/disabled" ||
		!reflect.DeepEqual(d.Scopes, []string{"READ", "ACT_AS_USER"}) {
		t.Fatalf("descriptor: %s", w.Body)
	}
	pages := map[string]string{}
	for _, kind := range []string{"generalPages", "adminPages"} {
		for _, m := range d.Modules[kind] {
			pages[m.Key] = m.URL
		}
	}
	if pages["data-sources"] != "/app/data-sources" || pages["admin"] != "/app/admin" || pages["problem-report"] != "" {
		t.Fatalf("pages: %v", pages)
	}
	if w.Header().Get("Content-Type") != "application/json" || w.Code != http.StatusOK {
		t.Fatalf("descriptor response %d %s", w.Code, w.Header())
	}
}
