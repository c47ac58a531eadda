package forge_test

import (
	"bytes"
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
	"io"
	"math/big"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"ferry/internal/forge"
	"ferry/internal/keys"
	"ferry/internal/store"
	"ferry/internal/tenant"
)

// A stand-in for Forge built from its documented contract: an RS256 key
// set, FITs minted with it, and the parts of Atlassian's API gateway a
// remote calls back (the offlineUserAuthToken mutation, the Key-Value
// Store, the product API's app properties). Tests against the simulator
// (internal/cli) check the same code against an independent implementation.

const (
	appID      = "ari:cloud:ecosystem::app/0b5d9c54-1111-4222-8333-444455556666"
	otherAppID = "ari:cloud:ecosystem::app/9f9f9f9f-1111-4222-8333-444455556666"
	cloudID    = "3c2b1a00-aaaa-4bbb-8ccc-ddddeeeeffff"
	instID     = "ari:cloud:ecosystem::installation/7e7e7e7e-1234-4567-89ab-cdef01234567"
	userA      = "557058:aaaaaaaa-0000-4000-8000-000000000001"
	userB      = "557058:bbbbbbbb-0000-4000-8000-000000000002"
)

var (
	keyOnce           sync.Once
	signerKey, strKey *rsa.PrivateKey // published; never published
)

func testKeys() (*rsa.PrivateKey, *rsa.PrivateKey) {
	keyOnce.Do(func() {
		var err error
		if signerKey, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
			panic(err)
		}
		if strKey, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
			panic(err)
		}
	})
	return signerKey, strKey
}

var b64 = base64.RawURLEncoding

// fakeForge is the platform side: JWKS, GraphQL, storage, product API.
type fakeForge struct {
	t   testing.TB
	srv *httptest.Server

	mu          sync.Mutex
	published   map[string]*rsa.PublicKey
	kid         string
	signer      *rsa.PrivateKey
	jwksHits    atomic.Int64
	storage     map[string]json.RawMessage
	connectProp map[string]json.RawMessage // the Connect app's properties
	exchanges   map[string]int             // offline tokens issued, by user
	offlineTTL  time.Duration
	validTokens map[string]string // bearer token → "system" or "offline:<account>" or "user:<account>"
	refuse      map[string]string // account → reason offlineUserAuthToken gives
	lastContext []string          // contextIds of the last mutation
	now         func() time.Time
}

func newFakeForge(t testing.TB, now func() time.Time) *fakeForge {
	sk, _ := testKeys()
	f := &fakeForge{t: t, published: map[string]*rsa.PublicKey{"forge-key-1": &sk.PublicKey}, kid: "forge-key-1", signer: sk,
		storage: map[string]json.RawMessage{}, connectProp: map[string]json.RawMessage{}, exchanges: map[string]int{},
		offlineTTL: 15 * time.Minute, validTokens: map[string]string{}, refuse: map[string]string{}, now: now}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /jwks.json", f.handleJWKS)
	mux.HandleFunc("POST /graphql", f.handleGraphQL)
	mux.HandleFunc("POST /kvs/v1/{op}", f.handleKVS)
	mux.HandleFunc("/ex/jira/{cloud}/{rest...}", f.handleProduct)
	f.srv = httptest.NewServer(mux)
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeForge) apiBase() string { return f.srv.URL + "/ex/jira/" + cloudID }

func (f *fakeForge) handleJWKS(w http.ResponseWriter, r *http.Request) {
	f.jwksHits.Add(1)
	f.mu.Lock()
	defer f.mu.Unlock()
	var keys []map[string]string
	for kid, k := range f.published {
		keys = append(keys, map[string]string{"kty": "RSA", "kid": kid, "alg": "RS256", "use": "sig",
			"n": b64.EncodeToString(k.N.Bytes()), "e": b64.EncodeToString(big.NewInt(int64(k.E)).Bytes())})
	}
	json.NewEncoder(w).Encode(map[string]any{"keys": keys})
}

// rotate publishes a new signing key under kid; the old one stays published.
func (f *fakeForge) rotate(kid string) {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		f.t.Fatal(err)
	}
	f.mu.Lock()
	f.published[kid], f.kid, f.signer = &k.PublicKey, kid, k
	f.mu.Unlock()
}

func (f *fakeForge) token(kind string) string {
	b := make([]byte, 16)
	rand.Read(b)
	// A JWT shape with exp, as Atlassian's are; the remote treats it as opaque.
	claims, _ := json.Marshal(map[string]any{"exp": f.now().Add(2 * time.Hour).Unix(), "jti": hex.EncodeToString(b)})
	tok := b64.EncodeToString([]byte(`{"alg":"none"}`)) + "." + b64.EncodeToString(claims) + "." + hex.EncodeToString(b)
	f.mu.Lock()
	f.validTokens[tok] = kind
	f.mu.Unlock()
	return tok
}

func (f *fakeForge) bearer(r *http.Request) string {
	tok, _ := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.validTokens[tok]
}

