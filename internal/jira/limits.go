package jira

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Jira Cloud limits an app three ways at once (docs/jira-rate-limits.md): a
// points quota per hour and pool, a burst rate per tenant and endpoint, and
// per-issue writes (Ferry writes no issues). Limits keeps, for each tenant,
// what Jira said about the first two and paces every call to that tenant's
// site accordingly: all feeds of a tenant in this process share one Tenant,
// so they share one concurrency limit, one view of the quota and one pause
// after a 429, as Atlassian asks ("share rate limit status between threads").
// Replicas do not share it; each learns the pool's state from Jira's own
// headers (r=, 429s), which already count everyone's spend.
//
// Concurrency adapts: it starts small, grows while answers come back as fast
// as before and no 429 arrives (doubling per round trip at first, then by one
// per round trip), halves on a 429, and never passes the cap
// (FERRY_EXPORT_WORKERS). With a burst policy in the headers
// ("jira-burst-based";q=100;w=1) calls to that endpoint are paced just under
// it, so the limit is approached without being hit; what Jira says its
// bucket still holds (r) may be spent at once (burstLeftLocked).

// Limits is the registry of tenants' rate-limit standing.
type Limits struct {
	// Cap bounds the calls in flight to one tenant (default 32).
	Cap int
	// MaxWait is the longest a call waits for an exhausted quota to reset
	// before failing with *QuotaError (default 2 minutes): a BI tool gives
	// up on a request that shows nothing for longer.
	MaxWait time.Duration
	// Now is the clock (tests); default time.Now.
	Now func() time.Time

	mu      sync.Mutex
	tenants map[string]*Tenant
}

// Tenant returns the standing of one tenant, created on first use.
func (l *Limits) Tenant(id string) *Tenant {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.tenants == nil {
		l.tenants = map[string]*Tenant{}
	}
	t := l.tenants[id]
	if t == nil {
		t = &Tenant{l: l, limit: startConcurrency, ssthresh: math.Inf(1), endpoints: map[string]*endpoint{}, spent: map[string]int{}, cost: map[string]float64{}}
		t.wake = make(chan struct{})
		l.tenants[id] = t
	}
	return t
}

// Forget drops what is kept about a tenant (uninstall, purge).
func (l *Limits) Forget(id string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.tenants, id)
}

func (l *Limits) now() time.Time {
	if l.Now != nil {
		return l.Now()
	}
	return time.Now()
}

func (l *Limits) cap() int {
	if l.Cap > 0 {
		return l.Cap
	}
	return 32
}

func (l *Limits) maxWait() time.Duration {
	if l.MaxWait > 0 {
		return l.MaxWait
	}
	return 2 * time.Minute
}

const (
	startConcurrency = 4
	// latencyHolds: an answer no slower than this many times the best
	// recent one means Jira is not queueing Ferry's calls.
	latencyHolds = 2.0
	// burstShare of a burst policy's rate is used, leaving room for clock
	// differences between Ferry's pace and Jira's bucket.
	burstShare = 0.99
	// nearLimitPart: Jira reports r once less than a fifth of a pool is
	// left; without r the pool holds at least this part.
	nearLimitPart = 5
)

// QuotaError says that Jira's points quota cannot serve a call or an
// export before the pool resets: the message says how many points are
// needed, how many remain and when the pool resets.
type QuotaError struct {
	Need      int       // points the refused work needs (0: any call)
	Remaining int       // points left in the pool
	Quota     int       // the pool's points per window
	Reset     time.Time // when the pool refills
	Policy    string    // global-app-quota or tenant-app-quota
}

