package jira

import (
	"net/http"
	"strconv"
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
		tn.release(ep, 0, &http.Response{StatusCode: code, Header: h}, 200*time.Millisecond, 0)
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

// TestJirasReportedBurstIsUsedNotOverdrawn: when Jira says how much of its
// burst bucket is left (r of "jira-burst-based"), Ferry may send that much
// at once instead of pacing a full bucket out over a second; it subtracts
// the calls sent since the answer and those still in flight, so an answer
// that was overtaken grants nothing; it never trusts more than the bucket's
// size (q); and without r it paces from a tenth of a second's calls.
func TestJirasReportedBurstIsUsedNotOverdrawn(t *testing.T) {
	const ep = "POST /rest/api/3/search/jql"
	now := time.Unix(1_800_000_000, 0)
	setup := func() *Tenant {
		tn := (&Limits{Cap: 500, Now: func() time.Time { return now }}).Tenant("t")
		tn.limit = 500
		return tn
	}
	// mayGo counts the calls that may be sent at this instant, sending them.
	var seqs []uint64
	mayGo := func(tn *Tenant) int {
		t.Helper()
		n := 0
		for {
			tn.mu.Lock()
			wait, err := tn.waitLocked(ep, now)
			tn.mu.Unlock()
			if err != nil {
				t.Fatal(err)
			}
			if wait > 0 || n > 1000 {
				return n
			}
			tn.mu.Lock()
			seqs = append(seqs, tn.sendLocked(ep))
			tn.mu.Unlock()
			n++
		}
	}
	answer := func(tn *Tenant, seq uint64, q, r int) {
		t.Helper()
		h := http.Header{}
		h.Set("Beta-RateLimit-Policy", `"jira-burst-based";q=`+itoa(q)+`;w=1`)
		if r >= 0 {
			h.Set("Beta-RateLimit", `"jira-burst-based";r=`+itoa(r)+`;t=1`)
		}
		tn.release(ep, seq, &http.Response{StatusCode: 200, Header: h}, time.Second, 0)
	}

	// sendOne sends the first call, before Jira has named any rate.
	sendOne := func(tn *Tenant) uint64 {
		t.Helper()
		tn.mu.Lock()
		defer tn.mu.Unlock()
		if wait, err := tn.waitLocked(ep, now); wait > 0 || err != nil {
			t.Fatalf("the first call may not go: wait %v, %v", wait, err)
		}
		return tn.sendLocked(ep)
	}

	tn := setup()
	answer(tn, sendOne(tn), 100, 99)
	if n := mayGo(tn); n != 99 {
		t.Fatalf("Jira's bucket holds 99 after the first call: %d calls may go at once, want 99", n)
	}
	// The answer to the second call, with its r, arrives when 98 calls sent
	// after it are in flight: it grants nothing.
	answer(tn, seqs[0], 100, 98)
	if n := mayGo(tn); n != 0 {
		t.Fatalf("an answer overtaken by 98 calls granted %d more, want none", n)
	}
	// Then Ferry's own pace: 99 calls/s, so 4 in the next 50 ms.
	now = now.Add(50 * time.Millisecond)
	if n := mayGo(tn); n != 4 {
		t.Fatalf("50 ms later %d calls may go, want 4 (the pace of 99/s)", n)
	}
	// Once everything is answered and Jira's bucket has refilled, a fresh
	// answer with r lets Ferry use it again.
	now = now.Add(2 * time.Second)
	for _, s := range seqs[1 : len(seqs)-1] {
		answer(tn, s, 100, 0)
	}
	answer(tn, seqs[len(seqs)-1], 100, 90)
	if n := mayGo(tn); n != 90 {
		t.Fatalf("nothing in flight, Jira's bucket holds 90: %d calls may go, want 90", n)
	}

	// An answer that overtook calls sent before it: those may still reach
	// Jira's bucket after the r it reports, so they are subtracted too.
	tn = setup()
	answer(tn, sendOne(tn), 100, 20)
	seqs = seqs[:0]
	if n := mayGo(tn); n != 20 {
		t.Fatalf("Jira's bucket holds 20: %d calls may go, want 20", n)
	}
	answer(tn, seqs[len(seqs)-1], 100, 15)
	if n := mayGo(tn); n != 0 {
		t.Fatalf("the last of 20 calls answered first, r=15, 19 still in flight: %d calls may go, want none", n)
	}

	// An r larger than the bucket (q) is not believed.
	tn = setup()
	answer(tn, sendOne(tn), 50, 5000)
	if n := mayGo(tn); n != 50 {
		t.Fatalf("r=5000 from a bucket of 50: %d calls may go, want 50", n)
	}

	// Without r, the pace starts from a tenth of a second's calls.
	tn = setup()
	answer(tn, sendOne(tn), 100, -1)
	if n := mayGo(tn); n != 1 {
		t.Fatalf("no r: %d calls may go at once, want 1 (the pace's own bucket starts near empty)", n)
	}
	now = now.Add(time.Second)
	if n := mayGo(tn); n != 9 {
		t.Fatalf("no r, a second later: %d calls may go, want 9 (a tenth of a second's calls at 99/s)", n)
	}
}

func itoa(n int) string { return strconv.Itoa(n) }
