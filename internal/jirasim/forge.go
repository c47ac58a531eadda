package jirasim

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"
)

// The simulator also plays Atlassian's Forge platform for a Forge Remote app
// (one whose backend runs outside Atlassian): it installs the app on the
// site, signs Forge Invocation Tokens (FITs) with its own JWKS, hands out app
// system and user tokens, delivers lifecycle events, the scheduled trigger
// and preUninstall to the remote, proxies Custom UI invokeRemote calls, and
// serves what a remote calls back: the product API at /ex/jira/{cloudId},
// the offlineUserAuthToken GraphQL mutation and the KVS storage REST API.
// Everything follows Atlassian's documented contract; where the docs are
// silent the choice is written down in docs/jirasim.md.

// ForgeApp describes a Forge app as its manifest does. ParseForgeManifest
// reads one from manifest.yml; tests may also fill it in directly.
type ForgeApp struct {
	ID            string                   `json:"id"`          // app.id, ari:cloud:ecosystem::app/{uuid}; empty: derived from Name
	Name          string                   `json:"name"`        // app name (lifecycle payloads)
	Version       string                   `json:"version"`     // app.appVersion in FITs; "1.0.0" when empty
	Environment   string                   `json:"environment"` // DEVELOPMENT, STAGING or PRODUCTION (default)
	Licensing     bool                     `json:"licensing"`   // app.licensing.enabled: paid production installs carry app.license
	ConnectKey    string                   `json:"connect_key"` // app.connect.key (Connect on Forge)
	Remotes       map[string]string        `json:"remotes"`     // remote key → baseUrl
	Endpoints     map[string]ForgeEndpoint `json:"endpoints"`   // endpoint key → endpoint
	Triggers      []ForgeTrigger           `json:"triggers"`    // event triggers delivered to endpoints
	Scheduled     []ForgeScheduled         `json:"scheduled"`   // scheduled triggers delivered to endpoints
	PreUninstall  string                   `json:"pre_uninstall"`
	Pages         []ForgePage              `json:"pages"`     // Custom UI modules
	Resources     map[string]string        `json:"resources"` // resource key → directory or http(s) URL of built Custom UI
	Scopes        []string                 `json:"scopes"`
	Impersonation []string                 `json:"impersonation"` // scopes declared with allowImpersonation: true
}

// ForgeEndpoint is an endpoint module: a remote, the route that triggers and
// events are POSTed to, and which tokens Forge attaches.
type ForgeEndpoint struct {
	Remote      string `json:"remote"`
	Route       string `json:"route"`        // route.path; UI calls use the invokeRemote path instead
	SystemToken bool   `json:"system_token"` // auth.appSystemToken.enabled → x-forge-oauth-system
	UserToken   bool   `json:"user_token"`   // auth.appUserToken.enabled → x-forge-oauth-user (UI calls only)
}

// ForgeTrigger is a trigger module with an endpoint (lifecycle or product events).
type ForgeTrigger struct {
	Key      string   `json:"key"`
	Endpoint string   `json:"endpoint"`
	Events   []string `json:"events"`
}

// ForgeScheduled is a scheduledTrigger module with an endpoint.
type ForgeScheduled struct {
	Key      string `json:"key"`
	Endpoint string `json:"endpoint"`
	Interval string `json:"interval"` // fiveMinute, hour, day or week
}

// ForgePage is a Custom UI module (jira:adminPage, jira:globalPage, …) whose
// resolver calls an endpoint with invokeRemote.
type ForgePage struct {
	Type     string `json:"type"`
	Key      string `json:"key"`
	Title    string `json:"title"`
	Resource string `json:"resource"`
	Endpoint string `json:"endpoint"` // resolver.endpoint
}

// Lifecycle events a Forge app may subscribe to.
const (
	ForgeInstalledEvent = "avi:forge:installed:app"
	ForgeUpgradedEvent  = "avi:forge:upgraded:app"
)

