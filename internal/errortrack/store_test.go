package errortrack_test

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"ferry/internal/errortrack"
	"ferry/internal/keys"
	"ferry/internal/store"
	"ferry/internal/store/storetest"
)

func item(project, id, level, release string) errortrack.Item {
	return errortrack.Item{Type: errortrack.ItemEvent, EventID: id, Project: project, Level: level, Release: release,
		Payload: []byte(`{"event_id":"` + id + `"}`), Title: "Error: " + id}
}

func eventID(n int) string { return fmt.Sprintf("%032x", n) }

func count(t *testing.T, db *store.DB, table string) int {
	t.Helper()
	var n int
	if err := db.SQL.QueryRow(`SELECT COUNT(*) FROM ` + table).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func TestContractAcceptKeepsEventsAndQueuesThemOnlyWhenForwarding(t *testing.T) {
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		s := errortrack.NewStore(db)
		ctx := context.Background()
		session := errortrack.Item{Type: errortrack.ItemSession, Payload: []byte(`{"sid":"x"}`)}
		n, err := s.Accept(ctx, []errortrack.Item{item("1", eventID(1), "error", "r1"), session}, true)
		if err != nil || n != 2 {
			t.Fatalf("Accept = %d, %v; want 2 new", n, err)
		}
		// An SDK's retry of the same event: stored once, queued once.
		n, err = s.Accept(ctx, []errortrack.Item{item("1", eventID(1), "error", "r1")}, true)
		if err != nil || n != 0 {
			t.Fatalf("retry Accept = %d, %v; want 0 new", n, err)
		}
		// The same id in another project is another event.
		if n, _ := s.Accept(ctx, []errortrack.Item{item(errortrack.ServerProject, eventID(1), "error", "")}, false); n != 1 {
			t.Fatalf("same id, other project: %d new", n)
		}
		if got := count(t, db, "error_events"); got != 2 {
			t.Errorf("error_events = %d, want 2", got)
		}
		if got := count(t, db, "error_outbox"); got != 2 {
			t.Errorf("error_outbox = %d, want 2 (event and session of the forwarded envelope)", got)
		}
		st, err := s.Stats(ctx)
		if err != nil || st.Pending != 2 {
			t.Errorf("Stats = %+v, %v", st, err)
		}
	})
}

// TestContractRecentPagesAndFilters generates events, then checks every
// filter combination's pages against the list filtered here.
func TestContractRecentPagesAndFilters(t *testing.T) {
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		s := errortrack.NewStore(db)
		ctx := context.Background()
		r := rand.New(rand.NewPCG(11, 12))
		type ev struct{ project, id, level, release string }
		var all []ev
		projects, levels, releases := []string{"1", "7", errortrack.ServerProject}, []string{"error", "warning", "fatal"}, []string{"ferry@1.0.0", "ferry@1.1.0"}
		for i := 1; i <= 137; i++ {
			e := ev{projects[r.IntN(3)], eventID(i), levels[r.IntN(3)], releases[r.IntN(2)]}
			all = append(all, e)
			if _, err := s.Accept(ctx, []errortrack.Item{item(e.project, e.id, e.level, e.release)}, false); err != nil {
				t.Fatal(err)
			}
		}
		for _, f := range []errortrack.Filter{
			{}, {Project: "1"}, {Project: "7", Level: "error"}, {Release: "ferry@1.1.0"},
			{Project: errortrack.ServerProject, Level: "fatal", Release: "ferry@1.0.0"}, {Level: "nope"},
		} {
			var want []string
			for i := len(all) - 1; i >= 0; i-- {
				e := all[i]
				if (f.Project == "" || f.Project == e.project) && (f.Level == "" || f.Level == e.level) && (f.Release == "" || f.Release == e.release) {
					want = append(want, e.id)
				}
			}
			for _, limit := range []int{1, 10, 50} {
				var got []string
				ff := f
				ff.Limit = limit
				for pages := 0; ; pages++ {
					if pages > len(all)+1 {
						t.Fatalf("paging does not end")
					}
					p, err := s.Recent(ctx, ff)
					if err != nil {
						t.Fatal(err)
					}
					if len(p.Events) > limit {
						t.Fatalf("page of %d > limit %d", len(p.Events), limit)
					}
					for _, e := range p.Events {
						got = append(got, e.EventID)
						if e.ReceivedAt.IsZero() || e.Title != "Error: "+e.EventID {
							t.Fatalf("summary incomplete: %+v", e)
						}
					}
					if p.Next == "" {
						break
					}
					ff.Cursor = p.Next
				}
				if !slices.Equal(got, want) {
					t.Fatalf("filter %+v limit %d: got %d events, want %d (%v vs %v)", f, limit, len(got), len(want), got, want)
				}
			}
		}
		if _, err := s.Recent(ctx, errortrack.Filter{Cursor: "not a cursor!"}); err != errortrack.ErrBadCursor {
			t.Errorf("bad cursor: %v", err)
		}
		p, _ := s.Recent(ctx, errortrack.Filter{Limit: 1})
		sum, payload, err := s.Event(ctx, p.Events[0].ID)
		if err != nil || sum.EventID != all[len(all)-1].id || !bytes.Contains(payload, []byte(sum.EventID)) {
			t.Errorf("Event = %+v %s %v", sum, payload, err)
		}
		if _, _, err := s.Event(ctx, -1); err != errortrack.ErrNoEvent {
			t.Errorf("Event(-1) = %v", err)
		}
	})
}

