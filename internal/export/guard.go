package export

import (
	"context"
	"errors"
	"math"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	dto "github.com/prometheus/client_model/go"

	"ferry/internal/apperr"
)

// The feeds' abuse limits, kept in memory by each server process:
//
//   - failed token attempts (unknown, revoked or expired tokens) are
//     counted per client address (IPv6 by /64, what one subscriber
//     usually holds) and per token prefix; past the limit every attempt
//     from that address, or with that prefix, is answered 429 with
//     Retry-After before the token is even looked up, so guessing gains
//     nothing. The prefix is the first PrefixChars characters after "fry_":
//     the hint shown in the app has only 4, so knowing it does not let
//     anyone lock a token's owner out; what the prefix catches is one
//     stale or stolen token retried from many addresses;
//   - each site has at most SiteConcurrency feed requests running at once,
//     so one tenant's dashboards cannot starve another's; beyond it, 429
//     with Retry-After.
//
// The client address is the connection's peer. X-Forwarded-For is read
// only when the peer is one of TrustedProxies (FERRY_TRUSTED_PROXIES, none
// by default), and then only as far as the first address that is not a
// trusted proxy: whatever a client writes into the header further left
// cannot make it look like someone else.

// Default limits (Guard's zero values).
const (
	DefaultAddressFailures = 30               // failed attempts an address may make at once…
	DefaultPrefixFailures  = 10               // …and with one token prefix
	DefaultFailureRefill   = 10 * time.Second // one more attempt per this
	DefaultSiteConcurrency = 8
	PrefixChars            = 8
	// concurrencyRetry is what a site over its cap is told to wait: feed
	// requests are seconds long.
	concurrencyRetry = 2 * time.Second
	// maxTracked bounds each limiter's memory; beyond it entries that carry
	// no information (fully refilled) go first, then arbitrary ones.
	maxTracked = 100_000
)

var feedRefusals = promauto.NewCounterVec(prometheus.CounterOpts{
	Name: "ferry_feed_refusals_total",
	Help: "Feed requests refused before reaching Jira, by reason: ip_allowlist, address_rate_limit, token_rate_limit, site_concurrency, not_allowed (the token's owner may not pull feeds), not_shared (the data source is not shared with them), project_scope (the JQL cannot be restricted to the allowed projects).",
}, []string{"reason"})

// FeedRefusals returns how many feed requests this process refused for
// reason (what /metrics shows as ferry_feed_refusals_total).
func FeedRefusals(reason string) float64 {
	var m dto.Metric
	if err := feedRefusals.WithLabelValues(reason).Write(&m); err != nil {
		return math.NaN()
	}
	return m.GetCounter().GetValue()
}

// Guard holds the feeds' abuse limits. The zero value uses the defaults.
type Guard struct {
	TrustedProxies  []netip.Prefix
	AddressFailures int
	PrefixFailures  int
	FailureRefill   time.Duration
	SiteConcurrency int
	Now             func() time.Time // tests

	mu      sync.Mutex
	byAddr  map[string]*bucket
	byToken map[string]*bucket
	active  map[string]int
}

// bucket is a token bucket of failed attempts: each failure takes one,
// one comes back every refill, and none left means wait.
type bucket struct {
	left float64
	at   time.Time
}

func (g *Guard) now() time.Time {
	if g.Now != nil {
		return g.Now()
	}
	return time.Now()
}

func (g *Guard) limits() (addr, prefix int, refill time.Duration) {
	addr, prefix, refill = g.AddressFailures, g.PrefixFailures, g.FailureRefill
	if addr <= 0 {
		addr = DefaultAddressFailures
	}
	if prefix <= 0 {
		prefix = DefaultPrefixFailures
	}
	if refill <= 0 {
		refill = DefaultFailureRefill
	}
	return
}

// level refills b up to burst and returns how many attempts are left.
func (b *bucket) level(now time.Time, burst int, refill time.Duration) float64 {
	if el := now.Sub(b.at); el > 0 {
		b.left = min(float64(burst), b.left+float64(el)/float64(refill))
	}
	b.at = now
	return b.left
}

// waitFor is how long until one attempt is allowed again.
func waitFor(left float64, refill time.Duration) time.Duration {
	return time.Duration((1 - left) * float64(refill))
}

func (g *Guard) entry(m *map[string]*bucket, key string, burst int, refill time.Duration, now time.Time) *bucket {
	if *m == nil {
		*m = map[string]*bucket{}
	}
	b, ok := (*m)[key]
	if !ok {
		if len(*m) >= maxTracked {
			evict(*m, burst, refill, now)
		}
		b = &bucket{left: float64(burst), at: now}
		(*m)[key] = b
	}
	return b
}

func evict(m map[string]*bucket, burst int, refill time.Duration, now time.Time) {
	for k, b := range m {
		if b.level(now, burst, refill) >= float64(burst) {
			delete(m, k)
		}
	}
	for k := range m {
		if len(m) < maxTracked {
			break
		}
		delete(m, k)
	}
}

// errRetry is a refusal that tells the client when to come back.
type errRetry struct {
	err   *apperr.Error
	after time.Duration
}

func (e *errRetry) Error() string { return e.err.Error() }
func (e *errRetry) Unwrap() error { return e.err }

// RetryAfter is the whole seconds a client should wait, at least one.
func (e *errRetry) RetryAfter() string {
	return strconv.Itoa(max(1, int(math.Ceil(e.after.Seconds()))))
}

