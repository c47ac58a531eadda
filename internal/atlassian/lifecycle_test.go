package atlassian_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"maps"
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

// snapshot is everything an attack must not change, including the record
// of lifecycle tokens already used: a refused request must not use one up.
type snapshot struct {
	Installations, TenantKeys, SeenTokens int
	Secret                                string // a digest of the ciphertext, to keep failures readable
	State, BaseURL, OAuth, InstallationID string
	Updated                               time.Time
}

func takeSnapshot(t *testing.T, db *store.DB) snapshot {
	t.Helper()
	var s snapshot
	db.SQL.QueryRow(`SELECT COUNT(*) FROM installations`).Scan(&s.Installations)
	db.SQL.QueryRow(`SELECT COUNT(*) FROM tenant_keys`).Scan(&s.TenantKeys)
	db.SQL.QueryRow(`SELECT COUNT(*) FROM seen_tokens`).Scan(&s.SeenTokens)
	var secret []byte
	if err := db.SQL.QueryRow(`SELECT shared_secret, state, base_url, oauth_client_id, installation_id, updated_at
		FROM installations WHERE client_key = $1`, victim).
		Scan(&secret, &s.State, &s.BaseURL, &s.OAuth, &s.InstallationID, &s.Updated); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(secret)
	s.Secret = hex.EncodeToString(sum[:6])
	return s
}

// captured is a genuine lifecycle callback as someone on its path saw it.
type captured struct {
	path, token string
	body        map[string]any
}

// with returns a copy of the captured body with fields replaced.
func (c captured) with(kv ...any) map[string]any {
	b := maps.Clone(c.body)
	for i := 0; i+1 < len(kv); i += 2 {
		b[kv[i].(string)] = kv[i+1]
	}
	return b
}

// send delivers a genuine callback and keeps a copy of it.
func (f *fixture) send(path, token string, body map[string]any) captured {
	f.t.Helper()
	if w := f.do("POST", path, token, body); w.Code != http.StatusNoContent {
		f.t.Fatalf("genuine %s: %d %s", path, w.Code, w.Body)
	}
	return captured{path: path, token: token, body: body}
}

// reencodeSignature changes the last character of a JWT's signature to
// another that decodes to the same bytes (base64url's unused low bits):
// the same signature, a different string.
func reencodeSignature(tok string) string {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	sig := tok[strings.LastIndexByte(tok, '.')+1:]
	unused := map[int]int{2: 4, 3: 2}[len(sig)%4] // bits of the last character that carry nothing
	last := strings.IndexByte(alphabet, sig[len(sig)-1])
	return tok[:len(tok)-1] + string(alphabet[last^(1<<unused-1)])
}

