package egress

import (
	"errors"
	"fmt"
	"slices"
	"strings"
)

// Setting names used in error messages; internal/config reads these
// environment variables into Config.
const (
	envRegion         = "FERRY_REGION"
	envSubprocessors  = "FERRY_SUBPROCESSORS"
	envS3Endpoint     = "FERRY_S3_ENDPOINT"
	envS3Bucket       = "FERRY_S3_BUCKET"
	envS3Region       = "FERRY_S3_REGION"
	envKEK            = "FERRY_KEK"
	envKMSEndpoint    = "FERRY_KMS_ENDPOINT"
	envSentryDSN      = "FERRY_SENTRY_UPSTREAM_DSN"
	envSMTPAddr       = "FERRY_SMTP_ADDR"
	envAllowedHosts   = "FERRY_CONNECT_ALLOWED_HOSTS"
	envInstallKeysURL = "FERRY_CONNECT_INSTALL_KEYS_URL"
	envOAuthURL       = "FERRY_CONNECT_OAUTH_URL"
	envDatabaseURL    = "FERRY_DATABASE_URL"
	envStaffSSOIssuer = "FERRY_CONSOLE_OIDC_ISSUER"
)

// Forge's settings, named in its endpoints' errors.
const (
	envForgeJWKSURL    = "FERRY_FORGE_JWKS_URL"
	envForgeGraphQLURL = "FERRY_FORGE_GRAPHQL_URL"
	envForgeStorageURL = "FERRY_FORGE_STORAGE_URL"
)

// Defaults for the Atlassian endpoints Ferry talks to.
const (
	DefaultInstallKeysURL = "https://connect-install-keys.atlassian.com"
	DefaultOAuthURL       = "https://oauth-2-authorization-server.services.atlassian.com"
)

// DefaultAllowedHostPatterns returns the host patterns of Jira Cloud sites
// (production, legacy and Atlassian's developer sites).
func DefaultAllowedHostPatterns() []string {
	return []string{"*.atlassian.net", "*.jira.com", "*.jira-dev.com"}
}

// Config says where Ferry is hosted and where it may send data. Field
// comments name the environment variable internal/config reads.
type Config struct {
	// Region is the hosting region, e.g. us-west-2 (FERRY_REGION). Required.
	Region string
	// Subprocessors are the declared subcontractors; nil means
	// DefaultSubprocessors(Region). Every non-Atlassian destination must be
	// operated by one of them.
	Subprocessors []Subprocessor

	// S3Endpoint (FERRY_S3_ENDPOINT) is an optional S3 endpoint URL; empty
	// means the AWS regional endpoint of S3Region. S3Bucket (FERRY_S3_BUCKET)
	// holds backups; S3Region (FERRY_S3_REGION) is the bucket's region and
	// defaults to Region.
	S3Endpoint, S3Bucket, S3Region string
	// KMSKeyURI is the KEK when it lives in AWS KMS (FERRY_KEK), e.g.
	// aws-kms://arn:aws:kms:us-west-2:111122223333:key/<id>. Empty when the
	// KEK is a local key file.
	KMSKeyURI string
	// KMSEndpoint (FERRY_KMS_ENDPOINT) overrides the KMS endpoint URL; empty
	// means https://kms.<key region>.amazonaws.com.
	KMSEndpoint string
	// SentryUpstreamDSN is the upstream Sentry DSN that scrubbed error
	// events are forwarded to (FERRY_SENTRY_UPSTREAM_DSN); empty disables
	// the Sentry category.
	SentryUpstreamDSN string
	// SMTPAddr is host:port of the mail relay (FERRY_SMTP_ADDR).
	SMTPAddr string
	// AllowLoopback permits http:// and 127.0.0.0/8, ::1 destinations, for
	// the simulator, the demo and tests only (FERRY_EGRESS_ALLOW_LOOPBACK).
	AllowLoopback bool
	// AllowedHostPatterns are the Jira site host patterns
	// (FERRY_CONNECT_ALLOWED_HOSTS, comma separated); nil means
	// DefaultAllowedHostPatterns(). "*.example.com" matches any host below
	// example.com; a pattern may end in ":port" or ":*" (default: 443).
	AllowedHostPatterns []string
	// InstallKeysURL is Atlassian's Connect install-key service
	// (FERRY_CONNECT_INSTALL_KEYS_URL); empty means DefaultInstallKeysURL.
	InstallKeysURL string
	// DatabaseHosts are the PostgreSQL servers of FERRY_DATABASE_URL as
	// host:port (a unix socket directory as its path): the only destinations
	// of the Database category. Empty for SQLite.
	DatabaseHosts []string
	// OAuthURL is Atlassian's OAuth authorization server used for
	// act-as-user token exchange (FERRY_CONNECT_OAUTH_URL); empty means
	// DefaultOAuthURL.
	OAuthURL string
	// StaffSSOIssuer is the OIDC issuer that signs staff in to the console
	// (FERRY_CONSOLE_OIDC_ISSUER); empty: no single sign-on.
	StaffSSOIssuer string
	// Forge (empty when Ferry runs without Forge): the key set that signs
	// Forge Invocation Tokens (FERRY_FORGE_JWKS_URL, category ForgeKeys), and
	// Atlassian's API gateway — GraphQL (FERRY_FORGE_GRAPHQL_URL), whose
	// host also serves every installation's app.apiBaseUrl, and Forge
	// storage (FERRY_FORGE_STORAGE_URL) — category ForgeAPI.
	ForgeJWKSURL, ForgeGraphQLURL, ForgeStorageURL string
}

