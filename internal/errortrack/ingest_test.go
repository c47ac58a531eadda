package errortrack_test

import (
	"bytes"
	"compress/flate"
	"compress/gzip"
	"compress/zlib"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"

	"ferry/internal/config"
	"ferry/internal/errortrack"
	"ferry/internal/server"
	"ferry/internal/store"
	"ferry/internal/store/storetest"
)

const (
	key      = "0123456789abcdef0123456789abcdef"
	otherKey = "fedcba9876543210fedcba9876543210"
	appOrig  = "https://ferry.example.com"
)

// Planted personal data and secrets: none may be stored or forwarded.
var planted = []string{
	"ada.lovelace@example.org", "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiI1NTcwNTgifQ.c2lnbmF0dXJlc2lnbmF0dXJl",
	"4111 1111 1111 1111", "4111111111111111", "203.0.113.77", "hunter2hunter2", "557058:f58131cb-b67d-43c7-b30d-6b58d40bd077",
	"JSESSIONID=s3ss10n", "DE89 3704 0044 0532 0130 00",
}

type relay struct {
	url   string
	db    *store.DB
	store *errortrack.Store
}

func newRelay(t *testing.T, o errortrack.Options) relay {
	t.Helper()
	db := storetest.SQLite(t)
	st := errortrack.NewStore(db)
	o.Store = st
	if o.Projects == nil {
		o.Projects = []errortrack.Project{{ID: "1", PublicKey: key}, {ID: "2", PublicKey: otherKey}}
	}
	if o.AllowedOrigins == nil {
		o.AllowedOrigins = []string{appOrig}
	}
	if o.Pseudonyms == nil {
		o.Pseudonyms = fixedPseudonyms{}
	}
	tr := errortrack.New(o)
	cfg := config.Default()
	srv := httptest.NewServer(server.NewServer(server.Deps{Config: cfg, Log: slog.New(slog.DiscardHandler), DB: db, Errors: tr}))
	t.Cleanup(srv.Close)
	return relay{url: srv.URL, db: db, store: st}
}

type fixedPseudonyms struct{}

func (fixedPseudonyms) Pseudonym(scope, v string) string {
	return fmt.Sprintf("pseudo-%s-%d", scope, len(v))
}

func (r relay) stored(t *testing.T) (events, outbox int) {
	return count(t, r.db, "error_events"), count(t, r.db, "error_outbox")
}

// dump is every byte the relay's tables hold.
func (r relay) dump(t *testing.T) string {
	t.Helper()
	var b strings.Builder
	for _, q := range []string{`SELECT event_id || project || level || release || environment || platform || title || browser || os, payload FROM error_events`,
		`SELECT item_type || event_id, payload FROM error_outbox`} {
		rows, err := r.db.SQL.Query(q)
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			var a string
			var p []byte
			rows.Scan(&a, &p)
			b.WriteString(a)
			b.Write(p)
		}
		rows.Close()
	}
	return b.String()
}

func browserEvent(id string) string {
	ev := map[string]any{
		"event_id": id, "platform": "javascript", "level": "error", "release": "ferry@1.0.0", "environment": "production",
		"exception": map[string]any{"values": []any{map[string]any{
			"type": "TypeError", "value": "cannot read owner of ada.lovelace@example.org (token " + planted[1] + ")",
			"mechanism": map[string]any{"type": "onerror", "handled": false},
			"stacktrace": map[string]any{"frames": []any{map[string]any{
				"filename": "https://ferry.example.com/static/app.js?v=abc&jwt=" + planted[1], "function": "render", "lineno": 10, "colno": 3, "in_app": true}}}}}},
		"message":     "card 4111 1111 1111 1111 from 203.0.113.77",
		"user":        map[string]any{"email": "ada.lovelace@example.org", "ip_address": "203.0.113.77"},
		"tags":        map[string]any{"ferry_tenant": "ten_0123456789abcdef0123456789abcdef", "page": "data-sources", "password": "hunter2hunter2"},
		"breadcrumbs": map[string]any{"values": []any{map[string]any{"category": "console", "message": "hello " + planted[6], "timestamp": 1764482400.1}}},
		"request": map[string]any{"url": "https://ferry.example.com/app/data-sources?jwt=" + planted[1],
			"headers": map[string]any{"User-Agent": "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.1 Safari/605.1.15",
				"Cookie": planted[7]}},
		"extra": map[string]any{"iban": planted[8]},
	}
	b, _ := json.Marshal(ev)
	return string(b)
}