var errTooManyFailures = apperr.New(apperr.ERATELIMIT, "Too many requests with an access token that is unknown, revoked or expired. Wait before trying again, and check the token in your BI tool's data source settings.")

// tokenKey is the part of a presented token that the prefix limit counts.
func tokenKey(presented string) string {
	if len(presented) > len(TokenPrefix)+PrefixChars {
		return presented[:len(TokenPrefix)+PrefixChars]
	}
	return presented
}

// addressKey groups IPv6 addresses by /64.
func addressKey(a netip.Addr) string {
	a = a.Unmap()
	if a.Is6() {
		p, _ := a.Prefix(64)
		return p.String()
	}
	return a.String()
}

// checkFailures refuses a client whose address or token prefix has used up
// its failed attempts.
func (g *Guard) checkFailures(addr netip.Addr, presented string) error {
	ab, pb, refill := g.limits()
	now := g.now()
	g.mu.Lock()
	defer g.mu.Unlock()
	if b, ok := g.byAddr[addressKey(addr)]; ok {
		if left := b.level(now, ab, refill); left < 1 {
			feedRefusals.WithLabelValues("address_rate_limit").Inc()
			return &errRetry{errTooManyFailures, waitFor(left, refill)}
		}
	}
	if b, ok := g.byToken[tokenKey(presented)]; ok {
		if left := b.level(now, pb, refill); left < 1 {
			feedRefusals.WithLabelValues("token_rate_limit").Inc()
			return &errRetry{errTooManyFailures, waitFor(left, refill)}
		}
	}
	return nil
}

// failed counts a failed attempt against the address and the prefix.
func (g *Guard) failed(addr netip.Addr, presented string) {
	ab, pb, refill := g.limits()
	now := g.now()
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, x := range []struct {
		m     *map[string]*bucket
		key   string
		burst int
	}{{&g.byAddr, addressKey(addr), ab}, {&g.byToken, tokenKey(presented), pb}} {
		b := g.entry(x.m, x.key, x.burst, refill, now)
		b.level(now, x.burst, refill)
		b.left = max(b.left-1, 0)
	}
}

// enter takes one of the site's concurrent feed slots until ctx ends (for a
// server request: when its handler returns).
func (g *Guard) enter(ctx context.Context, tenantID string) error {
	limit := g.SiteConcurrency
	if limit <= 0 {
		limit = DefaultSiteConcurrency
	}
	g.mu.Lock()
	if g.active[tenantID] >= limit {
		g.mu.Unlock()
		feedRefusals.WithLabelValues("site_concurrency").Inc()
		return &errRetry{apperr.New(apperr.ERATELIMIT, "This Jira site already has %d feed requests running, the most Ferry serves a site at once. Try again in a moment, or refresh fewer reports at the same time.", limit), concurrencyRetry}
	}
	if g.active == nil {
		g.active = map[string]int{}
	}
	g.active[tenantID]++
	g.mu.Unlock()
	context.AfterFunc(ctx, func() {
		g.mu.Lock()
		defer g.mu.Unlock()
		if g.active[tenantID]--; g.active[tenantID] <= 0 {
			delete(g.active, tenantID)
		}
	})
	return nil
}

// Active is how many feed requests of a site are running.
func (g *Guard) Active(tenantID string) int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.active[tenantID]
}

var errForwardedFor = apperr.New(apperr.EINVALID, "The X-Forwarded-For header added by a trusted proxy is not a list of IP addresses.")

// ClientAddr is the address a request comes from: the peer, or — when the
// peer is a trusted proxy — the rightmost X-Forwarded-For address that is
// not a trusted proxy (the leftmost one if all are).
func ClientAddr(r *http.Request, trusted []netip.Prefix) (netip.Addr, error) {
	peer, err := parseHostAddr(r.RemoteAddr)
	if err != nil {
		return netip.Addr{}, apperr.Wrap(err, apperr.EINTERNAL, "no peer address")
	}
	if !inAny(trusted, peer) {
		return peer, nil
	}
	var hops []string
	for _, h := range r.Header.Values("X-Forwarded-For") {
		hops = append(hops, strings.Split(h, ",")...)
	}
	client := peer
	for i := len(hops) - 1; i >= 0; i-- {
		a, err := parseHostAddr(strings.TrimSpace(hops[i]))
		if err != nil {
			return netip.Addr{}, errForwardedFor
		}
		client = a
		if !inAny(trusted, a) {
			break
		}
	}
	return client, nil
}

// parseHostAddr reads "203.0.113.9", "203.0.113.9:443", "2001:db8::1" or
// "[2001:db8::1]:443"; no zones, no names.
func parseHostAddr(s string) (netip.Addr, error) {
	if a, err := netip.ParseAddr(s); err == nil && a.Zone() == "" {
		return a.Unmap(), nil
	}
	host, _, err := net.SplitHostPort(s)
	if err != nil {
		return netip.Addr{}, err
	}
	a, err := netip.ParseAddr(host)
	if err != nil {
		return netip.Addr{}, err
	}
	if a.Zone() != "" {
		return netip.Addr{}, errors.New("address with a zone")
	}
	return a.Unmap(), nil
}

func inAny(nets []netip.Prefix, a netip.Addr) bool {
	for _, n := range nets {
		if n.Contains(a) {
			return true
		}
	}
	return false
}
