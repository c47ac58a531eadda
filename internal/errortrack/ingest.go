package errortrack

import (
	"bytes"
	"compress/flate"
	"compress/gzip"
	"compress/zlib"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"

	"ferry/internal/apperr"
	"ferry/internal/scrub"
)

// Project is one Sentry project Ferry accepts events for.
type Project struct {
	ID        string // digits, the last path element of the DSN
	PublicKey string // the DSN's user part
}

// ServerProject names Ferry's own errors in the local store.
const ServerProject = "server"

// TenantTag is the tag the app's pages set to the tenant id; it scopes the
// user pseudonym and is removed before anything is stored.
const TenantTag = "ferry_tenant"

var tenantIDRe = regexp.MustCompile(`^ten_[0-9a-f]{32}$`)

// Defaults of Options.
const (
	DefaultMaxEnvelopeBytes = 1 << 20   // after decompression
	DefaultMaxItemBytes     = 512 << 10 // one event or session
	DefaultRate             = 50        // envelopes per second per key
)

// Options configures a Tracker.
type Options struct {
	Store    *Store
	Projects []Project
	// AllowedOrigins may post from a browser (CORS); requests with another
	// Origin are refused. Requests without Origin (server SDKs) pass.
	AllowedOrigins []string
	// Forward queues every accepted item for the upstream Sentry.
	Forward bool
	// Pseudonyms computes the user and session pseudonyms; nil drops both.
	Pseudonyms scrub.Hasher

	MaxEnvelopeBytes int     // default DefaultMaxEnvelopeBytes
	MaxItemBytes     int     // default DefaultMaxItemBytes
	Rate             float64 // envelopes per second per public key (default DefaultRate)
	Burst            int     // default 4 × Rate

	Log *slog.Logger
	// Nudge, if set, is called after items were queued (wakes the forwarder).
	Nudge func()
}

// Tracker is error tracking's HTTP side: the ingest endpoints.
type Tracker struct {
	o       Options
	limiter *limiter
}

var itemsTotal = promauto.NewCounterVec(prometheus.CounterOpts{
	Name: "ferry_errortrack_items_total",
	Help: "Envelope items received by type and outcome (stored, duplicate, skipped: a type Ferry does not keep).",
}, []string{"type", "outcome"})

// New returns a Tracker.
func New(o Options) *Tracker {
	if o.MaxEnvelopeBytes <= 0 {
		o.MaxEnvelopeBytes = DefaultMaxEnvelopeBytes
	}
	if o.MaxItemBytes <= 0 {
		o.MaxItemBytes = DefaultMaxItemBytes
	}
	if o.Rate <= 0 {
		o.Rate = DefaultRate
	}
	if o.Burst <= 0 {
		o.Burst = int(math.Ceil(4 * o.Rate))
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	return &Tracker{o: o, limiter: newLimiter(o.Rate, o.Burst)}
}

// Routes registers the ingest endpoints on mux. The pattern's {path...}
// covers both spellings SDKs use (with and without the trailing slash).
func (t *Tracker) Routes(mux *http.ServeMux) {
	mux.Handle("POST /errors/api/{project}/envelope/", t.handleIngest(true))
	mux.Handle("POST /errors/api/{project}/store/", t.handleIngest(false))
	mux.Handle("OPTIONS /errors/api/{project}/{kind}/", t.handlePreflight())
}

// CrossOriginBypass is the pattern the server's cross-origin protection
// must let through: browsers post here from the app's pages with
// text/plain, and handleIngest checks the Origin itself.
const CrossOriginBypass = "POST /errors/api/"

func (t *Tracker) project(id string) (Project, bool) {
	for _, p := range t.o.Projects {
		if p.ID == id {
			return p, true
		}
	}
	return Project{}, false
}

// cors sets the CORS headers for an allowed Origin and reports whether the
// request may go on (no Origin, or an allowed one).
func (t *Tracker) cors(w http.ResponseWriter, r *http.Request) bool {
	origin := r.Header.Get("Origin")
	w.Header().Add("Vary", "Origin")
	if origin == "" {
		return true
	}
	if !slices.Contains(t.o.AllowedOrigins, origin) {
		return false
	}
	h := w.Header()
	h.Set("Access-Control-Allow-Origin", origin)
	h.Set("Access-Control-Expose-Headers", "X-Sentry-Rate-Limits, Retry-After")
	return true
}

func (t *Tracker) handlePreflight() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if k := r.PathValue("kind"); k != "envelope" && k != "store" {
			apperr.Write(w, r, nil, apperr.New(apperr.ENOTFOUND, "no such endpoint; use envelope/ or store/"))
			return
		}
		if !t.cors(w, r) {
			apperr.Write(w, r, nil, apperr.New(apperr.EFORBIDDEN, "origin not allowed to send errors"))
			return
		}
		h := w.Header()
		h.Set("Access-Control-Allow-Methods", "POST")
		h.Set("Access-Control-Allow-Headers", "Content-Type, Content-Encoding, X-Sentry-Auth")
		h.Set("Access-Control-Max-Age", "86400")
		w.WriteHeader(http.StatusNoContent)
	})
}

