// Package reqlog keeps the statement's Logs Data promise: "the API request
// itself is stored in the encrypted mode for 60 days, together with error
// information. The request reply is NOT stored in any means."
//
// Every app, API, OData, CSV, lifecycle and error-ingest request leaves one
// entry: metadata in the clear (time, route pattern, method, status,
// duration, bytes out, error code and scrubbed message, tenant id, user
// pseudonym) and the request itself — method, path, query and body with
// secrets removed, allowlisted headers — sealed under that day's log key.
// The response body is never read: the middleware wraps the ResponseWriter
// only to count status and bytes. Entries are written off the request path
// through a bounded queue; a failure to log never fails the request and is
// counted in ferry_reqlog_dropped_total{reason}. The retention job destroys
// day keys and deletes entries past the window (FERRY_REQUEST_LOG_DAYS ≤ 60).
package reqlog

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"

	"ferry/internal/keys"
	"ferry/internal/logging"
	"ferry/internal/reqinfo"
)

var (
	dropped = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "ferry_reqlog_dropped_total",
		Help: "Request log entries lost, by reason (queue_full, write_error, expired, closed). The requests themselves succeeded.",
	}, []string{"reason"})
	written = promauto.NewCounter(prometheus.CounterOpts{
		Name: "ferry_reqlog_written_total",
		Help: "Request log entries written.",
	})
)

// DefaultPrefixes are the paths whose requests are logged: app pages, app
// API, OData and CSV feeds, Connect lifecycle, browser error ingest, and
// Forge's invocations of the remote (Custom UI API, lifecycle, trigger).
var DefaultPrefixes = []string{"/app/", "/app-api/", "/odata/", "/export/", "/lifecycle/", "/errors/", "/forge/"}

// defaultSkip are paths under a logged prefix that are not API requests.
var defaultSkip = []string{"/app/static/"}

// BodyCap is how much of a request body is kept by default.
const BodyCap = 64 << 10

// Options tunes a Log; zero values take the defaults.
type Options struct {
	QueueSize int           // entries waiting for the writer (default 4096)
	BatchSize int           // entries per insert (default 256)
	Linger    time.Duration // how long the writer waits to fill a batch (default 20ms)
	BodyCap   int           // request body bytes kept (default BodyCap)
	Prefixes  []string      // logged path prefixes (default DefaultPrefixes)
	Logger    *slog.Logger
}

// Log is the request-logging middleware and its background writer.
type Log struct {
	store *Store
	opt   Options
	log   *slog.Logger

	queue  chan *record
	stop   chan struct{}
	done   chan struct{}
	closed atomic.Bool
	ctx    context.Context
	cancel context.CancelFunc

	lastErrLog time.Time // writer goroutine only
}

// New starts a request log writing to s. Call Close to flush it.
func New(s *Store, o Options) *Log {
	if o.QueueSize <= 0 {
		o.QueueSize = 4096
	}
	if o.BatchSize <= 0 {
		o.BatchSize = 256
	}
	if o.Linger <= 0 {
		o.Linger = 20 * time.Millisecond
	}
	if o.BodyCap <= 0 {
		o.BodyCap = BodyCap
	}
	if o.Prefixes == nil {
		o.Prefixes = DefaultPrefixes
	}
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	ctx, cancel := context.WithCancel(context.Background())
	l := &Log{store: s, opt: o, log: log, queue: make(chan *record, o.QueueSize),
		stop: make(chan struct{}), done: make(chan struct{}), ctx: ctx, cancel: cancel}
	go l.run()
	return l
}

// Store returns the store the log writes to.
func (l *Log) Store() *Store { return l.store }

func (l *Log) logged(path string) bool {
	for _, p := range defaultSkip {
		if strings.HasPrefix(path, p) {
			return false
		}
	}
	for _, p := range l.opt.Prefixes {
		if strings.HasPrefix(path, p) {
			return true
		}
	}
	return false
}

// Middleware logs requests, taking the route pattern from r.Pattern as set
// by the ServeMux inside next.
func (l *Log) Middleware(next http.Handler) http.Handler { return l.Handler(nil, next) }

