// Package forge is Ferry's side of Atlassian Forge as a Forge Remote: Ferry
// itself is the app's backend. Forge calls it with a Forge Invocation Token
// (FIT) on every invocation — the Custom UI pages' invokeRemote calls, the
// lifecycle events, the hourly scheduled trigger and preUninstall — and
// Ferry calls back Atlassian's API gateway: the product API at
// app.apiBaseUrl, the GraphQL offlineUserAuthToken mutation to act as a
// user with no invocation in flight, and Forge storage.
//
// It keeps the promises internal/atlassian keeps for Connect, on Forge:
//   - P2, Account Data: an installation is what verified FITs say of it
//     (installationId, cloudId, apiBaseUrl, licence), recorded in
//     internal/tenant, which is the only place this package meets Connect:
//     one tenant per site whatever the platform.
//   - P6, User-Account Data: the app system token is kept only encrypted
//     under the tenant key (tenant.Store.Contact) and never logged; user
//     tokens (the invocation's, or offline impersonation's) live in memory
//     only; accountIds are stored only as pseudonyms.
//   - P1: data sources live in Forge storage, in the customer's own
//     Atlassian site, never in Ferry's database; issue data is read only as
//     the user (offline impersonation), never with the system token.
//   - P9: every call goes through the egress gate (categories forge_keys
//     and forge_api); app.apiBaseUrl must be the configured gateway.
//   - P16: preUninstall ends the tenant the way a Connect uninstall does
//     (tenant.Store.Uninstalled).
package forge

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"ferry/internal/keys"
	"ferry/internal/tenant"
	"ferry/internal/tokencache"
)

// Defaults: Atlassian's production endpoints.
const (
	DefaultJWKSURL    = "https://forge.cdn.prod.atlassian-dev.net/.well-known/jwks.json"
	DefaultGraphQLURL = "https://api.atlassian.com/graphql"
	DefaultStorageURL = "https://api.atlassian.com/forge/storage/kvs"
)

// Routes of the remote, as the manifest's endpoint modules name them.
const (
	RouteLifecycle    = "/forge/lifecycle" // avi:forge:installed:app, avi:forge:upgraded:app
	RouteTrigger      = "/forge/trigger"   // the hourly scheduled trigger
	RoutePreUninstall = "/forge/uninstall" // preUninstall
	RouteAPI          = "/forge/app-api"   // the Custom UI's invokeRemote calls (prefix)
)

// Options are what New needs.
type Options struct {
	AppID         string // FERRY_FORGE_APP_ID: the app ARI every FIT's aud must be
	JWKSURL       string // FERRY_FORGE_JWKS_URL
	GraphQLURL    string // FERRY_FORGE_GRAPHQL_URL: offlineUserAuthToken; its origin is the API gateway
	StorageURL    string // FERRY_FORGE_STORAGE_URL: the Key-Value Store REST API
	AddonKey      string // FERRY_ADDON_KEY: app.connect.key, whose Connect app properties a migrated site moves
	LicenseMaxAge time.Duration
	AllowLoopback bool // FERRY_EGRESS_ALLOW_LOOPBACK (simulator, demo, tests)

	Tenants  *tenant.Store
	Keys     *keys.Ring
	Accounts tenant.AccountHolder // records each signed-in user before their pseudonym is stored
	Log      *slog.Logger

	JWKSClient Doer         // egress.ForgeKeys
	APIClient  *http.Client // egress.ForgeAPI: GraphQL, storage and the product API

	Now func() time.Time
}

// DefaultLicenseMaxAge is how long a licence seen in a FIT is trusted for
// feeds: the hourly trigger refreshes it.
const DefaultLicenseMaxAge = 24 * time.Hour

// Remote is Ferry's Forge Remote side. It is safe for concurrent use.
type Remote struct {
	o        Options
	verifier *Verifier
	log      *slog.Logger
	now      func() time.Time
	clk      *clock
	apiHost  string // host of the API gateway

	offline *tokencache.Cache // offline user tokens, in memory only

	mu     sync.Mutex
	kick   func(ctx context.Context) error // asks the job queue for a migration run
	forget []func(tenantID string)
}

// New builds the Forge side of the app.
func New(o Options) (*Remote, error) {
	if o.Tenants == nil || o.Keys == nil || o.JWKSClient == nil || o.APIClient == nil {
		return nil, errors.New("forge: New needs Tenants, Keys and the two HTTP clients")
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.LicenseMaxAge <= 0 {
		o.LicenseMaxAge = DefaultLicenseMaxAge
	}
	clk := &clock{}
	clk.set(o.Now)
	o.Now = clk.now
	gw, err := url.Parse(o.GraphQLURL)
	if err != nil || gw.Host == "" {
		return nil, errors.New("forge: FERRY_FORGE_GRAPHQL_URL is not an absolute URL")
	}
	v, err := NewVerifier(VerifierOptions{AppID: o.AppID, JWKSURL: o.JWKSURL, APIOrigin: gw.Scheme + "://" + gw.Host,
		AllowLoopback: o.AllowLoopback, JWKSClient: o.JWKSClient, Now: o.Now})
	if err != nil {
		return nil, err
	}
	return &Remote{o: o, verifier: v, log: o.Log, now: o.Now, clk: clk, apiHost: strings.ToLower(gw.Host), offline: tokencache.New()}, nil
}

// clock is the time every part of the Remote reads, replaceable at once.
type clock struct {
	p atomic.Pointer[func() time.Time]
}

func (c *clock) set(now func() time.Time) { c.p.Store(&now) }
func (c *clock) now() time.Time           { return (*c.p.Load())() }

// SetClock replaces the clock FITs, tokens and licences are judged by
// (tests that move time on, as the database's SetClock does).
func (f *Remote) SetClock(now func() time.Time) { f.clk.set(now) }

// Verifier returns the FIT verifier (benchmarks, tests).
func (f *Remote) Verifier() *Verifier { return f.verifier }

// SetKick makes a first Forge contact of a migrated site ask the job queue
// to move its data sources now (jobs.Registry.Kick of MigrateJobName).
func (f *Remote) SetKick(fn func(ctx context.Context) error) {
	f.mu.Lock()
	f.kick = fn
	f.mu.Unlock()
}

// OnForget registers what else to drop of a tenant when Forge says it is
// gone or its sources moved (the data source cache).
func (f *Remote) OnForget(fn func(tenantID string)) {
	f.mu.Lock()
	f.forget = append(f.forget, fn)
	f.mu.Unlock()
}

// Forget drops what is cached in memory for a tenant (offline user tokens):
// after a purge or an uninstall.
func (f *Remote) Forget(tenantID string) {
	f.offline.ForgetPrefix(tenantID + "\x00")
	systemTokenAge.DeleteLabelValues(tenantID)
	f.mu.Lock()
	fns := append([]func(string){}, f.forget...)
	f.mu.Unlock()
	for _, fn := range fns {
		fn(tenantID)
	}
}
