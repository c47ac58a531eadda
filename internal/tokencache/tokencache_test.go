package tokencache

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestOneExchangePerKeyRenewedBeforeExpiry: concurrent callers of one key
// share one fetch; the token is fetched again RenewBefore before it expires
// (at half-life when it lives less than twice that); a failure is not kept;
// ForgetPrefix drops exactly the keys it names.
func TestOneExchangePerKeyRenewedBeforeExpiry(t *testing.T) {
	clock := time.Unix(1_800_000_000, 0)
	var mu sync.Mutex
	now := func() time.Time { mu.Lock(); defer mu.Unlock(); return clock }
	advance := func(d time.Duration) { mu.Lock(); clock = clock.Add(d); mu.Unlock() }
	c := New()
	var fetches atomic.Int32
	fetch := func(ttl time.Duration) func() (string, time.Duration, error) {
		return func() (string, time.Duration, error) {
			n := fetches.Add(1)
			time.Sleep(time.Millisecond) // let the others queue behind it
			return "tok" + string(rune('0'+n)), ttl, nil
		}
	}
	var wg sync.WaitGroup
	got := make([]string, 20)
	for i := range got {
		wg.Add(1)
		go func() {
			defer wg.Done()
			got[i], _ = c.Get(context.Background(), "t1\x00alice", now, fetch(time.Hour))
		}()
	}
	wg.Wait()
	if fetches.Load() != 1 {
		t.Fatalf("20 concurrent callers made %d fetches, want 1", fetches.Load())
	}
	for _, g := range got {
		if g != "tok1" {
			t.Fatalf("callers got %v", got)
		}
	}
	advance(time.Hour - RenewBefore - time.Second)
	if tok, _ := c.Get(context.Background(), "t1\x00alice", now, fetch(time.Hour)); tok != "tok1" || fetches.Load() != 1 {
		t.Fatalf("just before the renewal point: %q after %d fetches", tok, fetches.Load())
	}
	advance(time.Second)
	if tok, _ := c.Get(context.Background(), "t1\x00alice", now, fetch(time.Minute)); tok != "tok2" {
		t.Fatalf("at the renewal point: %q, want a new token", tok)
	}
	advance(29 * time.Second) // a one-minute token is renewed at half-life
	if tok, _ := c.Get(context.Background(), "t1\x00alice", now, fetch(time.Hour)); tok != "tok2" {
		t.Fatalf("a one-minute token before half-life: %q", tok)
	}
	advance(time.Second)
	if tok, _ := c.Get(context.Background(), "t1\x00alice", now, fetch(time.Hour)); tok != "tok3" {
		t.Fatalf("a one-minute token at half-life: %q, want a new one", tok)
	}
	boom := errors.New("exchange refused")
	if _, err := c.Get(context.Background(), "t1\x00bob", now, func() (string, time.Duration, error) { return "", 0, boom }); !errors.Is(err, boom) {
		t.Fatalf("failed fetch: %v", err)
	}
	if tok, _ := c.Get(context.Background(), "t1\x00bob", now, fetch(time.Hour)); tok != "tok4" {
		t.Fatalf("after a failure: %q, want a fresh fetch", tok)
	}
	c.Get(context.Background(), "t2\x00alice", now, fetch(time.Hour)) // tok5
	c.ForgetPrefix("t1\x00")
	if tok, _ := c.Get(context.Background(), "t2\x00alice", now, fetch(time.Hour)); tok != "tok5" {
		t.Fatalf("another tenant's token after forgetting t1: %q", tok)
	}
	if tok, _ := c.Get(context.Background(), "t1\x00alice", now, fetch(time.Hour)); tok != "tok6" {
		t.Fatalf("a forgotten token: %q, want a fresh fetch", tok)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	c.ForgetPrefix("t1\x00")
	if _, err := c.Get(ctx, "t1\x00alice", now, fetch(time.Hour)); !errors.Is(err, context.Canceled) || fetches.Load() != 6 {
		t.Fatalf("a caller that left: %v, %d fetches", err, fetches.Load())
	}
}
