package reqlog_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"ferry/internal/reqlog"
	"ferry/internal/reqlog/reqlogtest"
	"ferry/internal/store"
	"ferry/internal/store/storetest"
)

// lockRequestLog blocks every write to request_log until the returned
// function is called: the database is slow, as under a long transaction.
func lockRequestLog(t *testing.T, db *store.DB) func() {
	t.Helper()
	ctx := context.Background()
	conn, err := db.SQL.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	lock := "BEGIN IMMEDIATE"
	if db.Dialect == store.Postgres {
		lock = "BEGIN; LOCK TABLE request_log IN EXCLUSIVE MODE"
	}
	if _, err := conn.ExecContext(ctx, lock); err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	unlock := func() {
		once.Do(func() {
			conn.ExecContext(ctx, "ROLLBACK")
			conn.Close()
		})
	}
	t.Cleanup(unlock) // also when the test fails while the lock is held
	return unlock
}

// writtenQueries lists the query strings of the written entries of t1, by
// decrypting each (the query is sealed).
func writtenQueries(t *testing.T, f *fixture) map[string]bool {
	t.Helper()
	es, err := f.store.List(context.Background(), "t1", time.Time{}, 1000)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]bool{}
	for _, e := range es {
		_, req, err := f.decrypt(t, f.store, e.ID)
		if err != nil {
			t.Fatal(err)
		}
		out[req.Query] = true
	}
	return out
}

// The window: while the writer is less than Window behind, requests are
// answered at once (their entries follow within the linger); once the
// oldest unwritten entry is older than that, a request is answered only
// after its own entry is written. So what a crash can lose is bounded by
// the window, however slow the database gets. The clock is the test's, so
// nothing here depends on how fast the machine is.
func TestContractWindowHoldsAnswersWhileTheWriterIsBehind(t *testing.T) {
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db, reqlog.Options{Window: time.Second})
		var now atomic.Int64
		reqlog.SetWindowClock(f.log, func() time.Duration { return time.Duration(now.Load()) })
		unlock := lockRequestLog(t, db) // its cleanup runs before the fixture's, which waits for the writer

		// Within the window: answered although nothing can be written.
		if res := f.do(t, "GET", "/odata/a/Issues?n=young", nil, nil); res.StatusCode != 200 {
			t.Fatalf("first request: %d", res.StatusCode)
		}
		// The oldest unwritten entry is now two windows old: the next
		// request waits for its entry.
		now.Store(int64(2 * time.Second))
		heldBefore := heldTotal(t)
		answered := make(chan int, 1)
		go func() {
			req, _ := http.NewRequest("GET", f.srv.URL+"/odata/a/Issues?n=late", nil)
			res, err := f.srv.Client().Do(req)
			if err != nil {
				answered <- 0
				return
			}
			res.Body.Close()
			answered <- res.StatusCode
		}()
		for heldTotal(t) == heldBefore {
			select {
			case code := <-answered:
				t.Fatalf("answered (%d) while the writer was two windows behind and its entry unwritten", code)
			case <-time.After(time.Millisecond):
			}
		}
		unlock()
		if code := <-answered; code != 200 {
			t.Fatalf("held request: %d", code)
		}
		// Answered means written: no Flush before looking.
		got := writtenQueries(t, f)
		for _, q := range []string{"n=young", "n=late"} {
			if !got[q] {
				t.Errorf("entry %s not written when the held request was answered (have %v)", q, got)
			}
		}
	})
}

// Browser error envelopes may hold anything the page saw; error tracking
// keeps their scrubbed form under its own retention. The request log keeps
// the request's metadata, headers and size, never the body — plain or
// gzip-compressed.
func TestContractErrorIngestBodiesAreNeverKept(t *testing.T) {
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		f := newFixture(t, db, reqlog.Options{})
		planted := []string{"grace.hopper@example.net", "203.0.113.77", "Falcon launch plan (Jira summary)", "4111111111111111"}
		envelope := `{"event_id":"9ec79c33ec9942ab8353589fcb2e04dc"}` + "\n" + `{"type":"event"}` + "\n" +
			`{"message":"` + strings.Join(planted, " | ") + `","user":{"email":"` + planted[0] + `","ip_address":"` + planted[1] + `"}}`
		var gz bytes.Buffer
		w := gzip.NewWriter(&gz)
		w.Write([]byte(envelope))
		w.Close()
		for _, c := range []struct {
			name string
			body []byte
			hdr  map[string]string
		}{
			{"plain", []byte(envelope), map[string]string{"Content-Type": "text/plain;charset=UTF-8"}},
			{"gzip", gz.Bytes(), map[string]string{"Content-Type": "application/x-sentry-envelope", "Content-Encoding": "gzip"}},
		} {
			f.do(t, "POST", "/errors/api/7/envelope/?sentry_key=0123456789abcdef&case="+c.name, bytes.NewReader(c.body), c.hdr)
		}
		// An app-API request with the same text keeps its body (scrubbed):
		// the omission is for ingest routes only.
		f.do(t, "POST", "/app-api/echo", strings.NewReader(`{"note":"`+planted[2]+`"}`), map[string]string{"Content-Type": "application/json"})
		f.flush(t)

		es, err := f.store.List(context.Background(), "", time.Time{}, 10)
		if err != nil {
			t.Fatal(err)
		}
		ingest := 0
		for _, e := range es {
			if !strings.HasPrefix(e.Route, "POST /errors/") {
				continue
			}
			ingest++
			_, req, err := f.decrypt(t, f.store, e.ID)
			if err != nil {
				t.Fatal(err)
			}
			dump := fmt.Sprintf("%+v", req)
			for _, p := range planted {
				if strings.Contains(dump, p) {
					t.Errorf("%s: sealed request holds %q: %s", e.Route, p, dump)
				}
			}
			if req.Body != "" || req.BodyOmitted != reqlog.BodyOmitted || req.BodyBytes == 0 || req.BodyTruncated {
				t.Errorf("%s: body %q omitted %q bytes %d truncated %v", e.Route, req.Body, req.BodyOmitted, req.BodyBytes, req.BodyTruncated)
			}
			if !strings.Contains(req.Query, "sentry_key=[redacted]") || req.Headers["Content-Type"] == "" {
				t.Errorf("%s: metadata lost: %s", e.Route, dump)
			}
		}
		if ingest != 2 {
			t.Fatalf("%d ingest entries, want 2: %+v", ingest, es)
		}
		for _, p := range planted[:2] {
			reqlogtest.AssertNoBytes(t, db, p)
		}
	})
}

// heldTotal reads ferry_reqlog_held_total.
func heldTotal(t *testing.T) float64 {
	t.Helper()
	mfs, err := prometheus.DefaultGatherer.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == "ferry_reqlog_held_total" {
			return mf.GetMetric()[0].GetCounter().GetValue()
		}
	}
	return 0
}