// Handler logs requests under a logged prefix. route, if not nil, names the
// request's route pattern (server passes ServeMux.Handler, robust against
// inner middleware that copies the request); otherwise r.Pattern is read
// after next returns. It installs a reqinfo.Info if none is there, so that
// authentication and error writing inside can report tenant, user and error.
func (l *Log) Handler(route func(*http.Request) string, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !l.logged(r.URL.Path) {
			next.ServeHTTP(w, r)
			return
		}
		start := time.Now()
		ctx := r.Context()
		info := reqinfo.From(ctx)
		if info == nil {
			ctx, info = reqinfo.With(ctx)
		}
		r = r.WithContext(ctx) // a shallow copy: the Body swap below stays ours
		rec := &record{}
		rec.At = l.store.db.Now()
		rec.Method = r.Method
		rec.req = Request{Method: r.Method, Path: r.URL.EscapedPath(), Query: r.URL.RawQuery}
		rec.headers = rawHeaders(r.Header)
		pattern := ""
		if route != nil {
			pattern = route(r)
		}
		var body *capture
		if r.Body != nil && r.Body != http.NoBody {
			body = &capture{ReadCloser: r.Body, max: l.opt.BodyCap}
			r.Body = body
		}
		cw := &countingWriter{ResponseWriter: w}
		completed := false
		// Deferred so that a panicking handler is logged too (as 500, or
		// with the status it already sent) before the panic goes on.
		defer func() {
			if pattern == "" {
				pattern = r.Pattern
			}
			if pattern == "" {
				pattern = "unmatched"
			}
			rec.Route = pattern
			rec.Status = cw.status
			if rec.Status == 0 {
				rec.Status = http.StatusOK
				if !completed {
					rec.Status = http.StatusInternalServerError
				}
			}
			rec.Duration = time.Since(start)
			rec.BytesOut = cw.bytes
			rec.TenantID, rec.UserPseudonym = info.Identity()
			rec.ErrorCode, rec.req.Error = info.Error()
			if body != nil {
				rec.body, rec.req.BodyBytes, rec.req.BodyTruncated = body.buf, body.n, body.n > int64(len(body.buf))
			}
			l.enqueue(rec)
		}()
		next.ServeHTTP(cw, r)
		completed = true
	})
}

// enqueue hands an entry to the writer without ever waiting.
func (l *Log) enqueue(r *record) {
	if l.closed.Load() {
		dropped.WithLabelValues("closed").Inc()
		return
	}
	select {
	case l.queue <- r:
	default:
		dropped.WithLabelValues("queue_full").Inc()
	}
}

// rawHeaders copies the allowlisted headers; scrubbing happens in the writer.
func rawHeaders(h http.Header) map[string]string {
	var out map[string]string
	for _, k := range loggedHeaders {
		if v := h.Values(k); len(v) > 0 {
			if out == nil {
				out = make(map[string]string, 4)
			}
			out[k] = strings.Join(v, ", ")
		}
	}
	return out
}

// capture passes a request body through untouched while keeping the first
// max bytes of what the handler reads. It never reads ahead, so streaming and
// http.MaxBytesReader limits behave exactly as without it.
type capture struct {
	io.ReadCloser
	max int
	buf []byte
	n   int64
}

func (c *capture) Read(p []byte) (int, error) {
	n, err := c.ReadCloser.Read(p)
	if n > 0 {
		if room := c.max - len(c.buf); room > 0 {
			c.buf = append(c.buf, p[:min(n, room)]...)
		}
		c.n += int64(n)
	}
	return n, err
}

// countingWriter notes the status and counts bytes. It forwards every Write
// straight to the client and keeps no copy: the response is never stored.
type countingWriter struct {
	http.ResponseWriter
	status int
	bytes  int64
}

func (w *countingWriter) WriteHeader(code int) {
	if w.status == 0 && code >= 200 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *countingWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	n, err := w.ResponseWriter.Write(b)
	w.bytes += int64(n)
	return n, err
}