// ForgeInstallation is a Forge app installed on the simulated site.
type ForgeInstallation struct {
	ID              string   `json:"id"` // app.installationId, ari:cloud:ecosystem::installation/{uuid}
	AppID           string   `json:"app_id"`
	AppName         string   `json:"app_name"`
	Version         string   `json:"version"`
	EnvironmentID   string   `json:"environment_id"`
	EnvironmentType string   `json:"environment_type"`
	CloudID         string   `json:"cloud_id"`
	SiteURL         string   `json:"site_url"`
	APIBaseURL      string   `json:"api_base_url"`  // app.apiBaseUrl: {sim}/ex/jira/{cloudId}
	WorkspaceARI    string   `json:"workspace_ari"` // the contextIds value offlineUserAuthToken accepts
	ConnectKey      string   `json:"connect_key,omitempty"`
	License         string   `json:"license"` // active, inactive or none
	InstalledBy     string   `json:"installed_by"`
	BotAccountID    string   `json:"bot_account_id"`
	TriggersStopped bool     `json:"triggers_stopped"`
	Warnings        []string `json:"warnings,omitempty"` // what the platform would silently not do (e.g. no token without scopes)
}

// ForgeTimings are the platform's timeouts, retry policy and token lifetimes.
// The defaults are Atlassian's documented values (or minimums).
type ForgeTimings struct {
	FITLifetime         time.Duration // ~25 s (iat → exp of Atlassian's sample)
	SystemTokenTTL      time.Duration // ≥ 55 min for endpoint invocations
	TriggerTokenTTL     time.Duration // ≥ 2 h when a scheduled trigger invokes the remote
	UserTokenTTL        time.Duration // not documented; 55 min
	OfflineTokenTTL     time.Duration // ttl of offlineUserAuthToken; not documented; 15 min
	UITimeout           time.Duration // 25 s
	EventTimeout        time.Duration // 5 s for events and scheduled triggers
	PreUninstallTimeout time.Duration // 55 s
	Retries             int           // 4 retries for events and scheduled triggers
	RetryDelay          time.Duration // 60 s between attempts
}

// DefaultForgeTimings are Atlassian's documented values.
func DefaultForgeTimings() ForgeTimings {
	return ForgeTimings{
		FITLifetime: 25 * time.Second, SystemTokenTTL: 55 * time.Minute, TriggerTokenTTL: 2 * time.Hour,
		UserTokenTTL: 55 * time.Minute, OfflineTokenTTL: 15 * time.Minute,
		UITimeout: 25 * time.Second, EventTimeout: 5 * time.Second, PreUninstallTimeout: 55 * time.Second,
		Retries: 4, RetryDelay: 60 * time.Second,
	}
}

// forgeState is the Forge platform's side of the site.
type forgeState struct {
	mu        sync.Mutex
	timings   ForgeTimings
	keys      forgeKeyring
	installs  map[string]*forgeInstall // by installation id
	gens      map[string]int           // app id → installs so far (a reinstall gets a new id)
	tokens    map[string]*forgeToken
	service   map[string]bool // account ids that cannot be impersonated
	stats     ForgeStats
	tokenSalt []byte
}

type forgeInstall struct {
	ForgeInstallation
	app       ForgeApp
	storage   map[string]*kvsEntry
	removed   bool
	botScope  int // scope level of the app's scopes
	userScope int // … and of its impersonation scopes
}

func (s *Sim) initForge() {
	s.forge = &forgeState{
		timings:   DefaultForgeTimings(),
		installs:  map[string]*forgeInstall{},
		gens:      map[string]int{},
		tokens:    map[string]*forgeToken{},
		service:   map[string]bool{},
		tokenSalt: randomBytes(32),
	}
	s.forge.keys.init()
}

