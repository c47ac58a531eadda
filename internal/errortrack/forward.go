package errortrack

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

// ForwardJobName is the forwarder's periodic job, for `ferry jobs run`.
const ForwardJobName = "errortrack.forward"

// Forwarder sends the outbox to the upstream Sentry, oldest first. Each
// row is leased while it is sent; a row Sentry accepts is deleted, one that
// fails is retried with exponential backoff (or when Sentry's Retry-After
// says), one Sentry refuses for good (400, 413) is parked as rejected.
type Forwarder struct {
	Store        *Store
	Client       *http.Client // the egress gate's Sentry client
	DSN          DSN          // FERRY_SENTRY_UPSTREAM_DSN
	SentryClient string       // sentry_client of the auth header, e.g. "ferry/1.2.0"
	Log          *slog.Logger

	BaseBackoff time.Duration // first retry after this (default 5 s)
	MaxBackoff  time.Duration // retries at most this far apart (default 30 min)
	Lease       time.Duration // a claimed row is skipped by others this long (default 2 min)
	Batch       int           // rows claimed at once (default 50)

	wakeOnce sync.Once
	wake     chan struct{}
}

var forwardTotal = promauto.NewCounterVec(prometheus.CounterOpts{
	Name: "ferry_errortrack_forward_total",
	Help: "Items sent to the upstream Sentry by outcome (delivered, retry, rejected).",
}, []string{"outcome"})

// defaults fills unset fields once; Run, RunOnce and Nudge may be called
// from different goroutines, so every write happens inside the Once.
func (f *Forwarder) defaults() {
	f.wakeOnce.Do(func() {
		f.wake = make(chan struct{}, 1)
		if f.BaseBackoff <= 0 {
			f.BaseBackoff = 5 * time.Second
		}
		if f.MaxBackoff <= 0 {
			f.MaxBackoff = 30 * time.Minute
		}
		if f.Lease <= 0 {
			f.Lease = 2 * time.Minute
		}
		if f.Batch <= 0 {
			f.Batch = 50
		}
		if f.Log == nil {
			f.Log = slog.New(slog.DiscardHandler)
		}
		if f.SentryClient == "" {
			f.SentryClient = "ferry"
		}
	})
}

// Nudge wakes Run: new items are waiting.
func (f *Forwarder) Nudge() {
	f.defaults()
	select {
	case f.wake <- struct{}{}:
	default:
	}
}

// Run delivers until ctx ends: at once on start (every pending row is made
// due), then whenever Nudge is called or the next retry is due.
func (f *Forwarder) Run(ctx context.Context) {
	f.defaults()
	if err := f.Store.RetryNow(ctx); err != nil && ctx.Err() == nil {
		f.Log.Warn("error forwarding: cannot reschedule the outbox", "err", err)
	}
	for {
		if _, err := f.RunOnce(ctx); err != nil && ctx.Err() == nil {
			f.Log.Warn("error forwarding pass failed", "err", err)
		}
		wait := time.Minute
		if at, ok, err := f.Store.NextDue(ctx); err == nil && ok {
			wait = min(wait, max(at.Sub(f.Store.Now()), 50*time.Millisecond))
		}
		timer := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			timer.Stop()
			return
		case <-f.wake:
		case <-timer.C:
		}
		timer.Stop()
	}
}

// RunOnce delivers every row that is due now and returns how many Sentry
// accepted. It stops early when Sentry says to slow down.
func (f *Forwarder) RunOnce(ctx context.Context) (int, error) {
	f.defaults()
	delivered := 0
	for {
		items, err := f.Store.Claim(ctx, f.Batch, f.Lease)
		if err != nil {
			return delivered, err
		}
		if len(items) == 0 {
			return delivered, nil
		}
		for i, it := range items {
			res := f.send(ctx, it)
			switch {
			case res.ok:
				if err := f.Store.Delivered(ctx, it.ID); err != nil {
					return delivered, err
				}
				delivered++
				forwardTotal.WithLabelValues("delivered").Inc()
			case res.permanent:
				f.Log.Error("Sentry refused an error event for good; it stays in the outbox as rejected", "status", res.status, "item", it.Type)
				if err := f.Store.Reject(ctx, it.ID, res.reason); err != nil {
					return delivered, err
				}
				forwardTotal.WithLabelValues("rejected").Inc()
			default:
				now := f.Store.Now()
				at := now.Add(f.backoff(it.Attempts))
				if res.retryAfter > 0 {
					at = now.Add(res.retryAfter)
				}
				if err := f.Store.Retry(ctx, it.ID, at, res.reason); err != nil {
					return delivered, err
				}
				forwardTotal.WithLabelValues("retry").Inc()
				if res.retryAfter > 0 || res.down {
					// Sentry is rate limiting us or unreachable: the rest of
					// the batch waits with this row instead of hammering it.
					for _, rest := range items[i+1:] {
						if err := f.Store.Retry(ctx, rest.ID, at, res.reason); err != nil {
							return delivered, err
						}
					}
					f.Log.Warn("upstream Sentry unavailable; error events wait in the outbox", "reason", res.reason, "retry_at", at.UTC().Format(time.RFC3339))
					return delivered, nil
				}
			}
		}
	}
}

