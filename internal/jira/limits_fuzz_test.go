package jira

import (
	"net/http"
	"testing"
	"time"
)

// FuzzRateLimitHeaders feeds arbitrary RateLimit headers to the parser and
// to a tenant's standing: nothing may panic, and whatever is read stays in
// range (no negative quota, remaining or window; a burst bucket no fuller
// than its q).
func FuzzRateLimitHeaders(f *testing.F) {
	for _, seed := range [][2]string{
		{`"global-app-quota";q=65000;w=3600`, `"global-app-quota";t=3200`},
		{`"global-app-quota";q=65000;w=3600,"jira-burst-based";q=100;w=1`, `"global-app-quota";r=11000;t=600,"jira-burst-based";r=90;t=1`},
		{`"tenant-app-quota";q=100100;w=3600`, `"tenant-app-quota";r=0;t=2788`},
		{`"x";q=;w=-1`, `;;,,"";r=abc`},
		{`tenant-app-quota;w=0;q=1`, `"tenant-app-quota";t=99999999999999999999`},
	} {
		f.Add(seed[0], seed[1], "jira-quota-global-based", "30", 429)
		f.Add(seed[0], seed[1], "", "", 200)
	}
	f.Fuzz(func(t *testing.T, policy, state, reason, retry string, status int) {
		for _, p := range parsePolicies([]string{policy, state}) {
			if p.name == "" || p.q < -1 || p.w < -1 || p.r < -1 || p.t < -1 {
				t.Fatalf("parsed %+v", p)
			}
		}
		l := &Limits{Now: func() time.Time { return time.Unix(1_800_000_000, 0) }}
		tn := l.Tenant("x")
		release, err := tn.acquire(t.Context(), "GET /x", 0)
		if err != nil {
			t.Fatal(err)
		}
		h := http.Header{}
		for _, prefix := range []string{"", "Beta-"} {
			h.Set(prefix+"RateLimit-Policy", policy)
			h.Set(prefix+"RateLimit", state)
		}
		h.Set("RateLimit-Reason", reason)
		h.Set("Retry-After", retry)
		release(&http.Response{StatusCode: status%600 + 100, Header: h}, time.Millisecond)
		st := tn.Quota()
		if st.Quota < 0 || st.Window < 0 || st.Remaining < 0 || tn.Concurrency() < 1 {
			t.Fatalf("state %+v", st)
		}
		// What a burst r grants never passes the bucket's size.
		tn.mu.Lock()
		e := tn.endpoint("GET /x")
		tokens, q, rate := e.tokens, e.q, e.rate
		tn.mu.Unlock()
		if rate > 0 && tokens > float64(max(q, 1)) {
			t.Fatalf("burst bucket of %d holds %v after the answer", q, tokens)
		}
	})
}
