package atlassian

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestUnknownKidsAreRememberedSoForgeriesCannotHammerTheKeyService(t *testing.T) {
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		w.WriteHeader(http.StatusNotFound)
	}))
	defer srv.Close()
	now := time.Unix(1_700_000_000, 0)
	k := newInstallKeys(srv.URL, srv.Client())
	k.now = func() time.Time { return now }
	for i := 0; i < 50; i++ {
		if _, err := k.get(context.Background(), "forged-kid"); !errors.Is(err, ErrKeyID) {
			t.Fatalf("attempt %d: %v", i, err)
		}
	}
	if calls.Load() != 1 {
		t.Fatalf("key service asked %d times for one unknown kid, want 1", calls.Load())
	}
	now = now.Add(unknownKidTTL + time.Second)
	k.get(context.Background(), "forged-kid")
	if calls.Load() != 2 {
		t.Fatalf("unknown kid not asked again after %v: %d calls", unknownKidTTL, calls.Load())
	}
}

// TestForgedKidFloodCostsABoundedNumberOfKeyFetches: 400 forged installs,
// each with a kid never seen before, arrive at once. Ferry asks the key
// service at most keyFetchBurst times; the rest are answered "retry later"
// without a fetch; a key already known keeps working throughout; and a
// legitimate new kid is fetched as soon as the next fetch is due.
func TestForgedKidFloodCostsABoundedNumberOfKeyFetches(t *testing.T) {
	pemKey := testPublicKeyPEM(t)
	var mu sync.Mutex
	fetched := map[string]int{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		kid := strings.TrimPrefix(r.URL.Path, "/")
		mu.Lock()
		fetched[kid]++
		mu.Unlock()
		if kid == "atlassian-old" || kid == "atlassian-new" {
			w.Write(pemKey)
			return
		}
		w.WriteHeader(http.StatusNotFound)
	}))
	defer srv.Close()
	total := func() (n int) {
		mu.Lock()
		defer mu.Unlock()
		for _, c := range fetched {
			n += c
		}
		return n
	}
	now := time.Unix(1_700_000_000, 0)
	var clockMu sync.Mutex
	k := newInstallKeys(srv.URL, srv.Client())
	k.now = func() time.Time { clockMu.Lock(); defer clockMu.Unlock(); return now }
	ctx := context.Background()
	if _, err := k.get(ctx, "atlassian-old"); err != nil {
		t.Fatal(err)
	}

	const forged = 400
	var wg sync.WaitGroup
	var limited, unknown, other, knownOK atomic.Int32
	for i := 0; i < forged; i++ {
		wg.Add(2)
		go func() {
			defer wg.Done()
			_, err := k.get(ctx, fmt.Sprintf("forged-%03d", i))
			var later *retryLater
			switch {
			case errors.As(err, &later):
				if later.after <= 0 || later.after > keyFetchEvery {
					t.Errorf("Retry-After %v, want within (0, %v]", later.after, keyFetchEvery)
				}
				limited.Add(1)
			case errors.Is(err, ErrKeyID):
				unknown.Add(1)
			default:
				other.Add(1)
			}
		}()
		go func() { // a genuine install signed with the known key, meanwhile
			defer wg.Done()
			if _, err := k.get(ctx, "atlassian-old"); err == nil {
				knownOK.Add(1)
			}
		}()
	}
	wg.Wait()
	got := total() - 1 // the fetch of atlassian-old before the flood
	if got > keyFetchBurst || got != int(unknown.Load()) || int(limited.Load()) != forged-got || other.Load() != 0 {
		t.Fatalf("%d forged kids: %d fetches (limit %d), %d unknown, %d limited, %d other errors",
			forged, got, keyFetchBurst, unknown.Load(), limited.Load(), other.Load())
	}
	if knownOK.Load() != forged || fetched["atlassian-old"] != 1 {
		t.Fatalf("a known key during the flood: %d of %d lookups worked, %d fetches", knownOK.Load(), forged, fetched["atlassian-old"])
	}

	// Atlassian rotates its key just now: the new kid waits at most one
	// refill interval.
	_, err := k.get(ctx, "atlassian-new")
	var later *retryLater
	if !errors.As(err, &later) || fetched["atlassian-new"] != 0 {
		t.Fatalf("right after the flood: %v, %d fetches", err, fetched["atlassian-new"])
	}
	clockMu.Lock()
	now = now.Add(later.after)
	clockMu.Unlock()
	if pub, err := k.get(ctx, "atlassian-new"); err != nil || pub == nil || fetched["atlassian-new"] != 1 {
		t.Fatalf("the new kid after %v: %v, %d fetches", later.after, err, fetched["atlassian-new"])
	}
}

// TestConcurrentLookupsOfOneKidShareOneFetch: many installs signed with a
// kid not yet cached (Atlassian just rotated) cause one fetch.
func TestConcurrentLookupsOfOneKidShareOneFetch(t *testing.T) {
	pemKey := testPublicKeyPEM(t)
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		w.Write(pemKey)
	}))
	defer srv.Close()
	k := newInstallKeys(srv.URL, srv.Client())
	var wg sync.WaitGroup
	for i := 0; i < 3*keyFetchBurst; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := k.get(context.Background(), "rotated"); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if calls.Load() != 1 {
		t.Fatalf("%d fetches for one kid, want 1", calls.Load())
	}
}

func testPublicKeyPEM(t *testing.T) []byte {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	der, _ := x509.MarshalPKIXPublicKey(&k.PublicKey)
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
}
