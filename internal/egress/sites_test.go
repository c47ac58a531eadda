package egress

import (
	"context"
	"sync/atomic"
	"testing"
	"time"
)

type countingSites struct {
	calls atomic.Int32
	yes   atomic.Bool
}

func (c *countingSites) KnownSite(context.Context, string) bool {
	c.calls.Add(1)
	return c.yes.Load()
}

// TestCachedSitesRemembersOnlyYes: an installed site is asked about once
// per ttl; a host that is not one is asked about every time, and a site
// that stops being one is refused once the ttl has passed.
func TestCachedSitesRemembersOnlyYes(t *testing.T) {
	inner := &countingSites{}
	ts := CachedSites(inner, 50*time.Millisecond)
	ctx := context.Background()
	for i := 0; i < 3; i++ {
		if ts.KnownSite(ctx, "x.atlassian.net") {
			t.Fatal("an unknown host passed")
		}
	}
	if inner.calls.Load() != 3 {
		t.Fatalf("a refusal was remembered: %d calls", inner.calls.Load())
	}
	inner.yes.Store(true)
	for i := 0; i < 5; i++ {
		if !ts.KnownSite(ctx, "x.atlassian.net") {
			t.Fatal("an installed site was refused")
		}
	}
	if inner.calls.Load() != 4 {
		t.Fatalf("%d calls for five checks within the ttl", inner.calls.Load())
	}
	inner.yes.Store(false)
	deadline := time.Now().Add(5 * time.Second)
	for ts.KnownSite(ctx, "x.atlassian.net") {
		if time.Now().After(deadline) {
			t.Fatal("an uninstalled site is still allowed")
		}
		time.Sleep(10 * time.Millisecond)
	}
}
