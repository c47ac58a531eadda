package jirasim

import (
	"context"
	"math"
	"math/rand/v2"
	"net/http"
	"strconv"
	"sync"
	"time"
)

// limiter keeps token buckets by key. REST limits are per tenant×endpoint
// with a capacity of one second's worth of requests (at least one).
type limiter struct {
	mu      sync.Mutex
	buckets map[string]*bucket
}

type bucket struct {
	tokens float64
	last   time.Time
}

func newLimiter() *limiter { return &limiter{buckets: map[string]*bucket{}} }

// take spends one token from a bucket of the given capacity refilled at
// rate per second; when none is left it reports how long until one is.
func (l *limiter) take(key string, rate, capacity float64, now time.Time) (ok bool, limit, remaining int, wait time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.buckets[key]
	if b == nil {
		b = &bucket{tokens: capacity, last: now}
		l.buckets[key] = b
	}
	if el := now.Sub(b.last).Seconds(); el > 0 {
		b.tokens = math.Min(capacity, b.tokens+el*rate)
	}
	b.last = now
	if b.tokens >= 1 {
		b.tokens--
		return true, int(capacity), int(b.tokens), 0
	}
	return false, int(capacity), 0, time.Duration((1 - b.tokens) / rate * float64(time.Second))
}

type faultKind int

const (
	faultNone faultKind = iota
	fault500
	fault503
	faultSlow
	faultDrop
)

func (k faultKind) String() string {
	return [...]string{"none", "500", "503", "slow_body", "dropped"}[k]
}

// faulter draws latency jitter and faults from one seeded RNG, so a run's
// mix is reproducible for a fixed request order.
type faulter struct {
	mu  sync.Mutex
	rng *rand.Rand
}

func newFaulter(seed int64) *faulter {
	return &faulter{rng: rand.New(rand.NewPCG(uint64(seed), 0xfa17))}
}

func (f *faulter) draw(rate float64) faultKind {
	if rate <= 0 {
		return faultNone
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.rng.Float64() >= rate {
		return faultNone
	}
	switch r := f.rng.IntN(100); {
	case r < 35:
		return fault500
	case r < 70:
		return fault503
	case r < 85:
		return faultSlow
	default:
		return faultDrop
	}
}

func (f *faulter) jitter(j time.Duration) time.Duration {
	if j <= 0 {
		return 0
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	return time.Duration(f.rng.Int64N(int64(2*j)+1)) - j
}

// sleep waits d unless ctx ends first.
func sleep(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// Stats counts what the sim served since it started (or ResetStats).
type Stats struct {
	Requests    map[string]int64 `json:"requests"`  // by endpoint, e.g. "POST /rest/api/3/search/jql"
	Throttled   map[string]int64 `json:"throttled"` // 429s served, by endpoint
	RateLimited int64            `json:"rate_limited"`
	// ThrottledBy counts 429s by RateLimit-Reason (jira-burst-based,
	// jira-quota-global-based, jira-quota-tenant-based).
	ThrottledBy map[string]int64 `json:"throttled_by"`
	// Points is what the requests served cost under Jira's points model
	// (quota.go), whoever made them; PointsByKind splits it by principal
	// ("user" for API tokens, "app", "bearer" for an app acting as a user).
	Points        int64            `json:"points"`
	PointsByKind  map[string]int64 `json:"points_by_kind"`
	Faults        map[string]int64 `json:"faults"` // injected, by kind
	Unauthorized  int64            `json:"unauthorized"`
	MaxConcurrent int64            `json:"max_concurrent"` // REST requests in flight at once
}

type stats struct {
	mu       sync.Mutex
	s        Stats
	inFlight int64
}

func newStats() *stats {
	return &stats{s: emptyStats()}
}

func (st *stats) begin(endpoint string) {
	st.mu.Lock()
	st.s.Requests[endpoint]++
	st.inFlight++
	st.s.MaxConcurrent = max(st.s.MaxConcurrent, st.inFlight)
	st.mu.Unlock()
}

func (st *stats) end() {
	st.mu.Lock()
	st.inFlight--
	st.mu.Unlock()
}

func (st *stats) add(f func(*Stats)) {
	st.mu.Lock()
	f(&st.s)
	st.mu.Unlock()
}

// Stats returns a copy of the counters.
func (s *Sim) Stats() Stats {
	s.stats.mu.Lock()
	defer s.stats.mu.Unlock()
	out := s.stats.s
	out.Requests, out.Throttled, out.Faults = copyCounts(out.Requests), copyCounts(out.Throttled), copyCounts(out.Faults)
	out.ThrottledBy, out.PointsByKind = copyCounts(out.ThrottledBy), copyCounts(out.PointsByKind)
	return out
}

// ResetStats zeroes the counters (the in-flight gauge is kept).
func (s *Sim) ResetStats() {
	s.stats.mu.Lock()
	s.stats.s = emptyStats()
	s.stats.mu.Unlock()
}

func emptyStats() Stats {
	return Stats{Requests: map[string]int64{}, Throttled: map[string]int64{}, Faults: map[string]int64{},
		ThrottledBy: map[string]int64{}, PointsByKind: map[string]int64{}}
}

func copyCounts(m map[string]int64) map[string]int64 {
	out := make(map[string]int64, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// Total sums a counter map.
func Total(m map[string]int64) int64 {
	var n int64
	for _, v := range m {
		n += v
	}
	return n
}

// rateHeaders are the X-RateLimit-* headers Jira sends.
func rateHeaders(h http.Header, limit, remaining int, reset time.Time) {
	h.Set("X-RateLimit-Limit", strconv.Itoa(limit))
	h.Set("X-RateLimit-Remaining", strconv.Itoa(remaining))
	h.Set("X-RateLimit-Reset", reset.UTC().Format("2006-01-02T15:04Z"))
}

// slowWriter delivers each body in two halves with a pause between, like a
// congested upstream.
type slowWriter struct {
	http.ResponseWriter
	ctx   context.Context
	pause time.Duration
}

func (sw *slowWriter) Write(b []byte) (int, error) {
	half := len(b) / 2
	n, err := sw.ResponseWriter.Write(b[:half])
	if err != nil {
		return n, err
	}
	http.NewResponseController(sw.ResponseWriter).Flush()
	sleep(sw.ctx, sw.pause)
	m, err := sw.ResponseWriter.Write(b[half:])
	return n + m, err
}

func (sw *slowWriter) Unwrap() http.ResponseWriter { return sw.ResponseWriter }