func (e *QuotaError) Error() string {
	pool := "Ferry's hourly Jira API quota (shared by all sites using Ferry)"
	if e.Policy == policyTenant {
		pool = "Ferry's hourly Jira API quota for this site"
	}
	reset := e.Reset.UTC().Format("15:04 UTC")
	if e.Need > 0 {
		return fmt.Sprintf("This request needs about %d points of %s; %d of %d remain until the pool resets at %s. Narrow the data source or the request (a filter, $top, incremental refresh), or try again after %s.",
			e.Need, pool, e.Remaining, e.Quota, reset, reset)
	}
	return fmt.Sprintf("%s is used up until %s; Jira refuses further calls until then. Try again after %s.", upperFirst(pool), reset, reset)
}

func upperFirst(s string) string { return strings.ToUpper(s[:1]) + s[1:] }

// ErrQuota matches every *QuotaError with errors.Is.
var ErrQuota = errors.New("jira: points quota exhausted")

func (e *QuotaError) Is(target error) bool { return target == ErrQuota }

const (
	policyGlobal = "global-app-quota"
	policyTenant = "tenant-app-quota"
	policyBurst  = "jira-burst-based"
)

// Tenant is one tenant's standing with Jira's limits.
type Tenant struct {
	l *Limits

	mu       sync.Mutex
	wake     chan struct{} // closed and replaced whenever a waiter may proceed
	limit    float64       // concurrency limit
	ssthresh float64
	inFlight int
	minRTT   time.Duration // best recent answer time
	minAt    time.Time
	avgRTT   time.Duration // smoothed answer time
	lastCut  time.Time     // last multiplicative decrease (one per round trip)

	endpoints map[string]*endpoint
	cost      map[string]float64 // what a call to each endpoint costs, on average

	// The points pool, as the headers describe it.
	quota     int // q; 0 = unknown
	window    time.Duration
	policy    string
	beta      bool      // only Beta- headers seen: informational, never a refusal
	remaining int       // r as last reported; -1: not reported (well within)
	reset     time.Time // when the window ends
	ownSpend  int       // points spent by this process in the current window
	blocked   time.Time // a quota 429: nothing until then

	// Pacing a pool that would otherwise run dry before its reset.
	demand  map[*Reservation]struct{}
	paceAt  time.Time // the points bucket is refilled up to here
	paceBal float64   // points available to spend now (may go negative)

	// Points spent today (UTC), by label: nothing but counters.
	day   string
	spent map[string]int
}

type endpoint struct {
	rate    float64   // requests/s allowed (burst policy q/w × burstShare); 0 = unknown
	q       int       // the burst policy's q: the most Jira's bucket holds
	tokens  float64   // Ferry's own bucket mirroring Jira's
	at      time.Time // tokens counted up to here
	blocked time.Time // a burst 429: nothing until then
	sent    uint64    // calls sent to the endpoint (numbers them)
	flying  int       // of which in flight
}

// Cap is the most calls in flight the tenant may ever have.
func (t *Tenant) Cap() int { return t.l.cap() }

// Concurrency is the current limit of calls in flight. With a burst rate in
// Jira's headers it is also held near what that rate can serve in one round
// trip (rate × round trip, with room): more calls would only queue in the
// pace, where the one a walk needs next waits behind the ones it needs
// later.
func (t *Tenant) Concurrency() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.concurrencyLocked()
}

func (t *Tenant) concurrencyLocked() int {
	return min(max(int(t.limit), 1), t.parallelismLocked())
}

// Parallelism is the most calls in flight worth having: the cap, held near
// what the burst rate Jira reports serves in one round trip (the cap when
// neither is known yet). Concurrency grows towards it; a walk plans enough
// chains of calls to use it (slices.go in export), whatever the current
// limit is while it starts slow.
func (t *Tenant) Parallelism() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.parallelismLocked()
}

func (t *Tenant) parallelismLocked() int {
	n := t.l.cap()
	rate := 0.0
	for _, e := range t.endpoints {
		rate = max(rate, e.rate)
	}
	if rate > 0 && t.avgRTT > 0 {
		n = min(n, int(math.Ceil(rate*t.avgRTT.Seconds()*1.5))+2)
	}
	return n
}