func TestContractRetentionDeletesWhatIsOlderThanTheWindow(t *testing.T) {
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		s := errortrack.NewStore(db)
		ctx := context.Background()
		start := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
		for day := 0; day <= 40; day++ {
			db.SetClock(func() time.Time { return start.AddDate(0, 0, day) })
			if _, err := s.Accept(ctx, []errortrack.Item{item("1", eventID(day+1), "error", "")}, true); err != nil {
				t.Fatal(err)
			}
		}
		now := start.AddDate(0, 0, 40).Add(time.Hour)
		db.SetClock(func() time.Time { return now })
		res, err := s.Expire(ctx, 30)
		if err != nil {
			t.Fatal(err)
		}
		old := 0
		for day := 0; day <= 40; day++ {
			if now.Sub(start.AddDate(0, 0, day)) > 30*24*time.Hour {
				old++
			}
		}
		if res.Events != int64(old) || res.OutboxUndeliverable != int64(old) {
			t.Errorf("Expire = %+v, want %d events and %d unsent outbox rows deleted", res, old, old)
		}
		p, _ := s.Recent(ctx, errortrack.Filter{Limit: 200})
		if len(p.Events) != 41-old {
			t.Fatalf("%d events left, want %d", len(p.Events), 41-old)
		}
		for _, e := range p.Events {
			if now.Sub(e.ReceivedAt) > 30*24*time.Hour {
				t.Errorf("event of %s kept past 30 days", e.ReceivedAt)
			}
		}
		if again, _ := s.Expire(ctx, 30); again.Events != 0 {
			t.Errorf("second Expire deleted %d", again.Events)
		}
	})
}

// A claimed row that is never acknowledged (the process died) is handed
// out again once its lease ends; until then nobody else gets it.
func TestContractUnacknowledgedClaimsComeBackAfterTheLease(t *testing.T) {
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		s := errortrack.NewStore(db)
		ctx := context.Background()
		now := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
		db.SetClock(func() time.Time { return now })
		for i := 1; i <= 5; i++ {
			s.Accept(ctx, []errortrack.Item{item("1", eventID(i), "error", "")}, true)
		}
		got, err := s.Claim(ctx, 3, time.Minute)
		if err != nil || len(got) != 3 || got[0].Attempts != 1 {
			t.Fatalf("Claim = %+v, %v", got, err)
		}
		rest, _ := s.Claim(ctx, 10, time.Minute)
		if len(rest) != 2 {
			t.Fatalf("second claim got %d, want the 2 unclaimed", len(rest))
		}
		if none, _ := s.Claim(ctx, 10, time.Minute); len(none) != 0 {
			t.Fatalf("leased rows handed out again: %d", len(none))
		}
		if at, ok, err := s.NextDue(ctx); err != nil || !ok || !at.Equal(now.Add(time.Minute)) {
			t.Fatalf("NextDue = %v %v %v, want the end of the lease %v", at, ok, err, now.Add(time.Minute))
		}
		s.Delivered(ctx, got[0].ID)
		s.Reject(ctx, got[1].ID, "upstream answered 400")
		now = now.Add(61 * time.Second)
		back, _ := s.Claim(ctx, 10, time.Minute)
		if len(back) != 3 {
			t.Fatalf("after the lease %d rows came back, want 3 (not the delivered or rejected one)", len(back))
		}
		for _, b := range back {
			if b.ID == got[0].ID || b.ID == got[1].ID {
				t.Errorf("row %d came back", b.ID)
			}
			if b.Attempts != 2 {
				t.Errorf("row %d attempts = %d, want 2", b.ID, b.Attempts)
			}
		}
		st, _ := s.Stats(ctx)
		if st.Pending != 3 || st.Rejected != 1 {
			t.Errorf("Stats = %+v", st)
		}
	})
}

