// Package config turns the environment (FERRY_*) and command-line flags into
// one typed Config. Environment comes first, flags override it, and every
// secret can also be read from a file named by its *_FILE variant so that
// secrets need not sit in the process environment.
//
// A bad value is reported as one line naming the variable and what is wrong
// (an *Error, which the CLI turns into exit status 2) and nothing is written.
package config

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"filippo.io/age"
)

// Config is Ferry's effective configuration.
type Config struct {
	Addr        string // FERRY_ADDR
	DataDir     string // FERRY_DATA_DIR
	DatabaseURL string // FERRY_DATABASE_URL (secret: may hold a password)
	BaseURL     string // FERRY_BASE_URL
	KEK         string // FERRY_KEK: empty (local key file) or aws-kms://arn:…
	KMSEndpoint string // FERRY_KMS_ENDPOINT: KMS endpoint URL; empty for the key's regional AWS endpoint
	TLSCert     string // FERRY_TLS_CERT
	TLSKey      string // FERRY_TLS_KEY
	LogFormat   string // FERRY_LOG_FORMAT: json | text | auto
	LogLevel    string // FERRY_LOG_LEVEL: debug | info | warn | error

	Region              string   // FERRY_REGION
	ConnectAllowedHosts []string // FERRY_CONNECT_ALLOWED_HOSTS
	InstallKeysURL      string   // FERRY_CONNECT_INSTALL_KEYS_URL
	OAuthURL            string   // FERRY_CONNECT_OAUTH_URL
	ConnectJSURL        string   // FERRY_CONNECT_JS_URL: Atlassian's all.js, which a page in Jira must load
	AllowLoopback       bool     // FERRY_EGRESS_ALLOW_LOOPBACK (simulator and demo only)
	AddonKey            string   // FERRY_ADDON_KEY

	RequestLogDays    int    // FERRY_REQUEST_LOG_DAYS, at most 60
	SentryUpstreamDSN string // FERRY_SENTRY_UPSTREAM_DSN (secret): where scrubbed error events go; empty keeps them local
	S3Endpoint        string // FERRY_S3_ENDPOINT
	S3Bucket          string // FERRY_S3_BUCKET
	S3Region          string // FERRY_S3_REGION
	SMTPAddr          string // FERRY_SMTP_ADDR

	ExportWorkers int // FERRY_EXPORT_WORKERS: a cap; concurrency adapts below it
	TokenMaxDays  int // FERRY_TOKEN_MAX_DAYS

	ShutdownTimeout time.Duration // FERRY_SHUTDOWN_TIMEOUT

	MetricsAddr string // FERRY_METRICS_ADDR: its own listener for /metrics, loopback by default; "off" for none

	ConsoleAddr         string // FERRY_CONSOLE_ADDR: the staff console's own listener
	ConsoleURL          string // FERRY_CONSOLE_URL: its public URL (enrolment links, SSO redirect); empty: http://FERRY_CONSOLE_ADDR
	ConsoleOIDCIssuer   string // FERRY_CONSOLE_OIDC_ISSUER: staff single sign-on; empty: password + TOTP only
	ConsoleOIDCClientID string // FERRY_CONSOLE_OIDC_CLIENT_ID
	ConsoleOIDCSecret   string // FERRY_CONSOLE_OIDC_CLIENT_SECRET (secret)
	AuditCheckpointDir  string // FERRY_AUDIT_CHECKPOINT_DIR: signed audit checkpoints, outside the database; empty: DATA_DIR/audit-checkpoints

	PurgeGrace           time.Duration // FERRY_PURGE_GRACE: from marking a tenant for deletion to its purge
	PurgeLicenseInactive time.Duration // FERRY_PURGE_LICENSE_INACTIVE_AFTER: an inactive licence marks the tenant after this
	PurgeDisabled        time.Duration // FERRY_PURGE_DISABLED_AFTER: a disabled app marks the tenant after this
	BackupEvery          time.Duration // FERRY_BACKUP_EVERY: how often to back up, at most 24h
	BackupDir            string        // FERRY_BACKUP_DIR: backup directory when no S3 bucket is set
	BackupRecipients     []string      // FERRY_BACKUP_RECIPIENTS: operators' offline age recipients
	BackupKeepDaily      int           // FERRY_BACKUP_KEEP_DAILY
	BackupKeepWeekly     int           // FERRY_BACKUP_KEEP_WEEKLY
	BackupKeepMonthly    int           // FERRY_BACKUP_KEEP_MONTHLY
	BackupKeyDays        int           // FERRY_BACKUP_KEY_DAYS: how long key backups are kept
	S3AccessKeyID        string        // FERRY_S3_ACCESS_KEY_ID
	S3SecretAccessKey    string        // FERRY_S3_SECRET_ACCESS_KEY (secret)

	ErrorsPublicKey     string         // FERRY_ERRORS_PUBLIC_KEY: the app's browser Sentry project key; empty: no browser error tracking
	ErrorsProjectID     string         // FERRY_ERRORS_PROJECT_ID: that project's id in the DSN
	ErrorsRetentionDays int            // FERRY_ERRORS_RETENTION_DAYS: days scrubbed error events are kept locally
	ErrorsRate          int            // FERRY_ERRORS_RATE: envelopes per second per public key
	TrustedProxies      []netip.Prefix // FERRY_TRUSTED_PROXIES: peers whose X-Forwarded-For is believed; none by default
	FeedConcurrencySite int            // FERRY_FEED_CONCURRENCY_PER_SITE: feed requests one site may run at once

	ForgeAppID           string        // FERRY_FORGE_APP_ID: the Forge app's id (ari:cloud:ecosystem::app/…); empty: no Forge
	ForgeJWKSURL         string        // FERRY_FORGE_JWKS_URL: the key set that signs Forge Invocation Tokens
	ForgeGraphQLURL      string        // FERRY_FORGE_GRAPHQL_URL: Atlassian's GraphQL gateway (offline user impersonation)
	ForgeStorageURL      string        // FERRY_FORGE_STORAGE_URL: Forge's Key-Value Store REST API
	ForgeLicenseMaxAge   time.Duration // FERRY_FORGE_LICENSE_MAX_AGE: a licence Forge has not confirmed for longer stops feeds
	ForgeRegionURLs      []string      // FERRY_FORGE_REGION_URLS: REGION=URL per data residency realm, for the manifest's remote
	MaxFeedsInFlight     int           // FERRY_MAX_FEEDS_IN_FLIGHT: feed requests worked on at once; more are answered 503 + Retry-After
	MaxLifecycleInFlight int           // FERRY_MAX_LIFECYCLE_IN_FLIGHT
	MaxAppInFlight       int           // FERRY_MAX_APP_IN_FLIGHT: app pages and app API
	MaxErrorsInFlight    int           // FERRY_MAX_ERRORS_IN_FLIGHT: error ingest
}

