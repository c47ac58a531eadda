package jirasim

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http/httptest"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"
)

func kvs(t testing.TB, s *Sim, op, token string, body any) result {
	t.Helper()
	auth := ""
	if token != "" {
		auth = "Bearer " + token
	}
	return call(t, s.BaseURL(), "POST", "/forge/storage/kvs/v1/"+op, auth, body)
}

func kvsCode(t testing.TB, r result) string {
	t.Helper()
	var e struct{ Code, Message string }
	r.decode(t, &e)
	if e.Message == "" {
		t.Fatalf("error without message: %s", r.body)
	}
	return e.Code
}

// TestForgeStorageShapes: set, get, delete and query answer in the
// documented shapes; a query pages through exactly the keys with the
// prefix, in key order, compared against the same data kept locally.
func TestForgeStorageShapes(t *testing.T) {
	clock := &fakeClock{t: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}
	s, _ := newTestSim(t, Options{Issues: 5, Seed: 51})
	s.SetClock(clock.now)
	rm := newForgeRemote(t, s)
	in := installForge(t, s, testForgeApp(rm))
	sys := rm.last("/forge/events").Header.Get("x-forge-oauth-system")

	kvs(t, s, "set", sys, map[string]any{"key": "source:1", "value": map[string]any{"name": "Sales", "jql": "project = CORE"}}).status(t, 204)
	var got map[string]any
	kvs(t, s, "get", sys, map[string]any{"key": "source:1"}).status(t, 200).decode(t, &got)
	if got["key"] != "source:1" || claim(got, "value", "name") != "Sales" || len(got) != 2 {
		t.Fatalf("get: %v", got)
	}
	clock.advance(time.Minute)
	kvs(t, s, "set", sys, map[string]any{"key": "source:1", "value": "v2"}).status(t, 204)
	kvs(t, s, "get", sys, map[string]any{"key": "source:1", "options": map[string]any{"metadataFields": []string{"CREATED_AT", "UPDATED_AT"}}}).status(t, 200).decode(t, &got)
	if got["value"] != "v2" || got["createdAt"] != float64(clock.now().Add(-time.Minute).UnixMilli()) || got["updatedAt"] != float64(clock.now().UnixMilli()) {
		t.Fatalf("get with metadata: %v", got)
	}
	if r := kvs(t, s, "get", sys, map[string]any{"key": "nope"}); r.resp.StatusCode != 404 || kvsCode(t, r) != "KEY_NOT_FOUND" {
		t.Fatalf("missing key: %d %s", r.resp.StatusCode, r.body)
	}
	kvs(t, s, "delete", sys, map[string]any{"key": "source:1"}).status(t, 204)
	if r := kvs(t, s, "delete", sys, map[string]any{"key": "source:1"}); r.resp.StatusCode != 404 || kvsCode(t, r) != "KEY_NOT_FOUND" {
		t.Fatalf("deleting twice: %d %s", r.resp.StatusCode, r.body)
	}
	// TTL: gone once it has passed.
	kvs(t, s, "set", sys, map[string]any{"key": "tmp", "value": 1, "options": map[string]any{"ttl": map[string]any{"value": 2, "unit": "MINUTES"}}}).status(t, 204)
	clock.advance(2 * time.Minute)
	kvs(t, s, "get", sys, map[string]any{"key": "tmp"}).status(t, 404)

	// Generated keys under three prefixes; page through each prefix.
	rng := rand.New(rand.NewPCG(51, 1))
	local := map[string]int{}
	for i := range 137 {
		key := fmt.Sprintf("%s:%05d", []string{"ds", "tok", "ds-old"}[rng.IntN(3)], rng.IntN(100000))
		local[key] = i
		kvs(t, s, "set", sys, map[string]any{"key": key, "value": map[string]any{"i": i}}).status(t, 204)
	}
	for _, prefix := range []string{"ds:", "ds", "tok:", "", "zzz"} {
		var want []string
		for k := range local {
			if strings.HasPrefix(k, prefix) {
				want = append(want, k)
			}
		}
		sort.Strings(want)
		for _, limit := range []int{1, 7, 20} {
			var seen []string
			cursor := ""
			for pages := 0; pages < 1000; pages++ {
				req := map[string]any{"limit": limit, "where": []map[string]any{{"property": "key", "condition": "BEGINS_WITH", "values": []string{prefix}}}}
				if prefix == "" {
					delete(req, "where")
				}
				if cursor != "" {
					req["after"] = cursor
				}
				var page struct {
					Data []struct {
						Key   string
						Value map[string]int
					}
					Cursor string
				}
				kvs(t, s, "query", sys, req).status(t, 200).decode(t, &page)
				if len(page.Data) > limit {
					t.Fatalf("page of %d over limit %d", len(page.Data), limit)
				}
				for _, d := range page.Data {
					if d.Value["i"] != local[d.Key] {
						t.Fatalf("%s holds %v, want %d", d.Key, d.Value, local[d.Key])
					}
					seen = append(seen, d.Key)
				}
				if page.Cursor == "" {
					break
				}
				cursor = page.Cursor
			}
			if !slices.Equal(seen, want) {
				t.Fatalf("prefix %q limit %d: %d keys, want %d", prefix, limit, len(seen), len(want))
			}
		}
	}
	if n := len(s.ForgeStorage(in.ID)); n != len(local) {
		t.Fatalf("ForgeStorage holds %d, want %d", n, len(local))
	}
}