// broadcast wakes every waiter; call with t.mu held.
func (t *Tenant) broadcast() {
	close(t.wake)
	t.wake = make(chan struct{})
}

// acquire waits until a call to ep may be sent: the quota is not exhausted
// (or resets within MaxWait), the endpoint is not paused after a 429 and
// its pace allows a call, points pacing allows, and a concurrency slot is
// free. The returned func reports the answer.
func (t *Tenant) acquire(ctx context.Context, ep string, maxObjects int) (func(*http.Response, time.Duration), error) {
	t.mu.Lock()
	for {
		now := t.l.now()
		wait, err := t.waitLocked(ep, now)
		if err != nil {
			t.mu.Unlock()
			return nil, err
		}
		if wait == 0 && t.inFlight < t.concurrencyLocked() {
			break
		}
		ch := t.wake
		t.mu.Unlock()
		if !waitFor(ctx, ch, wait) {
			return nil, ctx.Err()
		}
		t.mu.Lock()
	}
	seq := t.sendLocked(ep)
	// While pacing, a call in flight holds what it will probably cost, so
	// that many calls at once cannot overdraw the pace; the points come back
	// when it is answered and its real cost is counted.
	advance := 0.0
	if t.demand != nil && t.pacingLocked(t.l.now()) {
		advance = t.callCost(ep)
		if maxObjects > 0 {
			advance = float64(1 + maxObjects)
		}
		t.paceBal -= advance
	}
	t.mu.Unlock()
	return func(resp *http.Response, rtt time.Duration) { t.release(ep, seq, resp, rtt, advance) }, nil
}

// sendLocked counts a call to ep as sent: in flight, a token of the pace
// spent, and numbered (its number comes back with its answer).
func (t *Tenant) sendLocked(ep string) uint64 {
	t.inFlight++
	e := t.endpoint(ep)
	if e.rate > 0 {
		e.tokens--
	}
	e.sent++
	e.flying++
	return e.sent
}

// callCost is what a call to ep costs on average (a page's worth until seen).
func (t *Tenant) callCost(ep string) float64 {
	if c, ok := t.cost[ep]; ok {
		return c
	}
	return float64(maxCallPoints)
}

// waitFor waits for ch to close or d to pass (d == 0: no timer); false if
// ctx ended first.
func waitFor(ctx context.Context, ch <-chan struct{}, d time.Duration) bool {
	var timer <-chan time.Time
	if d > 0 {
		tm := time.NewTimer(d)
		defer tm.Stop()
		timer = tm.C
	}
	select {
	case <-ch:
	case <-timer:
	case <-ctx.Done():
		return false
	}
	return true
}

func (t *Tenant) endpoint(ep string) *endpoint {
	e := t.endpoints[ep]
	if e == nil {
		e = &endpoint{}
		t.endpoints[ep] = e
	}
	return e
}

// waitLocked says how long a call must wait for time-based limits (0: it
// may go once a slot is free), or that it cannot go at all.
func (t *Tenant) waitLocked(ep string, now time.Time) (time.Duration, error) {
	var wait time.Duration
	// The pool: a quota 429 pauses every call until its Retry-After.
	if t.quota > 0 && !t.beta {
		if !t.reset.IsZero() && !now.Before(t.reset) {
			t.newWindowLocked(now)
		}
		until := t.blocked
		if until.IsZero() && t.remaining == 0 {
			until = t.reset
		}
		if now.Before(until) {
			if until.Sub(now) > t.l.maxWait() {
				return 0, &QuotaError{Remaining: 0, Quota: t.quota, Reset: t.reset, Policy: t.policy}
			}
			wait = until.Sub(now)
		}
	}
	// Points pacing, while some export needs more than the pool holds.
	if w := t.paceWaitLocked(now); w > wait {
		wait = w
	}
	e := t.endpoint(ep)
	if now.Before(e.blocked) {
		wait = max(wait, e.blocked.Sub(now))
	}
	if e.rate > 0 {
		// Ferry's own bucket refills up to a tenth of a second's calls;
		// what Jira said its bucket holds beyond that (burstLeftLocked) is
		// kept until spent.
		burst := max(e.rate/10, 1)
		if e.tokens < burst {
			e.tokens = math.Min(burst, e.tokens+now.Sub(e.at).Seconds()*e.rate)
		}
		e.at = now
		if e.tokens < 1 {
			wait = max(wait, time.Duration((1-e.tokens)/e.rate*float64(time.Second)))
		}
	}
	return wait, nil
}

