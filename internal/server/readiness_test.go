package server

import (
	"context"
	"database/sql"
	"encoding/json"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"ferry/internal/keys"
	"ferry/internal/store"
	"ferry/internal/store/storetest"
)

// readyDeps is a migrated database with its key ring, as ferry serve has.
func readyDeps(t *testing.T, db *store.DB) Deps {
	t.Helper()
	ring, err := keys.Open(context.Background(), db, keys.Options{KeyFile: filepath.Join(t.TempDir(), "kek.json")})
	if err != nil {
		t.Fatal(err)
	}
	if err := ring.EnsureTenant(context.Background(), "t1"); err != nil {
		t.Fatal(err)
	}
	return Deps{DB: db, Keys: ring}
}

// occupyPool takes every connection the pool will give, as requests do
// under load, until the returned function gives them back.
func occupyPool(t *testing.T, db *store.DB) func() {
	t.Helper()
	n := db.SQL.Stats().MaxOpenConnections
	if db.Pool != nil {
		n = int(db.Pool.Config().MaxConns)
	}
	var conns []*sql.Conn
	for range n {
		c, err := db.SQL.Conn(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
	}
	// The database itself answers at once on a held connection.
	if err := conns[0].PingContext(context.Background()); err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	release := func() {
		once.Do(func() {
			for _, c := range conns {
				c.Close()
			}
		})
	}
	t.Cleanup(release)
	return release
}

func readyz(t *testing.T, h *readiness) (int, string) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/readyz", nil))
	var body struct{ Status, Reason string }
	json.Unmarshal(rec.Body.Bytes(), &body)
	return rec.Code, body.Reason
}

// Under load every connection of the pool is busy with requests (on
// PostgreSQL the pool holds max(4, CPUs) connections, one of them the job
// queue's listener). A readiness check that queues behind them gets no
// answer within its timeout although the database answers every request:
// that must not take the replica out of rotation (a load balancer would
// then shift its load onto the others, which flap in turn). Only a database
// that gives no answer for longer than the grace, or a definite failure,
// makes the server unready.
func TestContractReadinessDoesNotFlapWhenThePoolIsBusy(t *testing.T) {
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		d := readyDeps(t, db)
		clock := time.Now()
		var mu sync.Mutex
		now := func() time.Time { mu.Lock(); defer mu.Unlock(); return clock }
		advance := func(d time.Duration) { mu.Lock(); clock = clock.Add(d); mu.Unlock() }
		h := newReadiness(d, readinessOptions{Timeout: 200 * time.Millisecond, Grace: 10 * time.Second, Now: now})

		if code, reason := readyz(t, h); code != 200 {
			t.Fatalf("idle server: %d %s", code, reason)
		}
		release := occupyPool(t, db)
		// What the flake of TestKEKRotationWhileServing was: Ready alone
		// queues for a connection and reports the busy pool as unreachable.
		short, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		err := Ready(short, d)
		cancel()
		if err == nil || !strings.Contains(err.Error(), "database: unreachable") {
			t.Fatalf("Ready with every connection busy: %v (the diagnosis no longer holds)", err)
		}
		// Busy, within the grace: still ready.
		for range 3 {
			advance(3 * time.Second)
			if code, reason := readyz(t, h); code != 200 {
				t.Fatalf("pool busy for %s: %d %s", clock.Sub(now()), code, reason)
			}
		}
		// No answer for longer than the grace: unready, saying so.
		advance(2 * time.Second)
		if code, reason := readyz(t, h); code != 503 || !strings.Contains(reason, "no answer") {
			t.Fatalf("no answer for 11s: %d %q", code, reason)
		}
		// Answers again: ready at once.
		release()
		if code, reason := readyz(t, h); code != 200 {
			t.Fatalf("after the load: %d %s", code, reason)
		}
		// A definite failure is reported at once, grace or not.
		if _, err := db.SQL.Exec(`UPDATE kek_versions SET check_value = $1`, []byte("not the check value")); err != nil {
			t.Fatal(err)
		}
		if code, reason := readyz(t, h); code != 503 || !strings.Contains(reason, "keys") {
			t.Fatalf("KEK check value no longer opens: %d %q", code, reason)
		}
	})
}
