package jirasim

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Options shapes a simulated site. Zero counts take the defaults
// (1000 issues, 3 projects, 20 users); Issues < 0 means no generated issues.
type Options struct {
	Issues, Projects, Users int
	Seed                    int64
	Latency, Jitter         time.Duration // added before every REST response
	Rate                    float64       // requests/s per tenant×endpoint; 0 = unlimited
	FaultRate               float64       // fraction of REST requests that fail (500/503/slow/dropped)
	Quota                   Quota         // the hourly points pools (quota.go); zero: none
	AllowHTTPApp            bool          // accept an app baseUrl on loopback http (tests, demo)
	Logger                  *slog.Logger  // request lines without query strings; nil = silent
}

// Knobs are the realism settings that can change while the sim runs.
type Knobs struct {
	Latency, Jitter time.Duration
	Rate            float64
	FaultRate       float64
}

// Sim is one simulated Jira Cloud site. It is safe for concurrent use.
type Sim struct {
	opts   Options
	data   *dataset
	log    *slog.Logger
	mux    *http.ServeMux
	client *http.Client // calls to apps (descriptor, lifecycle)
	keys   *installKeys
	clock  atomic.Value // func() time.Time; injectable so expiry and rate tests need no sleeps

	mu       sync.RWMutex
	baseURL  string
	extra    []*issue
	installs map[string]*installation // by addon key
	tokens   map[string]*bearerToken
	props    map[string]map[string][]byte // addon key → property key → JSON
	knobs    Knobs
	sorted   map[string][]int // cache of sorted result lists, by query fingerprint

	forge *forgeState // the Forge platform (forge*.go)
	model modelState  // planted worklogs and comments, the worklog index (model*.go)

	frags     atomic.Pointer[fragments]
	limits    *limiter
	quotas    *quotas
	faults    *faulter
	stats     *stats
	report    reportScript       // personal data reporting: scripted answers and the calls seen (report.go)
	accessNow map[int]userAccess // groups and global permissions changed while running (api_permissions.go), by user index

	srvMu sync.Mutex
	srv   *http.Server
}

// New builds a site whose data depends only on opts (chiefly Seed).
func New(opts Options) *Sim {
	if opts.Issues == 0 {
		opts.Issues = 1000
	}
	if opts.Projects == 0 {
		opts.Projects = 3
	}
	if opts.Users == 0 {
		opts.Users = 20
	}
	opts.Issues, opts.Projects, opts.Users = max(opts.Issues, 0), max(opts.Projects, 1), max(opts.Users, 1)
	s := &Sim{
		opts:     opts,
		data:     newDataset(opts.Seed, opts.Issues, opts.Projects, opts.Users),
		log:      opts.Logger,
		client:   &http.Client{Timeout: 15 * time.Second},
		keys:     sharedInstallKeys(),
		baseURL:  "http://jirasim.invalid",
		installs: map[string]*installation{},
		tokens:   map[string]*bearerToken{},
		props:    map[string]map[string][]byte{},
		sorted:   map[string][]int{},
		knobs:    Knobs{Latency: opts.Latency, Jitter: opts.Jitter, Rate: opts.Rate, FaultRate: opts.FaultRate},
		stats:    newStats(),
	}
	s.setClock(time.Now)
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	s.limits = newLimiter()
	s.quotas = newQuotas(opts.Quota)
	s.faults = newFaulter(opts.Seed)
	s.routes()
	return s
}

// ServeHTTP serves the REST API, the Connect host endpoints, the Jira page
// and the /_sim/ control API.
func (s *Sim) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	rec := &recorder{ResponseWriter: w, status: http.StatusOK}
	s.mux.ServeHTTP(rec, r)
	// Never the query string: it may carry a jwt.
	s.log.Info("request", "method", r.Method, "path", r.URL.Path, "status", rec.status, "dur", time.Since(start).Round(time.Microsecond))
}

// Start serves on addr (e.g. "127.0.0.1:0") until ctx is done or Close is
// called, and returns the base URL. The base URL becomes the site's URL
// unless SetBaseURL or RenameSite already set one.
func (s *Sim) Start(ctx context.Context, addr string) (string, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return "", err
	}
	srv := &http.Server{Handler: s, ReadHeaderTimeout: 10 * time.Second}
	s.srvMu.Lock()
	s.srv = srv
	s.srvMu.Unlock()
	base := "http://" + ln.Addr().String()
	s.mu.Lock()
	if s.baseURL == "http://jirasim.invalid" {
		s.baseURL = base
	}
	s.mu.Unlock()
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("serve", "err", err)
		}
	}()
	go func() {
		<-ctx.Done()
		s.Close()
	}()
	return base, nil
}

// Close stops a server started with Start.
func (s *Sim) Close() error {
	s.srvMu.Lock()
	srv := s.srv
	s.srv = nil
	s.srvMu.Unlock()
	if srv == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		return srv.Close()
	}
	return nil
}

// SetBaseURL tells the sim its own URL (e.g. an httptest.Server's URL); it
// is used for self links, qsh paths, tnt claims and lifecycle payloads.
func (s *Sim) SetBaseURL(u string) {
	s.mu.Lock()
	s.baseURL = strings.TrimSuffix(u, "/")
	s.mu.Unlock()
}

// BaseURL returns the site's current URL.
func (s *Sim) BaseURL() string {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.baseURL
}

// RenameSite changes the site URL, as when a customer renames their site:
// later installs and lifecycle events carry the new baseUrl, OAuth
// assertions must use it as tnt, and self links use it. The new URL must
// still reach this sim (e.g. localhost instead of 127.0.0.1).
func (s *Sim) RenameSite(newBaseURL string) { s.SetBaseURL(newBaseURL) }

// Users returns the site's accounts; the first is the site admin.
func (s *Sim) Users() []User {
	out := make([]User, len(s.data.users))
	for i, u := range s.data.users {
		u.Projects = append([]string(nil), u.Projects...)
		u.Groups, u.GlobalPermissions = s.access(i)
		u.browse, u.groups, u.global = nil, nil, nil
		out[i] = u
	}
	return out
}

// ProjectKeys lists the site's project keys in key order.
func (s *Sim) ProjectKeys() []string {
	out := make([]string, len(s.data.projects))
	for i, p := range s.data.projects {
		out[i] = p.Key
	}
	return out
}

// SetKnobs changes latency, jitter, rate limit and fault rate at run time.
func (s *Sim) SetKnobs(k Knobs) {
	s.mu.Lock()
	s.knobs = k
	s.mu.Unlock()
}

func (s *Sim) getKnobs() Knobs {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.knobs
}

func (s *Sim) snapshot() corpus {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return corpus{d: s.data, extra: s.extra, sim: s, touched: s.model.items().touched}
}

// recorder keeps the status for the log line; Unwrap lets
// http.ResponseController reach Flush and Hijack underneath.
type recorder struct {
	http.ResponseWriter
	status int
	wrote  bool
}

func (r *recorder) WriteHeader(code int) {
	if !r.wrote {
		r.status, r.wrote = code, true
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *recorder) Write(b []byte) (int, error) {
	r.wrote = true
	return r.ResponseWriter.Write(b)
}

func (r *recorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

func (s *Sim) now() time.Time { return s.clock.Load().(func() time.Time)() }

// setClock replaces the clock (tests).
func (s *Sim) setClock(f func() time.Time) { s.clock.Store(f) }