func envelopeOf(items ...[2]string) []byte {
	var b bytes.Buffer
	b.WriteString(`{"sent_at":"2026-11-30T06:00:00.000Z"}` + "\n")
	for _, it := range items {
		fmt.Fprintf(&b, `{"type":%q,"length":%d}`+"\n%s\n", it[0], len(it[1]), it[1])
	}
	return b.Bytes()
}

func post(t *testing.T, url string, body []byte, hdr map[string]string) (*http.Response, string) {
	t.Helper()
	req, _ := http.NewRequest("POST", url, bytes.NewReader(body))
	req.Header.Set("Content-Type", "text/plain;charset=UTF-8")
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

func TestIngestKeepsOnlyScrubbedEventsAndTheBrowser(t *testing.T) {
	r := newRelay(t, errortrack.Options{Forward: true})
	id := "9ec79c33ec9942ab8353589fcb2e04dc"
	session := `{"sid":"7c1f9ac2e2c84c7db4c6c3e1d5e6f7a8","did":"ada.lovelace@example.org","status":"ok","started":"2026-11-30T06:00:00Z","attrs":{"release":"ferry@1.0.0","ip_address":"203.0.113.77","user_agent":"x"}}`
	resp, body := post(t, r.url+"/errors/api/1/envelope/?sentry_key="+key+"&sentry_version=7", envelopeOf([2]string{"event", browserEvent(id)}, [2]string{"session", session}), map[string]string{"Origin": appOrig})
	if resp.StatusCode != 200 || !strings.Contains(body, id) {
		t.Fatalf("status %d %s", resp.StatusCode, body)
	}
	if resp.Header.Get("Access-Control-Allow-Origin") != appOrig {
		t.Errorf("no CORS header for the app's origin: %v", resp.Header)
	}
	if ev, ob := r.stored(t); ev != 1 || ob != 2 {
		t.Fatalf("stored %d events, %d outbox rows; want 1 and 2", ev, ob)
	}
	all := r.dump(t)
	for _, p := range planted {
		if strings.Contains(all, p) {
			t.Errorf("stored data keeps %q", p)
		}
	}
	p, _ := r.store.Recent(context.Background(), errortrack.Filter{})
	e := p.Events[0]
	if e.Browser != "Safari 17.1" || e.OS != "Mac OS X 10.15.7" || e.Release != "ferry@1.0.0" || e.Project != "1" || !strings.HasPrefix(e.Title, "TypeError: cannot read owner of [email]") {
		t.Errorf("summary = %+v", e)
	}
	_, payload, _ := r.store.Event(context.Background(), e.ID)
	var kept map[string]any
	json.Unmarshal(payload, &kept)
	if u, _ := kept["user"].(map[string]any); u["id"] != "pseudo-ten_0123456789abcdef0123456789abcdef-24" || len(u) != 1 {
		t.Errorf("user = %v, want only the per-tenant pseudonym", kept["user"])
	}
	if tags, _ := kept["tags"].(map[string]any); tags["page"] != "data-sources" || tags["ferry_tenant"] != nil || len(tags) != 1 {
		t.Errorf("tags = %v", kept["tags"])
	}
	for _, gone := range []string{"extra", "server_name"} {
		if _, ok := kept[gone]; ok {
			t.Errorf("%s kept", gone)
		}
	}
}

func TestBadInputGetsASpecificErrorAndStoresNothing(t *testing.T) {
	r := newRelay(t, errortrack.Options{Forward: true, MaxEnvelopeBytes: 64 << 10, MaxItemBytes: 16 << 10})
	good := envelopeOf([2]string{"event", browserEvent("9ec79c33ec9942ab8353589fcb2e04dc")})
	gz := func(b []byte) []byte {
		var out bytes.Buffer
		w := gzip.NewWriter(&out)
		w.Write(b)
		w.Close()
		return out.Bytes()
	}
	ok := "?sentry_key=" + key
	cases := []struct {
		name   string
		path   string
		body   []byte
		hdr    map[string]string
		status int
		want   string
	}{
		{"unknown project", "/errors/api/99/envelope/" + ok, good, nil, 404, `no project \"99\"`},
		{"wrong key", "/errors/api/1/envelope/?sentry_key=" + otherKey, good, nil, 401, "not this project's public key"},
		{"wrong key in header", "/errors/api/1/envelope/", good, map[string]string{"X-Sentry-Auth": "Sentry sentry_version=7, sentry_key=" + otherKey}, 401, "not this project's public key"},
		{"no key", "/errors/api/1/envelope/", good, nil, 401, "no sentry_key"},
		{"origin not allowed", "/errors/api/1/envelope/" + ok, good, map[string]string{"Origin": "https://evil.example"}, 403, "origin https://evil.example is not allowed"},
		{"malformed envelope header", "/errors/api/1/envelope/" + ok, []byte("nope\n{}"), nil, 400, "envelope header: not a JSON object"},
		{"item without type", "/errors/api/1/envelope/" + ok, []byte("{}\n{\"length\":2}\n{}"), nil, 400, `envelope item 1: header has no \"type\"`},
		{"event not an object", "/errors/api/1/envelope/" + ok, envelopeOf([2]string{"event", `[1,2]`}), nil, 400, "envelope item 1 (event): event: not a JSON object"},
		{"event field of the wrong shape", "/errors/api/1/envelope/" + ok, envelopeOf([2]string{"event", `{"exception":{"values":[{"stacktrace":{"frames":[{"lineno":"ten"}]}}]}}`}), nil, 400, "lineno"},
		{"bad event_id", "/errors/api/1/envelope/" + ok, envelopeOf([2]string{"event", `{"event_id":"xyz"}`}), nil, 400, "event_id: must be 32 hexadecimal digits"},
		{"one bad item spoils the envelope", "/errors/api/1/envelope/" + ok, envelopeOf([2]string{"event", browserEvent("9ec79c33ec9942ab8353589fcb2e04dc")}, [2]string{"session", `"x"`}), nil, 400, "envelope item 2 (session)"},
		{"oversize item", "/errors/api/1/envelope/" + ok, envelopeOf([2]string{"event", `{"message":"` + strings.Repeat("x", 17<<10) + `"}`}), nil, 413, "envelope item 1 (event) is"},
		{"oversize store event", "/errors/api/1/store/" + ok, []byte(`{"message":"` + strings.Repeat("x", 17<<10) + `"}`), nil, 413, "event is"},
		{"oversize after gzip", "/errors/api/1/envelope/" + ok, gz(append([]byte("{}\n{\"type\":\"event\"}\n"), bytes.Repeat([]byte("x"), 65<<10)...)), map[string]string{"Content-Encoding": "gzip"}, 413, "after decompression"},
		{"oversize before anything", "/errors/api/1/envelope/" + ok, bytes.Repeat([]byte("x"), server.MaxBodyBytes+1), nil, 413, "request body larger than"},
		{"not gzip", "/errors/api/1/envelope/" + ok, good, map[string]string{"Content-Encoding": "gzip"}, 400, "not valid gzip"},
		{"unknown encoding", "/errors/api/1/envelope/" + ok, good, map[string]string{"Content-Encoding": "br"}, 400, `Content-Encoding \"br\" is not supported`},
		{"store body not JSON", "/errors/api/1/store/" + ok, []byte("hello"), nil, 400, "not a JSON object"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			resp, body := post(t, r.url+c.path, c.body, c.hdr)
			if resp.StatusCode != c.status || !strings.Contains(body, c.want) {
				t.Errorf("status %d %s; want %d containing %q", resp.StatusCode, body, c.status, c.want)
			}
			if ct := resp.Header.Get("Content-Type"); ct != "application/problem+json" {
				t.Errorf("Content-Type %q", ct)
			}
			if ev, ob := r.stored(t); ev != 0 || ob != 0 {
				t.Fatalf("after %s: %d events and %d outbox rows stored", c.name, ev, ob)
			}
		})
	}
}