func (w *countingWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func (w *countingWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// run is the background writer: it gathers entries for up to Linger (or a
// full batch, or a Flush) into one transaction, so a steady stream of
// requests costs a few commits a second rather than one each.
func (l *Log) run() {
	defer close(l.done)
	batch := make([]*record, 0, l.opt.BatchSize)
	for {
		select {
		case r := <-l.queue:
			batch = append(batch, r)
		case <-l.stop:
			for {
				select {
				case r := <-l.queue:
					batch = append(batch, r)
					if len(batch) == l.opt.BatchSize {
						batch = l.write(batch)
					}
				default:
					l.write(batch)
					return
				}
			}
		}
		linger := time.NewTimer(l.opt.Linger)
	fill:
		for len(batch) < l.opt.BatchSize && batch[len(batch)-1].flushed == nil {
			select {
			case r := <-l.queue:
				batch = append(batch, r)
			case <-linger.C:
				break fill
			case <-l.stop:
				break fill
			}
		}
		linger.Stop()
		batch = l.write(batch)
	}
}

// write stores a batch (answering Flush markers after it) and returns the
// emptied batch for reuse.
func (l *Log) write(batch []*record) []*record {
	recs := make([]record, 0, len(batch))
	var markers []chan struct{}
	for _, r := range batch {
		if r.flushed != nil {
			markers = append(markers, r.flushed)
			continue
		}
		recs = append(recs, l.prepare(r))
	}
	if len(recs) > 0 {
		ctx, cancel := context.WithTimeout(l.ctx, 30*time.Second)
		n, expired, err := l.store.insert(ctx, recs)
		cancel()
		written.Add(float64(n))
		if expired > 0 {
			dropped.WithLabelValues("expired").Add(float64(expired))
		}
		if err != nil {
			dropped.WithLabelValues("write_error").Add(float64(len(recs) - expired))
			if time.Since(l.lastErrLog) > 10*time.Second {
				l.lastErrLog = time.Now()
				l.log.Error("request log write failed; entries dropped, requests unaffected", "entries", len(recs)-expired, "err", err)
			}
		}
	}
	for _, m := range markers {
		close(m)
	}
	clear(batch)
	return batch[:0]
}

// prepare scrubs what the request path only copied: query, path, headers,
// body, error message; and makes sure the user is a pseudonym.
func (l *Log) prepare(r *record) record {
	out := *r
	out.ID = NewID(r.At)
	out.req.Error = logging.Scrub(r.req.Error)
	out.req.Path = SanitizePath(r.req.Path)
	out.req.Query = SanitizeQuery(r.req.Query)
	out.req.Headers = make(map[string]string, len(r.headers))
	for k, v := range r.headers {
		out.req.Headers[k] = logging.Scrub(v)
	}
	out.req.Body = string(SanitizeBody(r.headers["Content-Type"], r.body))
	out.body, out.headers = nil, nil
	if out.UserPseudonym != "" && !isPseudonym(out.UserPseudonym) {
		// Defence in depth: an inner handler passed something else (a raw
		// accountId?). Store its keyed pseudonym, or nothing.
		p, err := l.store.keys.Pseudonym(l.ctx, out.TenantID, out.UserPseudonym)
		if err != nil {
			p = ""
		}
		out.UserPseudonym = p
	}
	return out
}

func isPseudonym(s string) bool {
	if len(s) != keys.PseudonymLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

// Flush waits until everything queued before it is written.
func (l *Log) Flush(ctx context.Context) error {
	m := &record{flushed: make(chan struct{})}
	select {
	case l.queue <- m:
	case <-l.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case <-m.flushed:
		return nil
	case <-l.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Close stops accepting entries and writes what is queued, giving up when
// ctx ends (what is left is counted as dropped by the failed write).
func (l *Log) Close(ctx context.Context) error {
	if l.closed.Swap(true) {
		<-l.done
		return nil
	}
	close(l.stop)
	select {
	case <-l.done:
		l.cancel()
		return nil
	case <-ctx.Done():
		l.cancel() // fails the write in progress; the writer then exits
		<-l.done
		return ctx.Err()
	}
}