// Error is a configuration error: it names the variable and says what is
// wrong, in one line.
type Error struct {
	Var    string
	Reason string
}

func (e *Error) Error() string { return e.Var + ": " + e.Reason }

// printable escapes control characters (a flag named "-\r" from a script with
// Windows line endings), so an error about the command line stays one line.
func printable(s string) string {
	return strings.Map(func(r rune) rune {
		if r < ' ' || r == 0x7f {
			return -1
		}
		return r
	}, strings.NewReplacer("\r", `\r`, "\n", `\n`, "\t", `\t`).Replace(s))
}

// IsConfigError reports whether err is (or wraps) a configuration error.
func IsConfigError(err error) bool {
	var ce *Error
	return errors.As(err, &ce)
}

// Default is the configuration with no environment and no flags: SQLite and a
// local key file under ./ferry-data, listening on loopback only.
func Default() Config {
	return Config{
		Addr:                "127.0.0.1:8080",
		DataDir:             "ferry-data",
		BaseURL:             "http://127.0.0.1:8080",
		LogFormat:           "auto",
		LogLevel:            "info",
		Region:              "us-west-2",
		ConnectAllowedHosts: []string{"*.atlassian.net", "*.jira.com", "*.jira-dev.com"},
		InstallKeysURL:      "https://connect-install-keys.atlassian.com",
		OAuthURL:            "https://oauth-2-authorization-server.services.atlassian.com",
		ConnectJSURL:        "https://connect-cdn.atl-paas.net/all.js",
		AddonKey:            "ferry-bi-connector",
		RequestLogDays:      60,
		ExportWorkers:       32,
		TokenMaxDays:        365,
		ShutdownTimeout:     15 * time.Second,
		MetricsAddr:         "127.0.0.1:9464",
		ConsoleAddr:         "127.0.0.1:8081",

		PurgeGrace:           30 * 24 * time.Hour,
		PurgeLicenseInactive: 30 * 24 * time.Hour,
		PurgeDisabled:        90 * 24 * time.Hour,
		BackupEvery:          24 * time.Hour,
		BackupKeepDaily:      14,
		BackupKeepWeekly:     8,
		BackupKeepMonthly:    12,
		BackupKeyDays:        7,

		ErrorsProjectID:     "1",
		ErrorsRetentionDays: 30,
		ErrorsRate:          50,
		FeedConcurrencySite: 8,

		ForgeJWKSURL:         "https://forge.cdn.prod.atlassian-dev.net/.well-known/jwks.json",
		ForgeGraphQLURL:      "https://api.atlassian.com/graphql",
		ForgeStorageURL:      "https://api.atlassian.com/forge/storage/kvs",
		ForgeLicenseMaxAge:   24 * time.Hour,
		MaxFeedsInFlight:     64,
		MaxLifecycleInFlight: 32,
		MaxAppInFlight:       256,
		MaxErrorsInFlight:    64,
	}
}

// field describes one setting: its variable, its flag (if any), whether it is
// a secret, and how to set it from text.
type field struct {
	env    string
	flag   string
	secret bool
	usage  string
	set    func(c *Config, v string) error
	get    func(c *Config) string
}

func str(p func(*Config) *string) (func(*Config, string) error, func(*Config) string) {
	return func(c *Config, v string) error { *p(c) = v; return nil }, func(c *Config) string { return *p(c) }
}