func TestKeyIsReadFromEveryPlaceSDKsPutIt(t *testing.T) {
	r := newRelay(t, errortrack.Options{})
	n := 0
	send := func(path string, hdr map[string]string, header string) {
		n++
		id := eventID(1000 + n)
		resp, body := post(t, r.url+path, []byte(header+"\n"+`{"type":"event"}`+"\n"+`{"event_id":"`+id+`","message":"m"}`), hdr)
		if resp.StatusCode != 200 {
			t.Errorf("%s %v: %d %s", path, hdr, resp.StatusCode, body)
		}
	}
	send("/errors/api/1/envelope/?sentry_key="+key, nil, "{}")
	send("/errors/api/1/envelope/", map[string]string{"X-Sentry-Auth": "Sentry sentry_version=7, sentry_client=sentry.go/0.50.0, sentry_key=" + key + ", sentry_secret=x"}, "{}")
	send("/errors/api/1/envelope/", map[string]string{"Authorization": "Sentry sentry_key=" + key + ", sentry_version=7"}, "{}")
	send("/errors/api/1/envelope/", nil, `{"dsn":"https://`+key+`@ferry.example.com/errors/1"}`)
	// An envelope's DSN for another project does not authenticate this one.
	resp, _ := post(t, r.url+"/errors/api/2/envelope/", []byte(`{"dsn":"https://`+key+`@ferry.example.com/errors/1"}`+"\n"+`{"type":"event"}`+"\n{}"), nil)
	if resp.StatusCode != 401 {
		t.Errorf("DSN of project 1 on project 2: %d", resp.StatusCode)
	}
	if ev, _ := r.stored(t); ev != 4 {
		t.Errorf("stored %d, want 4", ev)
	}
}