// handleIngest answers an SDK. Checks go cheapest first — origin, project,
// key, rate — so a flood of bad requests costs little; then the body is read
// (decompressed within the envelope limit), parsed, every item scrubbed, and
// all of it stored in one transaction. Any error before the store leaves
// nothing behind.
func (t *Tracker) handleIngest(envelope bool) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !t.cors(w, r) {
			apperr.Write(w, r, nil, apperr.New(apperr.EFORBIDDEN, "origin %s is not allowed to send errors to Ferry", safeOrigin(r.Header.Get("Origin"))))
			return
		}
		proj, ok := t.project(r.PathValue("project"))
		if !ok {
			apperr.Write(w, r, nil, &apperr.Error{Code: apperr.ENOTFOUND, Field: "project", Message: fmt.Sprintf("no project %q: check the DSN's last path element", truncate(r.PathValue("project"), 32))})
			return
		}
		key := authKey(r.URL.Query(), r.Header.Get)
		if key != "" && key != proj.PublicKey {
			apperr.Write(w, r, nil, &apperr.Error{Code: apperr.EUNAUTHORIZED, Field: "sentry_key", Message: "sentry_key is not this project's public key: check the DSN"})
			return
		}
		body, err := t.readBody(r)
		if err != nil {
			apperr.Write(w, r, nil, err)
			return
		}
		var env *Envelope
		if envelope {
			env, err = ParseEnvelope(body, t.o.MaxItemBytes)
			if err != nil {
				var tl *ItemTooLargeError
				if errors.As(err, &tl) {
					apperr.Write(w, r, nil, apperr.New(apperr.ETOOLARGE, "%s", err.Error()))
				} else {
					apperr.Write(w, r, nil, &apperr.Error{Code: apperr.EINVALID, Field: "envelope", Message: err.Error()})
				}
				return
			}
		} else {
			if len(body) > t.o.MaxItemBytes {
				apperr.Write(w, r, nil, apperr.New(apperr.ETOOLARGE, "event is %d bytes; at most %d are accepted", len(body), t.o.MaxItemBytes))
				return
			}
			env = &Envelope{Items: []EnvelopeItem{{Type: ItemEvent, Payload: body}}}
		}
		if key == "" && env.DSN != "" {
			if d, err := ParseDSN(env.DSN); err == nil && d.Project == proj.ID {
				key = d.PublicKey
			}
		}
		switch {
		case key == "":
			apperr.Write(w, r, nil, &apperr.Error{Code: apperr.EUNAUTHORIZED, Field: "sentry_key", Message: "no sentry_key: send it in the query string or the X-Sentry-Auth header"})
			return
		case key != proj.PublicKey:
			apperr.Write(w, r, nil, &apperr.Error{Code: apperr.EUNAUTHORIZED, Field: "sentry_key", Message: "sentry_key is not this project's public key: check the DSN"})
			return
		}
		if wait, ok := t.limiter.allow(key); !ok {
			secs := strconv.Itoa(int(math.Ceil(wait.Seconds())))
			w.Header().Set("Retry-After", secs)
			w.Header().Set("X-Sentry-Rate-Limits", secs+"::key")
			apperr.Write(w, r, nil, apperr.New(apperr.ERATELIMIT, "too many envelopes for this key; retry after %s s", secs))
			return
		}
		items, id, err := t.scrubItems(proj, env)
		if err != nil {
			apperr.Write(w, r, nil, err)
			return
		}
		n, err := t.o.Store.Accept(r.Context(), items, t.o.Forward)
		if err != nil {
			apperr.Write(w, r, t.o.Log, apperr.Wrap(err, apperr.EUNAVAILABLE, "could not store the event; retry later"))
			return
		}
		if n > 0 && t.o.Forward && t.o.Nudge != nil {
			t.o.Nudge()
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		json.NewEncoder(w).Encode(map[string]string{"id": id})
	})
}