// SetForgeTimings replaces the platform's timings; zero fields keep their
// current value. Tests shorten RetryDelay rather than wait a minute.
func (s *Sim) SetForgeTimings(t ForgeTimings) {
	f := s.forge
	f.mu.Lock()
	defer f.mu.Unlock()
	cur := &f.timings
	for _, p := range []struct{ dst, src *time.Duration }{
		{&cur.FITLifetime, &t.FITLifetime}, {&cur.SystemTokenTTL, &t.SystemTokenTTL}, {&cur.TriggerTokenTTL, &t.TriggerTokenTTL},
		{&cur.UserTokenTTL, &t.UserTokenTTL}, {&cur.OfflineTokenTTL, &t.OfflineTokenTTL}, {&cur.UITimeout, &t.UITimeout},
		{&cur.EventTimeout, &t.EventTimeout}, {&cur.PreUninstallTimeout, &t.PreUninstallTimeout}, {&cur.RetryDelay, &t.RetryDelay},
	} {
		if *p.src != 0 {
			*p.dst = *p.src
		}
	}
	if t.Retries != 0 {
		cur.Retries = max(t.Retries, 0)
	}
}

// ForgeTimings returns the timings in force.
func (s *Sim) ForgeTimings() ForgeTimings {
	s.forge.mu.Lock()
	defer s.forge.mu.Unlock()
	return s.forge.timings
}

// CloudID is the site's cloudId (also in Connect install payloads).
func (s *Sim) CloudID() string { return s.uuidFrom("cloudId") }

func (s *Sim) workspaceID() string { return s.uuidFrom("jira-workspace") }

// ForgeJWKSURL is where the sim publishes the keys that sign its FITs; point
// FERRY_FORGE_JWKS_URL here.
func (s *Sim) ForgeJWKSURL() string { return s.BaseURL() + forgeJWKSPath }

// ForgeGraphQLURL is the sim's GraphQL endpoint (offlineUserAuthToken); point
// FERRY_FORGE_GRAPHQL_URL here.
func (s *Sim) ForgeGraphQLURL() string { return s.BaseURL() + forgeGraphQLPath }

// ForgeStorageURL is the base of the KVS REST API ({…}/v1/get and so on).
func (s *Sim) ForgeStorageURL() string { return s.BaseURL() + forgeKVSPrefix }

// ForgeAPIBaseURL is app.apiBaseUrl for this site.
func (s *Sim) ForgeAPIBaseURL() string { return s.BaseURL() + "/ex/jira/" + s.CloudID() }

const (
	appARIPrefix          = "ari:cloud:ecosystem::app/"
	installationARIPrefix = "ari:cloud:ecosystem::installation/"
)

var (
	errForgeNotInstalled = errors.New("jirasim: no such Forge installation")
	ErrTriggersStopped   = errors.New("jirasim: scheduled triggers are stopped for this installation")
	uuidPattern          = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)
	moduleKeyPattern     = regexp.MustCompile(`^[a-zA-Z0-9_-]+$`)
)

