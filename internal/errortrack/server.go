package errortrack

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/getsentry/sentry-go"

	"ferry/internal/scrub"
)

// ServerErrors reports Ferry's own errors — panics, 5xx answers, failed
// jobs: every error-level log record — through sentry-go. BeforeSend is
// internal/scrub's Event, the same scrubber the relay applies to browser
// events, and the transport is the relay's own store and outbox, so these
// events are kept and forwarded (through the egress gate) exactly like
// those of the browser SDK.
type ServerErrors struct {
	hub *sentry.Hub
	log *slog.Logger
}

// NewServerErrors builds the sentry-go client over t.
func NewServerErrors(t *Tracker, release, environment string) (*ServerErrors, error) {
	se := &ServerErrors{log: t.o.Log}
	c, err := sentry.NewClient(sentry.ClientOptions{
		Transport:        &storeTransport{t: t, log: t.o.Log},
		BeforeSend:       BeforeSend,
		AttachStacktrace: true,
		// Collect nothing about users, cookies, headers, bodies or query
		// parameters in the first place (the scrubber would drop them).
		DataCollection: &sentry.DataCollection{
			UserInfo:    sentry.Option[bool]{Value: false, IsSet: true},
			Cookies:     &sentry.KeyValueCollectionBehavior{Mode: sentry.CollectionOff},
			HTTPHeaders: &sentry.HeaderCollectionConfig{Request: &sentry.KeyValueCollectionBehavior{Mode: sentry.CollectionOff}, Response: &sentry.KeyValueCollectionBehavior{Mode: sentry.CollectionOff}},
			HTTPBodies:  []sentry.BodyType{},
			QueryParams: &sentry.KeyValueCollectionBehavior{Mode: sentry.CollectionOff},
		},
		Release:              release,
		Environment:          environment,
		ServerName:           "ferry",
		DisableClientReports: true,
	})
	if err != nil {
		return nil, fmt.Errorf("sentry-go client: %w", err)
	}
	se.hub = sentry.NewHub(c, sentry.NewScope())
	return se, nil
}

// Hub is the sentry-go hub (tests and callers that want CaptureException).
func (s *ServerErrors) Hub() *sentry.Hub { return s.hub }

// BeforeSend scrubs a sentry-go event with scrub.Event and returns what is
// left in sentry-go's own shape; an event that cannot be read is dropped.
func BeforeSend(ev *sentry.Event, _ *sentry.EventHint) *sentry.Event {
	b, err := json.Marshal(ev)
	if err != nil {
		return nil
	}
	clean, err := scrub.Event(b, scrub.EventOptions{})
	if err != nil {
		return nil
	}
	b, err = json.Marshal(clean)
	if err != nil {
		return nil
	}
	// sentry-go writes exception, threads and breadcrumbs as bare arrays.
	var m map[string]json.RawMessage
	if json.Unmarshal(b, &m) != nil {
		return nil
	}
	for _, k := range []string{"exception", "threads", "breadcrumbs"} {
		if raw, ok := m[k]; ok {
			var w struct {
				Values json.RawMessage `json:"values"`
			}
			if json.Unmarshal(raw, &w) == nil && w.Values != nil {
				m[k] = w.Values
			}
		}
	}
	if ts, ok := m["timestamp"]; ok && len(ts) > 0 && ts[0] != '"' {
		delete(m, "timestamp") // sentry-go wants RFC 3339; it stamps its own
	}
	b, _ = json.Marshal(m)
	out := &sentry.Event{}
	if err := json.Unmarshal(b, out); err != nil {
		return nil
	}
	if out.Timestamp.IsZero() {
		out.Timestamp = time.Now()
	}
	return out
}

// storeTransport hands each event to the relay's store (and outbox).
type storeTransport struct {
	t   *Tracker
	log *slog.Logger
}

func (tr *storeTransport) Configure(sentry.ClientOptions) {}
func (tr *storeTransport) Flush(time.Duration) bool       { return true }
func (tr *storeTransport) FlushWithContext(context.Context) bool {
	return true
}
func (tr *storeTransport) Close() {}

func (tr *storeTransport) SendEvent(ev *sentry.Event) {
	b, err := json.Marshal(ev)
	if err != nil {
		tr.log.Warn("cannot encode a server error event", "err", err)
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// Warn, not Error: an error here would be reported again, and again.
	if err := tr.t.Accept(ctx, b); err != nil {
		tr.log.Warn("cannot keep a server error event", "err", err)
	}
}

// Capture reports one error-level log record: the message, the error (an
// "err" attribute) as the exception, and the stack where it was logged —
// inside a recovered panic, that stack still holds the panicking frames.
func (s *ServerErrors) Capture(r slog.Record, attrs []slog.Attr) {
	ev := sentry.NewEvent()
	ev.Level = sentry.LevelError
	ev.Message = r.Message
	ev.Tags = map[string]string{}
	exType, exValue := "", ""
	visit := func(a slog.Attr) {
		v := a.Value.Resolve()
		switch a.Key {
		case "err", "error":
			if e, ok := v.Any().(error); ok {
				exType, exValue = fmt.Sprintf("%T", e), e.Error()
			} else {
				exType, exValue = "error", v.String()
			}
		case "panic":
			exType, exValue = "panic", v.String()
		case "route", "job", "component":
			ev.Tags[a.Key] = v.String()
		}
	}
	for _, a := range attrs {
		visit(a)
	}
	r.Attrs(func(a slog.Attr) bool { visit(a); return true })
	st := sentry.NewStacktrace()
	if exType != "" {
		ev.Exception = []sentry.Exception{{Type: exType, Value: r.Message + ": " + exValue, Stacktrace: st}}
	} else {
		ev.Exception = []sentry.Exception{{Type: "error", Value: r.Message, Stacktrace: st}}
	}
	s.hub.CaptureEvent(ev)
}

// Logger wraps a logger so that every record at error level or above is
// also reported through Capture.
func (s *ServerErrors) Logger(l *slog.Logger) *slog.Logger {
	return slog.New(&captureHandler{Handler: l.Handler(), s: s})
}

type captureHandler struct {
	slog.Handler
	s     *ServerErrors
	attrs []slog.Attr
}

func (h *captureHandler) Handle(ctx context.Context, r slog.Record) error {
	err := h.Handler.Handle(ctx, r)
	if r.Level >= slog.LevelError {
		h.s.Capture(r, h.attrs)
	}
	return err
}

func (h *captureHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return &captureHandler{Handler: h.Handler.WithAttrs(as), s: h.s, attrs: append(append([]slog.Attr(nil), h.attrs...), as...)}
}

func (h *captureHandler) WithGroup(name string) slog.Handler {
	if strings.TrimSpace(name) == "" {
		return h
	}
	return &captureHandler{Handler: h.Handler.WithGroup(name), s: h.s, attrs: h.attrs}
}
