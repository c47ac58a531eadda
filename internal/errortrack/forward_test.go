package errortrack_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"ferry/internal/egress"
	"ferry/internal/errortrack"
	"ferry/internal/store/storetest"
)

// upstream is a fake Sentry: it records what reaches it and answers with
// the status the test sets.
type upstream struct {
	*httptest.Server
	mu      sync.Mutex
	status  int
	headers http.Header
	got     []received
	arrived chan struct{}
}

type received struct {
	Path, Auth, ContentType string
	EventID, Type           string
	Payload                 []byte
}

func newUpstream(t *testing.T) *upstream {
	u := &upstream{status: 200, arrived: make(chan struct{}, 1000)}
	u.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		u.mu.Lock()
		status, hdr := u.status, u.headers
		u.mu.Unlock()
		if status != 200 {
			for k, v := range hdr {
				w.Header()[k] = v
			}
			w.WriteHeader(status)
			return
		}
		rec := received{Path: r.URL.Path, Auth: r.Header.Get("X-Sentry-Auth"), ContentType: r.Header.Get("Content-Type")}
		// Read the envelope independently of Ferry's parser: header line,
		// item header line with a length, that many bytes.
		sc := bufio.NewReader(bytes.NewReader(b))
		line, _ := sc.ReadBytes('\n')
		var h struct {
			EventID string `json:"event_id"`
		}
		json.Unmarshal(line, &h)
		line, _ = sc.ReadBytes('\n')
		var ih struct {
			Type   string `json:"type"`
			Length int    `json:"length"`
		}
		json.Unmarshal(line, &ih)
		payload := make([]byte, ih.Length)
		io.ReadFull(sc, payload)
		rec.EventID, rec.Type, rec.Payload = h.EventID, ih.Type, payload
		u.mu.Lock()
		u.got = append(u.got, rec)
		u.mu.Unlock()
		u.arrived <- struct{}{}
		w.Write([]byte(`{"id":"` + h.EventID + `"}`))
	}))
	t.Cleanup(u.Close)
	return u
}

func (u *upstream) set(status int, hdr http.Header) {
	u.mu.Lock()
	u.status, u.headers = status, hdr
	u.mu.Unlock()
}

func (u *upstream) received() []received {
	u.mu.Lock()
	defer u.mu.Unlock()
	return append([]received(nil), u.got...)
}

// dsn is the upstream's DSN with key upKey and project 42.
const upKey = "aaaabbbbccccddddeeeeffff00001111"

func (u *upstream) dsn() string {
	return "http://" + upKey + "@" + strings.TrimPrefix(u.URL, "http://") + "/42"
}

func gatedClient(t *testing.T, dsn string) *http.Client {
	g, err := egress.New(egress.Config{Region: "us-west-2", SentryUpstreamDSN: dsn, AllowLoopback: true})
	if err != nil {
		t.Fatal(err)
	}
	return g.Client(egress.Sentry)
}

func newForwarder(t *testing.T, st *errortrack.Store, u *upstream) *errortrack.Forwarder {
	d, err := errortrack.ParseDSN(u.dsn())
	if err != nil {
		t.Fatal(err)
	}
	return &errortrack.Forwarder{Store: st, Client: gatedClient(t, u.dsn()), DSN: d, SentryClient: "ferry/test", BaseBackoff: 10 * time.Second}
}

func TestForwarderDeliversEachItemAsAnEnvelopeThroughTheGate(t *testing.T) {
	db := storetest.SQLite(t)
	st := errortrack.NewStore(db)
	u := newUpstream(t)
	f := newForwarder(t, st, u)
	ctx := context.Background()
	st.Accept(ctx, []errortrack.Item{item("1", eventID(1), "error", ""), {Type: errortrack.ItemSession, Payload: []byte(`{"sid":"s"}`)}}, true)
	st.Accept(ctx, []errortrack.Item{item(errortrack.ServerProject, eventID(2), "error", "")}, true)
	n, err := f.RunOnce(ctx)
	if err != nil || n != 3 {
		t.Fatalf("RunOnce = %d, %v", n, err)
	}
	got := u.received()
	if len(got) != 3 {
		t.Fatalf("upstream got %d envelopes", len(got))
	}
	for _, g := range got {
		if g.Path != "/api/42/envelope/" || !strings.Contains(g.Auth, "sentry_key="+upKey) || !strings.Contains(g.Auth, "sentry_version=7") ||
			g.ContentType != "application/x-sentry-envelope" {
			t.Errorf("request %+v", g)
		}
		if g.Type == "event" && !bytes.Contains(g.Payload, []byte(g.EventID)) {
			t.Errorf("event envelope header id %q does not match its payload %s", g.EventID, g.Payload)
		}
	}
	if got[0].EventID != eventID(1) || got[1].Type != "session" || got[2].EventID != eventID(2) {
		t.Errorf("order or content: %+v", got)
	}
	if st, _ := st.Stats(ctx); st.Pending != 0 {
		t.Errorf("outbox still holds %d", st.Pending)
	}
}

