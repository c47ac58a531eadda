package forge_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"ferry/internal/forge"
	"ferry/internal/store"
	"ferry/internal/store/storetest"
)

// TestFITAttacksAreRefusedAndChangeNothing presents, after one genuine
// invocation, every way to forge or misuse a FIT, to the trigger and to the
// Custom UI's API: each is refused with the check it failed named, and the
// database — installations, the system token, the record of used tokens,
// the keysets — is byte for byte what it was.
func TestFITAttacksAreRefusedAndChangeNothing(t *testing.T) {
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		g := newRig(t, db)
		g.trigger(t) // the genuine first contact: a tenant with a token
		_, stranger := testKeys()
		replayed := g.fake.sign(g.fake.newFIT(""), nil)
		if w := g.serve(g.remote.HandleTrigger(), request("POST", forge.RouteTrigger, replayed, map[string]any{}, nil)); w.Code != 200 {
			t.Fatalf("the genuine token: %d %s", w.Code, w.Body)
		}
		uiReplayed := g.fake.sign(g.fake.newFIT(userA), nil)
		api := g.remote.RequireUI(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(204) }))
		if w := g.serve(api, request("GET", forge.RouteAPI+"/me", uiReplayed, nil, nil)); w.Code != 204 {
			t.Fatalf("the genuine UI token: %d %s", w.Code, w.Body)
		}

		mod := func(fn func(x *fit)) string {
			x := g.fake.newFIT("")
			fn(x)
			return g.fake.sign(x, nil)
		}
		app := func(x *fit) map[string]any { return x.claims["app"].(map[string]any) }
		cases := []struct {
			name     string
			token    string
			headers  map[string]string
			status   int
			detail   string
			uiDetail string // what the UI answers, when it differs
		}{
			{"wrong aud", mod(func(x *fit) { x.claims["aud"] = otherAppID }), nil, 401, "not for this app", ""},
			{"aud list naming another app too", mod(func(x *fit) { x.claims["aud"] = []string{appID, otherAppID} }), nil, 401, "not for this app", ""},
			{"a token for another app with that app's id as aud", mod(func(x *fit) { x.claims["aud"] = otherAppID; app(x)["id"] = otherAppID }), nil, 401, "not for this app", ""},
			{"our aud but another app's app.id", mod(func(x *fit) { app(x)["id"] = otherAppID }), nil, 401, "not for this app", ""},
			{"no aud", mod(func(x *fit) { delete(x.claims, "aud") }), nil, 401, "not for this app", ""},
			{"expired", mod(func(x *fit) {
				n := g.clock.Now().Add(-10 * time.Minute).Unix()
				x.claims["iat"], x.claims["nbf"], x.claims["exp"] = n, n, n+25
			}), nil, 401, "expired", ""},
			{"nbf in the future", mod(func(x *fit) {
				n := g.clock.Now().Add(5 * time.Minute).Unix()
				x.claims["iat"], x.claims["nbf"], x.claims["exp"] = n, n, n+25
			}), nil, 401, "expired", ""},
			{"lives for a day", mod(func(x *fit) { x.claims["exp"] = g.clock.Now().Add(24 * time.Hour).Unix() }), nil, 401, "expired", ""},
			{"no exp", mod(func(x *fit) { delete(x.claims, "exp") }), nil, 401, "claims", ""},
			{"no jti", mod(func(x *fit) { delete(x.claims, "jti") }), nil, 401, "claims", ""},
			{"unknown kid", func() string {
				x := g.fake.newFIT("")
				x.header["kid"] = "not-in-the-set"
				return g.fake.sign(x, stranger)
			}(), nil, 503, "read again", ""},
			{"no kid", func() string { x := g.fake.newFIT(""); delete(x.header, "kid"); return g.fake.sign(x, nil) }(), nil, 401, "key id", ""},
			{"published kid, another key", func() string { return g.fake.sign(g.fake.newFIT(""), stranger) }(), nil, 401, "signature", ""},
			{"alg none", func() string {
				x := g.fake.newFIT("")
				x.header["alg"] = "none"
				s := g.fake.sign(x, nil)
				return s[:strings.LastIndex(s, ".")+1]
			}(), nil, 401, "RS256", ""},
			{"HS256 keyed with the public key", func() string {
				x := g.fake.newFIT("")
				x.header["alg"] = "HS256"
				sk, _ := testKeys()
				return signHS256(x, sk.PublicKey.N.Bytes())
			}(), nil, 401, "RS256", ""},
			{"wrong iss", mod(func(x *fit) { x.claims["iss"] = "forge/invocation-token-evil" }), nil, 401, "issuer", ""},
			{"missing trace headers", g.fake.sign(g.fake.newFIT(""), nil), map[string]string{"x-b3-traceid": "", "x-b3-spanid": ""}, 401, "x-b3", ""},
			{"missing span id", g.fake.sign(g.fake.newFIT(""), nil), map[string]string{"x-b3-spanid": ""}, 401, "x-b3", ""},
			{"malformed trace id", g.fake.sign(g.fake.newFIT(""), nil), map[string]string{"x-b3-traceid": "not-hex"}, 401, "x-b3", ""},
			{"replayed jti", replayed, nil, 401, "used before", "not for this endpoint"},
			{"replayed UI jti", uiReplayed, nil, 401, "used before", ""},
			{"tampered installationId", func() string {
				x := g.fake.newFIT("")
				s := g.fake.sign(x, nil)
				other := "ari:cloud:ecosystem::installation/00000000-0000-4000-8000-000000000666"
				app(x)["installationId"] = other
				app(x)["installation"].(map[string]any)["id"] = other
				cb, _ := json.Marshal(x.claims)
				p := strings.Split(s, ".")
				return p[0] + "." + b64.EncodeToString(cb) + "." + p[2]
			}(), nil, 401, "signature", ""},
			{"tampered principal", func() string {
				x := g.fake.newFIT(userA)
				s := g.fake.sign(x, nil)
				x.claims["principal"] = userB
				cb, _ := json.Marshal(x.claims)
				p := strings.Split(s, ".")
				return p[0] + "." + b64.EncodeToString(cb) + "." + p[2]
			}(), nil, 401, "signature", ""},
			{"apiBaseUrl elsewhere", mod(func(x *fit) { app(x)["apiBaseUrl"] = "https://evil.example/ex/jira/" + cloudID }), nil, 401, "claims", ""},
			{"installationId not an ARI", mod(func(x *fit) { app(x)["installationId"] = "ck-1" }), nil, 401, "claims", ""},
			{"no token", "", nil, 401, "no Forge Invocation Token", ""},
			{"not a JWT", "abc.def", nil, 401, "malformed", ""},
		}
		before := snapshot(t, db)
		for _, c := range cases {
			for _, target := range []struct {
				name string
				h    http.Handler
				req  func() *http.Request
			}{
				{"trigger", g.remote.HandleTrigger(), func() *http.Request {
					return request("POST", forge.RouteTrigger, c.token, map[string]any{}, mergeHeaders(c.headers, "x-forge-oauth-system", g.fake.token("system")))
				}},
				{"lifecycle", g.remote.HandleLifecycle(), func() *http.Request {
					return request("POST", forge.RouteLifecycle, c.token, map[string]any{"id": instID, "eventType": "avi:forge:installed:app"}, c.headers)
				}},
				{"ui", api, func() *http.Request { return request("GET", forge.RouteAPI+"/me", c.token, nil, c.headers) }},
				{"preUninstall", g.remote.HandlePreUninstall(), func() *http.Request {
					return request("POST", forge.RoutePreUninstall, c.token, map[string]any{}, c.headers)
				}},
			} {
				w := g.serve(target.h, target.req())
				detail := c.detail
				if target.name == "ui" && c.uiDetail != "" {
					detail = c.uiDetail
				}
				if w.Code != c.status || !strings.Contains(w.Body.String(), detail) {
					t.Errorf("%s on %s: %d %s; want %d naming %q", c.name, target.name, w.Code, w.Body, c.status, detail)
				}
				if ct := w.Header().Get("Content-Type"); ct != "application/json" {
					t.Errorf("%s on %s: Content-Type %q; Forge reads application/json", c.name, target.name, ct)
				}
				if after := snapshot(t, db); after != before {
					t.Fatalf("%s on %s changed the database", c.name, target.name)
				}
			}
		}
	})
}