func TestCompressedBodiesAreAccepted(t *testing.T) {
	r := newRelay(t, errortrack.Options{})
	for i, enc := range []string{"gzip", "deflate-zlib", "deflate-raw", "identity"} {
		raw := envelopeOf([2]string{"event", fmt.Sprintf(`{"event_id":"%s","message":"m"}`, eventID(i+1))})
		var b bytes.Buffer
		header := enc
		switch enc {
		case "gzip":
			w := gzip.NewWriter(&b)
			w.Write(raw)
			w.Close()
		case "deflate-zlib":
			w := zlib.NewWriter(&b)
			w.Write(raw)
			w.Close()
			header = "deflate"
		case "deflate-raw":
			w, _ := flate.NewWriter(&b, 5)
			w.Write(raw)
			w.Close()
			header = "deflate"
		default:
			b.Write(raw)
		}
		resp, body := post(t, r.url+"/errors/api/1/envelope/?sentry_key="+key, b.Bytes(), map[string]string{"Content-Encoding": header})
		if resp.StatusCode != 200 || !strings.Contains(body, eventID(i+1)) {
			t.Errorf("%s: %d %s", enc, resp.StatusCode, body)
		}
	}
	if ev, _ := r.stored(t); ev != 4 {
		t.Errorf("stored %d, want 4", ev)
	}
}

