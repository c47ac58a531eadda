package server

import (
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"

	"ferry/internal/apperr"
	"ferry/internal/export/odata"
)

var shedTotal = promauto.NewCounterVec(prometheus.CounterOpts{
	Name: "ferry_http_shed_total",
	Help: "Requests answered 503 with Retry-After because their route class was at its in-flight limit.",
}, []string{"class"})

// Limits are the most requests of each route class one process works on at
// once (FERRY_MAX_*_IN_FLIGHT); zero means no limit.
type Limits struct {
	Feeds     int // /odata/, /export/
	Lifecycle int // /lifecycle/, and Forge's lifecycle events, triggers and preUninstall
	App       int // /app/, /app-api/, and Forge's Custom UI calls
	Errors    int // /errors/
}

// shedRetryAfter is what a shed request is told to wait, in seconds.
const shedRetryAfter = 1

// routeClass counts the requests of one class in flight.
type routeClass struct {
	name     string
	prefixes []string
	limit    int64
	n        atomic.Int64
	odata    bool // answer in the feeds' OData error vocabulary
}

// shed bounds the work in flight per route class. Beyond a class's limit a
// request is answered at once with 503 and Retry-After, before any work is
// done for it — no database, no Jira, no request-log entry (logging it would
// feed the overload; ferry_http_shed_total counts it) — so that under
// overload memory and CPU stay bounded, the requests already admitted
// finish, and the server recovers as soon as the load drops.
func shed(l Limits, next http.Handler) http.Handler {
	classes := []*routeClass{
		{name: "feeds", prefixes: []string{"/odata/", "/export/"}, limit: int64(l.Feeds), odata: true},
		{name: "lifecycle", prefixes: []string{"/lifecycle/", "/forge/lifecycle", "/forge/trigger", "/forge/uninstall"}, limit: int64(l.Lifecycle)},
		{name: "app", prefixes: []string{"/app/", "/app-api/", "/forge/app-api"}, limit: int64(l.App)},
		{name: "errors", prefixes: []string{"/errors/"}, limit: int64(l.Errors)},
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var c *routeClass
		for _, cand := range classes {
			for _, p := range cand.prefixes {
				if strings.HasPrefix(r.URL.Path, p) {
					c = cand
				}
			}
		}
		if c == nil || c.limit <= 0 {
			next.ServeHTTP(w, r)
			return
		}
		if c.n.Add(1) > c.limit {
			c.n.Add(-1)
			shedTotal.WithLabelValues(c.name).Inc()
			w.Header().Set("Retry-After", fmt.Sprint(shedRetryAfter))
			msg := fmt.Sprintf("Ferry is working on as many %s requests as it takes at once (%d); retry in %d s.", c.name, c.limit, shedRetryAfter)
			if c.odata {
				odata.WriteError(w, &odata.Error{Status: http.StatusServiceUnavailable, Code: odata.CodeServiceUnavailable, Message: msg})
			} else {
				apperr.Write(w, r, nil, apperr.New(apperr.EUNAVAILABLE, "%s", msg))
			}
			return
		}
		defer c.n.Add(-1)
		next.ServeHTTP(w, r)
	})
}