func fields() []field {
	mk := func(env, fl string, secret bool, usage string, p func(*Config) *string) field {
		s, g := str(p)
		return field{env: env, flag: fl, secret: secret, usage: usage, set: s, get: g}
	}
	intf := func(env, fl, usage string, p func(*Config) *int, lo, hi int) field {
		return field{env: env, flag: fl, usage: usage,
			set: func(c *Config, v string) error {
				n, err := strconv.Atoi(strings.TrimSpace(v))
				if err != nil {
					return fmt.Errorf("%q is not a whole number", v)
				}
				if n < lo || n > hi {
					return fmt.Errorf("%d is out of range (%d–%d)", n, lo, hi)
				}
				*p(c) = n
				return nil
			},
			get: func(c *Config) string { return strconv.Itoa(*p(c)) }}
	}
	return []field{
		mk("FERRY_ADDR", "addr", false, "listen address host:port", func(c *Config) *string { return &c.Addr }),
		mk("FERRY_DATA_DIR", "data-dir", false, "directory for the SQLite database and local key file", func(c *Config) *string { return &c.DataDir }),
		mk("FERRY_DATABASE_URL", "database-url", true, "postgres://… to use PostgreSQL; empty for SQLite", func(c *Config) *string { return &c.DatabaseURL }),
		mk("FERRY_BASE_URL", "base-url", false, "public URL of this app (Connect baseUrl)", func(c *Config) *string { return &c.BaseURL }),
		mk("FERRY_KEK", "kek", false, "key-encryption key: empty for a local key file, or aws-kms://arn:aws:kms:…", func(c *Config) *string { return &c.KEK }),
		mk("FERRY_KMS_ENDPOINT", "kms-endpoint", false, "AWS KMS endpoint URL; empty for the KMS key's regional endpoint", func(c *Config) *string { return &c.KMSEndpoint }),
		mk("FERRY_TLS_CERT", "tls-cert", false, "TLS certificate file (enables HTTPS)", func(c *Config) *string { return &c.TLSCert }),
		mk("FERRY_TLS_KEY", "tls-key", false, "TLS private key file", func(c *Config) *string { return &c.TLSKey }),
		mk("FERRY_LOG_FORMAT", "log-format", false, "json, text or auto (text on a terminal)", func(c *Config) *string { return &c.LogFormat }),
		mk("FERRY_LOG_LEVEL", "log-level", false, "debug, info, warn or error", func(c *Config) *string { return &c.LogLevel }),
		mk("FERRY_REGION", "region", false, "hosting region, e.g. us-west-2", func(c *Config) *string { return &c.Region }),
		{env: "FERRY_CONNECT_ALLOWED_HOSTS", flag: "connect-allowed-hosts", usage: "comma-separated Jira site host patterns",
			set: func(c *Config, v string) error {
				c.ConnectAllowedHosts = nil
				for _, h := range strings.Split(v, ",") {
					if h = strings.TrimSpace(h); h != "" {
						c.ConnectAllowedHosts = append(c.ConnectAllowedHosts, strings.ToLower(h))
					}
				}
				return nil
			},
			get: func(c *Config) string { return strings.Join(c.ConnectAllowedHosts, ",") }},
		mk("FERRY_CONNECT_INSTALL_KEYS_URL", "connect-install-keys-url", false, "where signed-install public keys are fetched", func(c *Config) *string { return &c.InstallKeysURL }),
		mk("FERRY_CONNECT_OAUTH_URL", "connect-oauth-url", false, "Atlassian OAuth server for acting as a user", func(c *Config) *string { return &c.OAuthURL }),
		mk("FERRY_CONNECT_JS_URL", "connect-js-url", false, "Atlassian's Connect all.js, loaded by the app's pages inside Jira", func(c *Config) *string { return &c.ConnectJSURL }),
		{env: "FERRY_EGRESS_ALLOW_LOOPBACK", flag: "egress-allow-loopback", usage: "allow outbound calls to loopback (simulator and demo only)",
			set: func(c *Config, v string) error {
				b, err := strconv.ParseBool(strings.TrimSpace(v))
				if err != nil {
					return fmt.Errorf("%q is not true or false", v)
				}
				c.AllowLoopback = b
				return nil
			},
			get: func(c *Config) string { return strconv.FormatBool(c.AllowLoopback) }},
		mk("FERRY_ADDON_KEY", "addon-key", false, "the Connect app key", func(c *Config) *string { return &c.AddonKey }),
		intf("FERRY_REQUEST_LOG_DAYS", "request-log-days", "days request logs are kept (at most 60)", func(c *Config) *int { return &c.RequestLogDays }, 1, 60),
		mk("FERRY_SENTRY_UPSTREAM_DSN", "sentry-upstream-dsn", true, "Sentry DSN that scrubbed error events are forwarded to; empty keeps them local", func(c *Config) *string { return &c.SentryUpstreamDSN }),
		mk("FERRY_S3_ENDPOINT", "s3-endpoint", false, "S3 endpoint for backups", func(c *Config) *string { return &c.S3Endpoint }),
		mk("FERRY_S3_BUCKET", "s3-bucket", false, "S3 bucket for backups", func(c *Config) *string { return &c.S3Bucket }),
		mk("FERRY_S3_REGION", "s3-region", false, "region of the S3 bucket", func(c *Config) *string { return &c.S3Region }),
		mk("FERRY_SMTP_ADDR", "smtp-addr", false, "SMTP server host:port", func(c *Config) *string { return &c.SMTPAddr }),
		intf("FERRY_EXPORT_WORKERS", "export-workers", "most Jira requests in flight per site (concurrency adapts below it)", func(c *Config) *int { return &c.ExportWorkers }, 1, 64),
		intf("FERRY_TOKEN_MAX_DAYS", "token-max-days", "longest access-token lifetime in days", func(c *Config) *int { return &c.TokenMaxDays }, 1, 3650),
		{env: "FERRY_SHUTDOWN_TIMEOUT", flag: "shutdown-timeout", usage: "how long to wait for requests and jobs on shutdown",
			set: func(c *Config, v string) error {
				d, err := time.ParseDuration(strings.TrimSpace(v))
				if err != nil || d <= 0 {
					return fmt.Errorf("%q is not a positive duration such as 15s", v)
				}
				c.ShutdownTimeout = d
				return nil
			},
			get: func(c *Config) string { return c.ShutdownTimeout.String() }},
		mk("FERRY_METRICS_ADDR", "metrics-addr", false, "listen address of /metrics (Prometheus), apart from FERRY_ADDR; off for none", func(c *Config) *string { return &c.MetricsAddr }),
		mk("FERRY_CONSOLE_ADDR", "console-addr", false, "the staff console's listen address (keep it off the public internet)", func(c *Config) *string { return &c.ConsoleAddr }),
		mk("FERRY_CONSOLE_URL", "console-url", false, "public URL of the staff console (default http://FERRY_CONSOLE_ADDR)", func(c *Config) *string { return &c.ConsoleURL }),
		mk("FERRY_CONSOLE_OIDC_ISSUER", "console-oidc-issuer", false, "OIDC issuer URL for staff single sign-on (empty: password + TOTP only)", func(c *Config) *string { return &c.ConsoleOIDCIssuer }),
		mk("FERRY_CONSOLE_OIDC_CLIENT_ID", "console-oidc-client-id", false, "OIDC client id of the staff console", func(c *Config) *string { return &c.ConsoleOIDCClientID }),
		mk("FERRY_CONSOLE_OIDC_CLIENT_SECRET", "console-oidc-client-secret", true, "OIDC client secret of the staff console", func(c *Config) *string { return &c.ConsoleOIDCSecret }),
		mk("FERRY_AUDIT_CHECKPOINT_DIR", "audit-checkpoint-dir", false, "directory for signed audit-trail checkpoints, outside the database (default DATA_DIR/audit-checkpoints)", func(c *Config) *string { return &c.AuditCheckpointDir }),
		days("FERRY_PURGE_GRACE", "purge-grace", "how long data of an uninstalled or lapsed tenant is kept before the purge (e.g. 30d)",
			func(c *Config) *time.Duration { return &c.PurgeGrace }, 0),
		days("FERRY_PURGE_LICENSE_INACTIVE_AFTER", "purge-license-inactive-after", "an inactive licence marks the tenant for deletion after this (e.g. 30d)",
			func(c *Config) *time.Duration { return &c.PurgeLicenseInactive }, time.Hour),
		days("FERRY_PURGE_DISABLED_AFTER", "purge-disabled-after", "a disabled app marks the tenant for deletion after this (e.g. 90d)",
			func(c *Config) *time.Duration { return &c.PurgeDisabled }, time.Hour),
		{env: "FERRY_BACKUP_EVERY", flag: "backup-every", usage: "how often to back up: at least daily (15m–24h)",
			set: func(c *Config, v string) error {
				d, err := time.ParseDuration(strings.TrimSpace(v))
				if err != nil || d <= 0 {
					return fmt.Errorf("%q is not a positive duration such as 24h", v)
				}
				if d > 24*time.Hour {
					return fmt.Errorf("%s is less often than daily; backups run at least once a day (at most 24h)", d)
				}
				if d < 15*time.Minute {
					return fmt.Errorf("%s is shorter than 15m", d)
				}
				c.BackupEvery = d
				return nil
			},
			get: func(c *Config) string { return c.BackupEvery.String() }},
		mk("FERRY_BACKUP_DIR", "backup-dir", false, "backup directory when FERRY_S3_BUCKET is empty (default: DATA_DIR/backups)", func(c *Config) *string { return &c.BackupDir }),
		{env: "FERRY_BACKUP_RECIPIENTS", flag: "backup-recipients", usage: "offline age recipients (age1…) that can also decrypt backups, comma separated",
			set: func(c *Config, v string) error {
				c.BackupRecipients = nil
				for _, r := range strings.FieldsFunc(v, func(r rune) bool { return r == ',' || r == ' ' || r == '\n' || r == '\t' }) {
					if _, err := age.ParseX25519Recipient(r); err != nil {
						return fmt.Errorf("%q is not an age recipient (age1…)", r)
					}
					c.BackupRecipients = append(c.BackupRecipients, r)
				}
				return nil
			},
			get: func(c *Config) string { return strings.Join(c.BackupRecipients, ",") }},
		intf("FERRY_BACKUP_KEEP_DAILY", "backup-keep-daily", "daily backups kept", func(c *Config) *int { return &c.BackupKeepDaily }, 1, 366),
		intf("FERRY_BACKUP_KEEP_WEEKLY", "backup-keep-weekly", "weekly backups kept", func(c *Config) *int { return &c.BackupKeepWeekly }, 0, 520),
		intf("FERRY_BACKUP_KEEP_MONTHLY", "backup-keep-monthly", "monthly backups kept", func(c *Config) *int { return &c.BackupKeepMonthly }, 0, 1200),
		intf("FERRY_BACKUP_KEY_DAYS", "backup-key-days", "days key backups (tenant and log keys) are kept; after that a shredded tenant is unreadable in every backup", func(c *Config) *int { return &c.BackupKeyDays }, 1, 30),
		mk("FERRY_S3_ACCESS_KEY_ID", "s3-access-key-id", false, "access key id for the S3 bucket", func(c *Config) *string { return &c.S3AccessKeyID }),
		mk("FERRY_S3_SECRET_ACCESS_KEY", "s3-secret-access-key", true, "secret access key for the S3 bucket", func(c *Config) *string { return &c.S3SecretAccessKey }),
		mk("FERRY_ERRORS_PUBLIC_KEY", "errors-public-key", false, "public key of the app's browser error-tracking project (16–64 letters or digits); empty: off", func(c *Config) *string { return &c.ErrorsPublicKey }),
		mk("FERRY_ERRORS_PROJECT_ID", "errors-project-id", false, "project id in the browser DSN (digits)", func(c *Config) *string { return &c.ErrorsProjectID }),
		intf("FERRY_ERRORS_RETENTION_DAYS", "errors-retention-days", "days scrubbed error events are kept locally", func(c *Config) *int { return &c.ErrorsRetentionDays }, 1, 365),
		intf("FERRY_ERRORS_RATE", "errors-rate", "error envelopes accepted per second per public key", func(c *Config) *int { return &c.ErrorsRate }, 1, 100000),
		{env: "FERRY_TRUSTED_PROXIES", flag: "trusted-proxies", usage: "comma-separated addresses or CIDR ranges of reverse proxies whose X-Forwarded-For is believed (none by default)",
			set: func(c *Config, v string) error {
				ps, err := parsePrefixes(v)
				if err != nil {
					return err
				}
				c.TrustedProxies = ps
				return nil
			},
			get: func(c *Config) string {
				var out []string
				for _, p := range c.TrustedProxies {
					out = append(out, p.String())
				}
				return strings.Join(out, ",")
			}},
		intf("FERRY_FEED_CONCURRENCY_PER_SITE", "feed-concurrency-per-site", "feed requests one Jira site may run at once (429 beyond)", func(c *Config) *int { return &c.FeedConcurrencySite }, 1, 1000),
		mk("FERRY_FORGE_APP_ID", "forge-app-id", false, "the Forge app's id, ari:cloud:ecosystem::app/UUID (empty: Ferry runs without Forge)", func(c *Config) *string { return &c.ForgeAppID }),
		mk("FERRY_FORGE_JWKS_URL", "forge-jwks-url", false, "the key set that signs Forge Invocation Tokens", func(c *Config) *string { return &c.ForgeJWKSURL }),
		mk("FERRY_FORGE_GRAPHQL_URL", "forge-graphql-url", false, "Atlassian's GraphQL gateway, for offline user impersonation; its host serves app.apiBaseUrl", func(c *Config) *string { return &c.ForgeGraphQLURL }),
		mk("FERRY_FORGE_STORAGE_URL", "forge-storage-url", false, "Forge's Key-Value Store REST API, where data sources live on Forge", func(c *Config) *string { return &c.ForgeStorageURL }),
		days("FERRY_FORGE_LICENSE_MAX_AGE", "forge-license-max-age", "feeds stop when Forge has not confirmed the licence for this long (e.g. 24h)",
			func(c *Config) *time.Duration { return &c.ForgeLicenseMaxAge }, time.Hour),
		{env: "FERRY_FORGE_REGION_URLS", flag: "forge-region-urls", usage: "comma-separated REGION=URL of Ferry's hosts per data residency realm, for the Forge manifest (e.g. EU=https://eu.ferry.example)",
			set: func(c *Config, v string) error {
				c.ForgeRegionURLs = nil
				for _, p := range strings.Split(v, ",") {
					if p = strings.TrimSpace(p); p != "" {
						c.ForgeRegionURLs = append(c.ForgeRegionURLs, p)
					}
				}
				return nil
			},
			get: func(c *Config) string { return strings.Join(c.ForgeRegionURLs, ",") }},
		intf("FERRY_MAX_FEEDS_IN_FLIGHT", "max-feeds-in-flight", "feed requests (OData, CSV) worked on at once; beyond it 503 with Retry-After", func(c *Config) *int { return &c.MaxFeedsInFlight }, 1, 100000),
		intf("FERRY_MAX_LIFECYCLE_IN_FLIGHT", "max-lifecycle-in-flight", "Connect and Forge lifecycle calls worked on at once; beyond it 503 with Retry-After", func(c *Config) *int { return &c.MaxLifecycleInFlight }, 1, 100000),
		intf("FERRY_MAX_APP_IN_FLIGHT", "max-app-in-flight", "app page and app API requests worked on at once; beyond it 503 with Retry-After", func(c *Config) *int { return &c.MaxAppInFlight }, 1, 100000),
		intf("FERRY_MAX_ERRORS_IN_FLIGHT", "max-errors-in-flight", "error-ingest requests worked on at once; beyond it 503 with Retry-After", func(c *Config) *int { return &c.MaxErrorsInFlight }, 1, 100000),
	}
}