func (f *fakeForge) handleGraphQL(w http.ResponseWriter, r *http.Request) {
	if f.bearer(r) != "system" {
		w.WriteHeader(401)
		io.WriteString(w, `{"errors":[{"message":"Unauthorized"}]}`)
		return
	}
	var req struct {
		Query     string `json:"query"`
		Variables struct {
			Input struct {
				ContextIDs []string `json:"contextIds"`
				UserID     string   `json:"userId"`
			} `json:"input"`
		} `json:"variables"`
	}
	json.NewDecoder(r.Body).Decode(&req)
	if !strings.Contains(req.Query, "offlineUserAuthToken(input: $input)") {
		w.WriteHeader(400)
		return
	}
	f.mu.Lock()
	f.lastContext = req.Variables.Input.ContextIDs
	reason := f.refuse[req.Variables.Input.UserID]
	ttl := f.offlineTTL
	f.mu.Unlock()
	if reason != "" {
		json.NewEncoder(w).Encode(map[string]any{"data": map[string]any{"offlineUserAuthToken": map[string]any{
			"success": false, "errors": []map[string]any{{"message": reason}}, "authToken": nil}}})
		return
	}
	tok := f.token("offline:" + req.Variables.Input.UserID)
	f.mu.Lock()
	f.exchanges[req.Variables.Input.UserID]++
	f.mu.Unlock()
	json.NewEncoder(w).Encode(map[string]any{"data": map[string]any{"offlineUserAuthToken": map[string]any{
		"success": true, "errors": nil, "authToken": map[string]any{"token": tok, "ttl": int(ttl / time.Second)}}}})
}

func (f *fakeForge) handleKVS(w http.ResponseWriter, r *http.Request) {
	if f.bearer(r) != "system" {
		w.WriteHeader(401)
		io.WriteString(w, `{"code":"UNAUTHENTICATED","message":"no"}`)
		return
	}
	var req struct {
		Key   string          `json:"key"`
		Value json.RawMessage `json:"value"`
		Where []struct {
			Values []string `json:"values"`
		} `json:"where"`
	}
	json.NewDecoder(r.Body).Decode(&req)
	f.mu.Lock()
	defer f.mu.Unlock()
	switch r.PathValue("op") {
	case "get":
		v, ok := f.storage[req.Key]
		if !ok {
			w.WriteHeader(404)
			io.WriteString(w, `{"code":"KEY_NOT_FOUND","message":"none"}`)
			return
		}
		json.NewEncoder(w).Encode(map[string]any{"key": req.Key, "value": v})
	case "set":
		f.storage[req.Key] = append(json.RawMessage{}, req.Value...)
		w.WriteHeader(204)
	case "delete":
		if _, ok := f.storage[req.Key]; !ok {
			w.WriteHeader(404)
			return
		}
		delete(f.storage, req.Key)
		w.WriteHeader(204)
	case "query":
		var data []map[string]any
		for k, v := range f.storage {
			if len(req.Where) == 0 || strings.HasPrefix(k, req.Where[0].Values[0]) {
				data = append(data, map[string]any{"key": k, "value": v})
			}
		}
		json.NewEncoder(w).Encode(map[string]any{"data": data})
	}
}

func (f *fakeForge) handleProduct(w http.ResponseWriter, r *http.Request) {
	who := f.bearer(r)
	if who == "" {
		w.WriteHeader(401)
		return
	}
	rest := "/" + r.PathValue("rest")
	f.mu.Lock()
	defer f.mu.Unlock()
	switch {
	case rest == "/rest/atlassian-connect/1/addons/ferry-bi-connector/properties" && who == "system":
		var keys []map[string]string
		for k := range f.connectProp {
			keys = append(keys, map[string]string{"key": k})
		}
		json.NewEncoder(w).Encode(map[string]any{"keys": keys})
	case strings.HasPrefix(rest, "/rest/atlassian-connect/1/addons/ferry-bi-connector/properties/") && who == "system":
		k := strings.TrimPrefix(rest, "/rest/atlassian-connect/1/addons/ferry-bi-connector/properties/")
		v, ok := f.connectProp[k]
		if !ok {
			w.WriteHeader(404)
			return
		}
		json.NewEncoder(w).Encode(map[string]any{"key": k, "value": v})
	case rest == "/rest/api/3/myself":
		json.NewEncoder(w).Encode(map[string]any{"accountId": strings.TrimPrefix(strings.TrimPrefix(who, "offline:"), "user:"), "displayName": who})
	default:
		w.WriteHeader(404)
	}
}

// fit is a FIT's parts before signing; tests change them.
type fit struct {
	header map[string]any
	claims map[string]any
}

