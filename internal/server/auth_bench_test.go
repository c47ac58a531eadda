package server_test

import (
	"context"
	"crypto"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math/big"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	"ferry/internal/atlassian"
	"ferry/internal/config"
	"ferry/internal/forge"
	"ferry/internal/keys"
	"ferry/internal/privacy"
	"ferry/internal/store/storetest"
	"ferry/internal/tenant"
)

// BenchmarkAuthenticatedRequest compares what authenticating one call to
// the app's JSON API costs on each platform, everything included but the
// handler (a no-op): Connect — an HS256 context JWT checked with the
// tenant's shared secret (lookup, decrypt, verify); Forge — a FIT checked
// against Forge's key set with a warm cache (RS256 verify) and recorded on
// its tenant (the jti used up, the licence and contact time written in one
// transaction). Both on SQLite, one client, every request a fresh token.
//
//	go test -run '^$' -bench AuthenticatedRequest -benchtime 2000x -count 3 ./internal/server/
func BenchmarkAuthenticatedRequest(b *testing.B) {
	const (
		appID   = "ari:cloud:ecosystem::app/0b5d9c54-1111-4222-8333-444455556666"
		instID  = "ari:cloud:ecosystem::installation/7e7e7e7e-1234-4567-89ab-cdef01234567"
		cloudID = "3c2b1a00-aaaa-4bbb-8ccc-ddddeeeeffff"
		user    = "557058:aaaaaaaa-0000-4000-8000-000000000001"
		secret  = "shared-secret-0123456789abcdef0123456789abcdef"
	)
	ctx := context.Background()
	db := storetest.SQLite(b)
	kek, err := keys.OpenLocalKEK(filepath.Join(b.TempDir(), "kek.json"))
	if err != nil {
		b.Fatal(err)
	}
	ring := keys.NewRing(db, kek)
	tenants := tenant.NewStore(db, ring)
	accounts := privacy.NewRegister(db, ring)
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		b.Fatal(err)
	}
	b64 := base64.RawURLEncoding
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		json.NewEncoder(w).Encode(map[string]any{"keys": []map[string]string{{"kty": "RSA", "kid": "k1", "alg": "RS256", "use": "sig",
			"n": b64.EncodeToString(key.N.Bytes()), "e": b64.EncodeToString(big.NewInt(int64(key.E)).Bytes())}}})
	}))
	b.Cleanup(srv.Close)

	cfg := config.Default()
	conn, err := atlassian.New(atlassian.Options{Config: cfg, Tenants: tenants, Keys: ring, Accounts: accounts,
		InstallKeysClient: srv.Client(), JiraClient: srv.Client(), OAuthClient: srv.Client()})
	if err != nil {
		b.Fatal(err)
	}
	if _, _, err := tenants.Install(ctx, tenant.Install{AddonKey: cfg.AddonKey, ProductType: "jira", ClientKey: "ck-bench",
		BaseURL: "https://bench.atlassian.net", SharedSecret: []byte(secret)}); err != nil {
		b.Fatal(err)
	}
	rem, err := forge.New(forge.Options{AppID: appID, JWKSURL: srv.URL, GraphQLURL: srv.URL + "/graphql", StorageURL: srv.URL + "/kvs",
		AddonKey: cfg.AddonKey, AllowLoopback: true, Tenants: tenants, Keys: ring, Accounts: accounts,
		JWKSClient: srv.Client(), APIClient: srv.Client()})
	if err != nil {
		b.Fatal(err)
	}
	noop := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(204) })

	jwt := func(header, claims any, sign func(string) []byte) string {
		hb, _ := json.Marshal(header)
		cb, _ := json.Marshal(claims)
		in := b64.EncodeToString(hb) + "." + b64.EncodeToString(cb)
		return in + "." + b64.EncodeToString(sign(in))
	}
	hs := func(in string) []byte {
		m := hmac.New(sha256.New, []byte(secret))
		m.Write([]byte(in))
		return m.Sum(nil)
	}
	rs := func(in string) []byte {
		h := sha256.Sum256([]byte(in))
		s, _ := rsa.SignPKCS1v15(rand.Reader, key, crypto.SHA256, h[:])
		return s
	}
	fit := func(n int) string {
		now := time.Now().Unix()
		return jwt(map[string]string{"alg": "RS256", "kid": "k1", "typ": "JWT"}, map[string]any{
			"iss": "forge/invocation-token", "aud": appID, "iat": now, "nbf": now, "exp": now + 600, "jti": fmt.Sprintf("bench-%s-%d", rand.Text(), n),
			"principal": user,
			"app": map[string]any{"installationId": instID, "apiBaseUrl": srv.URL + "/ex/jira/" + cloudID, "id": appID,
				"environment": map[string]any{"type": "PRODUCTION"}, "module": map[string]any{"type": "jira:globalPage", "key": "ferry-data-sources"},
				"license": map[string]any{"isActive": true}},
		}, rs)
	}
	trace := func(r *http.Request) {
		t := make([]byte, 16)
		rand.Read(t)
		r.Header.Set("x-b3-traceid", hex.EncodeToString(t))
		r.Header.Set("x-b3-spanid", hex.EncodeToString(t[:8]))
	}
	run := func(b *testing.B, h http.Handler, reqs []*http.Request) {
		b.ResetTimer()
		start := time.Now()
		for i := 0; i < b.N; i++ {
			w := httptest.NewRecorder()
			h.ServeHTTP(w, reqs[i])
			if w.Code != 204 {
				b.Fatalf("request %d: %d %s", i, w.Code, w.Body)
			}
		}
		b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "req/s")
	}

	b.Run("connect-jwt", func(b *testing.B) {
		h := conn.RequireAPI(noop)
		reqs := make([]*http.Request, b.N)
		for i := range reqs {
			now := time.Now().Unix()
			tok := jwt(map[string]string{"alg": "HS256", "typ": "JWT"}, map[string]any{"iss": "ck-bench", "sub": user, "iat": now,
				"exp": now + 600, "qsh": "context-qsh", "jti": fmt.Sprint(i)}, hs)
			reqs[i] = httptest.NewRequest("GET", "/app-api/me", nil)
			reqs[i].Header.Set("Authorization", "JWT "+tok)
		}
		run(b, h, reqs)
	})
	b.Run("forge-fit", func(b *testing.B) {
		h := rem.RequireUI(noop)
		// Warm: the first FIT fetches the key set and makes the tenant.
		warm := httptest.NewRequest("GET", forge.RouteAPI+"/me", nil)
		warm.Header.Set("Authorization", "Bearer "+fit(-1))
		trace(warm)
		if w := httptest.NewRecorder(); func() int { h.ServeHTTP(w, warm); return w.Code }() != 204 {
			b.Fatalf("warm-up: %d %s", w.Code, w.Body)
		}
		reqs := make([]*http.Request, b.N)
		for i := range reqs {
			reqs[i] = httptest.NewRequest("GET", forge.RouteAPI+"/me", nil)
			reqs[i].Header.Set("Authorization", "Bearer "+fit(i))
			trace(reqs[i])
		}
		fetches := rem.Verifier().KeyFetches()
		run(b, h, reqs)
		if rem.Verifier().KeyFetches() != fetches {
			b.Fatal("the key set was fetched again during the run: the cache was not warm")
		}
	})
	// The FIT's checks alone (claims, cached key, RS256), without recording
	// the invocation: how the Forge figure above splits.
	b.Run("forge-fit-verify-only", func(b *testing.B) {
		reqs := make([]*http.Request, b.N)
		for i := range reqs {
			reqs[i] = httptest.NewRequest("GET", forge.RouteAPI+"/me", nil)
			reqs[i].Header.Set("Authorization", "Bearer "+fit(i))
			trace(reqs[i])
		}
		b.ResetTimer()
		start := time.Now()
		for i := 0; i < b.N; i++ {
			if _, err := rem.Verifier().Verify(ctx, reqs[i]); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "req/s")
	})
}
