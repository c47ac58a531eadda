package atlassian_test

import (
	"bytes"
	"context"
	"crypto"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"ferry/internal/atlassian"
	"ferry/internal/config"
	"ferry/internal/keys"
	"ferry/internal/logging"
	"ferry/internal/store"
	"ferry/internal/tenant"
)

const (
	appBase  = "https://ferry.example.com"
	addonKey = "ferry-bi-connector"
	testKid  = "test-kid-1"
	victim   = "victim-client-key"
	siteURL  = "https://victim.atlassian.net"
	userAcct = "557058:0f1e2d3c-4b5a-4978-8695-a4b3c2d1e0f9"
)

var (
	rsaOnce sync.Once
	rsaKey  *rsa.PrivateKey
	rsaPEM  []byte
)

func testRSA(t testing.TB) (*rsa.PrivateKey, []byte) {
	rsaOnce.Do(func() {
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			panic(err)
		}
		der, _ := x509.MarshalPKIXPublicKey(&k.PublicKey)
		rsaKey, rsaPEM = k, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
	})
	return rsaKey, rsaPEM
}

// fixture is Ferry's Connect side over a fresh database, with a fake
// Atlassian install-key service and a controllable clock.
type fixture struct {
	t       *testing.T
	db      *store.DB
	ring    *keys.Ring
	tenants *tenant.Store
	c       *atlassian.Connect
	mux     *http.ServeMux
	logs    *bytes.Buffer
	mu      sync.Mutex
	now     time.Time

	keyFetches atomic.Int32 // requests to the fake install-key service
}

func newFixture(t *testing.T, db *store.DB, mutate ...func(*config.Config)) *fixture {
	t.Helper()
	_, pemBytes := testRSA(t)
	f := &fixture{t: t, db: db, logs: &bytes.Buffer{}, now: time.Now().UTC().Truncate(time.Second)}
	keySrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/keys/") {
			f.keyFetches.Add(1)
		}
		if r.URL.Path != "/keys/"+testKid {
			http.NotFound(w, r)
			return
		}
		w.Write(pemBytes)
	}))
	t.Cleanup(keySrv.Close)
	kek, err := keys.OpenLocalKEK(filepath.Join(t.TempDir(), "kek.json"))
	if err != nil {
		t.Fatal(err)
	}
	f.ring = keys.NewRing(db, kek)
	f.tenants = tenant.NewStore(db, f.ring)
	cfg := config.Default()
	cfg.BaseURL = appBase
	cfg.InstallKeysURL = keySrv.URL + "/keys"
	cfg.OAuthURL = keySrv.URL
	for _, m := range mutate {
		m(&cfg)
	}
	f.c, err = atlassian.New(atlassian.Options{Config: cfg, Tenants: f.tenants, Keys: f.ring,
		Log:               logging.New(lockedWriter{f}, logging.Options{Format: "json", Level: "debug"}),
		InstallKeysClient: keySrv.Client(), JiraClient: keySrv.Client(), OAuthClient: keySrv.Client(),
		Now: f.clock})
	if err != nil {
		t.Fatal(err)
	}
	f.mux = http.NewServeMux()
	f.mux.Handle("POST /lifecycle/installed", f.c.HandleInstalled())
	f.mux.Handle("POST /lifecycle/uninstalled", f.c.HandleUninstalled())
	f.mux.Handle("POST /lifecycle/enabled", f.c.HandleEnabled())
	f.mux.Handle("POST /lifecycle/disabled", f.c.HandleDisabled())
	f.mux.Handle("GET /atlassian-connect.json", f.c.HandleDescriptor())
	f.mux.Handle("/app/", f.c.RequirePage(whoami()))
	f.mux.Handle("/app-api/", f.c.RequireAPI(whoami()))
	return f
}

type lockedWriter struct{ f *fixture }

func (w lockedWriter) Write(b []byte) (int, error) {
	w.f.mu.Lock()
	defer w.f.mu.Unlock()
	return w.f.logs.Write(b)
}

func (f *fixture) clock() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.now
}

func (f *fixture) advance(d time.Duration) {
	f.mu.Lock()
	f.now = f.now.Add(d)
	f.mu.Unlock()
}

// whoami answers with the principal, for the middleware tests.
func whoami() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, ok := atlassian.PrincipalFrom(r.Context())
		if !ok {
			http.Error(w, "no principal", 500)
			return
		}
		json.NewEncoder(w).Encode(map[string]string{"tenant": p.TenantID(), "user": p.UserPseudonym, "lic": p.License, "account": p.AccountID})
	})
}

var b64 = base64.RawURLEncoding

// encodeJWT builds a token from raw header and claims, signed by sign (nil:
// no signature), independently of the code under test.
func encodeJWT(header, claims map[string]any, sign func([]byte) []byte) string {
	hb, _ := json.Marshal(header)
	cb, _ := json.Marshal(claims)
	in := b64.EncodeToString(hb) + "." + b64.EncodeToString(cb)
	var sig []byte
	if sign != nil {
		sig = sign([]byte(in))
	}
	return in + "." + b64.EncodeToString(sig)
}

