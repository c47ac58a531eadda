package jira

import (
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
