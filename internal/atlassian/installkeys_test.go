package atlassian

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
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
