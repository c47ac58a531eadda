package server

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
)

// Beyond a class's in-flight limit a request is answered at once with 503,
// Retry-After and the class's error vocabulary, without reaching the
// handler; other classes are not affected; once the admitted requests
// finish, requests are served again. Counted, not timed: the admitted
// requests are held in the handler until the test lets them go.
func TestShedBeyondTheInFlightLimitAndRecover(t *testing.T) {
	release := make(chan struct{})
	var mu sync.Mutex
	entered := 0
	in := make(chan struct{}, 16)
	h := shed(Limits{Feeds: 2, Lifecycle: 1}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		entered++
		mu.Unlock()
		if r.URL.Query().Get("hold") != "" {
			in <- struct{}{}
			<-release
		}
		w.WriteHeader(200)
	}))
	srv := httptest.NewServer(h)
	defer srv.Close()
	get := func(path string) *http.Response {
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	var wg sync.WaitGroup
	for _, p := range []string{"/odata/s/Issues?hold=1", "/export/s/issues.csv?hold=1", "/lifecycle/installed?hold=1"} {
		wg.Add(1)
		go func() { defer wg.Done(); get(p) }()
	}
	for range 3 {
		<-in // all three admitted and working
	}
	for _, c := range []struct {
		path, ctype, code string
	}{
		{"/odata/s/Issues", "application/json", "ServiceUnavailable"},
		{"/export/s/issues.csv", "application/json", "ServiceUnavailable"},
		{"/lifecycle/installed", "application/problem+json", "unavailable"},
	} {
		resp, err := http.Get(srv.URL + c.path)
		if err != nil {
			t.Fatal(err)
		}
		var body map[string]any
		json.NewDecoder(resp.Body).Decode(&body)
		resp.Body.Close()
		code, _ := body["code"].(string)
		if e, ok := body["error"].(map[string]any); ok {
			code, _ = e["code"].(string)
		}
		if resp.StatusCode != 503 || resp.Header.Get("Retry-After") != "1" || code != c.code {
			t.Errorf("%s at the limit: %d Retry-After %q code %q", c.path, resp.StatusCode, resp.Header.Get("Retry-After"), code)
		}
	}
	// Other classes, and paths of no class, are served.
	for _, p := range []string{"/app-api/me", "/errors/api/1/store/", "/healthz"} {
		if r := get(p); r.StatusCode != 200 {
			t.Errorf("%s while feeds and lifecycle are full: %d", p, r.StatusCode)
		}
	}
	// Forge's lifecycle events count with Connect's lifecycle.
	if r := get("/forge/trigger"); r.StatusCode != 503 {
		t.Errorf("Forge trigger while lifecycle is full: %d", r.StatusCode)
	}
	mu.Lock()
	if entered != 6 {
		t.Errorf("%d requests reached the handler, want 6 (3 held, 3 of other classes): a shed request must not", entered)
	}
	mu.Unlock()
	close(release)
	wg.Wait()
	for _, p := range []string{"/odata/s/Issues", "/odata/s/Issues", "/export/s/issues.csv", "/lifecycle/installed", "/forge/trigger"} {
		if r := get(p); r.StatusCode != 200 {
			t.Errorf("%s after the load: %d", p, r.StatusCode)
		}
	}
}