// release records an answer (nil: the call failed on the way) and frees
// the slot.
func (t *Tenant) release(ep string, seq uint64, resp *http.Response, rtt time.Duration, advance float64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.inFlight--
	t.endpoint(ep).flying--
	if t.demand != nil {
		t.paceBal += advance
	}
	defer t.broadcast()
	if resp == nil {
		return
	}
	now := t.l.now()
	t.readHeadersLocked(ep, seq, resp.Header, now)
	switch {
	case resp.StatusCode == http.StatusTooManyRequests:
		wait := retryAfter(resp.Header.Get("Retry-After"))
		reason := resp.Header.Get("RateLimit-Reason")
		if reason == "jira-quota-global-based" || reason == "jira-quota-tenant-based" {
			if wait <= 0 {
				wait = max(t.reset.Sub(now), time.Second)
			}
			t.blocked = now.Add(wait)
			t.remaining = 0
			if t.reset.IsZero() || t.reset.Before(t.blocked) {
				t.reset = t.blocked
			}
			return
		}
		// Burst (or unnamed): slow this endpoint down, and everyone a little.
		if wait <= 0 {
			wait = time.Second
		}
		e := t.endpoint(ep)
		e.blocked = now.Add(wait + rand.N(wait/4+1))
		t.decreaseLocked(now)
	case resp.StatusCode == http.StatusServiceUnavailable:
		if wait := retryAfter(resp.Header.Get("Retry-After")); wait > 0 {
			t.endpoint(ep).blocked = now.Add(wait)
		}
		t.decreaseLocked(now)
	case resp.StatusCode < 500:
		t.growLocked(rtt, now)
	}
}

// growLocked widens the concurrency limit while answers stay fast.
func (t *Tenant) growLocked(rtt time.Duration, now time.Time) {
	if t.minRTT == 0 || rtt < t.minRTT || now.Sub(t.minAt) > 30*time.Second {
		t.minRTT, t.minAt = rtt, now
	}
	if t.avgRTT == 0 {
		t.avgRTT = rtt
	}
	t.avgRTT = (7*t.avgRTT + rtt) / 8
	if float64(rtt) > latencyHolds*float64(t.minRTT)+float64(5*time.Millisecond) {
		return // Jira is getting slower: hold
	}
	if t.limit < t.ssthresh {
		t.limit++ // slow start: +1 per answer doubles per round trip
	} else {
		t.limit += 1 / t.limit
	}
	t.limit = math.Min(t.limit, float64(t.l.cap()))
}

// decreaseLocked halves the limit, at most once per round trip: a burst of
// 429s from one overshoot is one signal.
func (t *Tenant) decreaseLocked(now time.Time) {
	if now.Sub(t.lastCut) < max(t.minRTT, 100*time.Millisecond) {
		return
	}
	t.lastCut = now
	t.limit = math.Max(1, t.limit/2)
	t.ssthresh = t.limit
}

