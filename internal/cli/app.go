package cli

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/url"
	"os"
	"strings"
	"time"

	"ferry/internal/atlassian"
	"ferry/internal/audit"
	"ferry/internal/backup"
	"ferry/internal/config"
	"ferry/internal/egress"
	"ferry/internal/errortrack"
	"ferry/internal/export"
	"ferry/internal/forge"
	"ferry/internal/jira"
	"ferry/internal/jobs"
	"ferry/internal/keys"
	"ferry/internal/logging"
	"ferry/internal/privacy"
	"ferry/internal/reqlog"
	"ferry/internal/server"
	"ferry/internal/staff"
	"ferry/internal/store"
	"ferry/internal/tenant"
	"ferry/internal/web"
	"ferry/internal/web/console"
)

// app is an opened Ferry: configuration, logger, database, keys and jobs.
type app struct {
	cfg  config.Config
	log  *slog.Logger
	db   *store.DB
	keys *keys.Ring
	jobs *jobs.Registry
	gate *egress.Gate // every outbound call goes through it

	tenants *tenant.Store      // installations (Account Data)
	connect *atlassian.Connect // Connect lifecycle, JWT auth, outbound signing
	feeds   *export.Feeds      // OData and CSV feeds
	sites   *egress.SitesCache // installed sites, as the egress gate checks them
	appAPI  *export.App        // JSON API of the app's pages
	pages   *web.Pages         // the app's pages inside Jira

	forge    *forge.Remote    // Forge Remote: FIT-verified invocations, offline impersonation, Forge storage; nil without FERRY_FORGE_APP_ID
	platform export.Platforms // how the connector reaches each tenant's Jira: Connect or Forge

	tlsCert   *tls.Certificate // FERRY_TLS_CERT and FERRY_TLS_KEY, checked before start-up writes anything
	metricsLn net.Listener     // FERRY_METRICS_ADDR (serve only; nil: no metrics listener)
	consoleLn net.Listener     // FERRY_CONSOLE_ADDR (serve and demo; nil: no console listener)

	requests   *reqlog.Store // request log (Logs Data)
	requestLog *reqlog.Log   // its middleware and writer, started by deps (serve only)

	trail   *audit.Trail     // the hash-chained audit trail (P14)
	staff   *staff.Store     // staff accounts, sign-in, sessions, break-glass
	console *console.Console // the staff console, served on FERRY_CONSOLE_ADDR

	accounts *privacy.Register // accounts Ferry holds data of, for Atlassian's reporting
	reporter *privacy.Reporter // reports them; erases closed accounts
	purger   *tenant.Purger    // end of a subscription: deletes a tenant's rows, shreds its keyset
	backups  *backup.Service   // encrypted backups, restore drills, retention

	errorStore   *errortrack.Store        // scrubbed error events and their outbox (Real-time Error Tracking Data)
	errorIngest  *errortrack.Tracker      // the Sentry-protocol ingest endpoints
	forwarder    *errortrack.Forwarder    // outbox → FERRY_SENTRY_UPSTREAM_DSN; nil without one
	serverErrors *errortrack.ServerErrors // Ferry's own errors through sentry-go
	stopForward  func()                   // stops the forwarder started by deps (serve only)
}