func (c Config) withDefaults() Config {
	if c.Subprocessors == nil {
		c.Subprocessors = DefaultSubprocessors(c.Region)
	}
	if c.AllowedHostPatterns == nil {
		c.AllowedHostPatterns = DefaultAllowedHostPatterns()
	}
	if c.InstallKeysURL == "" {
		c.InstallKeysURL = DefaultInstallKeysURL
	}
	if c.OAuthURL == "" {
		c.OAuthURL = DefaultOAuthURL
	}
	if c.S3Region == "" {
		c.S3Region = c.Region
	}
	return c
}

// Subprocessor is one subcontractor that receives data from Ferry, as
// declared in the statement's "Our subcontractors" section.
type Subprocessor struct {
	Name           string   // short name shown first, e.g. "Amazon Web Services"
	Entity         string   // legal entity and seat
	Location       string   // where the data is processed
	Purpose        string   // why it receives data
	DataCategories []string // which data it receives
	Hosts          []string // host patterns it operates, e.g. "*.amazonaws.com"
	PrivacyURL     string   // its privacy statement
}

// awsRegionNames gives the statement's wording for common AWS regions.
var awsRegionNames = map[string]string{
	"us-east-1":      "N. Virginia, USA",
	"us-east-2":      "Ohio, USA",
	"us-west-1":      "N. California, USA",
	"us-west-2":      "Oregon, USA",
	"ca-central-1":   "Canada (Central)",
	"eu-central-1":   "Frankfurt, Germany",
	"eu-west-1":      "Ireland",
	"eu-west-2":      "London, United Kingdom",
	"eu-west-3":      "Paris, France",
	"eu-north-1":     "Stockholm, Sweden",
	"ap-southeast-2": "Sydney, Australia",
	"ap-northeast-1": "Tokyo, Japan",
}

// RegionLocation returns a human description of an AWS region, e.g.
// "Oregon, USA (us-west-2)".
func RegionLocation(region string) string {
	if n, ok := awsRegionNames[region]; ok {
		return n + " (" + region + ")"
	}
	return "AWS region " + region
}