func hs(secret []byte) func([]byte) []byte {
	return func(in []byte) []byte {
		m := hmac.New(sha256.New, secret)
		m.Write(in)
		return m.Sum(nil)
	}
}

func rs(k *rsa.PrivateKey) func([]byte) []byte {
	return func(in []byte) []byte {
		sum := sha256.Sum256(in)
		sig, err := rsa.SignPKCS1v15(rand.Reader, k, crypto.SHA256, sum[:])
		if err != nil {
			panic(err)
		}
		return sig
	}
}

func qshFor(method, rawURL, base string) string {
	u, _ := url.Parse(rawURL)
	b, _ := url.Parse(base)
	return atlassian.QSH(method, u.EscapedPath(), b.EscapedPath(), u.RawQuery)
}

// installClaims are valid signed-install claims for path, from clientKey,
// with a fresh jti (delete it to test tokens that carry none, as the
// simulator's).
func (f *fixture) installClaims(path, clientKey string) map[string]any {
	now := f.clock().Unix()
	jti := make([]byte, 12)
	rand.Read(jti)
	return map[string]any{"iss": clientKey, "sub": userAcct, "aud": []string{appBase}, "iat": now, "exp": now + 180,
		"qsh": qshFor("POST", path, appBase), "context": map[string]any{}, "jti": b64.EncodeToString(jti)}
}

func (f *fixture) installToken(path, clientKey string, edit func(h, c map[string]any)) string {
	k, _ := testRSA(f.t)
	h := map[string]any{"alg": "RS256", "typ": "JWT", "kid": testKid}
	c := f.installClaims(path, clientKey)
	if edit != nil {
		edit(h, c)
	}
	return encodeJWT(h, c, rs(k))
}

func (f *fixture) tenantToken(path, clientKey string, secret []byte, edit func(h, c map[string]any)) string {
	now := f.clock().Unix()
	h := map[string]any{"alg": "HS256", "typ": "JWT"}
	c := map[string]any{"iss": clientKey, "sub": userAcct, "iat": now, "exp": now + 180, "qsh": qshFor(pathMethod(path), path, appBase)}
	if edit != nil {
		edit(h, c)
	}
	return encodeJWT(h, c, hs(secret))
}

func pathMethod(path string) string {
	if strings.HasPrefix(path, "/lifecycle/") {
		return "POST"
	}
	return "GET"
}

// payload is an installed payload with fields Ferry must not keep.
// testCloudID is the sites' cloudId in lifecycle payloads.
const testCloudID = "7a7a7a7a-0000-4000-8000-00000000c10d"

func payload(event, clientKey, secret, base string) map[string]any {
	return map[string]any{
		"key": addonKey, "clientKey": clientKey, "sharedSecret": secret, "baseUrl": base, "displayUrl": base,
		"productType": "jira", "description": "Atlassian JIRA at " + base, "eventType": event,
		"serviceEntitlementNumber": "SEN-4711", "entitlementId": "ent-1", "entitlementNumber": "E-1",
		// One Forge installation is one site: each site its own installationId.
		"oauthClientId": "oauth-" + clientKey, "installationId": "ari:cloud:ecosystem::installation/inst-" + clientKey,
		"cloudId": testCloudID, // kept: it lets the site's Forge installation find this tenant
		// Not on the allowlist: must never reach the database.
		"publicKey": "MARKER-PUBLICKEY-7f3a", "userKey": "MARKER-USERKEY-19bd", "email": "marker.person@example.org",
		"serverVersion": "MARKER-SERVERVERSION-55", "pluginsVersion": "MARKER-PLUGINSVERSION-a1",
	}
}

func (f *fixture) do(method, target, auth string, body any) *httptest.ResponseRecorder {
	var rd *bytes.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	} else {
		rd = bytes.NewReader(nil)
	}
	r := httptest.NewRequest(method, target, rd)
	r.Header.Set("Content-Type", "application/json")
	if auth != "" {
		r.Header.Set("Authorization", "JWT "+auth)
	}
	w := httptest.NewRecorder()
	f.mux.ServeHTTP(w, r)
	return w
}

func (f *fixture) install(clientKey, secret, base string) tenant.Installation {
	f.t.Helper()
	w := f.do("POST", "/lifecycle/installed", f.installToken("/lifecycle/installed", clientKey, nil), payload("installed", clientKey, secret, base))
	if w.Code != http.StatusNoContent {
		f.t.Fatalf("install: %d %s", w.Code, w.Body)
	}
	inst, err := f.tenants.ByClientKey(context.Background(), clientKey)
	if err != nil {
		f.t.Fatal(err)
	}
	return inst
}
