package jirasim

import (
	"errors"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Jira Cloud's points-based hourly quota, as Atlassian documents it
// (https://developer.atlassian.com/cloud/jira/platform/rate-limiting/,
// enforced for Forge, Connect and OAuth 2.0 apps since 2026-03-02; see
// docs/jira-rate-limits.md):
//
//   - a request costs 1 point, plus points for each object it reads: 1 per
//     core object (issues, projects, …; uncategorised objects such as fields,
//     change histories and app properties count 1 too), 2 per identity object
//     (users, groups). Writes cost the base point only. A search page of 100
//     issues costs 101 points; GET /myself costs 3.
//   - the points go to an hourly pool that resets at the top of each UTC
//     hour: one pool per app across all its tenants (Tier 1,
//     "global-app-quota", 65,000 points) or one per app and tenant (Tier 2,
//     "tenant-app-quota").
//   - every app response carries RateLimit-Policy ("…";q=65000;w=3600) and
//     RateLimit ("…";t=seconds to reset, and r=remaining once less than 20 %
//     is left, with X-RateLimit-NearLimit: true); beta mode prefixes them with
//     Beta- and never refuses.
//   - an exhausted pool refuses every request with 429, Retry-After (the
//     seconds to the reset) and RateLimit-Reason jira-quota-global-based or
//     jira-quota-tenant-based, until the reset.
//
// API-token (HTTP Basic) traffic is outside the points system, as in Jira:
// it is counted in Stats (so benchmarks can compare clients) but never
// refused for quota and gets no quota headers.

// Quota configures the points pools. Points 0 models none.
type Quota struct {
	Points int           // points per window and pool
	Tier   string        // "global" (Tier 1, default) or "tenant" (Tier 2)
	Window time.Duration // default one hour; windows are aligned to the Unix epoch (whole UTC hours)
	Beta   bool          // headers only, as before enforcement: never 429
}

// GlobalQuota is Tier 1's documented default pool.
const GlobalQuota = 65000

// Policy names and reasons, as Jira sends them.
const (
	policyGlobal    = "global-app-quota"
	policyTenant    = "tenant-app-quota"
	policyBurst     = "jira-burst-based"
	reasonGlobal    = "jira-quota-global-based"
	reasonTenant    = "jira-quota-tenant-based"
	reasonBurst     = "jira-burst-based"
	nearLimitPart   = 5 // r is sent, and NearLimit set, once less than 1/5 is left
	identityObjects = 2 // points per user or group read
)

func (q Quota) window() time.Duration {
	if q.Window <= 0 {
		return time.Hour
	}
	return q.Window
}

func (q Quota) policy() (name, reason string) {
	if q.Tier == "tenant" {
		return policyTenant, reasonTenant
	}
	return policyGlobal, reasonGlobal
}

func (q Quota) valid() error {
	switch {
	case q.Points < 0:
		return errors.New("quota points must be ≥ 0")
	case q.Tier != "" && q.Tier != "global" && q.Tier != "tenant":
		return fmt.Errorf("quota tier %q: use global or tenant", q.Tier)
	case q.Window < 0 || q.Window > 0 && q.Window < time.Second:
		return errors.New("quota window must be at least one second")
	}
	return nil
}

// pool is one quota pool's spend in its current window.
type pool struct {
	start time.Time // window start
	spent int
}

// WindowSpend is what one pool spent in one window.
type WindowSpend struct {
	Pool  string    `json:"pool"`
	Start time.Time `json:"start"`
	Spent int       `json:"spent"`
}

type quotas struct {
	mu      sync.Mutex
	q       Quota
	pools   map[string]*pool
	history []WindowSpend // closed windows, newest last (bounded)
}

func newQuotas(q Quota) *quotas { return &quotas{q: q, pools: map[string]*pool{}} }

// poolKey names the pool a principal's points go to; "" for traffic outside
// the points system (API tokens).
func (qs *quotas) poolKey(p *principal) string {
	if p == nil || p.addonKey == "" {
		return ""
	}
	if qs.q.Tier == "tenant" {
		return "app:" + p.addonKey + "/tenant" // this simulated site is the one tenant
	}
	return "app:" + p.addonKey
}

// current returns a pool rolled over to the window holding now.
func (qs *quotas) current(key string, now time.Time) *pool {
	w := qs.q.window()
	start := now.Truncate(w)
	pl := qs.pools[key]
	if pl == nil {
		pl = &pool{start: start}
		qs.pools[key] = pl
	}
	if !pl.start.Equal(start) {
		if pl.spent > 0 {
			qs.history = append(qs.history, WindowSpend{Pool: key, Start: pl.start, Spent: pl.spent})
			if len(qs.history) > 256 {
				qs.history = qs.history[len(qs.history)-256:]
			}
		}
		pl.start, pl.spent = start, 0
	}
	return pl
}

// state is a pool's standing for the headers.
type poolState struct {
	quota, remaining int
	reset            time.Time
	window           time.Duration
}

func (qs *quotas) stateLocked(pl *pool) poolState {
	w := qs.q.window()
	return poolState{quota: qs.q.Points, remaining: max(qs.q.Points-pl.spent, 0), reset: pl.start.Add(w), window: w}
}

// admit reports whether a request may run: an enforced pool with nothing
// left refuses it.
func (qs *quotas) admit(key string, now time.Time) (ok bool, st poolState) {
	qs.mu.Lock()
	defer qs.mu.Unlock()
	if qs.q.Points <= 0 || key == "" {
		return true, poolState{}
	}
	pl := qs.current(key, now)
	st = qs.stateLocked(pl)
	return qs.q.Beta || st.remaining > 0, st
}

// charge spends points from key's pool.
func (qs *quotas) charge(key string, points int, now time.Time) poolState {
	qs.mu.Lock()
	defer qs.mu.Unlock()
	if qs.q.Points <= 0 || key == "" {
		return poolState{}
	}
	pl := qs.current(key, now)
	pl.spent += points
	return qs.stateLocked(pl)
}

func (qs *quotas) get() Quota {
	qs.mu.Lock()
	defer qs.mu.Unlock()
	return qs.q
}

// set replaces the configuration; a change of window or tier starts afresh.
func (qs *quotas) set(q Quota) {
	qs.mu.Lock()
	defer qs.mu.Unlock()
	if q.window() != qs.q.window() || q.Tier != qs.q.Tier {
		qs.pools = map[string]*pool{}
	}
	qs.q = q
}

// QuotaStatus is the control API's view of the pools.
type QuotaStatus struct {
	Points  int           `json:"points"`
	Tier    string        `json:"tier"`
	Window  string        `json:"window"`
	Beta    bool          `json:"beta"`
	Pools   []PoolStatus  `json:"pools"`
	History []WindowSpend `json:"history"` // closed windows, oldest first
}

// PoolStatus is one pool in its current window.
type PoolStatus struct {
	Pool      string    `json:"pool"`
	Spent     int       `json:"spent"`
	Remaining int       `json:"remaining"`
	Reset     time.Time `json:"reset"`
}

func (qs *quotas) status(now time.Time) QuotaStatus {
	qs.mu.Lock()
	defer qs.mu.Unlock()
	tier := qs.q.Tier
	if tier == "" {
		tier = "global"
	}
	out := QuotaStatus{Points: qs.q.Points, Tier: tier, Window: qs.q.window().String(), Beta: qs.q.Beta,
		Pools: []PoolStatus{}, History: append([]WindowSpend{}, qs.history...)}
	for k := range qs.pools {
		pl := qs.current(k, now)
		st := qs.stateLocked(pl)
		out.Pools = append(out.Pools, PoolStatus{Pool: k, Spent: pl.spent, Remaining: st.remaining, Reset: st.reset})
	}
	return out
}

// SetQuota changes the points pools while the sim runs.
func (s *Sim) SetQuota(q Quota) error {
	if err := q.valid(); err != nil {
		return err
	}
	s.quotas.set(q)
	return nil
}

// QuotaStatus reports the pools.
func (s *Sim) QuotaStatus() QuotaStatus { return s.quotas.status(s.now()) }

// SpendQuota charges points to an app's pool now, as the app's other
// tenants do in the shared Tier 1 pool.
func (s *Sim) SpendQuota(addonKey string, points int) {
	s.quotas.charge(s.quotas.poolKey(&principal{addonKey: addonKey}), points, s.now())
}

// metered wraps a REST response: handlers report the objects they read
// (chargeObjects), and when the status goes out the request is charged and the
// quota headers set.
type metered struct {
	http.ResponseWriter
	s       *Sim
	p       *principal
	kind    string // principal kind, for Stats
	points  int    // object points reported by the handler (chargeObjects)
	charged bool
	refused bool // beta mode: the pool is exhausted, so enforcement would refuse this
	now     time.Time
}

func (m *metered) WriteHeader(code int) {
	m.finish(code)
	m.ResponseWriter.WriteHeader(code)
}

func (m *metered) Write(b []byte) (int, error) {
	m.finish(http.StatusOK)
	return m.ResponseWriter.Write(b)
}

func (m *metered) Unwrap() http.ResponseWriter { return m.ResponseWriter }

// finish charges the request once: the base point, plus the objects of a
// successful read. A refusal by the rate limiter is not charged (it was
// never served).
func (m *metered) finish(code int) {
	if m.charged {
		return
	}
	m.charged = true
	if code == http.StatusTooManyRequests {
		return
	}
	cost := 1
	if code < 300 {
		cost += m.points
	}
	key := m.s.quotas.poolKey(m.p)
	m.s.stats.add(func(st *Stats) {
		st.Points += int64(cost)
		st.PointsByKind[m.kind] += int64(cost)
	})
	st := m.s.quotas.charge(key, cost, m.now)
	if key != "" && st.quota > 0 {
		quotaHeaders(m.ResponseWriter.Header(), m.s.quotas.get(), st, m.now, m.refused)
	}
}

// chargeObjects reports points for the objects a read returns: 1 per core object,
// identityObjects per user or group. Call it before writing the answer.
func chargeObjects(w http.ResponseWriter, points int) {
	for w != nil {
		if m, ok := w.(*metered); ok {
			m.points += points
			return
		}
		u, ok := w.(interface{ Unwrap() http.ResponseWriter })
		if !ok {
			return
		}
		w = u.Unwrap()
	}
}

// quotaHeaders writes the structured quota headers of one pool, with or
// without the Beta- prefix. exhausted adds what a refusal carries.
func quotaHeaders(h http.Header, q Quota, st poolState, now time.Time, exhausted bool) {
	name, reason := q.policy()
	prefix, xprefix := "", "X-"
	if q.Beta {
		prefix, xprefix = "Beta-", "X-Beta-"
	}
	t := int(math.Ceil(st.reset.Sub(now).Seconds()))
	t = max(t, 0)
	appendPolicy(h, prefix+"RateLimit-Policy", fmt.Sprintf("%q;q=%d;w=%d", name, st.quota, int(st.window/time.Second)))
	entry := fmt.Sprintf("%q;t=%d", name, t)
	near := st.remaining*nearLimitPart < st.quota
	if near || exhausted {
		entry = fmt.Sprintf("%q;r=%d;t=%d", name, st.remaining, t)
		h.Set(xprefix+"RateLimit-NearLimit", "true")
	}
	appendPolicy(h, prefix+"RateLimit", entry)
	if exhausted {
		h.Set(prefix+"Retry-After", strconv.Itoa(max(t, 1)))
		if q.Beta {
			h.Set("X-Beta-RateLimit-Reason", reason)
			h.Set("X-Beta-RateLimit-Reset", st.reset.UTC().Format(time.RFC3339))
		} else {
			h.Set("RateLimit-Reason", reason)
			h.Set("X-RateLimit-Reset", st.reset.UTC().Format(time.RFC3339))
			h.Set("X-RateLimit-Limit", strconv.Itoa(st.quota))
			h.Set("X-RateLimit-Remaining", "0")
		}
	}
}

// burstHeaders reports the per-endpoint burst bucket as Jira's beta
// structured headers do ("jira-burst-based";q=100;w=1).
func burstHeaders(h http.Header, capacity, remaining int) {
	appendPolicy(h, "Beta-RateLimit-Policy", fmt.Sprintf("%q;q=%d;w=1", policyBurst, capacity))
	appendPolicy(h, "Beta-RateLimit", fmt.Sprintf("%q;r=%d;t=1", policyBurst, remaining))
}

// appendPolicy adds an entry to a structured header: entries are separated
// by commas within one field.
func appendPolicy(h http.Header, name, entry string) {
	if cur := h.Get(name); cur != "" {
		// Replace an entry of the same policy (a refusal rewrites it).
		var kept []string
		pol, _, _ := strings.Cut(entry, ";")
		for _, e := range strings.Split(cur, ",") {
			if p, _, _ := strings.Cut(strings.TrimSpace(e), ";"); p != pol {
				kept = append(kept, strings.TrimSpace(e))
			}
		}
		h.Set(name, strings.Join(append(kept, entry), ","))
		return
	}
	h.Set(name, entry)
}