func safeOrigin(o string) string {
	u, err := url.Parse(o)
	if err != nil || u.Host == "" {
		return "(unreadable)"
	}
	return u.Scheme + "://" + truncate(u.Host, 64)
}

// readBody reads the request body, decompressing gzip or deflate, and
// refuses more than MaxEnvelopeBytes of (decompressed) content with 413.
func (t *Tracker) readBody(r *http.Request) ([]byte, error) {
	var rd io.Reader = r.Body
	enc := strings.ToLower(strings.TrimSpace(r.Header.Get("Content-Encoding")))
	switch enc {
	case "", "identity":
	case "gzip", "x-gzip":
		gz, err := gzip.NewReader(r.Body)
		if err != nil {
			return nil, bodyError(err, &apperr.Error{Code: apperr.EINVALID, Field: "Content-Encoding", Message: "body is not valid gzip"})
		}
		defer gz.Close()
		rd = gz
	case "deflate":
		// HTTP's deflate is zlib-wrapped; some clients send raw deflate.
		raw, err := io.ReadAll(io.LimitReader(r.Body, int64(t.o.MaxEnvelopeBytes)+1))
		if err != nil {
			return nil, bodyError(err, &apperr.Error{Code: apperr.EINVALID, Field: "body", Message: "body could not be read"})
		}
		if zr, err := zlib.NewReader(bytes.NewReader(raw)); err == nil {
			rd = zr
		} else {
			rd = flate.NewReader(bytes.NewReader(raw))
		}
	default:
		return nil, &apperr.Error{Code: apperr.EINVALID, Field: "Content-Encoding", Message: fmt.Sprintf("Content-Encoding %q is not supported; use gzip, deflate or none", truncate(enc, 20))}
	}
	b, err := io.ReadAll(io.LimitReader(rd, int64(t.o.MaxEnvelopeBytes)+1))
	if err != nil {
		return nil, bodyError(err, &apperr.Error{Code: apperr.EINVALID, Field: "body", Message: "body could not be read or decompressed"})
	}
	if len(b) > t.o.MaxEnvelopeBytes {
		return nil, apperr.New(apperr.ETOOLARGE, "envelope is larger than %d bytes (after decompression); send fewer or smaller items", t.o.MaxEnvelopeBytes)
	}
	return b, nil
}

// bodyError turns the server's body cap into a 413 and anything else into
// the given error.
func bodyError(err error, other *apperr.Error) error {
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return apperr.New(apperr.ETOOLARGE, "request body is larger than %d bytes", mbe.Limit)
	}
	return other
}

