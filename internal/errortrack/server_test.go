package errortrack_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/getsentry/sentry-go"

	"ferry/internal/apperr"
	"ferry/internal/config"
	"ferry/internal/errortrack"
	"ferry/internal/logging"
	"ferry/internal/server"
	"ferry/internal/store/storetest"
)

// serverErrors returns a logger whose error records go through sentry-go
// into a relay store, and that store.
func serverErrors(t *testing.T) (*slog.Logger, *errortrack.Store, *errortrack.ServerErrors, *bytes.Buffer) {
	t.Helper()
	db := storetest.SQLite(t)
	st := errortrack.NewStore(db)
	tr := errortrack.New(errortrack.Options{Store: st, Forward: true, Pseudonyms: fixedPseudonyms{}})
	se, err := errortrack.NewServerErrors(tr, "ferry@test", "")
	if err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	return se.Logger(logging.New(&logs, logging.Options{Format: "json", Level: "info"})), st, se, &logs
}

func serverEvents(t *testing.T, st *errortrack.Store) []map[string]any {
	t.Helper()
	p, err := st.Recent(context.Background(), errortrack.Filter{Project: errortrack.ServerProject})
	if err != nil {
		t.Fatal(err)
	}
	var out []map[string]any
	for _, e := range p.Events {
		_, b, _ := st.Event(context.Background(), e.ID)
		var m map[string]any
		json.Unmarshal(b, &m)
		out = append(out, m)
		for _, bad := range planted {
			if bytes.Contains(b, []byte(bad)) {
				t.Errorf("server event keeps %q: %s", bad, b)
			}
		}
	}
	return out
}

// A panic in a real handler, recovered by the real server middleware, is
// reported with the stack of the panic: the handler's frames included.
func TestServerPanicsReachErrorTrackingWithTheirStack(t *testing.T) {
	log, st, _, _ := serverErrors(t)
	// A tracker without a store panics (nil pointer) when it stores: a real
	// bug in a real handler, for the middleware to recover.
	broken := errortrack.New(errortrack.Options{Projects: []errortrack.Project{{ID: "1", PublicKey: key}}})
	srv := httptest.NewServer(server.NewServer(server.Deps{Config: config.Default(), Log: log, DB: storetest.SQLite(t), Errors: broken}))
	defer srv.Close()
	resp, body := post(t, srv.URL+"/errors/api/1/envelope/?sentry_key="+key, envelopeOf([2]string{"event", `{"message":"m"}`}), nil)
	if resp.StatusCode != 500 {
		t.Fatalf("status %d %s", resp.StatusCode, body)
	}
	evs := serverEvents(t, st)
	if len(evs) != 1 {
		t.Fatalf("%d server events, want 1", len(evs))
	}
	b, _ := json.Marshal(evs[0])
	for _, want := range []string{`"type":"panic"`, "invalid memory address", "handleIngest", `"route":"POST /errors/api/{project}/envelope/"`, `"release":"ferry@test"`} {
		if !bytes.Contains(b, []byte(want)) {
			t.Errorf("server event lacks %s: %s", want, b)
		}
	}
}

// A 5xx answer logs its cause; the cause reaches error tracking scrubbed.
func TestServer5xxCausesReachErrorTrackingScrubbed(t *testing.T) {
	log, st, _, logs := serverErrors(t)
	cause := errors.New("upstream said 401 for ada.lovelace@example.org with Bearer " + planted[1] + " at 203.0.113.77, card 4111 1111 1111 1111")
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		apperr.Write(w, r, log, apperr.Wrap(cause, apperr.EINTERNAL, "could not list sources"))
	})
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/app-api/sources", nil))
	if rec.Code != 500 {
		t.Fatalf("status %d", rec.Code)
	}
	evs := serverEvents(t, st)
	if len(evs) != 1 {
		t.Fatalf("%d server events, want 1", len(evs))
	}
	b, _ := json.Marshal(evs[0])
	if !bytes.Contains(b, []byte("upstream said 401 for [email]")) || !bytes.Contains(b, []byte("[ip]")) {
		t.Errorf("server event lost the scrubbed cause: %s", b)
	}
	if strings.Contains(logs.String(), "ada.lovelace") {
		t.Errorf("log keeps the email: %s", logs)
	}
	// Below error level nothing is reported.
	log.Warn("slow", "err", cause)
	if n := len(serverEvents(t, st)); n != 1 {
		t.Errorf("a warning was reported: %d events", n)
	}
}

// BeforeSend is the relay's scrubber: what sentry-go would send keeps only
// what the statement allows.
func TestBeforeSendIsTheRelaysScrubber(t *testing.T) {
	ev := sentry.NewEvent()
	ev.Message = "no user ada.lovelace@example.org"
	ev.User = sentry.User{Email: "ada.lovelace@example.org", IPAddress: "203.0.113.77", Username: "ada"}
	ev.Request = &sentry.Request{URL: "https://ferry.example.com/x?jwt=" + planted[1], Cookies: planted[7], Headers: map[string]string{"Authorization": "Bearer " + planted[1]}}
	ev.Tags = map[string]string{"password": "hunter2hunter2", "page": "admin"}
	ev.ServerName = "adas-laptop"
	ev.Exception = []sentry.Exception{{Type: "*errors.errorString", Value: "card 4111111111111111", Stacktrace: sentry.NewStacktrace()}}
	ev.Contexts = map[string]sentry.Context{"os": {"name": "linux"}, "device": {"arch": "amd64", "num_cpu": 2}, "culture": {"timezone": "Europe/Berlin"}}
	out := errortrack.BeforeSend(ev, nil)
	if out == nil {
		t.Fatal("event dropped")
	}
	b, _ := json.Marshal(out)
	for _, bad := range append(planted, "adas-laptop", "Europe/Berlin", `"ada"`) {
		if bytes.Contains(b, []byte(bad)) {
			t.Errorf("BeforeSend keeps %q: %s", bad, b)
		}
	}
	if out.Message != "no user [email]" || out.Contexts["os"]["name"] != "linux" || len(out.Exception) != 1 ||
		out.Exception[0].Stacktrace == nil || len(out.Exception[0].Stacktrace.Frames) == 0 || out.Request.URL != "https://ferry.example.com/x" {
		t.Errorf("BeforeSend lost what may be kept: %s", b)
	}
}