// parsePrefixes reads a comma-separated list of addresses and CIDR ranges.
func parsePrefixes(v string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, item := range strings.Split(v, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		if strings.Contains(item, "/") {
			p, err := netip.ParsePrefix(item)
			if err != nil || p.Masked() != p || p.Addr().Zone() != "" || p.Addr().Is4In6() && p.Bits() < 96 {
				return nil, fmt.Errorf("%q is not a CIDR range such as 10.0.0.0/8 (no bits set beyond the prefix)", item)
			}
			if p.Addr().Is4In6() { // an IPv4 range written as IPv6: clients are compared unmapped
				p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
			}
			out = append(out, p)
			continue
		}
		a, err := netip.ParseAddr(item)
		if err != nil || a.Zone() != "" {
			return nil, fmt.Errorf("%q is not an IP address or CIDR range", item)
		}
		out = append(out, netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()))
	}
	return out, nil
}

// days is a duration setting that also takes whole days ("30d"), from lo to
// ten years.
func days(env, fl, usage string, p func(*Config) *time.Duration, lo time.Duration) field {
	const hi = 3650 * 24 * time.Hour
	return field{env: env, flag: fl, usage: usage,
		set: func(c *Config, v string) error {
			d, err := parseDays(v)
			if err != nil {
				return err
			}
			if d < lo || d > hi {
				return fmt.Errorf("%q is out of range (%s to 3650d)", v, fmtDays(lo))
			}
			*p(c) = d
			return nil
		},
		get: func(c *Config) string { return fmtDays(*p(c)) }}
}