func TestLifecycleAttacksAreRefusedAndChangeNothing(t *testing.T) {
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		_, pemBytes := testRSA(t)
		inst := "/lifecycle/installed"
		uninst := "/lifecycle/uninstalled"
		dis, en := "/lifecycle/disabled", "/lifecycle/enabled"
		// The tenant's genuine history, each callback seen on the wire by
		// the attacker: install, uninstall, reinstall (oldSecret is dead
		// from then on), disable, enable. The first install token carries a
		// jti; the reinstall's, like the simulator's, does not.
		install1 := f.send(inst, f.installToken(inst, victim, nil), payload("installed", victim, oldSecret, siteURL))
		uninstall1 := f.send(uninst, f.installToken(uninst, victim, nil), payload("uninstalled", victim, "", siteURL))
		f.advance(time.Second)
		install2 := f.send(inst, f.installToken(inst, victim, func(h, c map[string]any) { delete(c, "jti") }),
			payload("installed", victim, newSecret, siteURL))
		disabled1 := f.send(dis, f.tenantToken(dis, victim, []byte(newSecret), nil), payload("disabled", victim, "", siteURL))
		enabled1 := f.send(en, f.tenantToken(en, victim, []byte(newSecret), nil), payload("enabled", victim, "", siteURL))
		f.advance(time.Second)
		const attackerSecret = "attacker-secret-0123456789abcdef0123456789"
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

			// Replays: a validly signed lifecycle token works once. The body is
			// not signed, so a replay may carry anything.
			{"replayed installed, same body", inst, func() string { return install2.token }, install2.body, 401, apperr.EUNAUTHORIZED},
			{"replayed installed with the attacker's secret", inst, func() string { return install2.token },
				install2.with("sharedSecret", attackerSecret), 401, apperr.EUNAUTHORIZED},
			{"replayed installed (with jti) with the attacker's secret", inst, func() string { return install1.token },
				install1.with("sharedSecret", attackerSecret), 401, apperr.EUNAUTHORIZED},
			{"replayed installed bringing back the old secret", inst, func() string { return install1.token }, install1.body, 401, apperr.EUNAUTHORIZED},
			{"replayed installed, signature re-encoded", inst, func() string { return reencodeSignature(install2.token) },
				install2.with("sharedSecret", attackerSecret), 401, apperr.EUNAUTHORIZED},
			{"replayed installed moving the tenant to another site", inst, func() string { return install2.token },
				install2.with("sharedSecret", attackerSecret, "baseUrl", "https://attacker.atlassian.net"), 401, apperr.EUNAUTHORIZED},
			{"replayed installed with another oauthClientId", inst, func() string { return install2.token },
				install2.with("sharedSecret", attackerSecret, "oauthClientId", "attacker-oauth-client"), 401, apperr.EUNAUTHORIZED},
			{"replayed installed with another installationId", inst, func() string { return install2.token },
				install2.with("installationId", "ari:cloud:ecosystem::installation/attacker"), 401, apperr.EUNAUTHORIZED},
			{"replayed installed for another app", inst, func() string { return install2.token },
				install2.with("key", "someone-elses-app", "sharedSecret", attackerSecret), 400, apperr.EINVALID},
			{"replayed uninstalled (marks a live tenant for deletion)", uninst, func() string { return uninstall1.token }, uninstall1.body, 401, apperr.EUNAUTHORIZED},
			{"replayed uninstalled, signature re-encoded", uninst, func() string { return reencodeSignature(uninstall1.token) }, uninstall1.body, 401, apperr.EUNAUTHORIZED},
			{"replayed disabled", dis, func() string { return disabled1.token }, disabled1.body, 401, apperr.EUNAUTHORIZED},
			{"replayed enabled", en, func() string { return enabled1.token }, enabled1.body, 401, apperr.EUNAUTHORIZED},

			// Fresh, validly signed tokens with a body that would move the
			// tenant or change what identifies it (Connect does not sign the
			// body, so a token taken off the wire before it reached Ferry
			// could carry this).
			{"installed for another app", inst, func() string { return f.installToken(inst, victim, nil) },
				install2.with("key", "someone-elses-app"), 400, apperr.EINVALID},
			{"uninstalled for another app", uninst, func() string { return f.installToken(uninst, victim, nil) },
				uninstall1.with("key", "someone-elses-app"), 400, apperr.EINVALID},
			{"reinstall moving the tenant to another site", inst, func() string { return f.installToken(inst, victim, nil) },
				install2.with("sharedSecret", attackerSecret, "baseUrl", "https://attacker.atlassian.net"), 409, apperr.ECONFLICT},
			{"reinstall moving the tenant to another site with the old secret", inst, func() string { return f.installToken(inst, victim, nil) },
				install2.with("sharedSecret", oldSecret, "baseUrl", "https://attacker.atlassian.net"), 409, apperr.ECONFLICT},
			{"reinstall with another oauthClientId", inst, func() string { return f.installToken(inst, victim, nil) },
				install2.with("sharedSecret", attackerSecret, "oauthClientId", "attacker-oauth-client"), 409, apperr.ECONFLICT},
			{"reinstall with another installationId", inst, func() string { return f.installToken(inst, victim, nil) },
				install2.with("sharedSecret", attackerSecret, "installationId", "ari:cloud:ecosystem::installation/attacker"), 409, apperr.ECONFLICT},
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
		// The controls: fresh genuine callbacks are accepted, and the
		// replayed uninstall had left the tenant active.
		if before.State != string(tenant.Active) || !bytes.Equal(mustSecret(t, f), []byte(newSecret)) {
			t.Fatalf("sanity: the tenant should be active with the reinstall's secret: %+v", before)
		}
		if w := f.do("POST", dis, f.tenantToken(dis, victim, []byte(newSecret), nil), good("disabled")); w.Code != 204 {
			t.Fatalf("genuine disabled: %d %s", w.Code, w.Body)
		}
		if w := f.do("POST", inst, f.installToken(inst, victim, nil), install2.with("sharedSecret", attackerSecret)); w.Code != 204 {
			t.Fatalf("genuine reinstall with a new secret: %d %s", w.Code, w.Body)
		}
	})
}

func mustSecret(t *testing.T, f *fixture) []byte {
	t.Helper()
	inst, err := f.tenants.ByClientKey(context.Background(), victim)
	if err != nil {
		t.Fatal(err)
	}
	secret, err := f.tenants.SharedSecret(context.Background(), inst.TenantID)
	if err != nil {
		t.Fatal(err)
	}
	return secret
}