func mergeHeaders(h map[string]string, k, v string) map[string]string {
	out := map[string]string{k: v}
	for a, b := range h {
		out[a] = b
	}
	return out
}

// TestUnknownKidsRefreshTheKeySetAtMostOnceAMinute: a flood of made-up kids
// costs one JWKS fetch a minute, and a key Atlassian really rotated in is
// accepted within that minute.
func TestUnknownKidsRefreshTheKeySetAtMostOnceAMinute(t *testing.T) {
	db := storetest.SQLite(t)
	g := newRig(t, db)
	g.trigger(t)
	base := g.fake.jwksHits.Load()
	_, stranger := testKeys()
	for i := range 200 {
		x := g.fake.newFIT("")
		x.header["kid"] = "made-up-" + string(rune('a'+i%26)) + time.Now().Format("150405.000000000")
		w := g.serve(g.remote.HandleTrigger(), request("POST", forge.RouteTrigger, g.fake.sign(x, stranger), map[string]any{}, nil))
		if w.Code != 401 && w.Code != 503 {
			t.Fatalf("made-up kid: %d", w.Code)
		}
	}
	if n := g.fake.jwksHits.Load() - base; n > 1 {
		t.Fatalf("200 made-up kids within a minute fetched the key set %d times; want at most 1", n)
	}
	// Atlassian rotates: the new kid is not known yet, and the last fetch
	// was moments ago, so the first FIT with it waits (503 + Retry-After)…
	g.fake.rotate("forge-key-2")
	w := g.serve(g.remote.HandleTrigger(), request("POST", forge.RouteTrigger, g.fake.sign(g.fake.newFIT(""), nil), map[string]any{}, nil))
	if w.Code != 503 || w.Header().Get("Retry-After") == "" {
		t.Fatalf("a new kid within the minute: %d %q", w.Code, w.Header().Get("Retry-After"))
	}
	// …and is accepted once the minute has passed, with one more fetch.
	g.clock.Add(61 * time.Second)
	before := g.fake.jwksHits.Load()
	w = g.serve(g.remote.HandleTrigger(), request("POST", forge.RouteTrigger, g.fake.sign(g.fake.newFIT(""), nil), map[string]any{}, nil))
	if w.Code != 200 {
		t.Fatalf("the rotated key after a minute: %d %s", w.Code, w.Body)
	}
	if n := g.fake.jwksHits.Load() - before; n != 1 {
		t.Fatalf("the rotation cost %d fetches; want 1", n)
	}
	// Known keys keep working without any fetch.
	before = g.fake.jwksHits.Load()
	for range 20 {
		if w := g.serve(g.remote.HandleTrigger(), request("POST", forge.RouteTrigger, g.fake.sign(g.fake.newFIT(""), nil), map[string]any{}, nil)); w.Code != 200 {
			t.Fatalf("known key: %d", w.Code)
		}
	}
	if g.fake.jwksHits.Load() != before {
		t.Fatal("verifying with a cached key fetched the key set")
	}
}