// parseDays reads "30d" as whole days, anything else as a Go duration ("36h").
func parseDays(v string) (time.Duration, error) {
	v = strings.TrimSpace(v)
	if n, ok := strings.CutSuffix(v, "d"); ok {
		k, err := strconv.Atoi(n)
		if err != nil || k < 0 {
			return 0, fmt.Errorf("%q is not a number of days such as 30d", v)
		}
		return time.Duration(k) * 24 * time.Hour, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		return 0, fmt.Errorf("%q is not a duration such as 30d or 36h", v)
	}
	return d, nil
}

// fmtDays writes whole days as "30d", other durations as Go does.
func fmtDays(d time.Duration) string {
	if d%(24*time.Hour) == 0 {
		return strconv.Itoa(int(d/(24*time.Hour))) + "d"
	}
	return d.String()
}

// renamed lists variables that no longer exist, with what replaced them: a
// setting that is silently ignored is worse than a refusal to start.
var renamed = map[string]string{
	"FERRY_SENTRY_DSN": "FERRY_SENTRY_UPSTREAM_DSN (the Sentry project scrubbed error events are forwarded to)",
}

// Load reads the environment, then the flags in args (flags override), then
// validates. Unknown flags and bad values are *Error. The returned FlagSet's
// remaining arguments are returned as rest.
func Load(name string, args []string, getenv func(string) string, extra func(fs *flag.FlagSet)) (cfg Config, rest []string, err error) {
	cfg = Default()
	for old, now := range renamed {
		if getenv(old) != "" || getenv(old+"_FILE") != "" {
			return cfg, nil, &Error{Var: old, Reason: "renamed: set " + now}
		}
	}
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	var flagErr *Error // the flag package keeps only the text of a value's error
	for _, f := range fields() {
		if v := getenv(f.env); v != "" {
			if err := f.set(&cfg, v); err != nil {
				return cfg, nil, &Error{Var: f.env, Reason: err.Error()}
			}
		}
		if f.secret {
			if path := getenv(f.env + "_FILE"); path != "" {
				if getenv(f.env) != "" {
					return cfg, nil, &Error{Var: f.env + "_FILE", Reason: "set together with " + f.env + "; use one"}
				}
				b, err := os.ReadFile(path)
				if err != nil {
					return cfg, nil, &Error{Var: f.env + "_FILE", Reason: "cannot read " + path + ": " + errors.Unwrap(err).Error()}
				}
				if err := f.set(&cfg, strings.TrimSpace(string(b))); err != nil {
					return cfg, nil, &Error{Var: f.env + "_FILE", Reason: err.Error()}
				}
			}
		}
		f := f
		fs.Func(f.flag, f.usage+" ("+f.env+")", func(v string) error {
			if err := f.set(&cfg, v); err != nil {
				flagErr = &Error{Var: "--" + f.flag, Reason: err.Error()}
				return flagErr
			}
			return nil
		})
	}
	if extra != nil {
		extra(fs)
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return cfg, nil, err
		}
		if flagErr != nil {
			return cfg, nil, flagErr
		}
		return cfg, nil, &Error{Var: "flags", Reason: printable(err.Error())}
	}
	if err := cfg.Validate(); err != nil {
		return cfg, nil, err
	}
	return cfg, fs.Args(), nil
}