// TestForgeStorageLimitsAndRefusals: the documented key and depth limits,
// with their error codes, at the boundary; tokens other than the app's
// system token, and apps without storage:app, are refused; installations
// never see each other's data. Each refusal stores nothing.
func TestForgeStorageLimitsAndRefusals(t *testing.T) {
	s, _ := newTestSim(t, Options{Issues: 5, Seed: 52})
	rm := newForgeRemote(t, s)
	in := installForge(t, s, testForgeApp(rm))
	sys := rm.last("/forge/events").Header.Get("x-forge-oauth-system")
	if _, err := s.InvokeForge(t.Context(), in.ID, "ferry-admin", s.Users()[0].AccountID, ForgeRequest{Method: "GET", Path: "/forge/ui/x"}); err != nil {
		t.Fatal(err)
	}
	userTok := rm.last("/forge/ui/x").Header.Get("x-forge-oauth-user")
	nested := func(depth int) any {
		var v any = "leaf"
		for range depth {
			v = []any{v}
		}
		return v
	}
	ok := map[string]any{
		"500 characters": map[string]any{"key": strings.Repeat("k", 500), "value": 1},
		"all key chars":  map[string]any{"key": "aZ09:._ -#\tx", "value": 1},
		"depth 32":       map[string]any{"key": "deep", "value": nested(32)},
	}
	for name, body := range ok {
		if r := kvs(t, s, "set", sys, body); r.resp.StatusCode != 204 {
			t.Errorf("%s: %d %s", name, r.resp.StatusCode, r.body)
		}
	}
	stored := len(s.ForgeStorage(in.ID))
	for _, tc := range []struct {
		name, token string
		body        any
		status      int
		code        string
	}{
		{"501 characters", sys, map[string]any{"key": strings.Repeat("k", 501), "value": 1}, 400, "KEY_TOO_LONG"},
		{"empty key", sys, map[string]any{"key": "", "value": 1}, 400, "KEY_TOO_SHORT"},
		{"no key", sys, map[string]any{"value": 1}, 400, "KEY_TOO_SHORT"},
		{"slash in key", sys, map[string]any{"key": "a/b", "value": 1}, 400, "INVALID_KEY"},
		{"non-ASCII key", sys, map[string]any{"key": "ключ", "value": 1}, 400, "INVALID_KEY"},
		{"whitespace key", sys, map[string]any{"key": "   ", "value": 1}, 400, "INVALID_KEY"},
		{"depth 33", sys, map[string]any{"key": "deeper", "value": nested(33)}, 400, "MAX_DEPTH"},
		{"null value", sys, map[string]any{"key": "n", "value": nil}, 400, "BAD_REQUEST"},
		{"too large", sys, map[string]any{"key": "big", "value": strings.Repeat("x", 250<<10)}, 400, "MAX_SIZE"},
		{"unknown field", sys, map[string]any{"key": "u", "value": 1, "extra": true}, 400, "BAD_REQUEST"},
		{"no token", "", map[string]any{"key": "a", "value": 1}, 401, "UNAUTHENTICATED"},
		{"bad token", "nope", map[string]any{"key": "a", "value": 1}, 401, "UNAUTHENTICATED"},
		{"user token", userTok, map[string]any{"key": "a", "value": 1}, 403, "FORBIDDEN"},
	} {
		r := kvs(t, s, "set", tc.token, tc.body)
		if r.resp.StatusCode != tc.status || kvsCode(t, r) != tc.code {
			t.Errorf("%s: %d %s, want %d %s", tc.name, r.resp.StatusCode, r.body, tc.status, tc.code)
		}
	}
	if n := len(s.ForgeStorage(in.ID)); n != stored {
		t.Fatalf("refused writes changed the store: %d → %d keys", stored, n)
	}
	for _, q := range []map[string]any{
		{"limit": 21}, {"limit": 0},
		{"where": []map[string]any{{"property": "value", "condition": "BEGINS_WITH", "values": []string{"a"}}}},
		{"where": []map[string]any{{"property": "key", "condition": "EQUAL_TO", "values": []string{"a"}}}},
		{"after": "not a cursor"},
	} {
		if r := kvs(t, s, "query", sys, q); r.resp.StatusCode != 400 {
			t.Errorf("query %v: %d %s", q, r.resp.StatusCode, r.body)
		}
	}

	// Another app on the site: its own store, and none without storage:app.
	orm := newForgeRemote(t, s)
	orm.appID = "ari:cloud:ecosystem::app/" + s.uuidFrom("second-app")
	second := testForgeApp(orm)
	oin := installForge(t, s, second)
	osys := orm.last("/forge/events").Header.Get("x-forge-oauth-system")
	if r := kvs(t, s, "get", osys, map[string]any{"key": "deep"}); r.resp.StatusCode != 404 {
		t.Fatalf("another installation reads this one's data: %d", r.resp.StatusCode)
	}
	kvs(t, s, "set", osys, map[string]any{"key": "deep", "value": "theirs"}).status(t, 204)
	var got map[string]any
	kvs(t, s, "get", sys, map[string]any{"key": "deep"}).status(t, 200).decode(t, &got)
	if _, isList := got["value"].([]any); !isList {
		t.Fatalf("another installation overwrote this one's value: %v", got)
	}
	if err := s.UninstallForge(t.Context(), oin.ID); err != nil {
		t.Fatal(err)
	}
	srm := newForgeRemote(t, s)
	srm.appID = "ari:cloud:ecosystem::app/" + s.uuidFrom("no-storage-app")
	noStorage := testForgeApp(srm)
	noStorage.Scopes = slices.DeleteFunc(slices.Clone(noStorage.Scopes), func(sc string) bool { return sc == "storage:app" })
	installForge(t, s, noStorage)
	if r := kvs(t, s, "get", srm.last("/forge/events").Header.Get("x-forge-oauth-system"), map[string]any{"key": "deep"}); r.resp.StatusCode != 403 {
		t.Fatalf("an app without storage:app: %d", r.resp.StatusCode)
	}
}