func TestInstallKeepsOnlyAllowlistedAccountData(t *testing.T) {
	db := storetest.SQLite(t)
	f := newFixture(t, db)
	got := f.install(victim, newSecret, siteURL)
	want := tenant.Installation{AddonKey: addonKey, ProductType: "jira", ClientKey: victim, BaseURL: siteURL, DisplayURL: siteURL,
		Description: "Atlassian JIRA at " + siteURL, ServiceEntitlementNumber: "SEN-4711", EntitlementID: "ent-1",
		EntitlementNumber: "E-1", OAuthClientID: "oauth-" + victim, InstallationID: "ari:cloud:ecosystem::installation/inst-" + victim,
		CloudID: testCloudID, Connect: true, State: tenant.Active}
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
		"MARKER-PLUGINSVERSION-a1", newSecret, userAcct} {
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
		// A site rename is Atlassian's installed callback with the new
		// baseUrl and everything else as before, the shared secret included.
		renamed := f.install(victim, oldSecret, "https://renamed.atlassian.net")
		if renamed.TenantID != first.TenantID || renamed.BaseURL != "https://renamed.atlassian.net" {
			t.Fatalf("rename: %+v", renamed)
		}
		// A reinstall on the renamed site brings a new secret.
		again := f.install(victim, newSecret, "https://renamed.atlassian.net")
		if again.TenantID != first.TenantID || !bytes.Equal(mustSecret(t, f), []byte(newSecret)) {
			t.Fatalf("reinstall after rename: %+v", again)
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

// TestConnectInstallGainsItsForgeInstallationID: a Connect installation
// from before Connect-on-Forge has no installationId; the reinstall that
// brings one (the migration to Forge) is accepted, and from then on the
// installationId is fixed. A payload without one keeps what is stored.
func TestConnectInstallGainsItsForgeInstallationID(t *testing.T) {
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db)
		inst := "/lifecycle/installed"
		old := payload("installed", victim, oldSecret, siteURL)
		old["installationId"], old["oauthClientId"] = "", ""
		f.send(inst, f.installToken(inst, victim, nil), old)
		forge := payload("installed", victim, newSecret, siteURL)
		f.send(inst, f.installToken(inst, victim, nil), forge)
		got, _ := f.tenants.ByClientKey(context.Background(), victim)
		if got.InstallationID != forge["installationId"] || got.OAuthClientID != forge["oauthClientId"] {
			t.Fatalf("after the Forge reinstall: installationId %q, oauthClientId %q", got.InstallationID, got.OAuthClientID)
		}
		without := payload("installed", victim, oldSecret, siteURL)
		without["installationId"], without["oauthClientId"] = "", ""
		f.send(inst, f.installToken(inst, victim, nil), without)
		got, _ = f.tenants.ByClientKey(context.Background(), victim)
		if got.InstallationID != forge["installationId"] || got.OAuthClientID != forge["oauthClientId"] {
			t.Fatalf("a payload without ids must keep them: installationId %q, oauthClientId %q", got.InstallationID, got.OAuthClientID)
		}
		moved := payload("installed", victim, newSecret, siteURL)
		moved["installationId"] = "ari:cloud:ecosystem::installation/2"
		w := f.do("POST", inst, f.installToken(inst, victim, nil), moved)
		var p apperr.Problem
		json.Unmarshal(w.Body.Bytes(), &p)
		if w.Code != 409 || p.Field != "installationId" {
			t.Fatalf("another installationId: %d %+v", w.Code, p)
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

// TestPayloadCloudIDIsKeptOnlyInItsForm: the installed payload's cloudId is
// Account Data (it lets the site's Forge installation find this tenant), but
// only a value in a cloudId's form (a UUID) is kept; anything else never
// reaches the database.
func TestPayloadCloudIDIsKeptOnlyInItsForm(t *testing.T) {
	db := storetest.SQLite(t)
	f := newFixture(t, db)
	inst := "/lifecycle/installed"
	p := payload("installed", victim, newSecret, siteURL)
	p["cloudId"] = "MARKER-CLOUDID-a1"
	f.send(inst, f.installToken(inst, victim, nil), p)
	got, err := f.tenants.ByClientKey(context.Background(), victim)
	if err != nil || got.CloudID != "" {
		t.Fatalf("a malformed cloudId must not be kept: %q %v", got.CloudID, err)
	}
	db.SQL.Exec(`PRAGMA wal_checkpoint(TRUNCATE)`)
	all, _ := os.ReadFile(db.Path)
	if bytes.Contains(all, []byte("MARKER-CLOUDID-a1")) {
		t.Fatal("the malformed cloudId is in the database file")
	}
	f2 := newFixture(t, storetest.SQLite(t))
	if got := f2.install("other-client", newSecret, "https://other.atlassian.net"); got.CloudID != testCloudID {
		t.Fatalf("a cloudId in its form is kept: %q", got.CloudID)
	}
}