func TestCORSAllowsOnlyTheAppsOrigin(t *testing.T) {
	r := newRelay(t, errortrack.Options{})
	pre := func(origin string) *http.Response {
		req, _ := http.NewRequest("OPTIONS", r.url+"/errors/api/1/envelope/", nil)
		req.Header.Set("Origin", origin)
		req.Header.Set("Access-Control-Request-Method", "POST")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	if resp := pre(appOrig); resp.StatusCode != 204 || resp.Header.Get("Access-Control-Allow-Origin") != appOrig ||
		!strings.Contains(resp.Header.Get("Access-Control-Allow-Headers"), "X-Sentry-Auth") {
		t.Errorf("preflight from the app: %d %v", resp.StatusCode, resp.Header)
	}
	if resp := pre("https://evil.example"); resp.StatusCode != 403 || resp.Header.Get("Access-Control-Allow-Origin") != "" {
		t.Errorf("preflight from elsewhere: %d %v", resp.StatusCode, resp.Header)
	}
	// A cross-site POST from the app's origin (what a browser sends when the
	// ingest host differs from the page's) passes the server's cross-origin
	// protection; one from elsewhere is refused by the ingest.
	body := envelopeOf([2]string{"event", `{"message":"m"}`})
	resp, msg := post(t, r.url+"/errors/api/1/envelope/?sentry_key="+key, body, map[string]string{"Origin": appOrig, "Sec-Fetch-Site": "cross-site"})
	if resp.StatusCode != 200 || resp.Header.Get("Access-Control-Allow-Origin") != appOrig {
		t.Errorf("cross-site POST from the app: %d %s", resp.StatusCode, msg)
	}
	resp, _ = post(t, r.url+"/errors/api/1/envelope/?sentry_key="+key, body, map[string]string{"Origin": "https://evil.example", "Sec-Fetch-Site": "cross-site"})
	if resp.StatusCode != 403 || resp.Header.Get("Access-Control-Allow-Origin") != "" {
		t.Errorf("cross-site POST from elsewhere: %d", resp.StatusCode)
	}
	// Other routes keep the server's cross-origin protection.
	resp, _ = post(t, r.url+"/lifecycle/installed", body, map[string]string{"Origin": "https://evil.example", "Sec-Fetch-Site": "cross-site"})
	if resp.StatusCode != 403 {
		t.Errorf("cross-site POST elsewhere: %d, want 403 from cross-origin protection", resp.StatusCode)
	}
}

func TestRateLimitIsPerKeyAndSaysWhenToRetry(t *testing.T) {
	r := newRelay(t, errortrack.Options{Rate: 0.5, Burst: 3})
	body := func(i int) []byte {
		return envelopeOf([2]string{"event", fmt.Sprintf(`{"event_id":"%s"}`, eventID(i))})
	}
	for i := 1; i <= 3; i++ {
		if resp, msg := post(t, r.url+"/errors/api/1/envelope/?sentry_key="+key, body(i), nil); resp.StatusCode != 200 {
			t.Fatalf("request %d within the burst: %d %s", i, resp.StatusCode, msg)
		}
	}
	resp, msg := post(t, r.url+"/errors/api/1/envelope/?sentry_key="+key, body(4), nil)
	if resp.StatusCode != 429 {
		t.Fatalf("over the limit: %d %s", resp.StatusCode, msg)
	}
	secs, err := strconv.Atoi(resp.Header.Get("Retry-After"))
	if err != nil || secs < 1 || secs > 2 {
		t.Errorf("Retry-After = %q, want 1–2 s at 0.5/s", resp.Header.Get("Retry-After"))
	}
	if rl := resp.Header.Get("X-Sentry-Rate-Limits"); rl != strconv.Itoa(secs)+"::key" {
		t.Errorf("X-Sentry-Rate-Limits = %q", rl)
	}
	// Another project's key has its own bucket.
	if resp, msg := post(t, r.url+"/errors/api/2/envelope/?sentry_key="+otherKey, body(5), nil); resp.StatusCode != 200 {
		t.Errorf("other key: %d %s", resp.StatusCode, msg)
	}
	if ev, _ := r.stored(t); ev != 4 {
		t.Errorf("stored %d, want 4 (the limited one not)", ev)
	}
}

func TestUnknownItemTypesAreSkipped(t *testing.T) {
	r := newRelay(t, errortrack.Options{Forward: true})
	feedback := `{"event_id":"` + eventID(9) + `","name":"Ada Lovelace","email":"ada.lovelace@example.org","comments":"it broke"}`
	resp, msg := post(t, r.url+"/errors/api/1/envelope/?sentry_key="+key, envelopeOf(
		[2]string{"user_report", feedback}, [2]string{"transaction", `{"spans":[]}`}, [2]string{"attachment", "binary\x00data"},
		[2]string{"client_report", `{"discarded_events":[]}`}, [2]string{"event", `{"event_id":"` + eventID(1) + `","message":"m"}`}), nil)
	if resp.StatusCode != 200 {
		t.Fatalf("%d %s", resp.StatusCode, msg)
	}
	if ev, ob := r.stored(t); ev != 1 || ob != 1 {
		t.Errorf("stored %d events, %d outbox rows; want the event only", ev, ob)
	}
	if all := r.dump(t); strings.Contains(all, "Lovelace") || strings.Contains(all, "it broke") {
		t.Error("user feedback was kept")
	}
}