// openApp checks the key file's permissions before touching the data
// directory, and the key material against the database before creating
// anything: a bad, missing or foreign key file is reported (exit 2) and never
// replaced.
func openApp(ctx context.Context, e env, cfg config.Config) (*app, error) {
	log := logging.New(e.stderr, logging.Options{Format: cfg.LogFormat, Level: cfg.LogLevel})
	gate, err := newGate(cfg)
	if err != nil {
		return nil, err
	}
	if err := checkBackupConfig(cfg); err != nil {
		return nil, err
	}
	if cfg.KEK == "" {
		if err := checkKeyFile(cfg.KeyFilePath()); err != nil {
			return nil, err
		}
		if !cfg.UsesPostgres() {
			if err := checkDataDir(cfg.DataDir); err != nil {
				return nil, err
			}
		}
	}
	db, err := store.Open(ctx, store.Options{DatabaseURL: cfg.DatabaseURL, SQLitePath: cfg.SQLitePath(),
		Dial: func(ctx context.Context, network, addr string) (net.Conn, error) {
			return gate.DialContext(ctx, egress.Database, network, addr)
		}})
	if err != nil {
		return nil, err
	}
	if err := db.Migrate(ctx); err != nil {
		db.Close()
		var newer *store.NewerSchemaError
		if errors.As(err, &newer) {
			return nil, &config.Error{Var: dbVar(cfg), Reason: err.Error()}
		}
		return nil, err
	}
	// The key file is created only now, and only for a database that holds
	// no wrapped keys: keys.Open refuses a missing or foreign one otherwise.
	ring, err := keys.Open(ctx, db, keyOptions(cfg, gate))
	if err != nil {
		db.Close()
		var wrong *keys.WrongKEKError
		if errors.As(err, &wrong) {
			return nil, &config.Error{Var: wrong.Setting, Reason: wrong.Reason}
		}
		return nil, err
	}
	if cfg.KEK == "" {
		log.Warn("using a local key file as KEK; production should set FERRY_KEK to a KMS key", "kek", ring.Describe())
	}
	a := &app{cfg: cfg, log: log, db: db, keys: ring, jobs: jobs.NewRegistry(), gate: gate}
	if err := a.wireErrorTracking(ctx); err != nil {
		db.Close()
		return nil, err
	}
	log = a.log // error-level records now also reach error tracking
	a.tenants = tenant.NewStore(db, a.keys)
	a.tenants.SetPolicy(tenant.Policy{Grace: cfg.PurgeGrace, LicenseLapse: cfg.PurgeLicenseInactive, DisabledLapse: cfg.PurgeDisabled})
	a.accounts = privacy.NewRegister(db, a.keys)
	a.tenants.SetAccountHolder(a.accounts)
	a.requests = reqlog.NewStore(db, a.keys)
	if a.backups, err = newBackups(cfg, a); err != nil {
		db.Close()
		return nil, err
	}
	a.trail = audit.New(db, a.keys, checkpointTarget(cfg, a.backups.Target()), log)
	if _, err := a.trail.Adopt(ctx); err != nil { // earlier versions' reqlog_access_audit rows
		db.Close()
		return nil, err
	}
	a.staff = staff.NewStore(db, a.keys, a.trail)
	// Both seal secrets with the KEK: rotation re-wraps them, retirement counts them.
	a.keys.RegisterWrapped("audit signing keys", a.trail)
	a.keys.RegisterWrapped("staff TOTP secrets", a.staff)
	a.keys.RegisterWrapped("backup keys", a.backups.Wrapped()) // KEK rotation and retirement move them too
	// Jira calls only to installed, not-deleted sites (a "yes" is kept two
	// seconds, so that a feed's calls do not each query the database).
	a.sites = egress.CachedSites(a.tenants, 2*time.Second)
	gate.SetTenantSites(a.sites)
	a.connect, err = atlassian.New(atlassian.Options{Config: cfg, Tenants: a.tenants, Keys: a.keys, Log: log,
		InstallKeysClient: gate.Client(egress.InstallKeys), JiraClient: gate.Client(egress.Jira), OAuthClient: gate.Client(egress.OAuth),
		Accounts: a.accounts})
	if err != nil {
		db.Close()
		return nil, err
	}
	if cfg.ForgeAppID != "" {
		a.forge, err = forge.New(forge.Options{AppID: cfg.ForgeAppID, JWKSURL: cfg.ForgeJWKSURL, GraphQLURL: cfg.ForgeGraphQLURL,
			StorageURL: cfg.ForgeStorageURL, AddonKey: cfg.AddonKey, LicenseMaxAge: cfg.ForgeLicenseMaxAge, AllowLoopback: cfg.AllowLoopback,
			Tenants: a.tenants, Keys: a.keys, Accounts: a.accounts, Log: log,
			JWKSClient: gate.Client(egress.ForgeKeys), APIClient: gate.Client(egress.ForgeAPI)})
		if err != nil {
			db.Close()
			return nil, &config.Error{Var: "FERRY_FORGE_APP_ID", Reason: err.Error()}
		}
	}
	a.wireConnector()
	a.wireConsole(gate)
	a.wireErasure()
	a.registerJobs()
	return a, nil
}