// scrubItems scrubs every item Ferry keeps and skips the rest; one item
// that cannot be read fails the whole envelope. It returns the id to answer
// with: the first event's, or the envelope's.
func (t *Tracker) scrubItems(proj Project, env *Envelope) ([]Item, string, error) {
	opts := scrub.EventOptions{Hasher: t.o.Pseudonyms, TenantTag: TenantTag, ValidTenant: tenantIDRe.MatchString}
	var items []Item
	answer := ""
	if id, err := scrub.EventID(env.EventID); err == nil {
		answer = id
	}
	for i, it := range env.Items {
		switch it.Type {
		case ItemEvent:
			ev, err := scrub.Event(it.Payload, opts)
			if err != nil {
				return nil, "", &apperr.Error{Code: apperr.EINVALID, Field: "event", Message: fmt.Sprintf("envelope item %d (event): %v", i+1, err)}
			}
			if ev.EventID == "" {
				ev.EventID = answer
				if ev.EventID == "" {
					ev.EventID = newEventID()
				}
			}
			if answer == "" {
				answer = ev.EventID
			}
			items = append(items, eventItem(proj.ID, ev))
		case ItemSession, ItemSessions:
			s, err := scrub.Session(it.Payload, opts)
			if err != nil {
				return nil, "", &apperr.Error{Code: apperr.EINVALID, Field: "session", Message: fmt.Sprintf("envelope item %d (%s): %v", i+1, it.Type, err)}
			}
			b, _ := json.Marshal(s)
			items = append(items, Item{Type: it.Type, Payload: b, Project: proj.ID})
		default:
			// Transactions, attachments, replays, client reports, user
			// feedback (names and emails): not error tracking; skipped.
			itemsTotal.WithLabelValues(itemTypeLabel(it.Type), "skipped").Inc()
		}
	}
	for _, it := range items {
		itemsTotal.WithLabelValues(it.Type, "accepted").Inc()
	}
	if answer == "" {
		answer = newEventID()
	}
	return items, answer, nil
}

func eventItem(project string, ev *scrub.SentryEvent) Item {
	b, _ := json.Marshal(ev)
	return Item{Type: ItemEvent, EventID: ev.EventID, Payload: b, Project: project, Level: ev.Level,
		Release: ev.Release, Environment: ev.Environment, Platform: ev.Platform, Title: truncate(ev.Title(), 500),
		Browser: ev.Browser(), OS: ev.OS()}
}

// itemTypeLabel bounds the metric's label values to known types.
func itemTypeLabel(t string) string {
	switch t {
	case "transaction", "attachment", "client_report", "user_report", "feedback", "replay_event", "replay_recording",
		"profile", "profile_chunk", "check_in", "log", "span", "statsd", "metric_meta", "otel_log", "trace_metric":
		return t
	}
	return "other"
}

func newEventID() string {
	b := make([]byte, 16)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// limiter is a token bucket per public key.
type limiter struct {
	rate  float64
	burst float64
	now   func() time.Time

	mu      sync.Mutex
	buckets map[string]*bucket
}

type bucket struct {
	tokens float64
	last   time.Time
}

func newLimiter(rate float64, burst int) *limiter {
	return &limiter{rate: rate, burst: float64(burst), now: time.Now, buckets: map[string]*bucket{}}
}

// allow takes a token for key, or says how long until one is there.
func (l *limiter) allow(key string) (time.Duration, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	b, ok := l.buckets[key]
	if !ok {
		b = &bucket{tokens: l.burst, last: now}
		l.buckets[key] = b
	}
	b.tokens = math.Min(l.burst, b.tokens+now.Sub(b.last).Seconds()*l.rate)
	b.last = now
	if b.tokens >= 1 {
		b.tokens--
		return 0, true
	}
	return time.Duration((1 - b.tokens) / l.rate * float64(time.Second)), false
}

// Accept scrubs and keeps one event from inside Ferry (sentry-go's
// transport for Ferry's own errors), as if it had arrived at the store
// endpoint of the server project.
func (t *Tracker) Accept(ctx context.Context, payload []byte) error {
	items, _, err := t.scrubItems(Project{ID: ServerProject}, &Envelope{Items: []EnvelopeItem{{Type: ItemEvent, Payload: payload}}})
	if err != nil {
		return err
	}
	n, err := t.o.Store.Accept(ctx, items, t.o.Forward)
	if err == nil && n > 0 && t.o.Forward && t.o.Nudge != nil {
		t.o.Nudge()
	}
	return err
}