// backoff is BaseBackoff·2^(attempts−1), at most MaxBackoff, ±20 % jitter
// so many replicas do not retry in step.
func (f *Forwarder) backoff(attempts int) time.Duration {
	d := f.BaseBackoff
	for i := 1; i < attempts && d < f.MaxBackoff; i++ {
		d *= 2
	}
	d = min(d, f.MaxBackoff)
	return time.Duration(float64(d) * (0.8 + 0.4*rand.Float64()))
}

type sendResult struct {
	ok, permanent, down bool
	status              int
	retryAfter          time.Duration
	reason              string
}

// send posts one item as its own envelope.
func (f *Forwarder) send(ctx context.Context, it OutboxItem) sendResult {
	var body bytes.Buffer
	hdr := map[string]string{"sent_at": time.Now().UTC().Format(time.RFC3339Nano)}
	if it.EventID != "" {
		hdr["event_id"] = it.EventID
	}
	h, _ := json.Marshal(hdr)
	body.Write(h)
	body.WriteByte('\n')
	ih, _ := json.Marshal(map[string]any{"type": it.Type, "length": len(it.Payload)})
	body.Write(ih)
	body.WriteByte('\n')
	body.Write(it.Payload)
	body.WriteByte('\n')

	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, f.DSN.EnvelopeURL(), &body)
	if err != nil {
		return sendResult{reason: "bad upstream URL"}
	}
	req.Header.Set("Content-Type", "application/x-sentry-envelope")
	req.Header.Set("X-Sentry-Auth", "Sentry sentry_version=7, sentry_client="+f.SentryClient+", sentry_key="+f.DSN.PublicKey)
	resp, err := f.Client.Do(req)
	if err != nil {
		cause := err
		if u := errors.Unwrap(err); u != nil {
			cause = u
		}
		return sendResult{down: true, reason: "upstream unreachable: " + cause.Error()}
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	res := sendResult{status: resp.StatusCode, reason: fmt.Sprintf("upstream answered %d", resp.StatusCode)}
	switch {
	case resp.StatusCode >= 200 && resp.StatusCode < 300:
		res.ok = true
	case resp.StatusCode == http.StatusTooManyRequests:
		res.retryAfter = min(retryAfter(resp.Header), time.Hour)
		if res.retryAfter <= 0 {
			res.retryAfter = f.backoff(it.Attempts)
		}
	case resp.StatusCode == http.StatusBadRequest || resp.StatusCode == http.StatusRequestEntityTooLarge ||
		resp.StatusCode == http.StatusUnsupportedMediaType:
		res.permanent = true
	case resp.StatusCode >= 500:
		res.down = true
	default:
		// 401, 403, 404: a DSN the operator will fix; keep trying.
	}
	return res
}

// retryAfter reads Sentry's X-Sentry-Rate-Limits (its first entry's
// seconds) or Retry-After (seconds).
func retryAfter(h http.Header) time.Duration {
	if rl := h.Get("X-Sentry-Rate-Limits"); rl != "" {
		first, _, _ := strings.Cut(rl, ",")
		secs, _, _ := strings.Cut(strings.TrimSpace(first), ":")
		if n, err := strconv.ParseFloat(secs, 64); err == nil && n > 0 {
			return time.Duration(n * float64(time.Second))
		}
	}
	if n, err := strconv.Atoi(strings.TrimSpace(h.Get("Retry-After"))); err == nil && n > 0 {
		return time.Duration(n) * time.Second
	}
	return 0
}
