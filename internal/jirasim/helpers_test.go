package jirasim

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

func newTestSim(t testing.TB, o Options) (*Sim, *httptest.Server) {
	t.Helper()
	o.AllowHTTPApp = true // test apps run on loopback http
	s := New(o)
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	s.SetBaseURL(srv.URL)
	return s, srv
}

func basicAuth(u User) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(u.Email+":"+u.APIToken))
}

type result struct {
	req  *http.Request
	resp *http.Response
	body []byte
}

func (r result) decode(t testing.TB, v any) {
	t.Helper()
	if err := json.Unmarshal(r.body, v); err != nil {
		t.Fatalf("decoding %s: %v\n%s", r.req.URL.Path, err, r.body)
	}
}

func (r result) status(t testing.TB, want int) result {
	t.Helper()
	if r.resp.StatusCode != want {
		t.Fatalf("%s %s: status %d, want %d\n%s", r.req.Method, r.req.URL, r.resp.StatusCode, want, r.body)
	}
	return r
}

// call sends a request; auth is a full Authorization header value ("" for none).
func call(t testing.TB, base, method, path, auth string, body any) result {
	t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	case []byte:
		rd = bytes.NewReader(b)
	default:
		raw, err := json.Marshal(b)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(raw)
	}
	req, err := http.NewRequest(method, base+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json")
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return result{req: req, resp: resp, body: raw}
}

// fakeClock is a settable clock for expiry and rate-limit tests.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// lockedWriter serialises writes from the server's logger and the test.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}
