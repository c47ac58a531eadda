package jira

import (
	"net/http"
	"testing"
	"time"
)

// TestConcurrencyIsHeldNearWhatTheBurstRateServes: once Jira has named a
// burst rate, more calls in flight than that rate serves in a round trip
// (with room) would only queue in Ferry's pace, where the page a walk needs
// next waits behind pages it needs later.
func TestConcurrencyIsHeldNearWhatTheBurstRateServes(t *testing.T) {
	tn := (&Limits{Cap: 32}).Tenant("t")
	tn.limit = 32
	if got := tn.Concurrency(); got != 32 {
		t.Fatalf("no burst rate known: concurrency %d, want the limit 32", got)
	}
	tn.growLocked(150*time.Millisecond, time.Now())
	if got := tn.Concurrency(); got != 32 {
		t.Fatalf("a round trip but no burst rate: concurrency %d, want 32", got)
	}
	tn.endpoints["POST /rest/api/3/search/jql"] = &endpoint{rate: 20}
	// 20 calls/s × 0.15 s × 1.5 = 4.5 → 5, and 2 more.
	if got := tn.Concurrency(); got != 7 {
		t.Fatalf("20 calls/s at 150 ms: concurrency %d, want 7", got)
	}
	tn.endpoints["POST /rest/api/3/search/jql"].rate = 1000
	if got := tn.Concurrency(); got != 32 {
		t.Fatalf("a rate above what the limit serves: concurrency %d, want 32", got)
	}
}

// TestParallelismIsWhatTheBurstRateServesNotTheCurrentLimit: a walk plans
// its chains for the calls in flight the tenant may come to use (the cap,
// or what the burst rate serves in a round trip), not for the limit of a
// slow start that has just begun.
func TestParallelismIsWhatTheBurstRateServesNotTheCurrentLimit(t *testing.T) {
	tn := (&Limits{Cap: 32}).Tenant("t")
	if got, now := tn.Parallelism(), tn.Concurrency(); got != 32 || now != startConcurrency {
		t.Fatalf("nothing known: parallelism %d, concurrency %d; want the cap 32 and the start %d", got, now, startConcurrency)
	}
	tn.growLocked(150*time.Millisecond, time.Now())
	tn.endpoints["POST /rest/api/3/search/jql"] = &endpoint{rate: 99}
	// 99 calls/s × 0.15 s × 1.5 = 22.3 → 23, and 2 more.
	if got, now := tn.Parallelism(), tn.Concurrency(); got != 25 || now >= got {
		t.Fatalf("99 calls/s at 150 ms, slow start: parallelism %d (want 25), concurrency %d (want below it)", got, now)
	}
	tn.endpoints["POST /rest/api/3/search/jql"].rate = 1000
	if got := tn.Parallelism(); got != 32 {
		t.Fatalf("a rate above what the cap serves: parallelism %d, want 32", got)
	}
}

// TestA429HalvesConcurrencyOncePerRoundTrip: a burst 429 halves the limit;
// the other 429s of the same overshoot, within one round trip, do not cut
// it again; a 429 a round trip later does; a quota 429 pauses the tenant
// instead; the limit never falls below one call.
func TestA429HalvesConcurrencyOncePerRoundTrip(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	l := &Limits{Cap: 32, Now: func() time.Time { return now }}
	tn := l.Tenant("t")
	const ep = "POST /rest/api/3/search/jql"
	answer := func(code int, reason string) {
		t.Helper()
		tn.mu.Lock()
		tn.inFlight++
		tn.mu.Unlock()
		h := http.Header{}
		if reason != "" {
			h.Set("RateLimit-Reason", reason)
		}
		tn.release(ep, &http.Response{StatusCode: code, Header: h}, 200*time.Millisecond, 0)
	}
	for range 40 { // fast answers: slow start up to the cap
		answer(200, "")
	}
	if tn.limit != 32 {
		t.Fatalf("after 40 fast answers the limit is %v, want the cap 32", tn.limit)
	}
	answer(429, "jira-burst-based")
	if tn.limit != 16 {
		t.Fatalf("after a burst 429 the limit is %v, want 16", tn.limit)
	}
	for range 5 { // the rest of the same overshoot
		now = now.Add(10 * time.Millisecond)
		answer(429, "jira-burst-based")
	}
	if tn.limit != 16 {
		t.Fatalf("429s within one round trip cut the limit to %v, want it held at 16", tn.limit)
	}
	now = now.Add(250 * time.Millisecond)
	answer(429, "")
	if tn.limit != 8 || tn.ssthresh != 8 {
		t.Fatalf("a 429 a round trip later: limit %v, ssthresh %v, want 8 and 8", tn.limit, tn.ssthresh)
	}
	answer(429, "jira-quota-tenant-based")
	if tn.limit != 8 || !tn.blocked.After(now) {
		t.Fatalf("a quota 429: limit %v (want 8, a quota is not congestion), paused until %v", tn.limit, tn.blocked)
	}
	for range 10 {
		now = now.Add(time.Second)
		answer(503, "")
	}
	if tn.limit != 1 {
		t.Fatalf("after many 503s the limit is %v, want the floor 1", tn.limit)
	}
}