// Close flushes the request log (HTTP has already stopped) and closes the
// database.
func (a *app) Close() error {
	if a.console != nil {
		a.console.Close() // a backup or drill started from the console ends first
	}
	if a.stopForward != nil {
		a.stopForward()
	}
	if a.requestLog != nil {
		ctx, cancel := context.WithTimeout(context.Background(), a.cfg.ShutdownTimeout)
		a.requestLog.Close(ctx)
		cancel()
	}
	return a.db.Close()
}

func (a *app) deps() server.Deps {
	if a.requestLog == nil {
		a.requestLog = reqlog.New(a.requests, reqlog.Options{Logger: a.log})
	}
	if a.forwarder != nil && a.stopForward == nil {
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { defer close(done); a.forwarder.Run(ctx) }()
		a.stopForward = func() { cancel(); <-done }
	}
	return server.Deps{Config: a.cfg, Log: a.log, DB: a.db, Keys: a.keys, Connect: a.connect, RequestLog: a.requestLog,
		Feeds: a.feeds, App: a.appAPI, Pages: a.pages, Errors: a.errorIngest, Forge: a.forge}
}

// wireErrorTracking builds the error relay: its store, the ingest for the
// browser project (FERRY_ERRORS_PUBLIC_KEY), the forwarder to
// FERRY_SENTRY_UPSTREAM_DSN through the egress gate, and sentry-go for
// Ferry's own errors, whose logger wrap reports every error-level record.
func (a *app) wireErrorTracking(ctx context.Context) error {
	a.keys.RegisterWrapped("error-tracking pseudonym key", errortrack.WrappedPseudonymKey{DB: a.db})
	ps, err := errortrack.LoadPseudonyms(ctx, a.db, a.keys.KEK())
	if err != nil {
		return err
	}
	a.errorStore = errortrack.NewStore(a.db)
	var projects []errortrack.Project
	if a.cfg.ErrorsPublicKey != "" {
		projects = append(projects, errortrack.Project{ID: a.cfg.ErrorsProjectID, PublicKey: a.cfg.ErrorsPublicKey})
	}
	var nudge func()
	if a.cfg.SentryUpstreamDSN != "" {
		dsn, err := errortrack.ParseDSN(a.cfg.SentryUpstreamDSN)
		if err != nil {
			return &config.Error{Var: "FERRY_SENTRY_UPSTREAM_DSN", Reason: err.Error()}
		}
		a.forwarder = &errortrack.Forwarder{Store: a.errorStore, Client: a.gate.Client(egress.Sentry), DSN: dsn,
			SentryClient: "ferry/" + Version, Log: a.log}
		nudge = a.forwarder.Nudge
	}
	origin := ""
	if u, err := url.Parse(a.cfg.BaseURL); err == nil {
		origin = u.Scheme + "://" + u.Host
	}
	a.errorIngest = errortrack.New(errortrack.Options{Store: a.errorStore, Projects: projects, AllowedOrigins: []string{origin},
		Forward: a.forwarder != nil, Pseudonyms: ps, Rate: float64(a.cfg.ErrorsRate), Log: a.log, Nudge: nudge})
	a.serverErrors, err = errortrack.NewServerErrors(a.errorIngest, Version, "")
	if err != nil {
		return err
	}
	a.log = a.serverErrors.Logger(a.log)
	return nil
}

