package server

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	dto "github.com/prometheus/client_model/go"

	"ferry/internal/config"
)

func testHandler(cfg config.Config, h http.Handler) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/odata/{source}/{rest...}", h)
	var out http.Handler = mux
	out = http.NewCrossOriginProtection().Handler(out)
	out = limitBody(out)
	out = securityHeaders(cfg, out)
	return observe(mux, slog.New(slog.NewTextHandler(io.Discard, nil)), out)
}

func TestHSTSOnlyWhenServedOverTLS(t *testing.T) {
	ok := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {})
	for _, c := range []struct {
		base string
		want bool
	}{{"http://127.0.0.1:8080", false}, {"https://ferry.example", true}} {
		cfg := config.Default()
		cfg.BaseURL = c.base
		rec := httptest.NewRecorder()
		testHandler(cfg, ok).ServeHTTP(rec, httptest.NewRequest("GET", "/odata/x/", nil))
		hsts := rec.Header().Get("Strict-Transport-Security")
		if (hsts != "") != c.want || (c.want && !strings.Contains(hsts, "max-age=31536000")) {
			t.Errorf("%s: HSTS %q", c.base, hsts)
		}
	}
}

func TestOversizedBodyIsRefusedWith413(t *testing.T) {
	read := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, err := io.ReadAll(r.Body); err != nil {
			w.WriteHeader(http.StatusRequestEntityTooLarge)
		}
	})
	h := testHandler(config.Default(), read)
	// Declared too large: refused before the handler runs.
	req := httptest.NewRequest("POST", "/odata/x/", strings.NewReader(strings.Repeat("a", MaxBodyBytes+1)))
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != 413 || !strings.Contains(rec.Body.String(), "too_large") {
		t.Fatalf("declared oversize: %d %s", rec.Code, rec.Body)
	}
	// Undeclared (chunked) and too large: the read fails.
	req = httptest.NewRequest("POST", "/odata/x/", io.MultiReader(strings.NewReader(strings.Repeat("a", MaxBodyBytes+1))))
	req.ContentLength = -1
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != 413 {
		t.Fatalf("chunked oversize: %d", rec.Code)
	}
}

func TestPanicsBecome500WithoutInternals(t *testing.T) {
	boom := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { panic("secret internal state") })
	rec := httptest.NewRecorder()
	testHandler(config.Default(), boom).ServeHTTP(rec, httptest.NewRequest("GET", "/odata/x/Issues", nil))
	if rec.Code != 500 || strings.Contains(rec.Body.String(), "secret") {
		t.Fatalf("panic answered %d %s", rec.Code, rec.Body)
	}
}

func TestMetricsUseTheRoutePatternNotTheRawPath(t *testing.T) {
	ok := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {})
	h := testHandler(config.Default(), ok)
	before := count("/odata/{source}/{rest...}", "GET", "200")
	for _, p := range []string{"/odata/abc/Issues", "/odata/def/Changelog?$top=1"} {
		h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", p, nil))
	}
	h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/nope/secret-id", nil))
	if got := count("/odata/{source}/{rest...}", "GET", "200") - before; got != 2 {
		t.Fatalf("pattern counter rose by %v, want 2", got)
	}
	if c := count("unmatched", "GET", "404"); c < 1 {
		t.Fatalf("unmatched request not counted under 'unmatched': %v", c)
	}
}

func TestCrossOriginFormPostsAreRefused(t *testing.T) {
	ok := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {})
	req := httptest.NewRequest("POST", "/odata/x/", strings.NewReader("a=1"))
	req.Header.Set("Sec-Fetch-Site", "cross-site")
	rec := httptest.NewRecorder()
	testHandler(config.Default(), ok).ServeHTTP(rec, req)
	if rec.Code != http.StatusForbidden {
		t.Fatalf("cross-site POST: %d", rec.Code)
	}
}

func count(route, method, code string) float64 {
	var m dto.Metric
	httpRequests.WithLabelValues(route, method, code).Write(&m)
	return m.GetCounter().GetValue()
}