// readHeadersLocked takes in every rate-limit header of an answer: the
// structured RateLimit(-Policy) headers, enforced or Beta-, in any order
// and with any number of policies.
func (t *Tenant) readHeadersLocked(ep string, seq uint64, h http.Header, now time.Time) {
	for _, prefix := range []string{"", "Beta-"} {
		beta := prefix != ""
		for _, pol := range parsePolicies(h.Values(prefix + "RateLimit-Policy")) {
			switch pol.name {
			case policyGlobal, policyTenant:
				if pol.q > 0 && pol.w > 0 && (t.quota == 0 || !beta || t.beta) {
					if t.quota == 0 {
						t.remaining = -1
					}
					t.quota, t.window, t.policy, t.beta = pol.q, time.Duration(pol.w)*time.Second, pol.name, beta
				}
			case policyBurst:
				if pol.q > 0 && pol.w > 0 {
					e := t.endpoint(ep)
					rate := float64(pol.q) / float64(pol.w) * burstShare
					if e.rate == 0 {
						e.tokens, e.at = 1, now
					}
					e.rate, e.q = rate, pol.q
				}
			}
		}
		for _, st := range parsePolicies(h.Values(prefix + "RateLimit")) {
			if st.name == policyBurst {
				t.burstLeftLocked(ep, seq, st.r, now)
				continue
			}
			if st.name != t.policy || t.quota == 0 || beta != t.beta {
				continue
			}
			if st.t >= 0 {
				reset := now.Add(time.Duration(st.t) * time.Second)
				if !t.reset.IsZero() && reset.Sub(t.reset) > time.Second {
					t.newWindowLocked(now) // a later window than the one counted
				}
				t.reset = reset
			}
			if st.r >= 0 {
				t.remaining = st.r
				if st.r > 0 {
					t.blocked = time.Time{}
				}
			} else if t.remaining >= 0 && t.remaining*nearLimitPart < t.quota {
				t.remaining = -1 // no r again: well within (a new window)
			}
		}
	}
}

// burstLeftLocked takes in what Jira's burst bucket held (r) when it
// answered call seq to ep: calls sent since may have taken some, and so may
// calls still in flight that were sent before it (answers overtake one
// another), so Ferry may send r less both at once, and not more than the
// bucket holds (q). It only ever adds to Ferry's own bucket, never takes
// away: at the start of a walk Jira's bucket is full, and Ferry need not
// wait out a second's worth of pacing to use it; once the bucket is spent r
// is small, and Ferry's pace is what holds. A server that sends no r, or
// an r for a stale moment, changes nothing.
func (t *Tenant) burstLeftLocked(ep string, seq uint64, r int, now time.Time) {
	e := t.endpoint(ep)
	if r < 0 || e.rate <= 0 || seq == 0 {
		return
	}
	left := float64(min(r, e.q)) - float64(e.sent-seq) - float64(e.flying)
	if left > e.tokens {
		e.tokens, e.at = left, now
	}
}

func (t *Tenant) newWindowLocked(now time.Time) {
	t.ownSpend, t.remaining, t.blocked = 0, -1, time.Time{}
	if t.window > 0 {
		t.reset = now.Truncate(t.window).Add(t.window)
	}
}

// spend records points spent on a call (label: what they were spent for);
// with an endpoint, points are the objects a read returned, and one more
// (the base point) is what the call cost in all.
func (t *Tenant) spend(label, ep string, points int, res *Reservation) {
	t.mu.Lock()
	defer t.mu.Unlock()
	now := t.l.now()
	day := now.UTC().Format(time.DateOnly)
	if day != t.day {
		t.day, t.spent = day, map[string]int{}
	}
	if ep != "" {
		c, ok := t.cost[ep]
		if !ok {
			c = float64(points + 1)
		}
		t.cost[ep] = 0.8*c + 0.2*float64(points+1)
	}
	if points <= 0 {
		return
	}
	t.spent[label] += points
	// A reported r already counts the call that carried it (and Jira sends r
	// on every answer once it matters), so own spend only feeds the estimate
	// made while r is absent.
	t.ownSpend += points
	if t.demand != nil {
		t.paceBal -= float64(points)
	}
	if res != nil {
		res.used += points
	}
}

