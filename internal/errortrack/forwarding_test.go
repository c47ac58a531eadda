package errortrack_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"ferry/internal/errortrack"
	"ferry/internal/store"
	"ferry/internal/store/storetest"
)

// TestContractForwardingStateOfEveryEventMatchesWhatSentryAnswered
// generates events — forwarded or kept locally, in several projects, one
// event id shared by two projects — lets a fake Sentry accept, refuse for
// good (400) or refuse for now (401) each by its id, and checks what the
// console is told of every event and of the outbox against the answers
// recorded here. Occurrence counts are checked against the generated list.
func TestContractForwardingStateOfEveryEventMatchesWhatSentryAnswered(t *testing.T) {
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		now := time.Date(2026, 7, 1, 8, 0, 0, 0, time.UTC)
		db.SetClock(func() time.Time { return now })
		st := errortrack.NewStore(db)
		r := rand.New(rand.NewPCG(5, 6))

		answers := []int{200, 400, 401}
		var mu sync.Mutex
		answer := map[string]int{} // event id → what Sentry answers
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
			line, _ := bufio.NewReader(req.Body).ReadBytes('\n')
			var h struct {
				EventID string `json:"event_id"`
			}
			json.Unmarshal(line, &h)
			mu.Lock()
			code, ok := answer[h.EventID]
			mu.Unlock()
			if !ok {
				code = 200 // sessions
			}
			w.WriteHeader(code)
		}))
		defer srv.Close()
		u := &upstream{Server: srv}
		f := newForwarder(t, st, u)

		type ev struct {
			project, id, title string
			forward            bool
			at                 time.Time
		}
		var all []ev
		projects, titles := []string{"1", "7", errortrack.ServerProject}, []string{"TypeError: x is undefined", "Error: render failed", "panic: nil map"}
		for i := 1; i <= 60; i++ {
			now = now.Add(time.Duration(1+r.IntN(600)) * time.Second)
			e := ev{projects[r.IntN(3)], eventID(i), titles[r.IntN(3)], r.IntN(4) != 0, now}
			if e.forward {
				answer[e.id] = answers[r.IntN(3)]
			}
			it := item(e.project, e.id, "error", "")
			it.Title = e.title
			items := []errortrack.Item{it}
			if r.IntN(5) == 0 {
				items = append(items, errortrack.Item{Type: errortrack.ItemSession, Payload: []byte(`{"sid":"s"}`), Project: e.project})
			}
			if _, err := st.Accept(ctx, items, e.forward); err != nil {
				t.Fatal(err)
			}
			all = append(all, e)
		}
		// One id in two projects: delivered in one, kept locally in the other.
		shared := eventID(1000)
		answer[shared] = 200
		for _, e := range []ev{{"1", shared, titles[0], true, now}, {"7", shared, titles[0], false, now}} {
			it := item(e.project, e.id, "error", "")
			it.Title = e.title
			st.Accept(ctx, []errortrack.Item{it}, e.forward)
			all = append(all, e)
		}
		if _, err := f.RunOnce(ctx); err != nil {
			t.Fatal(err)
		}

		page, err := st.Recent(ctx, errortrack.Filter{Limit: 200})
		if err != nil || len(page.Events) != len(all) {
			t.Fatalf("Recent: %d events, %v", len(page.Events), err)
		}
		byKey := map[string]errortrack.EventSummary{}
		for _, e := range page.Events {
			byKey[e.Project+"/"+e.EventID] = e
		}
		var delivered, queued, parked int
		for _, e := range all {
			s := byKey[e.project+"/"+e.id]
			got, err := st.Forwarding(ctx, s)
			if err != nil {
				t.Fatal(err)
			}
			want := errortrack.ForwardLocal
			if e.forward {
				want = map[int]string{200: errortrack.ForwardDelivered, 400: errortrack.ForwardParked, 401: errortrack.ForwardQueued}[answer[e.id]]
			}
			if got.State != want {
				t.Errorf("%s/%s (forward %v, Sentry answers %d): %s, want %s", e.project, e.id, e.forward, answer[e.id], got.State, want)
				continue
			}
			switch want {
			case errortrack.ForwardDelivered:
				delivered++
				if !got.DeliveredAt.Equal(now) {
					t.Errorf("%s delivered at %v, the forwarder ran at %v", e.id, got.DeliveredAt, now)
				}
			case errortrack.ForwardQueued:
				queued++
				if got.Attempts != 1 || got.LastError != "upstream answered 401" || !got.NextAttempt.After(now) {
					t.Errorf("%s queued: %+v", e.id, got)
				}
			case errortrack.ForwardParked:
				parked++
				if got.Attempts != 1 || got.LastError != "upstream answered 400" {
					t.Errorf("%s parked: %+v", e.id, got)
				}
			}
			// Occurrences: same project and title among everything stored.
			var n int
			var first, last time.Time
			for _, o := range all {
				if o.project == e.project && o.title == e.title {
					if n == 0 || o.at.Before(first) {
						first = o.at
					}
					if o.at.After(last) {
						last = o.at
					}
					n++
				}
			}
			occ, err := st.Occurrences(ctx, s)
			if err != nil || occ.Count != n || !occ.FirstSeen.Equal(first) || !occ.LastSeen.Equal(last) {
				t.Errorf("%s occurrences %+v, %v; want %d from %v to %v", e.id, occ, err, n, first, last)
			}
		}
		if delivered == 0 || queued == 0 || parked == 0 {
			t.Fatalf("generated cases miss a state: %d delivered, %d queued, %d parked", delivered, queued, parked)
		}
		o, err := st.Outbox(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if o.Delivered != delivered || o.Queued != queued || o.Parked != parked {
			t.Errorf("Outbox = %+v; want %d delivered, %d queued, %d parked", o, delivered, queued, parked)
		}
		// The latest failure of a queued item, not a parked one's.
		if o.LastError != "upstream answered 401" || o.OldestQueue.IsZero() {
			t.Errorf("Outbox last error %q, oldest %v", o.LastError, o.OldestQueue)
		}
		if strings.Contains(fmt.Sprint(o), upKey) {
			t.Error("the outbox summary carries the upstream key")
		}
	})
}