// Usage writes the flag and variable reference for a command.
func Usage(w io.Writer) {
	for _, f := range fields() {
		s := ""
		if f.secret {
			s = " (also " + f.env + "_FILE)"
		}
		fmt.Fprintf(w, "  --%-26s %s%s\n      %s\n", f.flag, f.env, s, f.usage)
	}
}

// Validate checks every value that can be checked without touching the world.
func (c *Config) Validate() error {
	if err := checkHostPort(c.Addr); err != nil {
		return &Error{Var: "FERRY_ADDR", Reason: err.Error()}
	}
	if c.MetricsAddr != "off" {
		if err := checkHostPort(c.MetricsAddr); err != nil {
			return &Error{Var: "FERRY_METRICS_ADDR", Reason: err.Error() + ` (or "off")`}
		}
		if c.MetricsAddr == c.Addr && !strings.HasSuffix(c.Addr, ":0") {
			return &Error{Var: "FERRY_METRICS_ADDR", Reason: "must differ from FERRY_ADDR: metrics are not served on the public listener"}
		}
	}
	if c.DataDir == "" {
		return &Error{Var: "FERRY_DATA_DIR", Reason: "must not be empty"}
	}
	if c.DatabaseURL != "" {
		u, err := url.Parse(c.DatabaseURL)
		if err != nil {
			return &Error{Var: "FERRY_DATABASE_URL", Reason: "not a valid URL"}
		}
		switch u.Scheme {
		case "postgres", "postgresql":
		default:
			return &Error{Var: "FERRY_DATABASE_URL", Reason: fmt.Sprintf("unknown database scheme %q (want postgres:// or leave empty for SQLite)", u.Scheme)}
		}
		if u.Host == "" && u.Query().Get("host") == "" {
			return &Error{Var: "FERRY_DATABASE_URL", Reason: "postgres URL has no host"}
		}
	}
	if err := checkHTTPURL(c.BaseURL); err != nil {
		return &Error{Var: "FERRY_BASE_URL", Reason: err.Error()}
	}
	if c.KEK != "" && !strings.HasPrefix(c.KEK, "aws-kms://") {
		return &Error{Var: "FERRY_KEK", Reason: "must be empty (local key file) or an aws-kms://arn:aws:kms:REGION:ACCOUNT:key/ID URI"}
	}
	if c.KMSEndpoint != "" {
		if c.KEK == "" {
			return &Error{Var: "FERRY_KMS_ENDPOINT", Reason: "set without FERRY_KEK: the endpoint is for an AWS KMS key"}
		}
		if err := checkHTTPURL(c.KMSEndpoint); err != nil {
			return &Error{Var: "FERRY_KMS_ENDPOINT", Reason: err.Error()}
		}
	}
	if c.TLSCert != "" && c.TLSKey == "" {
		return &Error{Var: "FERRY_TLS_KEY", Reason: "not set, but FERRY_TLS_CERT is: FERRY_TLS_CERT and FERRY_TLS_KEY must be set together"}
	}
	if c.TLSKey != "" && c.TLSCert == "" {
		return &Error{Var: "FERRY_TLS_CERT", Reason: "not set, but FERRY_TLS_KEY is: FERRY_TLS_CERT and FERRY_TLS_KEY must be set together"}
	}
	if !slices.Contains([]string{"json", "text", "auto"}, c.LogFormat) {
		return &Error{Var: "FERRY_LOG_FORMAT", Reason: fmt.Sprintf("%q is not json, text or auto", c.LogFormat)}
	}
	if !slices.Contains([]string{"debug", "info", "warn", "error"}, c.LogLevel) {
		return &Error{Var: "FERRY_LOG_LEVEL", Reason: fmt.Sprintf("%q is not debug, info, warn or error", c.LogLevel)}
	}
	for _, pair := range []struct{ env, v string }{
		{"FERRY_CONNECT_INSTALL_KEYS_URL", c.InstallKeysURL}, {"FERRY_CONNECT_OAUTH_URL", c.OAuthURL},
		{"FERRY_CONNECT_JS_URL", c.ConnectJSURL},
	} {
		if err := checkHTTPURL(pair.v); err != nil {
			return &Error{Var: pair.env, Reason: err.Error()}
		}
	}
	if len(c.ConnectAllowedHosts) == 0 {
		return &Error{Var: "FERRY_CONNECT_ALLOWED_HOSTS", Reason: "must list at least one host pattern"}
	}
	if c.SentryUpstreamDSN != "" {
		if err := checkSentryDSN(c.SentryUpstreamDSN); err != nil {
			return &Error{Var: "FERRY_SENTRY_UPSTREAM_DSN", Reason: err.Error()}
		}
	}
	if c.ErrorsPublicKey != "" && !alnum(c.ErrorsPublicKey, 16, 64) {
		return &Error{Var: "FERRY_ERRORS_PUBLIC_KEY", Reason: "must be 16 to 64 letters or digits (a Sentry public key is 32 hex digits)"}
	}
	if !digits(c.ErrorsProjectID) {
		return &Error{Var: "FERRY_ERRORS_PROJECT_ID", Reason: fmt.Sprintf("%q is not a project id (digits, as Sentry SDKs require)", c.ErrorsProjectID)}
	}
	if c.AddonKey == "" || strings.ContainsAny(c.AddonKey, "/?#& ") {
		return &Error{Var: "FERRY_ADDON_KEY", Reason: "must be a non-empty key without / ? # & or spaces"}
	}
	if err := c.validateForge(); err != nil {
		return err
	}
	return c.validateConsole()
}

