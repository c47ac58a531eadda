package export_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"ferry/internal/export"
	"ferry/internal/jira"
	"ferry/internal/jirasim"
)

// chainCounter counts a client's search/jql calls by JQL (each leaf of a
// plan is one JQL, read page after page) and the most in flight at once.
type chainCounter struct {
	inner http.RoundTripper

	mu       sync.Mutex
	byJQL    map[string]int
	inFlight int
	most     int
}

func (c *chainCounter) RoundTrip(r *http.Request) (*http.Response, error) {
	if !strings.HasSuffix(r.URL.Path, "/search/jql") || r.Body == nil {
		return c.inner.RoundTrip(r)
	}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return nil, err
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	var q struct {
		JQL string `json:"jql"`
	}
	if err := json.Unmarshal(body, &q); err != nil {
		return nil, err
	}
	c.mu.Lock()
	c.byJQL[q.JQL]++
	c.inFlight++
	c.most = max(c.most, c.inFlight)
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		c.inFlight--
		c.mu.Unlock()
	}()
	return c.inner.RoundTrip(r)
}

// TestSlicedWalkIsBoundByTheBurstRate: a walk of 10,000 issues against a
// site that answers in 100 ms and allows 100 calls/s per endpoint (its
// burst policy in every answer's headers). The burst rate lets the walk
// have rate × round trip = 10 calls in flight, so reading its search pages
// needs at least calls ÷ 10 round trips; the walk is cut into enough
// chains that none of them takes longer than that — a chain is a sequence
// of dependent pages, one round trip each, and the longest one is the
// least number of round trips ("waves") the walk can take, however fast
// the rest goes. Counted per JQL, not timed. Before leaves were sized for
// the tenant's parallelism, such a walk was five chains of twenty pages
// (rows/leafRows), twice the bound, and ran at a quarter of the burst rate.
// The rows are exactly those of one sequential chain, and the finer cut
// costs few extra calls.
func TestSlicedWalkIsBoundByTheBurstRate(t *testing.T) {
	const (
		issues  = 10_000
		latency = 100 * time.Millisecond
		rate    = 100.0
	)
	sim := jirasim.New(jirasim.Options{Issues: issues, Projects: 4, Users: 3, Seed: 7})
	srv := httptest.NewServer(sim)
	t.Cleanup(srv.Close)
	sim.SetBaseURL(srv.URL)
	u := sim.Users()[0]
	counter := &chainCounter{inner: http.DefaultTransport, byJQL: map[string]int{}}
	c, err := jira.New(srv.URL, &http.Client{Transport: counter}, basicAuth{u.Email, u.APIToken})
	if err != nil {
		t.Fatal(err)
	}
	const where, order = `created >= "2000-01-01"`, "created DESC"
	want := oneChain(t, c, where+" ORDER BY "+order) // the truth, read before latency is on
	if len(want) != issues {
		t.Fatalf("one chain read %d of %d issues", len(want), issues)
	}
	c.Limits = (&jira.Limits{}).Tenant("site")
	sim.SetKnobs(jirasim.Knobs{Latency: latency, Rate: rate})
	counter.mu.Lock()
	clear(counter.byJQL)
	counter.most = 0
	counter.mu.Unlock()

	f := &export.Fetcher{Client: c}
	w := export.Walk{Where: where, Order: order, Fields: []string{"key", "created"}, Cols: keyColumns(t, c), Zone: time.UTC}
	var got []string
	if _, err := f.Rows(context.Background(), w, export.Cursor{}, -1, nil, func(vals []any, _, _ export.Cursor) error {
		got = append(got, vals[0].(string))
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got, want) {
		t.Fatalf("the walk read %d rows that differ from one chain's %d (first difference at %d)", len(got), len(want), firstDiff(got, want))
	}
	if st := sim.Stats(); st.RateLimited != 0 {
		t.Errorf("Jira refused %d calls over its burst rate", st.RateLimited)
	}

	counter.mu.Lock()
	defer counter.mu.Unlock()
	calls, longest, chains := 0, 0, len(counter.byJQL)
	for _, n := range counter.byJQL {
		calls += n
		longest = max(longest, n)
	}
	perTrip := rate * latency.Seconds() // calls the burst rate serves in a round trip
	bound := int(math.Ceil(float64(calls) / perTrip))
	t.Logf("%d search calls on %d chains, the longest %d pages (bound %d), at most %d in flight", calls, chains, longest, bound, counter.most)
	if longest > bound {
		t.Errorf("the longest chain is %d dependent pages: more round trips than the %d the burst rate needs for all %d calls", longest, bound, calls)
	}
	if float64(counter.most) < perTrip {
		t.Errorf("at most %d calls in flight, fewer than the %.0f the burst rate serves in a round trip", counter.most, perTrip)
	}
	if pages := issues / jira.MaxPage; calls > pages*5/4 {
		t.Errorf("%d search calls for %d issues: more than a quarter over the %d full pages", calls, issues, pages)
	}
}