// normalise fills defaults and checks the app the way `forge lint` and the
// platform would: references resolve, URLs are absolute, scopes allow tokens.
func (s *Sim) normaliseForgeApp(app ForgeApp) (ForgeApp, []string, error) {
	// The sim keeps its own copy: the caller's maps and slices stay theirs.
	app.Remotes, app.Endpoints, app.Resources = maps.Clone(app.Remotes), maps.Clone(app.Endpoints), maps.Clone(app.Resources)
	app.Triggers, app.Scheduled, app.Pages = slices.Clone(app.Triggers), slices.Clone(app.Scheduled), slices.Clone(app.Pages)
	app.Scopes, app.Impersonation = slices.Clone(app.Scopes), slices.Clone(app.Impersonation)
	for i := range app.Triggers {
		app.Triggers[i].Events = slices.Clone(app.Triggers[i].Events)
	}
	if app.ID == "" {
		app.ID = appARIPrefix + s.uuidFrom("forge-app/"+app.Name)
	}
	id, ok := strings.CutPrefix(app.ID, appARIPrefix)
	if !ok || !uuidPattern.MatchString(id) {
		return app, nil, fmt.Errorf("jirasim: app.id %q is not ari:cloud:ecosystem::app/{uuid}", app.ID)
	}
	if app.Name == "" {
		app.Name = "Forge app " + id[:8]
	}
	if app.Version == "" {
		app.Version = "1.0.0"
	}
	switch app.Environment {
	case "":
		app.Environment = "PRODUCTION"
	case "DEVELOPMENT", "STAGING", "PRODUCTION":
	default:
		return app, nil, fmt.Errorf("jirasim: environment %q is not DEVELOPMENT, STAGING or PRODUCTION", app.Environment)
	}
	var errs []error
	for k, base := range app.Remotes {
		u, err := url.Parse(base)
		switch {
		case err != nil || u.Host == "":
			errs = append(errs, fmt.Errorf("remote %q: baseUrl %q is not an absolute URL", k, base))
		case u.Scheme != "https" && !(s.opts.AllowHTTPApp && u.Scheme == "http" && isLoopback(u.Hostname())):
			errs = append(errs, fmt.Errorf("remote %q: baseUrl %q must be https (http only on loopback with AllowHTTPApp)", k, base))
		}
		app.Remotes[k] = strings.TrimSuffix(base, "/")
	}
	for k, e := range app.Endpoints {
		if _, ok := app.Remotes[e.Remote]; !ok {
			errs = append(errs, fmt.Errorf("endpoint %q: remote %q is not declared", k, e.Remote))
		}
		if !moduleKeyPattern.MatchString(k) {
			errs = append(errs, fmt.Errorf("endpoint key %q must match %s", k, moduleKeyPattern))
		}
	}
	needEndpoint := func(what, key string) {
		if _, ok := app.Endpoints[key]; !ok {
			errs = append(errs, fmt.Errorf("%s: endpoint %q is not declared", what, key))
		}
	}
	for _, t := range app.Triggers {
		needEndpoint("trigger "+t.Key, t.Endpoint)
	}
	for _, t := range app.Scheduled {
		needEndpoint("scheduledTrigger "+t.Key, t.Endpoint)
		switch t.Interval {
		case "fiveMinute", "hour", "day", "week":
		default:
			errs = append(errs, fmt.Errorf("scheduledTrigger %s: interval %q is not fiveMinute, hour, day or week", t.Key, t.Interval))
		}
	}
	if app.PreUninstall != "" {
		needEndpoint("preUninstall", app.PreUninstall)
	}
	for _, p := range app.Pages {
		if p.Endpoint != "" {
			needEndpoint("page "+p.Key, p.Endpoint)
		}
		if _, ok := app.Resources[p.Resource]; !ok {
			errs = append(errs, fmt.Errorf("page %s: resource %q is not declared", p.Key, p.Resource))
		}
	}
	for _, sc := range app.Impersonation {
		if !slices.Contains(app.Scopes, sc) {
			errs = append(errs, fmt.Errorf("allowImpersonation on %q, which is not a requested scope", sc))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return app, nil, fmt.Errorf("jirasim: Forge app %s: %w", app.Name, err)
	}
	// What Forge silently does not do: the docs say no valid token is
	// created without a product scope beside the token scopes.
	var warnings []string
	product := forgeScopeLevel(app.Scopes) > scopeNone || slices.Contains(app.Scopes, "storage:app")
	for k, e := range app.Endpoints {
		if e.SystemToken && (!product || !slices.Contains(app.Scopes, "read:app-system-token")) {
			warnings = append(warnings, fmt.Sprintf("endpoint %s asks for the app system token, but the scopes lack read:app-system-token or a product scope: none is sent", k))
		}
		if e.UserToken && (!product || !slices.Contains(app.Scopes, "read:app-user-token")) {
			warnings = append(warnings, fmt.Sprintf("endpoint %s asks for the app user token, but the scopes lack read:app-user-token or a product scope: none is sent", k))
		}
	}
	sort.Strings(warnings)
	return app, warnings, nil
}

// forgeScopeLevel maps Forge OAuth scopes onto the sim's scope levels: the
// classic Jira scopes and the granular {action}:{entity}:jira ones.
func forgeScopeLevel(scopes []string) int {
	lvl := scopeNone
	for _, sc := range scopes {
		switch {
		case sc == "read:jira-work" || sc == "read:jira-user" || strings.HasPrefix(sc, "read:") && strings.HasSuffix(sc, ":jira"):
			lvl = max(lvl, scopeRead)
		case sc == "write:jira-work" || strings.HasPrefix(sc, "write:") && strings.HasSuffix(sc, ":jira"):
			lvl = max(lvl, scopeWrite)
		case strings.HasPrefix(sc, "delete:") && strings.HasSuffix(sc, ":jira"):
			lvl = max(lvl, scopeDelete)
		case sc == "manage:jira-project":
			lvl = max(lvl, scopeProjectAdmin)
		case sc == "manage:jira-configuration":
			lvl = max(lvl, scopeAdmin)
		}
	}
	return lvl
}

// InstallForge installs app on the site as the site admin: a new
// installation (a reinstall gets a new installationId), then
// avi:forge:installed:app delivered to the app's trigger endpoint with
// retries. The installation stands even when the remote never accepts the
// event, as on Atlassian; the error then says why.
func (s *Sim) InstallForge(ctx context.Context, app ForgeApp) (ForgeInstallation, error) {
	if _, ok := s.Installation(app.ConnectKey); ok && app.ConnectKey != "" {
		return ForgeInstallation{}, fmt.Errorf("jirasim: Connect app %q is installed on this site: its Forge version arrives with MigrateConnectToForge", app.ConnectKey)
	}
	fi, err := s.addForgeInstall(app)
	if err != nil {
		return ForgeInstallation{}, err
	}
	err = s.deliverLifecycle(ctx, fi.ID, ForgeInstalledEvent)
	out, _ := s.ForgeInstallation(fi.ID)
	return out, err
}

func (s *Sim) addForgeInstall(app ForgeApp) (*forgeInstall, error) {
	app, warnings, err := s.normaliseForgeApp(app)
	if err != nil {
		return nil, err
	}
	f := s.forge
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, in := range f.installs {
		if !in.removed && in.AppID == app.ID {
			return nil, fmt.Errorf("jirasim: app %s is already installed on this site (%s)", app.ID, in.ID)
		}
		if !in.removed && app.ConnectKey != "" && in.ConnectKey == app.ConnectKey {
			// "An app with the same app.connect.key can only be installed once on a single site."
			return nil, fmt.Errorf("jirasim: an app with app.connect.key %q is already installed on this site", app.ConnectKey)
		}
	}
	f.gens[app.ID]++
	appUUID := strings.TrimPrefix(app.ID, appARIPrefix)
	cloud := s.CloudID()
	in := &forgeInstall{app: app, storage: map[string]*kvsEntry{}, ForgeInstallation: ForgeInstallation{
		ID:              installationARIPrefix + s.uuidFrom(fmt.Sprintf("forge-installation/%s/%d", app.ID, f.gens[app.ID])),
		AppID:           app.ID,
		AppName:         app.Name,
		Version:         app.Version,
		EnvironmentID:   s.uuidFrom("forge-environment/" + app.ID + "/" + app.Environment),
		EnvironmentType: app.Environment,
		CloudID:         cloud,
		SiteURL:         s.BaseURL(),
		APIBaseURL:      s.ForgeAPIBaseURL(),
		WorkspaceARI:    "ari:cloud:jira:" + cloud + ":workspace/" + s.workspaceID(),
		ConnectKey:      app.ConnectKey,
		License:         "active",
		InstalledBy:     s.data.users[0].AccountID,
		BotAccountID:    "557058:forge-" + appUUID,
		Warnings:        warnings,
	}}
	in.botScope = forgeScopeLevel(app.Scopes)
	in.userScope = forgeScopeLevel(app.Impersonation)
	f.installs[in.ID] = in
	return in, nil
}

// ForgeInstallation returns an installation's record, also after uninstall
// (then ok is still true but it is listed in no ForgeInstallations).
func (s *Sim) ForgeInstallation(id string) (ForgeInstallation, bool) {
	f := s.forge
	f.mu.Lock()
	defer f.mu.Unlock()
	in := f.installs[id]
	if in == nil {
		return ForgeInstallation{}, false
	}
	out := in.ForgeInstallation
	out.Warnings = slices.Clone(in.Warnings)
	return out, true
}

// ForgeInstallations lists the live Forge installations, by id.
func (s *Sim) ForgeInstallations() []ForgeInstallation {
	f := s.forge
	f.mu.Lock()
	var ids []string
	for id, in := range f.installs {
		if !in.removed {
			ids = append(ids, id)
		}
	}
	f.mu.Unlock()
	sort.Strings(ids)
	out := []ForgeInstallation{}
	for _, id := range ids {
		if in, ok := s.ForgeInstallation(id); ok {
			out = append(out, in)
		}
	}
	return out
}

// live returns a copy of an installation that is still installed.
func (s *Sim) liveForge(id string) (*forgeInstall, error) {
	f := s.forge
	f.mu.Lock()
	defer f.mu.Unlock()
	in := f.installs[id]
	if in == nil || in.removed {
		return nil, errForgeNotInstalled
	}
	cp := *in
	return &cp, nil
}

// UpgradeForge moves the installation to a new app version and, as for a
// major version, delivers avi:forge:upgraded:app.
func (s *Sim) UpgradeForge(ctx context.Context, id, version string) error {
	f := s.forge
	f.mu.Lock()
	in := f.installs[id]
	if in != nil && !in.removed {
		in.Version, in.app.Version = version, version
	}
	f.mu.Unlock()
	if in == nil || in.removed {
		return errForgeNotInstalled
	}
	return s.deliverLifecycle(ctx, id, ForgeUpgradedEvent)
}

// UninstallForge uninstalls as Atlassian does: preUninstall is invoked
// first (55 s, no retries; a failure does not stop the uninstall), then the
// installation's tokens stop working and its storage is deleted. A Connect
// on Forge app is one app: its Connect uninstalled callback follows. The
// returned error reports a failed preUninstall or callback.
func (s *Sim) UninstallForge(ctx context.Context, id string) error {
	in, err := s.liveForge(id)
	if err != nil {
		return err
	}
	preErr := s.removeForge(ctx, id)
	if ci, ok := s.Installation(in.ConnectKey); ok && in.ConnectKey != "" && ci.InstallationID == id {
		return errors.Join(preErr, s.Uninstall(ctx, in.ConnectKey))
	}
	return preErr
}

// removeForge runs preUninstall and removes a live installation; an empty
// or removed id is a no-op.
func (s *Sim) removeForge(ctx context.Context, id string) error {
	in, err := s.liveForge(id)
	if id == "" || err != nil {
		return nil
	}
	var preErr error
	if in.app.PreUninstall != "" {
		_, preErr = s.deliver(ctx, in.ID, delivery{kind: "preUninstall", event: "preUninstall", endpoint: in.app.PreUninstall,
			body: map[string]any{"context": map[string]any{"cloudId": in.CloudID, "moduleKey": in.app.PreUninstall}}})
	}
	f := s.forge
	f.mu.Lock()
	if cur := f.installs[id]; cur != nil {
		cur.removed = true
		cur.storage = map[string]*kvsEntry{}
	}
	for t, tok := range f.tokens {
		if tok.install == id {
			delete(f.tokens, t)
		}
	}
	f.mu.Unlock()
	return preErr
}

// SetForgeLicense scripts the licence Forge reports in app.license:
// "active", "inactive" or "none" (no license claim, as for free apps).
// Only PRODUCTION installs of apps with licensing enabled carry one.
func (s *Sim) SetForgeLicense(id, state string) error {
	switch state {
	case "active", "inactive", "none":
	default:
		return fmt.Errorf("jirasim: Forge licence %q is not active, inactive or none", state)
	}
	f := s.forge
	f.mu.Lock()
	defer f.mu.Unlock()
	in := f.installs[id]
	if in == nil || in.removed {
		return errForgeNotInstalled
	}
	in.License = state
	return nil
}

// StopForgeTriggers scripts "the trigger stops": FireForgeTrigger and
// RunForgeTriggers deliver nothing to this installation until
// ResumeForgeTriggers, as when Forge stops invoking the app.
func (s *Sim) StopForgeTriggers(id string) error { return s.setTriggersStopped(id, true) }

// ResumeForgeTriggers undoes StopForgeTriggers.
func (s *Sim) ResumeForgeTriggers(id string) error { return s.setTriggersStopped(id, false) }

func (s *Sim) setTriggersStopped(id string, stopped bool) error {
	f := s.forge
	f.mu.Lock()
	defer f.mu.Unlock()
	in := f.installs[id]
	if in == nil || in.removed {
		return errForgeNotInstalled
	}
	in.TriggersStopped = stopped
	return nil
}

// SetServiceAccount marks an account as a service account, which offline
// user impersonation refuses (as Atlassian does); app bot accounts always are.
func (s *Sim) SetServiceAccount(accountID string, on bool) error {
	if _, ok := s.data.byAcct[accountID]; !ok {
		return fmt.Errorf("jirasim: no user %q", accountID)
	}
	s.forge.mu.Lock()
	defer s.forge.mu.Unlock()
	if on {
		s.forge.service[accountID] = true
	} else {
		delete(s.forge.service, accountID)
	}
	return nil
}

// ForgeStats counts what remotes asked of the platform.
type ForgeStats struct {
	GraphQLCalls     int             `json:"graphql_calls"`     // POSTs to the GraphQL endpoint
	Impersonations   map[string]int  `json:"impersonations"`    // offline tokens issued, by accountId
	ImpersonationErr int             `json:"impersonation_err"` // mutations answered with success false
	StorageCalls     map[string]int  `json:"storage_calls"`     // KVS calls by operation
	Deliveries       []ForgeDelivery `json:"deliveries"`        // every attempt to reach a remote, oldest first
	GatewayCalls     map[string]int  `json:"gateway_calls"`     // /ex/jira requests by token kind
	TokensIssued     map[string]int  `json:"tokens_issued"`     // system, user, offline
}

// ForgeDelivery is one attempt to invoke a remote.
type ForgeDelivery struct {
	Installation string    `json:"installation"`
	Kind         string    `json:"kind"`  // event, scheduledTrigger, preUninstall, ui
	Event        string    `json:"event"` // event name, trigger key or UI path
	Attempt      int       `json:"attempt"`
	Status       int       `json:"status"` // the remote's HTTP status; 0 when none
	Outcome      string    `json:"outcome"`
	At           time.Time `json:"at"`
}

// ForgeStats returns a copy of the counters.
func (s *Sim) ForgeStats() ForgeStats {
	f := s.forge
	f.mu.Lock()
	defer f.mu.Unlock()
	st := f.stats
	st.Impersonations = cloneCounts(st.Impersonations)
	st.StorageCalls = cloneCounts(st.StorageCalls)
	st.GatewayCalls = cloneCounts(st.GatewayCalls)
	st.TokensIssued = cloneCounts(st.TokensIssued)
	st.Deliveries = slices.Clone(st.Deliveries)
	return st
}

// ResetForgeStats zeroes the counters.
func (s *Sim) ResetForgeStats() {
	s.forge.mu.Lock()
	s.forge.stats = ForgeStats{}
	s.forge.mu.Unlock()
}

func cloneCounts(m map[string]int) map[string]int {
	out := make(map[string]int, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

func (f *forgeState) count(m *map[string]int, key string) {
	if *m == nil {
		*m = map[string]int{}
	}
	(*m)[key]++
}

// forgeError answers the platform's JSON errors.
func forgeError(w http.ResponseWriter, status int, code, msg string) {
	writeJSON(w, status, map[string]string{"code": code, "message": msg})
}