func TestForwarderBacksOffWhileUpstreamIsDownAndDeliversWhenItReturns(t *testing.T) {
	db := storetest.SQLite(t)
	st := errortrack.NewStore(db)
	u := newUpstream(t)
	f := newForwarder(t, st, u)
	ctx := context.Background()
	now := time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC)
	db.SetClock(func() time.Time { return now })
	for i := 1; i <= 4; i++ {
		st.Accept(ctx, []errortrack.Item{item("1", eventID(i), "error", "")}, true)
	}
	u.set(503, nil)
	if n, err := f.RunOnce(ctx); err != nil || n != 0 {
		t.Fatalf("RunOnce while down = %d, %v", n, err)
	}
	next, ok, _ := st.NextDue(ctx)
	if !ok || next.Sub(now) < 8*time.Second || next.Sub(now) > 12*time.Second {
		t.Fatalf("next attempt at +%v, want the first backoff (10 s ± 20 %%)", next.Sub(now))
	}
	if n, _ := f.RunOnce(ctx); n != 0 || len(u.received()) != 0 {
		t.Fatal("retried before the backoff ended")
	}
	// A second failure doubles the wait.
	now = now.Add(13 * time.Second)
	f.RunOnce(ctx)
	next, _, _ = st.NextDue(ctx)
	if d := next.Sub(now); d < 16*time.Second || d > 24*time.Second {
		t.Fatalf("second backoff %v, want 20 s ± 20 %%", d)
	}
	u.set(200, nil)
	now = now.Add(25 * time.Second)
	if n, err := f.RunOnce(ctx); err != nil || n != 4 {
		t.Fatalf("RunOnce after recovery = %d, %v", n, err)
	}
	if s, _ := st.Stats(ctx); s.Pending != 0 {
		t.Errorf("pending %d after recovery", s.Pending)
	}
}

func TestForwarderHonoursRateLimitsAndParksRefusedItems(t *testing.T) {
	db := storetest.SQLite(t)
	st := errortrack.NewStore(db)
	u := newUpstream(t)
	f := newForwarder(t, st, u)
	ctx := context.Background()
	now := time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC)
	db.SetClock(func() time.Time { return now })
	for i := 1; i <= 3; i++ {
		st.Accept(ctx, []errortrack.Item{item("1", eventID(i), "error", "")}, true)
	}
	u.set(429, http.Header{"X-Sentry-Rate-Limits": {"90:error:key, 10::organization"}, "Retry-After": {"5"}})
	f.RunOnce(ctx)
	next, _, _ := st.NextDue(ctx)
	if d := next.Sub(now); d != 90*time.Second {
		t.Fatalf("after a 429 the outbox waits %v, want Sentry's 90 s", d)
	}
	claimed, _ := st.Claim(ctx, 10, time.Second)
	if len(claimed) != 0 {
		t.Fatalf("%d rows due during the rate limit", len(claimed))
	}
	u.set(400, nil)
	now = now.Add(91 * time.Second)
	if n, _ := f.RunOnce(ctx); n != 0 {
		t.Fatal("delivered despite 400")
	}
	if s, _ := st.Stats(ctx); s.Rejected != 3 || s.Pending != 0 {
		t.Fatalf("after 400: %+v, want all 3 parked as rejected", s)
	}
	u.set(200, nil)
	now = now.Add(time.Hour)
	if n, _ := f.RunOnce(ctx); n != 0 {
		t.Fatal("rejected rows were sent again")
	}
}

func TestForwarderWakesOnNudge(t *testing.T) {
	db := storetest.SQLite(t)
	st := errortrack.NewStore(db)
	u := newUpstream(t)
	f := newForwarder(t, st, u)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { f.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()
	for i := 1; i <= 3; i++ {
		st.Accept(context.Background(), []errortrack.Item{item("1", eventID(i), "error", "")}, true)
		f.Nudge()
		select {
		case <-u.arrived:
		case <-time.After(10 * time.Second):
			t.Fatalf("event %d not delivered within 10 s of the nudge", i)
		}
	}
	if got := u.received(); len(got) != 3 || got[2].EventID != eventID(3) {
		t.Errorf("received %+v", got)
	}
}