// The pseudonym key is sealed with the ring's KEK (never stored in the
// clear), gives the same pseudonyms after a reload and after a KEK
// rotation and retirement (it is registered with the ring), and does not
// open under another key file.
func TestContractPseudonymKeyIsWrappedAndFollowsKEKRotation(t *testing.T) {
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		path := t.TempDir() + "/kek.json"
		ring, err := keys.Open(ctx, db, keys.Options{KeyFile: path})
		if err != nil {
			t.Fatal(err)
		}
		ring.RegisterWrapped("error-tracking pseudonym key", errortrack.WrappedPseudonymKey{DB: db})
		a, err := errortrack.LoadPseudonyms(ctx, db, ring.KEK())
		if err != nil {
			t.Fatal(err)
		}
		p := a.Pseudonym("ten_1", "ada@example.org")
		if len(p) != errortrack.PseudonymLen || p == a.Pseudonym("ten_2", "ada@example.org") || p == a.Pseudonym("ten_1", "bob@example.org") {
			t.Fatalf("pseudonym %q: wrong length or collides across tenants or people", p)
		}
		if n, _ := (errortrack.WrappedPseudonymKey{DB: db}).UnderKEKVersion(ctx, 1); n != 1 {
			t.Fatalf("key not under KEK version 1: %d", n)
		}
		if _, err := ring.Rotate(ctx, ""); err != nil {
			t.Fatal(err)
		}
		if _, err := ring.Retire(ctx, 1); err != nil {
			t.Fatalf("retire: %v", err)
		}
		if n, _ := (errortrack.WrappedPseudonymKey{DB: db}).UnderKEKVersion(ctx, 2); n != 1 {
			t.Fatalf("key not re-wrapped under version 2: %d", n)
		}
		fresh, err := keys.Open(ctx, db, keys.Options{KeyFile: path})
		if err != nil {
			t.Fatal(err)
		}
		b, err := errortrack.LoadPseudonyms(ctx, db, fresh.KEK())
		if err != nil || b.Pseudonym("ten_1", "ada@example.org") != p {
			t.Fatalf("after rotation and a reload the pseudonym changed (%v)", err)
		}
		other, _ := keys.OpenLocalKEK(t.TempDir() + "/kek.json")
		if _, err := errortrack.LoadPseudonyms(ctx, db, other); err == nil {
			t.Fatal("another key unwrapped the pseudonym key")
		}
		var wrapped []byte
		db.SQL.QueryRow(`SELECT wrapped FROM error_pseudonym_key`).Scan(&wrapped)
		if len(wrapped) < 32+16 {
			t.Fatalf("stored key is %d bytes: not a sealed key", len(wrapped))
		}
	})
}

// Envelopes accepted concurrently are written in shared transactions: each
// caller learns its own count, every event is kept once, and an event sent
// ten times at once is new for exactly one of the senders.
func TestContractConcurrentAcceptsShareCommitsAndDeduplicate(t *testing.T) {
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		s := errortrack.NewStore(db)
		ctx := context.Background()
		var wg sync.WaitGroup
		var newDup atomic.Int64
		for i := 1; i <= 50; i++ {
			wg.Add(2)
			go func() {
				defer wg.Done()
				if n, err := s.Accept(ctx, []errortrack.Item{item("1", eventID(i), "error", "")}, true); err != nil || n != 1 {
					t.Errorf("Accept %d = %d, %v", i, n, err)
				}
			}()
			go func() {
				defer wg.Done()
				if i > 10 {
					return
				}
				n, err := s.Accept(ctx, []errortrack.Item{item("1", eventID(999), "error", "")}, true)
				if err != nil {
					t.Errorf("duplicate Accept: %v", err)
				}
				newDup.Add(int64(n))
			}()
		}
		wg.Wait()
		if newDup.Load() != 1 {
			t.Errorf("the event sent 10 times was new %d times", newDup.Load())
		}
		if ev, ob := count(t, db, "error_events"), count(t, db, "error_outbox"); ev != 51 || ob != 51 {
			t.Errorf("stored %d events and %d outbox rows, want 51 and 51", ev, ob)
		}
	})
}
