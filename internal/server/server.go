// Package server assembles Ferry's HTTP handler: every route (routes.go),
// the middleware every request passes through (security headers, size
// limits, cross-origin protection, metrics by route pattern, panic
// recovery), and the health endpoints.
package server

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"

	"ferry/internal/apperr"
	"ferry/internal/atlassian"
	"ferry/internal/config"
	"ferry/internal/errortrack"
	"ferry/internal/export"
	"ferry/internal/forge"
	"ferry/internal/keys"
	"ferry/internal/reqinfo"
	"ferry/internal/reqlog"
	"ferry/internal/store"
	"ferry/internal/web"
	"ferry/internal/web/console"
)

// MaxBodyBytes caps request bodies unless a route sets its own limit.
const MaxBodyBytes = 1 << 20

// Deps is everything the handlers need.
type Deps struct {
	Config config.Config
	Log    *slog.Logger
	DB     *store.DB
	Keys   *keys.Ring

	Connect *atlassian.Connect // descriptor, lifecycle, Connect JWT auth; nil: Connect routes absent
	Feeds   *export.Feeds      // OData and CSV feeds; nil: absent
	App     *export.App        // JSON API of the app's pages; nil: absent
	Pages   *web.Pages         // the app's pages inside Jira and their static files; nil: absent
	Forge   *forge.Remote      // Forge Remote: FIT-verified invocations; nil: Ferry runs without Forge

	RequestLog *reqlog.Log // request log for app, API, feed, lifecycle and ingest routes; nil: none

	Errors *errortrack.Tracker // Sentry-protocol error ingest (/errors/api/…); nil: absent
}

var (
	httpRequests = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "ferry_http_requests_total",
		Help: "HTTP requests by route pattern (never the raw path), method and status code.",
	}, []string{"route", "method", "code"})
	httpDuration = promauto.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "ferry_http_request_duration_seconds",
		Help:    "HTTP request latency by route pattern.",
		Buckets: prometheus.DefBuckets,
	}, []string{"route"})
)

// NewServer returns Ferry's root handler.
func NewServer(d Deps) http.Handler {
	mux := http.NewServeMux()
	addRoutes(mux, d)
	var h http.Handler = mux
	cop := http.NewCrossOriginProtection()
	if d.Errors != nil {
		// Browsers post errors from the app's pages as text/plain; the
		// ingest checks Origin itself (CORS for the app's origin only).
		cop.AddInsecureBypassPattern(errortrack.CrossOriginBypass)
	}
	h = cop.Handler(h)
	h = limitBody(h)
	h = securityHeaders(d.Config, h)
	h = observe(mux, d.Log, h)
	if d.RequestLog != nil {
		// Outside observe, so a recovered panic is logged as the 500 it became.
		h = d.RequestLog.Handler(func(r *http.Request) string { _, p := mux.Handler(r); return p }, h)
	}
	h = withInfo(h)
	return h
}

// withInfo installs the request's reqinfo.Info once, outermost, so that
// authentication and error writing deep inside can report tenant, user
// pseudonym and error to the request log and metrics around them.
func withInfo(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if reqinfo.From(r.Context()) == nil {
			ctx, _ := reqinfo.With(r.Context())
			r = r.WithContext(ctx)
		}
		next.ServeHTTP(w, r)
	})
}

// observe records metrics by route pattern and recovers from panics, so one
// bad request never takes the process down.
func observe(mux *http.ServeMux, log *slog.Logger, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, pattern := mux.Handler(r)
		if pattern == "" {
			pattern = "unmatched"
		}
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w}
		defer func() {
			if p := recover(); p != nil {
				if p == http.ErrAbortHandler {
					panic(p)
				}
				log.Error("panic in handler", "route", pattern, "panic", fmt.Sprint(p))
				if sw.status == 0 {
					apperr.Write(sw, r, nil, apperr.New(apperr.EINTERNAL, "panic"))
				}
			}
			code := sw.status
			if code == 0 {
				code = http.StatusOK
			}
			httpRequests.WithLabelValues(pattern, r.Method, strconv.Itoa(code)).Inc()
			httpDuration.WithLabelValues(pattern).Observe(time.Since(start).Seconds())
		}()
		next.ServeHTTP(sw, r)
	})
}

// statusWriter remembers the status code. It passes the body straight
// through: nothing here ever copies a response.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func (w *statusWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// securityHeaders sets defaults for every response; app pages shown inside
// Jira replace the CSP with one that lets Jira frame them.
func securityHeaders(cfg config.Config, next http.Handler) http.Handler {
	tls := cfg.TLSCert != "" || strings.HasPrefix(cfg.BaseURL, "https://")
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Cross-Origin-Opener-Policy", "same-origin")
		if tls {
			h.Set("Strict-Transport-Security", "max-age=31536000; includeSubDomains")
		}
		next.ServeHTTP(w, r)
	})
}

// limitBody caps request bodies; a larger body fails when read with a 413.
func limitBody(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ContentLength > MaxBodyBytes {
			apperr.Write(w, r, nil, apperr.New(apperr.ETOOLARGE, "request body larger than %d bytes", MaxBodyBytes))
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, MaxBodyBytes)
		next.ServeHTTP(w, r)
	})
}

// Ready checks what /readyz promises: the database answers, migrations are
// current, and this process can unwrap what the database holds (every KEK
// version recorded there opens and passes its check value).
func Ready(ctx context.Context, d Deps) error {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	if err := d.DB.SQL.PingContext(ctx); err != nil {
		return fmt.Errorf("database: unreachable")
	}
	if pending, err := d.DB.Pending(ctx); err != nil || pending {
		return fmt.Errorf("database: migrations not current")
	}
	if d.Keys == nil {
		return fmt.Errorf("keys: not loaded")
	}
	if err := d.Keys.Ready(ctx); err != nil {
		return fmt.Errorf("keys: %w", err)
	}
	return nil
}

// NewConsoleServer returns the staff console's root handler, for its own
// listener: the console's routes behind its cross-origin protection and
// headers, with the same body limit, metrics and panic recovery as Ferry's
// other routes.
func NewConsoleServer(d Deps, c *console.Console) http.Handler {
	mux := http.NewServeMux()
	addConsoleRoutes(mux, c)
	var h http.Handler = c.Protect(mux)
	h = limitBody(h)
	return observe(mux, d.Log, h)
}