// SpentToday returns the points this process spent for the tenant today
// (UTC), by label.
func (t *Tenant) SpentToday() map[string]int {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := map[string]int{}
	if t.day == t.l.now().UTC().Format(time.DateOnly) {
		for k, v := range t.spent {
			out[k] = v
		}
	}
	return out
}

// QuotaState is what is known about a tenant's points pool.
type QuotaState struct {
	Known     bool          // a quota policy was seen in Jira's headers
	Policy    string        // global-app-quota or tenant-app-quota
	Quota     int           // points per window
	Window    time.Duration // the window
	Remaining int           // points left (an estimate when Reported is false)
	Reported  bool          // Remaining is Jira's own r
	Reset     time.Time     // when the pool refills
	Beta      bool          // informational headers only
	Pacing    bool          // calls are being paced to make the pool last
}

// Quota returns the pool's state now.
func (t *Tenant) Quota() QuotaState {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.quotaLocked(t.l.now())
}

func (t *Tenant) quotaLocked(now time.Time) QuotaState {
	if t.quota == 0 {
		return QuotaState{}
	}
	if !t.reset.IsZero() && !now.Before(t.reset) {
		t.newWindowLocked(now)
	}
	st := QuotaState{Known: true, Policy: t.policy, Quota: t.quota, Window: t.window, Reset: t.reset, Beta: t.beta, Pacing: len(t.demand) > 0 && t.pacingLocked(now)}
	switch {
	case t.remaining >= 0:
		st.Remaining, st.Reported = t.remaining, true
	default:
		// Well within: at least a fifth, at most what this process left.
		st.Remaining = max(t.quota-t.ownSpend, t.quota/nearLimitPart)
	}
	return st
}

// Reservation is an export's claim on the pool: what it expects to spend.
// While claims exceed what the pool holds until its reset, every call of
// the tenant is paced so that the pool lasts until then.
type Reservation struct {
	t    *Tenant
	need int
	used int
}

// reserveMargin is kept back from pacing: other users of the app, a last
// page's overshoot.
func (t *Tenant) reserveMargin() int { return max(t.quota/50, maxCallPoints) }

// maxCallPoints is the most one paged call costs (a search page of 100 with fields).
const maxCallPoints = 1 + MaxBulkFetch

// Reserve claims need points for an export that must finish within
// horizon (Claim, then Need).
func (t *Tenant) Reserve(need int, horizon time.Duration) (*Reservation, error) {
	r := t.Claim()
	if err := r.Need(need, horizon); err != nil {
		r.Done()
		return nil, err
	}
	return r, nil
}

// Claim opens a claim that needs nothing yet: calls made under it (see
// WithSpend) count as its spending, and Need says what it will need once
// that is known.
func (t *Tenant) Claim() *Reservation {
	t.mu.Lock()
	defer t.mu.Unlock()
	r := &Reservation{t: t}
	if t.demand == nil {
		t.demand = map[*Reservation]struct{}{}
		t.paceAt, t.paceBal = t.l.now(), float64(maxCallPoints)
	}
	t.demand[r] = struct{}{}
	return r
}

// Need sets what the claim needs in all (including what it has spent). It
// fails with *QuotaError when the pool cannot supply the rest in time,
// counting the resets that fall within horizon; the claim then needs
// nothing. With no enforced quota in Jira's headers (yet), every need is
// granted.
func (r *Reservation) Need(need int, horizon time.Duration) error {
	if r == nil {
		return nil
	}
	t := r.t
	t.mu.Lock()
	defer t.mu.Unlock()
	now := t.l.now()
	st := t.quotaLocked(now)
	if st.Known && !st.Beta && t.window > 0 {
		margin := t.reserveMargin()
		r.need = 0
		avail := st.Remaining - margin - t.otherDemandLocked()
		resets := 0
		if !st.Reset.IsZero() && st.Reset.Sub(now) <= horizon {
			resets = 1 + int((horizon-st.Reset.Sub(now))/t.window)
		}
		if rest := need - r.used; rest > avail+resets*(t.quota-margin) {
			return &QuotaError{Need: rest, Remaining: st.Remaining, Quota: t.quota, Reset: st.Reset, Policy: t.policy}
		}
	}
	r.need = need
	t.broadcast()
	return nil
}

