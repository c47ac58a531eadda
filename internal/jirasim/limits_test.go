package jirasim

import (
	"bytes"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestRateLimitPerTenantAndEndpoint(t *testing.T) {
	s, srv := newTestSim(t, Options{Issues: 20, Users: 3, Seed: 1, Rate: 10})
	clock := &fakeClock{t: time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)}
	s.setClock(clock.now)
	u0, u1 := basicAuth(s.Users()[0]), basicAuth(s.Users()[1])
	field := func(auth string) result { return call(t, srv.URL, "GET", "/rest/api/3/field", auth, nil) }
	ok := 0
	var last result
	for i := 0; i < 25; i++ {
		if last = field(u0); last.resp.StatusCode == 200 {
			ok++
		}
	}
	// Frozen clock: exactly the bucket (one second's worth) gets through.
	if ok != 10 {
		t.Errorf("%d requests passed, want 10", ok)
	}
	h := last.status(t, 429).resp.Header
	if ra, _ := strconv.Atoi(h.Get("Retry-After")); ra < 1 {
		t.Errorf("Retry-After %q", h.Get("Retry-After"))
	}
	if h.Get("X-RateLimit-Limit") != "10" || h.Get("X-RateLimit-Remaining") != "0" || h.Get("X-RateLimit-Reset") == "" || h.Get("RateLimit-Reason") == "" {
		t.Errorf("rate headers %v", h)
	}
	// Other tenants and other endpoints have their own budget.
	field(u1).status(t, 200)
	call(t, srv.URL, "GET", "/rest/api/3/myself", u0, nil).status(t, 200)
	// Half a second refills five.
	clock.advance(500 * time.Millisecond)
	ok = 0
	for i := 0; i < 10; i++ {
		if field(u0).resp.StatusCode == 200 {
			ok++
		}
	}
	if ok != 5 {
		t.Errorf("after 0.5 s: %d passed, want 5", ok)
	}
	st := s.Stats()
	if st.RateLimited != 20 || st.Throttled["GET /rest/api/3/field"] != 20 || st.Requests["GET /rest/api/3/field"] != 36 {
		t.Errorf("stats %+v", st)
	}
}

func TestFaultsAppearAtConfiguredRate(t *testing.T) {
	s, srv := newTestSim(t, Options{Issues: 20, Seed: 99, FaultRate: 0.2})
	admin := basicAuth(s.Users()[0])
	// Fresh connections: net/http silently retries a GET whose reused
	// connection drops, which would hide dropped-connection faults.
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	const n = 1000
	failed := 0
	for i := 0; i < n; i++ {
		req, _ := http.NewRequest("GET", srv.URL+"/rest/api/3/project/search", nil)
		req.Header.Set("Authorization", admin)
		resp, err := client.Do(req)
		if err != nil {
			failed++ // dropped connection
			continue
		}
		var buf bytes.Buffer
		_, rerr := buf.ReadFrom(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			failed++
		} else if rerr != nil {
			t.Fatalf("body read: %v", rerr)
		}
	}
	st := s.Stats()
	injected := Total(st.Faults)
	// Binomial(1000, 0.2): mean 200, sd ≈ 12.6; ±5 sd.
	if injected < 137 || injected > 263 {
		t.Errorf("%d faults injected in %d requests at rate 0.2", injected, n)
	}
	slow := st.Faults["slow_body"]
	if failed != int(injected-slow) {
		t.Errorf("%d requests failed but %d failing faults were injected", failed, injected-slow)
	}
	for _, k := range []string{"500", "503", "slow_body", "dropped"} {
		if st.Faults[k] == 0 {
			t.Errorf("no %s faults in %v", k, st.Faults)
		}
	}
	if st.Requests["GET /rest/api/3/project/search"] != n {
		t.Errorf("requests counted %d", st.Requests["GET /rest/api/3/project/search"])
	}
}

func TestStatsCountConcurrency(t *testing.T) {
	s, srv := newTestSim(t, Options{Issues: 20, Seed: 1, Latency: 50 * time.Millisecond, Jitter: 10 * time.Millisecond})
	admin := basicAuth(s.Users()[0])
	var wg sync.WaitGroup
	for i := 0; i < 6; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			call(t, srv.URL, "GET", "/rest/api/3/field", admin, nil)
		}()
	}
	wg.Wait()
	if st := s.Stats(); st.MaxConcurrent < 2 || st.Requests["GET /rest/api/3/field"] != 6 {
		t.Errorf("stats %+v", st)
	}
	r := call(t, srv.URL, "GET", "/_sim/stats", "", nil).status(t, 200)
	if !strings.Contains(string(r.body), `"max_concurrent"`) {
		t.Errorf("/_sim/stats: %s", r.body)
	}
	s.ResetStats()
	if st := s.Stats(); Total(st.Requests) != 0 {
		t.Error("reset kept counts")
	}
}

func TestLogsCarryNoSecrets(t *testing.T) {
	var logs bytes.Buffer
	s, srv := newTestSim(t, Options{Issues: 20, Seed: 1, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	app := newTestApp(t, srv.URL, "quiet")
	in := app.install(s)
	u := s.Users()[0]
	call(t, srv.URL, "GET", "/rest/api/3/myself", basicAuth(u), nil).status(t, 200)
	q := "/rest/api/3/myself?expand=groups"
	jwtTok := strings.TrimPrefix(appJWT(t, in, "GET", q), "JWT ")
	call(t, srv.URL, "GET", q+"&jwt="+jwtTok, "", nil).status(t, 200)
	bearer := bearerFor(t, srv.URL, in, u.AccountID, "READ ACT_AS_USER")
	call(t, srv.URL, "GET", "/rest/api/3/myself", bearer, nil).status(t, 200)
	call(t, srv.URL, "GET", "/jira/apps/quiet/home", "", nil).status(t, 200)
	out := logs.String()
	if !strings.Contains(out, "/rest/api/3/myself") {
		t.Fatalf("nothing logged: %s", out)
	}
	for name, secret := range map[string]string{"api token": u.APIToken, "shared secret": in.SharedSecret, "jwt": jwtTok, "bearer": strings.TrimPrefix(bearer, "Bearer "), "query": "expand=groups"} {
		if strings.Contains(out, secret) {
			t.Errorf("log contains the %s", name)
		}
	}
}
