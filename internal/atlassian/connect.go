// Package atlassian is Ferry's side of Atlassian Connect: the app descriptor,
// the signed lifecycle callbacks that create and end a tenant, the JWT
// authentication of every request Jira sends to the app's pages and JSON API,
// and the signing of every call Ferry makes to a tenant's Jira, as the app or
// as a user.
//
// It keeps two promises of the Data Security & Privacy Statement together
// with internal/tenant: Account Data is only what license validation,
// contract administration and communication with the instance need (P2: the
// allowlisted installed payload), and User-Account Data is anonymised and
// its credential encrypted (P6: accountIds become pseudonyms, the shared
// secret is AEAD ciphertext under the tenant key, user access tokens live in
// memory only).
//
// Every check of a token is here, with why: the accepted algorithm is fixed
// per route, install tokens are verified against Atlassian's published key
// by kid, a context-qsh token is never accepted where a request-bound one is
// required, and iss must be the clientKey the payload names.
package atlassian

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"ferry/internal/config"
	"ferry/internal/keys"
	"ferry/internal/tenant"
	"ferry/internal/tokencache"
)

// Doer sends HTTP requests. *http.Client satisfies it; in production the
// clients come from the egress gate (egress.Gate.Client).
type Doer interface {
	Do(*http.Request) (*http.Response, error)
}

// Tenants is the installation lookup the connector uses. *tenant.Store
// implements it.
type Tenants interface {
	ByID(ctx context.Context, tenantID string) (tenant.Installation, error)
	ByClientKey(ctx context.Context, clientKey string) (tenant.Installation, error)
	Active(ctx context.Context) ([]tenant.Installation, error)
}

var _ Tenants = (*tenant.Store)(nil)

// Options are what New needs.
type Options struct {
	Config  config.Config // BaseURL, AddonKey, ConnectAllowedHosts, AllowLoopback, InstallKeysURL, OAuthURL
	Tenants *tenant.Store
	Keys    *keys.Ring
	Log     *slog.Logger

	InstallKeysClient Doer // egress.InstallKeys
	JiraClient        Doer // egress.Jira
	OAuthClient       Doer // egress.OAuth

	Now             func() time.Time // nil: time.Now
	LicenseCacheTTL time.Duration    // 0: 5 minutes

	// Accounts, when set, records each signed-in user's account before its
	// pseudonym is stored anywhere (privacy.Register), so that Ferry can
	// report the accounts it holds data of to Atlassian.
	Accounts tenant.AccountHolder
}

// Connect is the app's Connect side. It is safe for concurrent use.
type Connect struct {
	cfg      config.Config
	basePath string // path part of FERRY_BASE_URL, stripped before qsh
	tenants  *tenant.Store
	keys     *keys.Ring
	log      *slog.Logger
	jira     Doer
	oauth    Doer
	now      func() time.Time

	installKeys *installKeys
	userTokens  *tokencache.Cache

	licTTL   time.Duration
	licMu    sync.Mutex
	licenses map[string]licenseEntry

	accounts tenant.AccountHolder

	forgetMu sync.Mutex
	onForget []func(tenantID string)
}

// OnForget adds fn to what runs when a tenant's cached state must go (a
// lifecycle event, a purge): other areas drop their in-memory copies too.
func (c *Connect) OnForget(fn func(tenantID string)) {
	c.forgetMu.Lock()
	c.onForget = append(c.onForget, fn)
	c.forgetMu.Unlock()
}

// New builds the Connect side of the app.
func New(o Options) (*Connect, error) {
	if o.Tenants == nil || o.Keys == nil || o.InstallKeysClient == nil || o.JiraClient == nil || o.OAuthClient == nil {
		return nil, errors.New("atlassian: New needs Tenants, Keys and the three HTTP clients")
	}
	bu, err := url.Parse(o.Config.BaseURL)
	if err != nil || bu.Host == "" {
		return nil, errors.New("atlassian: FERRY_BASE_URL is not an absolute URL")
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.LicenseCacheTTL == 0 {
		o.LicenseCacheTTL = licenseTTL
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	c := &Connect{
		cfg: o.Config, basePath: strings.TrimSuffix(bu.EscapedPath(), "/"),
		tenants: o.Tenants, keys: o.Keys, log: o.Log, jira: o.JiraClient, oauth: o.OAuthClient, now: o.Now,
		installKeys: newInstallKeys(o.Config.InstallKeysURL, o.InstallKeysClient),
		userTokens:  tokencache.New(),
		licTTL:      o.LicenseCacheTTL,
		licenses:    map[string]licenseEntry{},
		accounts:    o.Accounts,
	}
	c.installKeys.now = o.Now
	return c, nil
}

// Tenants returns the installation lookup.
func (c *Connect) Tenants() *tenant.Store { return c.tenants }

// appBaseURL is FERRY_BASE_URL without a trailing slash, as Jira sends it in aud.
func (c *Connect) appBaseURL() string { return strings.TrimSuffix(c.cfg.BaseURL, "/") }

// qshOf is the qsh of an incoming request to this app.
func (c *Connect) qshOf(r *http.Request) string {
	return QSH(r.Method, r.URL.EscapedPath(), c.basePath, r.URL.RawQuery)
}