// Done ends a claim.
func (r *Reservation) Done() {
	if r == nil {
		return
	}
	t := r.t
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.demand, r)
	if len(t.demand) == 0 {
		t.demand = nil
	}
	t.broadcast()
}

func (t *Tenant) otherDemandLocked() int {
	n := 0
	for r := range t.demand {
		n += max(r.need-r.used, 0)
	}
	return n
}

// pacingLocked: the claims exceed what the pool holds before its reset.
func (t *Tenant) pacingLocked(now time.Time) bool {
	if t.quota == 0 || len(t.demand) == 0 || t.reset.IsZero() {
		return false
	}
	st := t.quotaLocked0(now)
	return t.otherDemandLocked() > st-t.reserveMargin()
}

// quotaLocked0 is the remaining estimate without rolling windows over.
func (t *Tenant) quotaLocked0(now time.Time) int {
	if t.remaining >= 0 {
		return t.remaining
	}
	return max(t.quota-t.ownSpend, t.quota/nearLimitPart)
}

// paceWaitLocked spreads the pool's remaining points over the time to its
// reset while claims exceed them: spending runs at (remaining − margin) per
// second-to-reset, so the pool still holds the margin when it refills.
func (t *Tenant) paceWaitLocked(now time.Time) time.Duration {
	if !t.pacingLocked(now) {
		if t.demand != nil {
			t.paceAt, t.paceBal = now, float64(maxCallPoints)
		}
		return 0
	}
	left := t.reset.Sub(now)
	if left <= 0 {
		return 0
	}
	budget := float64(t.quotaLocked0(now) - t.reserveMargin())
	if budget <= 0 {
		// Nothing to spend before the reset: wait for it.
		return left + rand.N(50*time.Millisecond)
	}
	rate := budget / left.Seconds()
	t.paceBal = math.Min(float64(maxCallPoints), t.paceBal+now.Sub(t.paceAt).Seconds()*rate)
	t.paceAt = now
	if t.paceBal >= 0 {
		return 0
	}
	return time.Duration(-t.paceBal / rate * float64(time.Second))
}

// policy is one entry of a structured rate-limit header:
// "name";q=…;w=…;r=…;t=… (absent attributes are -1).
type policyEntry struct {
	name       string
	q, w, r, t int
}

// parsePolicies reads structured RateLimit headers: entries separated by
// commas (also across repeated fields), attributes by semicolons, in any
// order; unknown attributes are ignored.
func parsePolicies(values []string) []policyEntry {
	var out []policyEntry
	for _, v := range values {
		for _, e := range strings.Split(v, ",") {
			parts := strings.Split(strings.TrimSpace(e), ";")
			name := strings.Trim(strings.TrimSpace(parts[0]), `"`)
			if name == "" {
				continue
			}
			p := policyEntry{name: name, q: -1, w: -1, r: -1, t: -1}
			for _, a := range parts[1:] {
				k, val, ok := strings.Cut(strings.TrimSpace(a), "=")
				if !ok {
					continue
				}
				n, err := strconv.Atoi(strings.TrimSpace(val))
				if err != nil || n < 0 {
					continue
				}
				switch strings.TrimSpace(k) {
				case "q":
					p.q = n
				case "w":
					p.w = n
				case "r":
					p.r = n
				case "t":
					p.t = n
				}
			}
			out = append(out, p)
		}
	}
	return out
}

// retryAfter reads Retry-After in seconds or as an HTTP date; 0 if absent.
func retryAfter(v string) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if s, err := strconv.Atoi(v); err == nil && s >= 0 {
		return time.Duration(s) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(time.Until(t), 0)
	}
	return 0
}