// FuzzJSONDepth: the storage's depth count agrees with encoding/json's
// tokenizer on every valid JSON value.
func FuzzJSONDepth(f *testing.F) {
	for _, seed := range []string{`1`, `"a[b"`, `[[[]]]`, `{"a":{"b":[1,{"c":"\"]"}]}}`, `[{},[],{"x":[[]]}]`, `"\\"`} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		if !json.Valid(raw) {
			return
		}
		dec := json.NewDecoder(bytes.NewReader(raw))
		depth, deepest := 0, 0
		for {
			tok, err := dec.Token()
			if err != nil {
				break
			}
			switch tok {
			case json.Delim('{'), json.Delim('['):
				depth++
				deepest = max(deepest, depth)
			case json.Delim('}'), json.Delim(']'):
				depth--
			}
		}
		if got := jsonDepth(raw); got != deepest {
			t.Fatalf("jsonDepth(%s) = %d, want %d", raw, got, deepest)
		}
	})
}

// FuzzKVSKey: a key the store accepts is 1–500 characters of the
// documented set and not all whitespace; everything else is refused.
func FuzzKVSKey(f *testing.F) {
	for _, seed := range []string{"a", "", " ", "a b", "a/b", "é", strings.Repeat("x", 501), "#-:._", "\u00a0"} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, key string) {
		w := httptest.NewRecorder()
		got := validKVSKey(w, &key)
		n, allSpace, allowed := 0, true, true
		for _, c := range key {
			n++
			sp := strings.ContainsRune(" \t\n\v\f\r\u0085\u00a0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000", c)
			allSpace = allSpace && sp
			if !sp && !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.ContainsRune(":._-#", c)) {
				allowed = false
			}
		}
		want := n >= 1 && n <= 500 && allowed && !allSpace
		if got != want {
			t.Fatalf("key %q: accepted %v, want %v", key, got, want)
		}
	})
}