func (f *fakeForge) newFIT(principal string) *fit {
	now := f.now().Unix()
	c := map[string]any{
		"iss": "forge/invocation-token", "aud": appID, "iat": now, "nbf": now, "exp": now + 25,
		"jti": fmt.Sprintf("jti-%d-%x", now, randBytes(8)),
		"app": map[string]any{"installationId": instID, "apiBaseUrl": f.apiBase(), "id": appID, "appVersion": "1.0.0",
			"environment": map[string]any{"type": "PRODUCTION", "id": "env"}, "module": map[string]any{"type": "core:endpoint", "key": "ferry-events"},
			"installation": map[string]any{"id": instID, "contexts": []string{"ari:cloud:jira:" + cloudID + ":workspace/ws-1"}},
			"license":      map[string]any{"isActive": true}},
	}
	if principal != "" {
		c["principal"] = principal
		c["context"] = map[string]any{"cloudId": cloudID, "siteUrl": "https://example.atlassian.net", "moduleKey": "ferry-data-sources"}
		c["app"].(map[string]any)["module"] = map[string]any{"type": "jira:globalPage", "key": "ferry-data-sources"}
	}
	f.mu.Lock()
	kid := f.kid
	f.mu.Unlock()
	return &fit{header: map[string]any{"alg": "RS256", "typ": "JWT", "kid": kid}, claims: c}
}

func randBytes(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

func (f *fakeForge) sign(x *fit, key *rsa.PrivateKey) string {
	hb, _ := json.Marshal(x.header)
	cb, _ := json.Marshal(x.claims)
	in := b64.EncodeToString(hb) + "." + b64.EncodeToString(cb)
	if key == nil {
		f.mu.Lock()
		key = f.signer
		f.mu.Unlock()
	}
	h := sha256.Sum256([]byte(in))
	sig, err := rsa.SignPKCS1v15(rand.Reader, key, crypto.SHA256, h[:])
	if err != nil {
		f.t.Fatal(err)
	}
	return in + "." + b64.EncodeToString(sig)
}

func signHS256(x *fit, secret []byte) string {
	hb, _ := json.Marshal(x.header)
	cb, _ := json.Marshal(x.claims)
	in := b64.EncodeToString(hb) + "." + b64.EncodeToString(cb)
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(in))
	return in + "." + b64.EncodeToString(m.Sum(nil))
}

// request is what Forge sends the remote for one invocation.
func request(method, path, fitToken string, body any, headers map[string]string) *http.Request {
	var rd io.Reader = http.NoBody
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	r := httptest.NewRequest(method, path, rd)
	if fitToken != "" {
		r.Header.Set("Authorization", "Bearer "+fitToken)
	}
	r.Header.Set("x-b3-traceid", hex.EncodeToString(randBytes(16)))
	r.Header.Set("x-b3-spanid", hex.EncodeToString(randBytes(8)))
	if body != nil {
		r.Header.Set("Content-Type", "application/json")
	}
	for k, v := range headers {
		if v == "" {
			r.Header.Del(k)
		} else {
			r.Header.Set(k, v)
		}
	}
	return r
}

// clock is a settable clock shared by Ferry's side, its database and the fake.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

type rig struct {
	db      *store.DB
	tenants *tenant.Store
	ring    *keys.Ring
	remote  *forge.Remote
	fake    *fakeForge
	clock   *clock
}

func newRig(t *testing.T, db *store.DB) *rig {
	t.Helper()
	c := &clock{t: time.Now().UTC().Truncate(time.Second)}
	db.SetClock(c.Now)
	kek, err := keys.OpenLocalKEK(filepath.Join(t.TempDir(), "kek.json"))
	if err != nil {
		t.Fatal(err)
	}
	ring := keys.NewRing(db, kek)
	ts := tenant.NewStore(db, ring)
	fk := newFakeForge(t, c.Now)
	rem, err := forge.New(forge.Options{AppID: appID, JWKSURL: fk.srv.URL + "/jwks.json", GraphQLURL: fk.srv.URL + "/graphql",
		StorageURL: fk.srv.URL + "/kvs", AddonKey: "ferry-bi-connector", AllowLoopback: true,
		Tenants: ts, Keys: ring, JWKSClient: fk.srv.Client(), APIClient: fk.srv.Client(), Now: c.Now})
	if err != nil {
		t.Fatal(err)
	}
	return &rig{db: db, tenants: ts, ring: ring, remote: rem, fake: fk, clock: c}
}

func (g *rig) serve(h http.Handler, r *http.Request) *httptest.ResponseRecorder {
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r.WithContext(context.Background()))
	return w
}

// trigger delivers the scheduled trigger with a fresh system token.
func (g *rig) trigger(t *testing.T) string {
	t.Helper()
	sys := g.fake.token("system")
	w := g.serve(g.remote.HandleTrigger(), request("POST", forge.RouteTrigger, g.fake.sign(g.fake.newFIT(""), nil), map[string]any{},
		map[string]string{"x-forge-oauth-system": sys}))
	if w.Code != 200 || w.Header().Get("Content-Type") != "application/json" {
		t.Fatalf("trigger: %d %s %s", w.Code, w.Header().Get("Content-Type"), w.Body)
	}
	return sys
}

// snapshot is every row Ferry keeps of tenants, used tokens and keys.
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