// browserDSN is the DSN the app's pages give the Sentry browser SDK, or ""
// when browser error tracking is off.
func (a *app) browserDSN() string {
	if a.cfg.ErrorsPublicKey == "" {
		return ""
	}
	dsn, err := errortrack.BrowserDSN(a.cfg.BaseURL, a.cfg.ErrorsPublicKey, a.cfg.ErrorsProjectID)
	if err != nil {
		return ""
	}
	return dsn
}

// wireConnector builds the feeds and the app's JSON API. Data sources live
// in each tenant's Jira; tokens in Ferry's database as hashes.
func (a *app) wireConnector() {
	a.platform = export.Platforms{Connect: export.ConnectPlatform{Connect: a.connect, HTTP: a.gate.Client(egress.Jira), AddonKey: a.cfg.AddonKey}}
	sources := &export.Sources{}
	if a.forge != nil {
		a.platform.Forge = forgePlatform{a.forge}
		a.forge.OnForget(sources.Forget)
	}
	tokens := &export.Tokens{DB: a.db, Keys: a.keys, Accounts: a.accounts}
	a.feeds = &export.Feeds{Log: a.log, Platform: a.platform, Tenants: a.tenants, Tokens: tokens, Sources: sources,
		Keys: a.keys, Workers: a.cfg.ExportWorkers, MaxDays: a.cfg.TokenMaxDays, BaseURL: a.cfg.BaseURL,
		Limits: &jira.Limits{Cap: a.cfg.ExportWorkers},
		Guard:  &export.Guard{TrustedProxies: a.cfg.TrustedProxies, SiteConcurrency: a.cfg.FeedConcurrencySite}}
	a.appAPI = &export.App{Log: a.log, Platform: a.platform, Sources: sources, Tokens: tokens, Feeds: a.feeds,
		MaxDays: a.cfg.TokenMaxDays, BaseURL: a.cfg.BaseURL}
	a.pages = &web.Pages{Connect: a.connect, Config: a.cfg, Log: a.log,
		ErrorTracking: web.ErrorTracking{DSN: a.browserDSN(), Release: Version}}
	// A lifecycle event or a purge takes effect at once in this process:
	// the feeds' and the gate's copies of the tenant go with Connect's (and
	// Forge's).
	forget := func(tenantID string) {
		a.feeds.Forget(tenantID)
		if a.sites != nil {
			a.sites.Flush()
		}
	}
	a.connect.OnForget(forget)
	if a.forge != nil {
		a.forge.OnForget(forget)
	}
}