var forgeAppID = regexp.MustCompile(`^ari:cloud:ecosystem::app/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)

// forgeRegions are the data residency realms a Forge remote may pin a
// baseUrl to (the regions of the manifest schema in @forge/manifest).
var forgeRegions = []string{"US", "EU", "DE", "AU", "CA", "IN", "JP", "KR", "SG", "GB", "CH"}

// validateForge checks the Forge settings.
func (c *Config) validateForge() error {
	if c.ForgeAppID != "" && !forgeAppID.MatchString(c.ForgeAppID) {
		return &Error{Var: "FERRY_FORGE_APP_ID", Reason: fmt.Sprintf("%q is not ari:cloud:ecosystem::app/UUID (the app id forge register prints)", c.ForgeAppID)}
	}
	for _, pair := range []struct{ env, v string }{
		{"FERRY_FORGE_JWKS_URL", c.ForgeJWKSURL}, {"FERRY_FORGE_GRAPHQL_URL", c.ForgeGraphQLURL}, {"FERRY_FORGE_STORAGE_URL", c.ForgeStorageURL},
	} {
		if err := checkHTTPURL(pair.v); err != nil {
			return &Error{Var: pair.env, Reason: err.Error()}
		}
	}
	seen := map[string]bool{}
	for _, p := range c.ForgeRegionURLs {
		region, u, ok := strings.Cut(p, "=")
		region = strings.ToUpper(strings.TrimSpace(region))
		switch {
		case !ok:
			return &Error{Var: "FERRY_FORGE_REGION_URLS", Reason: fmt.Sprintf("%q is not REGION=URL", p)}
		case !slices.Contains(forgeRegions, region):
			return &Error{Var: "FERRY_FORGE_REGION_URLS", Reason: fmt.Sprintf("%q is not a Forge data residency region (%s)", region, strings.Join(forgeRegions, ", "))}
		case seen[region]:
			return &Error{Var: "FERRY_FORGE_REGION_URLS", Reason: fmt.Sprintf("region %s is listed twice", region)}
		}
		seen[region] = true
		if err := checkHTTPURL(strings.TrimSpace(u)); err != nil {
			return &Error{Var: "FERRY_FORGE_REGION_URLS", Reason: region + ": " + err.Error()}
		}
	}
	return nil
}

// validateConsole checks the staff console's settings. Its cookies are
// Secure only over HTTPS, so plain HTTP is allowed on loopback only.
func (c *Config) validateConsole() error {
	if err := checkHostPort(c.ConsoleAddr); err != nil {
		return &Error{Var: "FERRY_CONSOLE_ADDR", Reason: err.Error()}
	}
	if c.ConsoleURL != "" {
		if err := checkHTTPURL(c.ConsoleURL); err != nil {
			return &Error{Var: "FERRY_CONSOLE_URL", Reason: err.Error()}
		}
	}
	if host, _, _ := net.SplitHostPort(c.ConsoleAddr); !isLoopbackHost(host) && c.TLSCert == "" && !strings.HasPrefix(c.ConsoleURL, "https://") {
		return &Error{Var: "FERRY_CONSOLE_ADDR", Reason: fmt.Sprintf("%q is not a loopback address, and the console would be served over plain HTTP; set FERRY_TLS_CERT and FERRY_TLS_KEY, or serve it behind HTTPS and set FERRY_CONSOLE_URL=https://…", c.ConsoleAddr)}
	}
	if (c.ConsoleOIDCIssuer == "") != (c.ConsoleOIDCClientID == "") {
		return &Error{Var: "FERRY_CONSOLE_OIDC_ISSUER", Reason: "FERRY_CONSOLE_OIDC_ISSUER and FERRY_CONSOLE_OIDC_CLIENT_ID must be set together"}
	}
	if c.ConsoleOIDCIssuer != "" {
		u, err := url.Parse(c.ConsoleOIDCIssuer)
		switch {
		case err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http"):
			return &Error{Var: "FERRY_CONSOLE_OIDC_ISSUER", Reason: fmt.Sprintf("%q is not an http(s) URL", c.ConsoleOIDCIssuer)}
		case u.Scheme == "http" && !(isLoopbackHost(u.Hostname()) && c.AllowLoopback):
			return &Error{Var: "FERRY_CONSOLE_OIDC_ISSUER", Reason: "must be https (http only for a loopback issuer with FERRY_EGRESS_ALLOW_LOOPBACK)"}
		}
	}
	return nil
}

func isLoopbackHost(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(strings.Trim(host, "[]"))
	return ip != nil && ip.IsLoopback()
}

// ConsoleBaseURL is the console's public URL without a trailing slash.
func (c *Config) ConsoleBaseURL() string {
	if c.ConsoleURL != "" {
		return strings.TrimRight(c.ConsoleURL, "/")
	}
	scheme := "http"
	if c.TLSCert != "" {
		scheme = "https"
	}
	return scheme + "://" + c.ConsoleAddr
}

// CheckpointDir is where audit checkpoints go.
func (c *Config) CheckpointDir() string {
	if c.AuditCheckpointDir != "" {
		return c.AuditCheckpointDir
	}
	return filepath.Join(c.DataDir, "audit-checkpoints")
}

func checkHostPort(addr string) error {
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("%q is not host:port", addr)
	}
	n, err := strconv.Atoi(port)
	if err != nil || n < 0 || n > 65535 {
		return fmt.Errorf("port %q is not a number from 0 to 65535", port)
	}
	return nil
}

// checkSentryDSN checks the shape scheme://PUBLICKEY@host/…/PROJECT without
// naming the key in the message (the DSN is a secret).
func checkSentryDSN(s string) error {
	u, err := url.Parse(s)
	if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
		return fmt.Errorf("not a DSN like https://PUBLICKEY@o0.ingest.sentry.io/PROJECT")
	}
	if u.User == nil || u.User.Username() == "" {
		return fmt.Errorf("has no public key before the @")
	}
	path := strings.TrimRight(u.Path, "/")
	if !digits(path[strings.LastIndexByte(path, '/')+1:]) {
		return fmt.Errorf("does not end in a numeric project id")
	}
	return nil
}

func digits(s string) bool {
	if s == "" || len(s) > 20 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

func alnum(s string, lo, hi int) bool {
	if len(s) < lo || len(s) > hi {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z') {
			return false
		}
	}
	return true
}

func checkHTTPURL(s string) error {
	u, err := url.Parse(s)
	if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
		return fmt.Errorf("%q is not an http(s) URL", s)
	}
	return nil
}

// SQLitePath is where the embedded database lives.
func (c *Config) SQLitePath() string { return filepath.Join(c.DataDir, "ferry.db") }

// BackupPath is the backup directory used when no S3 bucket is configured.
func (c *Config) BackupPath() string {
	if c.BackupDir != "" {
		return c.BackupDir
	}
	return filepath.Join(c.DataDir, "backups")
}

// KeyFilePath is where the local KEK lives when no KMS is configured.
func (c *Config) KeyFilePath() string { return filepath.Join(c.DataDir, "kek.json") }

// UsesPostgres reports whether the scale engine is configured.
func (c *Config) UsesPostgres() bool {
	return strings.HasPrefix(c.DatabaseURL, "postgres://") || strings.HasPrefix(c.DatabaseURL, "postgresql://")
}

// Redacted writes the effective configuration with secrets replaced, one
// VAR=value per line, in a stable order.
func (c *Config) Redacted(w io.Writer) {
	for _, f := range fields() {
		v := f.get(c)
		if f.secret && v != "" {
			v = "[redacted]"
		}
		if f.env == "FERRY_DATABASE_URL" && v != "" {
			v = redactURL(c.DatabaseURL)
		}
		fmt.Fprintf(w, "%s=%s\n", f.env, v)
	}
}

// redactURL keeps scheme, host and database name so an operator can see which
// server is used, and drops the user info and query (which may hold passwords).
func redactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return "[redacted]"
	}
	out := u.Scheme + "://"
	if u.User != nil {
		out += "[redacted]@"
	}
	return out + u.Host + u.Path
}
