package jirasim

import (
	"context"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// forgeRemote is a minimal Forge Remote backend that verifies every call
// the way Atlassian documents it, with golang-jwt and its own JWKS reading
// rather than the sim's JWT code: RS256 only, key by kid from the JWKS,
// iss forge/invocation-token, aud pinned to its own app id, exp/nbf/iat,
// a jti seen once, and the x-b3 trace headers.
type forgeRemote struct {
	t       testing.TB
	srv     *httptest.Server
	jwksURL string
	appID   string
	now     func() time.Time // the clock FITs are checked against (the sim's, when a test moves it)

	mu      sync.Mutex
	calls   []remoteCall
	jtis    map[string]bool
	respond func(r *http.Request, c remoteCall) (int, any) // nil: 200 {"ok":true}
}

type remoteCall struct {
	Method, Path string
	Header       http.Header
	Claims       jwt.MapClaims // verified claims; nil when verification failed
	Kid          string
	Err          string // why verification failed
	Body         map[string]any
}

const testForgeAppID = "ari:cloud:ecosystem::app/3f1c9a52-7d4e-4b0a-9c61-2e8f5d7a1b03"

func newForgeRemote(t testing.TB, s *Sim) *forgeRemote {
	rm := &forgeRemote{t: t, jwksURL: s.ForgeJWKSURL(), appID: testForgeAppID, jtis: map[string]bool{}, now: s.now}
	rm.srv = httptest.NewServer(http.HandlerFunc(rm.serve))
	t.Cleanup(rm.srv.Close)
	return rm
}

func (rm *forgeRemote) serve(w http.ResponseWriter, r *http.Request) {
	raw, _ := io.ReadAll(r.Body)
	c := remoteCall{Method: r.Method, Path: r.URL.Path, Header: r.Header.Clone()}
	json.Unmarshal(raw, &c.Body)
	claims, kid, err := verifyFITAt(r.Context(), rm.jwksURL, rm.appID, r.Header, rm.now)
	if err == nil {
		jti, _ := claims["jti"].(string)
		rm.mu.Lock()
		if rm.jtis[jti] {
			err = errors.New("jti replayed")
		}
		rm.jtis[jti] = true
		rm.mu.Unlock()
	}
	if err != nil {
		c.Err = err.Error()
	} else {
		c.Claims, c.Kid = claims, kid
	}
	rm.mu.Lock()
	rm.calls = append(rm.calls, c)
	respond := rm.respond
	rm.mu.Unlock()
	if err != nil {
		http.Error(w, err.Error(), http.StatusUnauthorized)
		return
	}
	status, body := http.StatusOK, any(map[string]any{"ok": true, "path": r.URL.Path})
	if respond != nil {
		status, body = respond(r, c)
	}
	if body == nil {
		w.WriteHeader(status)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(body)
}

func (rm *forgeRemote) setRespond(f func(r *http.Request, c remoteCall) (int, any)) {
	rm.mu.Lock()
	rm.respond = f
	rm.mu.Unlock()
}

func (rm *forgeRemote) callsTo(path string) []remoteCall {
	rm.mu.Lock()
	defer rm.mu.Unlock()
	var out []remoteCall
	for _, c := range rm.calls {
		if c.Path == path {
			out = append(out, c)
		}
	}
	return out
}

func (rm *forgeRemote) last(path string) remoteCall {
	rm.t.Helper()
	cs := rm.callsTo(path)
	if len(cs) == 0 {
		rm.t.Fatalf("the remote received nothing at %s", path)
	}
	return cs[len(cs)-1]
}

// verifyFIT checks a Forge invocation as a careful remote does.
func verifyFIT(ctx context.Context, jwksURL, appID string, h http.Header) (jwt.MapClaims, string, error) {
	return verifyFITAt(ctx, jwksURL, appID, h, time.Now)
}

func verifyFITAt(ctx context.Context, jwksURL, appID string, h http.Header, now func() time.Time) (jwt.MapClaims, string, error) {
	if h.Get("x-b3-traceid") == "" || h.Get("x-b3-spanid") == "" {
		return nil, "", errors.New("missing x-b3 trace headers")
	}
	tok, ok := strings.CutPrefix(h.Get("Authorization"), "Bearer ")
	if !ok {
		return nil, "", errors.New("no bearer FIT")
	}
	return parseFIT(ctx, jwksURL, appID, tok, now)
}

func parseFIT(ctx context.Context, jwksURL, appID, tok string, now func() time.Time) (jwt.MapClaims, string, error) {
	var kid string
	claims := jwt.MapClaims{}
	_, err := jwt.ParseWithClaims(tok, claims, func(t *jwt.Token) (any, error) {
		kid, _ = t.Header["kid"].(string)
		if kid == "" {
			return nil, errors.New("no kid")
		}
		return fetchJWK(ctx, jwksURL, kid)
	}, jwt.WithValidMethods([]string{"RS256"}), jwt.WithIssuer("forge/invocation-token"), jwt.WithAudience(appID),
		jwt.WithExpirationRequired(), jwt.WithIssuedAt(), jwt.WithTimeFunc(now))
	if err != nil {
		return nil, kid, err
	}
	if jti, _ := claims["jti"].(string); jti == "" {
		return nil, kid, errors.New("no jti")
	}
	return claims, kid, nil
}

// fetchJWK reads the JWKS and builds the RSA key with kid from n and e.
func fetchJWK(ctx context.Context, jwksURL, kid string) (*rsa.PublicKey, error) {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, jwksURL, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var set struct {
		Keys []map[string]string `json:"keys"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&set); err != nil {
		return nil, err
	}
	for _, k := range set.Keys {
		if k["kid"] != kid {
			continue
		}
		if k["kty"] != "RSA" || k["alg"] != "RS256" {
			return nil, fmt.Errorf("key %s is %s/%s", kid, k["kty"], k["alg"])
		}
		n, err1 := base64.RawURLEncoding.DecodeString(k["n"])
		e, err2 := base64.RawURLEncoding.DecodeString(k["e"])
		if err1 != nil || err2 != nil {
			return nil, errors.New("bad n or e")
		}
		return &rsa.PublicKey{N: new(big.Int).SetBytes(n), E: int(new(big.Int).SetBytes(e).Int64())}, nil
	}
	return nil, fmt.Errorf("kid %s is not in the JWKS", kid)
}

// testForgeApp is Ferry's shape of Forge app, pointed at rm.
func testForgeApp(rm *forgeRemote) ForgeApp {
	return ForgeApp{
		ID: rm.appID, Name: "Ferry test", Version: "2.0.0", Licensing: true,
		Remotes: map[string]string{"ferry": rm.srv.URL},
		Endpoints: map[string]ForgeEndpoint{
			"ferry-ui":        {Remote: "ferry", SystemToken: true, UserToken: true},
			"ferry-events":    {Remote: "ferry", Route: "/forge/events", SystemToken: true},
			"ferry-trigger":   {Remote: "ferry", Route: "/forge/trigger", SystemToken: true},
			"ferry-uninstall": {Remote: "ferry", Route: "/forge/uninstall", SystemToken: true},
		},
		Triggers:      []ForgeTrigger{{Key: "ferry-lifecycle", Endpoint: "ferry-events", Events: []string{ForgeInstalledEvent, ForgeUpgradedEvent}}},
		Scheduled:     []ForgeScheduled{{Key: "ferry-token-refresh", Endpoint: "ferry-trigger", Interval: "hour"}},
		PreUninstall:  "ferry-uninstall",
		Pages:         []ForgePage{{Type: "jira:adminPage", Key: "ferry-admin", Title: "Ferry", Resource: "main", Endpoint: "ferry-ui"}},
		Resources:     map[string]string{"main": "testdata/forge-ui"},
		Scopes:        []string{"read:app-system-token", "read:app-user-token", "read:jira-user", "read:jira-work", "storage:app", "write:jira-work"},
		Impersonation: []string{"read:jira-user", "read:jira-work"},
	}
}

// installForge installs app and fails the test otherwise.
func installForge(t testing.TB, s *Sim, app ForgeApp) ForgeInstallation {
	t.Helper()
	in, err := s.InstallForge(context.Background(), app)
	if err != nil {
		t.Fatalf("InstallForge: %v", err)
	}
	return in
}

// quickRetries makes retries cost no wall time.
func quickRetries(s *Sim) { s.SetForgeTimings(ForgeTimings{RetryDelay: time.Millisecond}) }

// tokenExp reads a token's exp without verifying it (tokens are opaque to
// remotes except for exp, which Atlassian documents).
func tokenExp(t testing.TB, tok string) time.Time {
	t.Helper()
	claims := jwt.MapClaims{}
	if _, _, err := jwt.NewParser().ParseUnverified(tok, claims); err != nil {
		t.Fatalf("token is not a JWT: %v", err)
	}
	exp, err := claims.GetExpirationTime()
	if err != nil || exp == nil {
		t.Fatalf("token has no exp: %v", err)
	}
	return exp.Time
}

// gw calls the product API gateway with a bearer token.
func gw(t testing.TB, s *Sim, method, path, token string, body any) result {
	t.Helper()
	auth := ""
	if token != "" {
		auth = "Bearer " + token
	}
	return call(t, s.BaseURL(), method, "/ex/jira/"+s.CloudID()+path, auth, body)
}

// claim walks nested claims: claim(c, "app", "installationId").
func claim(c map[string]any, path ...string) any {
	var v any = c
	for _, p := range path {
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = m[p]
	}
	return v
}

func jsonMarshalIndent(v any) ([]byte, error) { return json.MarshalIndent(v, "", "  ") }

// equalJSON compares two values by their JSON encodings.
func equalJSON(t testing.TB, a, b any) bool {
	t.Helper()
	ja, err1 := json.Marshal(a)
	jb, err2 := json.Marshal(b)
	if err1 != nil || err2 != nil {
		t.Fatal(err1, err2)
	}
	return string(ja) == string(jb)
}