// wireErasure lists what each area keeps of a tenant and of an Atlassian
// account, for the purge at the end of a subscription and for a closed
// account. A table with a tenant column that is neither deleted nor exempt
// here fails TestEveryTenantTableIsPurgedOrExempt.
func (a *app) wireErasure() {
	tokens := a.appAPI.Tokens
	a.purger = tenant.NewPurger(a.tenants, a.keys, a.log)
	a.purger.Register(tenant.Deleter{Category: "access tokens", Tables: []string{"access_tokens"},
		Count: tokens.CountTenant, Delete: tokens.DeleteTenant})
	a.purger.Register(tenant.Deleter{Category: "access token history", Tables: []string{"token_events"},
		Count: tokens.CountTenantHistory, Delete: tokens.DeleteTenantHistory})
	a.purger.Register(tenant.Deleter{Category: "request log entries", Tables: []string{"request_log"},
		Count: a.requests.CountTenant, Delete: a.requests.DeleteTenant})
	a.purger.Register(tenant.Deleter{Category: "personal data reporting records", Tables: []string{"privacy_accounts", "privacy_account_events"},
		Count: a.accounts.CountTenant, Delete: a.accounts.DeleteTenant})
	a.purger.Exempt("audit_trail", "the hash-chained, append-only audit trail proves who accessed what (P14); it names a tenant only "+
		"by a pseudonym under the tenant's own key, which nobody can link to the site once the purge has shredded that key")
	a.purger.Exempt("audit_import", "a staging table for audit rows of earlier versions, moved into the audit trail "+
		"(by pseudonym) and emptied every time Ferry opens the database, before any purge can run")
	a.purger.SetAudit(a.trail)
	a.purger.BeforeDelete(func(ctx context.Context) error {
		if a.requestLog != nil {
			return a.requestLog.Flush(ctx) // entries queued in this process land before the purge, not after
		}
		return nil
	})
	a.purger.OnPurged(a.connect.Forget)
	if a.forge != nil {
		a.purger.OnPurged(a.forge.Forget)
		a.forge.SetKick(func(ctx context.Context) error { return a.jobs.Kick(ctx, forge.MigrateJobName) })
	}
	a.purger.OnPurged(a.accounts.ForgetTenant)
	a.purger.SetKick(func(ctx context.Context) error {
		if err := a.jobs.Kick(ctx, tenant.PurgeJobName); !errors.Is(err, jobs.ErrNotRunning) {
			return err
		}
		return nil // a command, not a server: it purges in process (ferry tenants delete)
	})
	a.appAPI.Deletion, a.appAPI.PurgeGrace = a.purger, a.cfg.PurgeGrace

	a.reporter = &privacy.Reporter{Register: a.accounts, Tenants: a.tenants, HTTP: a.gate.Client(egress.Jira), Log: a.log,
		AppAuth: func(in tenant.Installation) privacy.Signer { return a.connect.AppAuth(in) }}
	a.reporter.AddEraser(privacy.Eraser{Category: "access tokens", Erase: tokens.EraseOwner})
	a.reporter.AddEraser(privacy.Eraser{Category: "access token history", Erase: tokens.EraseFromHistory})
	a.reporter.AddEraser(privacy.Eraser{Category: "installing user", Erase: a.tenants.ForgetInstaller})
	a.reporter.AddEraser(privacy.Eraser{Category: "request log pseudonyms", Erase: a.requests.ForgetUser})
}

// pagesBuilt reports whether the app's pages are served (the demo links
// to them only then).
func (a *app) pagesBuilt() bool { return a.pages != nil }

// registerJobs is where every area's periodic work is listed.
func (a *app) registerJobs() {
	a.jobs.Register(reqlog.RetentionJob(a.requests, a.cfg.RequestLogDays, a.log))
	a.jobs.Register(tenant.SeenTokensJob(a.tenants, a.log))
	a.jobs.Register(audit.CheckpointJob(a.trail))
	a.jobs.Register(staff.SessionsJob(a.staff))
	a.jobs.Register(tenant.PurgeJob(a.purger, a.log))
	a.jobs.Register(tenant.ExpiryJob(a.tenants, a.licenseCheck(), a.log))
	a.jobs.Register(privacy.ReportJob(a.reporter, a.log))
	a.jobs.Register(backup.Job(a.backups, a.log))
	a.jobs.Register(errortrack.RetentionJob(a.errorStore, a.cfg.ErrorsRetentionDays, a.log))
	if a.forwarder != nil {
		a.jobs.Register(errortrack.ForwardJob(a.forwarder))
	}
	a.jobs.Register(export.HistoryJob(a.appAPI.Tokens, a.log))
	if a.forge != nil {
		a.jobs.Register(forge.MigrateJob(a.forge, a.log))
		a.jobs.Register(forge.TokenAgeJob(a.forge))
	}
}