// DefaultSubprocessors returns the statement's subcontractors: Amazon Web
// Services hosting Ferry in region, and Sentry for browser error tracking.
func DefaultSubprocessors(region string) []Subprocessor {
	return []Subprocessor{
		{
			Name:     "Amazon Web Services",
			Entity:   "Amazon Web Services, Inc., Seattle, Washington, USA",
			Location: RegionLocation(region),
			Purpose:  "Hosting of the app: servers, database, backups, key management and outbound email",
			DataCategories: []string{
				"Account Data (instance and license information)",
				"User-Account Data (pseudonymised; API tokens encrypted)",
				"Logs Data (request metadata; requests encrypted, 60 days)",
				"Support Data (encrypted problem reports)",
				"Billing and purchaser contact data",
				"Backups (encrypted)",
			},
			Hosts:      []string{"*.amazonaws.com"},
			PrivacyURL: "https://aws.amazon.com/privacy/",
		},
		{
			Name:     "Sentry",
			Entity:   "Functional Software, Inc., San Francisco, California, USA",
			Location: "United States",
			Purpose:  "Real-time error tracking of the app's code running in end users' browsers, to reproduce and fix crashes",
			DataCategories: []string{
				"Error messages and stack traces, scrubbed of personal data",
				"Browser type and version",
				"Operating system and version",
			},
			Hosts:      []string{"sentry.io", "*.sentry.io"},
			PrivacyURL: "https://sentry.io/privacy/",
		},
	}
}

// Registry is the validated list of subprocessors, in declared order (the
// order the statement page shows).
type Registry struct {
	subs []Subprocessor
}

// NewRegistry validates subs: each needs a unique name, a purpose, a
// location and valid host patterns.
func NewRegistry(subs []Subprocessor) (Registry, error) {
	var errs []error
	seen := map[string]bool{}
	for i, s := range subs {
		switch {
		case strings.TrimSpace(s.Name) == "":
			errs = append(errs, cfgErr(envSubprocessors, fmt.Sprintf("subprocessor #%d has no name", i+1)))
			continue
		case seen[strings.ToLower(s.Name)]:
			errs = append(errs, cfgErr(envSubprocessors, fmt.Sprintf("subprocessor %q is listed twice", s.Name)))
		case s.Purpose == "" || s.Location == "":
			errs = append(errs, cfgErr(envSubprocessors, fmt.Sprintf("subprocessor %q needs a purpose and a location", s.Name)))
		}
		seen[strings.ToLower(s.Name)] = true
		for _, h := range s.Hosts {
			if _, err := parsePattern(h); err != nil {
				errs = append(errs, cfgErr(envSubprocessors, fmt.Sprintf("subprocessor %q: %v", s.Name, err)))
			}
		}
	}
	if err := errors.Join(errs...); err != nil {
		return Registry{}, err
	}
	r := Registry{subs: make([]Subprocessor, len(subs))}
	for i, s := range subs {
		r.subs[i] = cloneSub(s)
	}
	return r, nil
}

func cloneSub(s Subprocessor) Subprocessor {
	s.DataCategories = slices.Clone(s.DataCategories)
	s.Hosts = slices.Clone(s.Hosts)
	return s
}

// All returns a copy of the subprocessors in declared order.
func (r Registry) All() []Subprocessor {
	out := make([]Subprocessor, len(r.subs))
	for i, s := range r.subs {
		out[i] = cloneSub(s)
	}
	return out
}

// Lookup finds a subprocessor by name (case-insensitive).
func (r Registry) Lookup(name string) (Subprocessor, bool) {
	for _, s := range r.subs {
		if strings.EqualFold(s.Name, name) {
			return cloneSub(s), true
		}
	}
	return Subprocessor{}, false
}

// OperatorOf returns the subprocessor whose Hosts match host (a DNS name).
func (r Registry) OperatorOf(host string) (Subprocessor, bool) {
	for _, s := range r.subs {
		for _, h := range s.Hosts {
			p, err := parsePattern(h)
			if err == nil && p.matchHost(host) {
				return cloneSub(s), true
			}
		}
	}
	return Subprocessor{}, false
}
