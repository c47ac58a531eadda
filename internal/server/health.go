package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"
)

// handleHealthz answers while the process can serve HTTP at all.
func handleHealthz() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"status":"ok"}` + "\n"))
	})
}

// handleReadyz answers 200 only when the server can do its job, so a load
// balancer sends no traffic to a replica that cannot.
func handleReadyz(d Deps) http.Handler { return newReadiness(d, readinessOptions{}) }

// readinessOptions tune /readyz; zero values take the defaults.
type readinessOptions struct {
	Timeout time.Duration    // how long one check may wait for the database (default 3s)
	Grace   time.Duration    // how long checks may go unanswered before the server is unready (default 10s)
	Now     func() time.Time // the clock (tests)
}

// readiness tells a definite failure from a check that got no answer in
// time. A database that refuses, migrations that are not current, a KEK
// version that does not open: unready at once. No answer within Timeout
// usually means the server is busy — its connection pool taken by the
// requests it is serving — not broken; answering 503 then would take a
// working replica out of rotation exactly under load and shift the load to
// the others, which would flap in turn. So an unanswered check counts only
// when no check has passed for Grace.
type readiness struct {
	d   Deps
	opt readinessOptions

	mu     sync.Mutex
	lastOK time.Time // the last check that passed (or the start)
}

func newReadiness(d Deps, o readinessOptions) *readiness {
	if o.Timeout <= 0 {
		o.Timeout = 3 * time.Second
	}
	if o.Grace <= 0 {
		o.Grace = 10 * time.Second
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return &readiness{d: d, opt: o, lastOK: o.Now()}
}

// check runs Ready and applies the grace to an unanswered check.
func (rd *readiness) check(ctx context.Context) error {
	cctx, cancel := context.WithTimeout(ctx, rd.opt.Timeout)
	defer cancel()
	err := Ready(cctx, rd.d)
	rd.mu.Lock()
	defer rd.mu.Unlock()
	now := rd.opt.Now()
	switch {
	case err == nil:
		rd.lastOK = now
		return nil
	case errors.Is(cctx.Err(), context.DeadlineExceeded) && ctx.Err() == nil:
		if since := now.Sub(rd.lastOK); since > rd.opt.Grace {
			return fmt.Errorf("database: no answer for %s", since.Round(time.Second))
		}
		return nil // busy: the last answer is recent enough
	default:
		return err
	}
}

func (rd *readiness) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	if err := rd.check(r.Context()); err != nil {
		w.WriteHeader(http.StatusServiceUnavailable)
		json.NewEncoder(w).Encode(map[string]string{"status": "unavailable", "reason": err.Error()})
		return
	}
	w.Write([]byte(`{"status":"ready"}` + "\n"))
}