// newGate builds the egress gate; its start-up checks (region pinning,
// declared subprocessors) fail as configuration errors, before anything is
// written.
func newGate(cfg config.Config) (*egress.Gate, error) {
	ec := egress.Config{
		Region:              cfg.Region,
		S3Endpoint:          cfg.S3Endpoint,
		S3Bucket:            cfg.S3Bucket,
		S3Region:            cfg.S3Region,
		SentryUpstreamDSN:   cfg.SentryUpstreamDSN,
		SMTPAddr:            cfg.SMTPAddr,
		AllowLoopback:       cfg.AllowLoopback,
		AllowedHostPatterns: cfg.ConnectAllowedHosts,
		InstallKeysURL:      cfg.InstallKeysURL,
		OAuthURL:            cfg.OAuthURL,
		StaffSSOIssuer:      cfg.ConsoleOIDCIssuer,
	}
	if cfg.ForgeAppID != "" {
		ec.ForgeJWKSURL, ec.ForgeGraphQLURL, ec.ForgeStorageURL = cfg.ForgeJWKSURL, cfg.ForgeGraphQLURL, cfg.ForgeStorageURL
	}
	if cfg.UsesPostgres() {
		hosts, err := store.PostgresHosts(cfg.DatabaseURL)
		if err != nil {
			return nil, &config.Error{Var: "FERRY_DATABASE_URL", Reason: oneLine(err)}
		}
		ec.DatabaseHosts = hosts
	}
	if strings.HasPrefix(cfg.KEK, "aws-kms://") {
		ec.KMSKeyURI = cfg.KEK
		ec.KMSEndpoint = cfg.KMSEndpoint
	}
	g, err := egress.New(ec)
	if err != nil {
		var ce *egress.ConfigError
		if errors.As(err, &ce) {
			// One line: the first problem names its setting; the rest follow.
			return nil, &config.Error{Var: ce.Setting, Reason: strings.ReplaceAll(strings.TrimPrefix(err.Error(), ce.Setting+": "), "\n", "; ")}
		}
		return nil, &config.Error{Var: "egress", Reason: strings.ReplaceAll(err.Error(), "\n", "; ")}
	}
	return g, nil
}

// checkKeyFile refuses a key file that exists but cannot be used, before
// anything is created.
func checkKeyFile(path string) error {
	st, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return &config.Error{Var: "FERRY_DATA_DIR", Reason: fmt.Sprintf("key file %s: %v", path, errors.Unwrap(err))}
	}
	if st.Mode().Perm()&0o077 != 0 {
		return &config.Error{Var: "FERRY_DATA_DIR", Reason: fmt.Sprintf("key file %s is readable by group or others (mode %04o); run: chmod 600 %s", path, st.Mode().Perm(), path)}
	}
	f, err := os.Open(path)
	if err != nil {
		return &config.Error{Var: "FERRY_DATA_DIR", Reason: fmt.Sprintf("key file %s cannot be read: %v", path, errors.Unwrap(err))}
	}
	f.Close()
	return nil
}

// checkDataDir refuses a data directory path that exists but is not a
// directory, before anything is written.
func checkDataDir(dir string) error {
	st, err := os.Stat(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return &config.Error{Var: "FERRY_DATA_DIR", Reason: err.Error()}
	}
	if !st.IsDir() {
		return &config.Error{Var: "FERRY_DATA_DIR", Reason: dir + " exists and is not a directory"}
	}
	return nil
}

// keyOptions says where the KEK versions come from: the key file in the data
// directory, and AWS KMS through the egress gate when FERRY_KEK names a key.
func keyOptions(cfg config.Config, gate *egress.Gate) keys.Options {
	o := keys.Options{KeyFile: cfg.KeyFilePath(), KMSKey: cfg.KEK}
	if cfg.KEK != "" {
		o.KMS = &keys.AWSKMS{HTTP: gate.Client(egress.KMS), Endpoint: cfg.KMSEndpoint}
	}
	return o
}

func oneLine(err error) string { return strings.ReplaceAll(err.Error(), "\n", "; ") }

// dbVar names the setting that chose the database, for start-up errors.
func dbVar(cfg config.Config) string {
	if cfg.UsesPostgres() {
		return "FERRY_DATABASE_URL"
	}
	return "FERRY_DATA_DIR"
}
