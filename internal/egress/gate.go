package egress

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"strings"
	"sync/atomic"
	"syscall"
	"time"
)

// Category is a kind of destination. Each has its own allowlist, its own
// client and its own metric labels.
type Category string

// The destination categories. Jira, InstallKeys and OAuth are Atlassian, the
// parent product; S3, KMS and SMTP are the hosting provider; Sentry is
// Sentry; StaffSSO is the vendor's own identity provider, which signs staff
// in to the console and is sent no customer data. Nothing else exists.
const (
	Jira        Category = "jira"         // installed tenants' Jira sites
	InstallKeys Category = "install_keys" // Connect install-key service
	OAuth       Category = "oauth"        // Atlassian OAuth server (act-as-user tokens)
	Sentry      Category = "sentry"       // upstream Sentry (scrubbed browser errors)
	SMTP        Category = "smtp"         // mail relay
	S3          Category = "s3"           // backups
	KMS         Category = "kms"          // key-encryption key
	Database    Category = "database"     // PostgreSQL (FERRY_DATABASE_URL): the hosting provider's database
	StaffSSO    Category = "staff_sso"    // OIDC issuer of staff single sign-on (discovery, keys, token exchange)
	ForgeKeys   Category = "forge_keys"   // Forge's key set (JWKS) that signs Forge Invocation Tokens
	ForgeAPI    Category = "forge_api"    // Atlassian's API gateway for a Forge remote: product API, GraphQL, storage
)

// Categories lists every category in a stable order.
func Categories() []Category {
	return []Category{Jira, InstallKeys, OAuth, Sentry, SMTP, S3, KMS, Database, StaffSSO, ForgeKeys, ForgeAPI}
}

// TenantSites decides whether host is the Jira site of an installed tenant.
type TenantSites interface {
	KnownSite(ctx context.Context, host string) bool
}

// Resolver resolves host names; *net.Resolver satisfies it. Tests inject
// one to make a name resolve to a refused address.
type Resolver interface {
	LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error)
}

// Option configures New.
type Option func(*options)

type options struct {
	resolver  Resolver
	tlsConfig *tls.Config
}

// WithResolver replaces net.DefaultResolver.
func WithResolver(r Resolver) Option { return func(o *options) { o.resolver = r } }

// WithTLSConfig sets the TLS client configuration (e.g. RootCAs of a test
// server). It is cloned.
func WithTLSConfig(c *tls.Config) Option { return func(o *options) { o.tlsConfig = c.Clone() } }

// MaxRedirects is the number of redirects a client follows, each re-checked.
const MaxRedirects = 5

const dialTimeout = 10 * time.Second

// Gate is the single way out of Ferry. Build it once at start-up with New.
type Gate struct {
	cfg      Config
	registry Registry
	resolver Resolver
	allow    map[Category][]hostPattern
	clients  map[Category]*http.Client
	tenants  atomic.Pointer[tenantSitesBox]
	// dbSockets are the directories of PostgreSQL unix sockets in
	// FERRY_DATABASE_URL, each ending in "/".
	dbSockets []string
}

type tenantSitesBox struct{ ts TenantSites }

// New checks cfg (CheckRegion, declared subprocessors, endpoint syntax) and
// builds the gate. Every destination other than Atlassian's must be
// operated by a declared subprocessor.
func New(cfg Config, opts ...Option) (*Gate, error) {
	cfg = cfg.withDefaults()
	o := options{resolver: net.DefaultResolver}
	for _, opt := range opts {
		opt(&o)
	}
	if err := CheckRegion(cfg); err != nil {
		return nil, err
	}
	reg, err := NewRegistry(cfg.Subprocessors)
	if err != nil {
		return nil, err
	}
	g := &Gate{cfg: cfg, registry: reg, resolver: o.resolver, allow: map[Category][]hostPattern{}}
	if err := g.buildAllowlists(); err != nil {
		return nil, err
	}
	g.clients = map[Category]*http.Client{}
	for _, c := range Categories() {
		g.clients[c] = g.newClient(c, o.tlsConfig)
	}
	return g, nil
}

func (g *Gate) buildAllowlists() error {
	cfg := g.cfg
	var errs []error
	add := func(c Category, p hostPattern) { g.allow[c] = append(g.allow[c], p) }

	for _, s := range cfg.AllowedHostPatterns {
		p, err := parsePattern(s)
		if err != nil {
			errs = append(errs, cfgErr(envAllowedHosts, err.Error()))
			continue
		}
		if !p.wildcard && isLoopbackPattern(p) && !cfg.AllowLoopback {
			errs = append(errs, cfgErr(envAllowedHosts, fmt.Sprintf("%q is loopback; needs FERRY_EGRESS_ALLOW_LOOPBACK", s)))
			continue
		}
		add(Jira, p)
	}
	// Atlassian's own services: the parent product, not a third party.
	for _, e := range []struct {
		c       Category
		setting string
		raw     string
	}{{InstallKeys, envInstallKeysURL, cfg.InstallKeysURL}, {OAuth, envOAuthURL, cfg.OAuthURL}} {
		p, _, err := urlPattern(e.setting, e.raw, cfg.AllowLoopback)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if !isLoopbackPattern(p) && p.host != "atlassian.com" && !strings.HasSuffix(p.host, ".atlassian.com") {
			errs = append(errs, cfgErr(e.setting, fmt.Sprintf("%s is not an Atlassian host (*.atlassian.com)", p.host)))
			continue
		}
		add(e.c, p)
	}
	// Forge: Atlassian's key set and API gateway, named by their settings.
	for _, e := range []struct {
		c       Category
		setting string
		raw     string
	}{{ForgeKeys, envForgeJWKSURL, cfg.ForgeJWKSURL}, {ForgeAPI, envForgeGraphQLURL, cfg.ForgeGraphQLURL}, {ForgeAPI, envForgeStorageURL, cfg.ForgeStorageURL}} {
		if e.raw == "" {
			continue
		}
		p, _, err := urlPattern(e.setting, e.raw, cfg.AllowLoopback)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if !isLoopbackPattern(p) && !atlassianHost(p.host) {
			errs = append(errs, cfgErr(e.setting, fmt.Sprintf("%s is not an Atlassian host (*.atlassian.com, *.atlassian-dev.net)", p.host)))
			continue
		}
		if !slices.ContainsFunc(g.allow[e.c], func(q hostPattern) bool { return q.String() == p.String() }) {
			add(e.c, p)
		}
	}
	// Subprocessor destinations: each must be declared.
	declared := func(setting string, p hostPattern) error {
		if isLoopbackPattern(p) {
			return nil
		}
		if _, ok := g.registry.OperatorOf(p.host); !ok {
			return cfgErr(setting, fmt.Sprintf("%s is not operated by a declared subprocessor; declare it before sending data there", p.host))
		}
		return nil
	}
	if cfg.SentryUpstreamDSN != "" {
		p, _, err := urlPattern(envSentryDSN, cfg.SentryUpstreamDSN, cfg.AllowLoopback)
		if err == nil {
			err = declared(envSentryDSN, p)
		}
		if err != nil {
			errs = append(errs, err)
		} else {
			add(Sentry, p)
		}
	}
	if cfg.SMTPAddr != "" {
		p, err := smtpPattern(cfg.SMTPAddr, cfg.AllowLoopback)
		if err == nil {
			err = declared(envSMTPAddr, p)
		}
		if err != nil {
			errs = append(errs, err)
		} else {
			add(SMTP, p)
		}
	}
	if cfg.S3Bucket != "" || cfg.S3Endpoint != "" {
		raw := cfg.S3Endpoint
		if raw == "" {
			raw = "https://s3." + cfg.S3Region + ".amazonaws.com"
		}
		p, _, err := urlPattern(envS3Endpoint, raw, cfg.AllowLoopback)
		if err == nil {
			err = declared(envS3Endpoint, p)
		}
		if err != nil {
			errs = append(errs, err)
		} else {
			add(S3, p)
			// Virtual-hosted-style requests go to <bucket>.<endpoint>.
			if cfg.S3Bucket != "" && !isLoopbackPattern(p) && !strings.HasPrefix(p.host, cfg.S3Bucket+".") {
				if vp, err := parsePattern(cfg.S3Bucket + "." + p.host + ":" + p.port); err == nil {
					add(S3, vp)
				}
			}
		}
	}
	if cfg.KMSKeyURI != "" || cfg.KMSEndpoint != "" {
		var raws []string
		if cfg.KMSEndpoint != "" {
			raws = []string{cfg.KMSEndpoint}
		} else if region, err := kmsKeyRegion(cfg.KMSKeyURI); err == nil {
			raws = []string{"https://kms." + region + ".amazonaws.com", "https://kms-fips." + region + ".amazonaws.com"}
		}
		for _, raw := range raws {
			p, _, err := urlPattern(envKMSEndpoint, raw, cfg.AllowLoopback)
			if err == nil {
				err = declared(envKMSEndpoint, p)
			}
			if err != nil {
				errs = append(errs, err)
				continue
			}
			add(KMS, p)
		}
	}
	for _, hp := range cfg.DatabaseHosts {
		if strings.HasPrefix(hp, "/") {
			g.dbSockets = append(g.dbSockets, strings.TrimSuffix(hp, "/")+"/")
			continue
		}
		p, err := databasePattern(hp)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		add(Database, p)
	}
	// The staff identity provider: one issuer, checked like any URL setting.
	if cfg.StaffSSOIssuer != "" {
		if p, _, err := urlPattern(envStaffSSOIssuer, cfg.StaffSSOIssuer, cfg.AllowLoopback); err != nil {
			errs = append(errs, err)
		} else {
			add(StaffSSO, p)
		}
	}
	return errors.Join(errs...)
}

// atlassianHost reports whether host is Atlassian's: the parent product.
func atlassianHost(host string) bool {
	for _, d := range []string{"atlassian.com", "atlassian-dev.net"} {
		if host == d || strings.HasSuffix(host, "."+d) {
			return true
		}
	}
	return false
}

// databasePattern accepts the host:port of FERRY_DATABASE_URL. The database
// is the operator's own, usually on the hosting provider's private network,
// so private and loopback addresses are allowed for it (checkDatabaseAddr);
// a name under rds.amazonaws.com must be in the hosting region.
func databasePattern(hostport string) (hostPattern, error) {
	host, port, err := net.SplitHostPort(hostport)
	if err != nil {
		return hostPattern{}, cfgErr(envDatabaseURL, "database host: want host:port")
	}
	h, err := ParseHost(host)
	if err != nil {
		return hostPattern{}, cfgErr(envDatabaseURL, err.Error())
	}
	if h.IsIP() {
		if err := checkDatabaseAddr(h.Addr); err != nil {
			var re *RefusedError
			errors.As(err, &re)
			return hostPattern{}, cfgErr(envDatabaseURL, re.Reason)
		}
	}
	p, err := parsePattern(net.JoinHostPort(h.String(), port))
	if err != nil {
		return hostPattern{}, cfgErr(envDatabaseURL, err.Error())
	}
	return p, nil
}

// checkDatabaseAddr is CheckAddr for the database: private and loopback
// addresses are where a database normally is, but never a metadata service,
// link-local, multicast, reserved or unspecified address.
func checkDatabaseAddr(a netip.Addr) error {
	u := a.Unmap()
	if _, meta := metadataAddrs[u]; !meta && u.Zone() == "" && (u.IsLoopback() || u.IsPrivate()) {
		return nil
	}
	return CheckAddr(a, false)
}

// checkAddr applies the address policy of category c.
func (g *Gate) checkAddr(c Category, a netip.Addr) error {
	if c == Database {
		return checkDatabaseAddr(a)
	}
	return CheckAddr(a, g.cfg.AllowLoopback)
}

func smtpPattern(addr string, allowLoopback bool) (hostPattern, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return hostPattern{}, cfgErr(envSMTPAddr, "want host:port, e.g. email-smtp.us-west-2.amazonaws.com:587")
	}
	h, err := ParseHost(host)
	if err != nil {
		return hostPattern{}, cfgErr(envSMTPAddr, err.Error())
	}
	if h.IsIP() {
		if err := CheckAddr(h.Addr, allowLoopback); err != nil {
			return hostPattern{}, cfgErr(envSMTPAddr, err.Error())
		}
	} else if h.Name == "localhost" && !allowLoopback {
		return hostPattern{}, cfgErr(envSMTPAddr, "loopback relay needs FERRY_EGRESS_ALLOW_LOOPBACK")
	}
	p, err := parsePattern(net.JoinHostPort(h.String(), port))
	if err != nil {
		return hostPattern{}, cfgErr(envSMTPAddr, err.Error())
	}
	return p, nil
}

func isLoopbackPattern(p hostPattern) bool {
	if p.wildcard {
		return false
	}
	h, err := ParseHost(p.host)
	return err == nil && isLoopbackHost(h)
}

// Registry returns the declared subprocessors.
func (g *Gate) Registry() Registry { return g.registry }

// Region returns the hosting region the gate was checked against.
func (g *Gate) Region() string { return g.cfg.Region }

// Allowlist returns the allowed destinations of a category as
// "host:port" patterns, for the statement page and `ferry verify`.
func (g *Gate) Allowlist(c Category) []string {
	var out []string
	for _, p := range g.allow[c] {
		out = append(out, p.String())
	}
	return out
}

// SetTenantSites installs the check that a Jira host belongs to an installed
// tenant; nil leaves only the host-pattern check. Safe for concurrent use.
func (g *Gate) SetTenantSites(ts TenantSites) {
	if ts == nil {
		g.tenants.Store(nil)
		return
	}
	g.tenants.Store(&tenantSitesBox{ts})
}

// Client returns the HTTP client of a category. Every request, and every
// redirect hop, is checked against the category's allowlist; every
// connection is checked against CheckAddr after DNS resolution. Proxies
// from the environment are ignored: a proxy would hide the real address.
func (g *Gate) Client(c Category) *http.Client {
	if cl, ok := g.clients[c]; ok {
		return cl
	}
	// An unknown category gets a client that refuses everything.
	return &http.Client{Transport: refuseAll{c}, CheckRedirect: func(*http.Request, []*http.Request) error {
		return &RefusedError{Category: c, Reason: "unknown category"}
	}}
}

type refuseAll struct{ c Category }

func (r refuseAll) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Body != nil {
		req.Body.Close()
	}
	countRefused(r.c)
	return nil, &RefusedError{Category: r.c, Dest: req.URL.Host, Reason: "unknown category"}
}

func (g *Gate) newClient(c Category, tlsConf *tls.Config) *http.Client {
	t := &http.Transport{
		Proxy: nil,
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			return g.dial(ctx, c, network, addr, false)
		},
		TLSClientConfig:       tlsConf,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          100,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		ExpectContinueTimeout: time.Second,
	}
	return &http.Client{
		Transport: &gatedTransport{g: g, c: c, next: t},
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if len(via) > MaxRedirects {
				countRefused(c)
				return &RefusedError{Category: c, Dest: safeDest(req.URL), Reason: fmt.Sprintf("more than %d redirects", MaxRedirects)}
			}
			if err := g.checkURL(req.Context(), c, req.URL); err != nil {
				countRefused(c)
				return fmt.Errorf("redirect from %s refused: %w", safeDest(via[len(via)-1].URL), err)
			}
			return nil
		},
	}
}

// gatedTransport checks each request before it is sent and counts it.
type gatedTransport struct {
	g    *Gate
	c    Category
	next http.RoundTripper
}

func (t *gatedTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if err := t.g.checkURL(req.Context(), t.c, req.URL); err != nil {
		if req.Body != nil {
			req.Body.Close()
		}
		countRefused(t.c)
		return nil, err
	}
	resp, err := t.next.RoundTrip(req)
	if errors.Is(err, ErrDestinationRefused) {
		countRefused(t.c)
	} else {
		countAllowed(t.c)
	}
	return resp, err
}

// safeDest is scheme://host[:port] only: no userinfo, path or query, which
// may carry secrets.
func safeDest(u *url.URL) string {
	if u == nil {
		return ""
	}
	return u.Scheme + "://" + u.Host
}

// checkURL applies the category policy to one URL before any resolution.
func (g *Gate) checkURL(ctx context.Context, c Category, u *url.URL) error {
	dest := safeDest(u)
	h, err := ParseHost(u.Hostname())
	if err != nil {
		return &RefusedError{Category: c, Dest: dest, Reason: err.Error()}
	}
	if h.IsIP() {
		// Name the address problem (e.g. "cloud metadata service") first.
		if err := CheckAddr(h.Addr, g.cfg.AllowLoopback); err != nil {
			var re *RefusedError
			errors.As(err, &re)
			return &RefusedError{Category: c, Dest: dest, Reason: re.Reason}
		}
	}
	switch u.Scheme {
	case "https":
	case "http":
		if !g.cfg.AllowLoopback || !isLoopbackHost(h) {
			return &RefusedError{Category: c, Dest: dest, Reason: "plain http is refused; only https"}
		}
	default:
		return &RefusedError{Category: c, Dest: dest, Reason: fmt.Sprintf("scheme %q is refused", u.Scheme)}
	}
	if err := g.checkHost(ctx, c, h, portOf(u), true); err != nil {
		var re *RefusedError
		if errors.As(err, &re) {
			re.Dest = dest
		}
		return err
	}
	return nil
}

// checkHost applies the allowlist of c to a parsed host and port.
func (g *Gate) checkHost(ctx context.Context, c Category, h Host, port string, askTenants bool) error {
	dest := net.JoinHostPort(h.String(), port)
	if h.IsIP() {
		if err := g.checkAddr(c, h.Addr); err != nil {
			var re *RefusedError
			errors.As(err, &re)
			return &RefusedError{Category: c, Dest: dest, Reason: re.Reason}
		}
	}
	host := h.String()
	if !slices.ContainsFunc(g.allow[c], func(p hostPattern) bool { return p.match(host, port) }) {
		return &RefusedError{Category: c, Dest: dest, Reason: "not an allowed destination for this category"}
	}
	if c == Jira && askTenants {
		if b := g.tenants.Load(); b != nil && !b.ts.KnownSite(ctx, host) {
			return &RefusedError{Category: c, Dest: dest, Reason: "not the Jira site of an installed tenant"}
		}
	}
	return nil
}

// DialContext opens a non-HTTP connection (e.g. SMTP) through the gate:
// host allowlist of the category, then CheckAddr on the resolved addresses
// and again on the address actually connected.
func (g *Gate) DialContext(ctx context.Context, c Category, network, addr string) (net.Conn, error) {
	conn, err := g.dial(ctx, c, network, addr, true)
	if errors.Is(err, ErrDestinationRefused) {
		countRefused(c)
	} else if err == nil {
		countAllowed(c)
	}
	return conn, err
}

func (g *Gate) dial(ctx context.Context, c Category, network, addr string, askTenants bool) (net.Conn, error) {
	switch network {
	case "tcp", "tcp4", "tcp6":
	case "unix":
		// A PostgreSQL socket in a directory of FERRY_DATABASE_URL: local,
		// but only the one configured.
		if c == Database && slices.ContainsFunc(g.dbSockets, func(dir string) bool { return strings.HasPrefix(addr, dir) && !strings.Contains(addr[len(dir):], "/") }) {
			d := &net.Dialer{Timeout: dialTimeout}
			return d.DialContext(ctx, network, addr)
		}
		return nil, &RefusedError{Category: c, Dest: addr, Reason: "unix socket is not the configured database"}
	default:
		return nil, &RefusedError{Category: c, Dest: addr, Reason: fmt.Sprintf("network %q is refused", network)}
	}
	hostStr, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, &RefusedError{Category: c, Dest: addr, Reason: "want host:port"}
	}
	h, err := ParseHost(hostStr)
	if err != nil {
		return nil, &RefusedError{Category: c, Dest: addr, Reason: err.Error()}
	}
	if err := g.checkHost(ctx, c, h, port, askTenants); err != nil {
		return nil, err
	}
	var ips []netip.Addr
	if h.IsIP() {
		ips = []netip.Addr{h.Addr}
	} else {
		ips, err = g.resolver.LookupNetIP(ctx, ipNetwork(network), h.Name)
		if err != nil {
			return nil, fmt.Errorf("egress: resolve %s: %w", h.Name, err)
		}
		if len(ips) == 0 {
			return nil, fmt.Errorf("egress: resolve %s: no addresses", h.Name)
		}
	}
	// Refuse the name if any answer is refused: a name that can resolve to
	// an internal address is not one we talk to (DNS rebinding).
	for _, ip := range ips {
		if err := g.checkAddr(c, ip); err != nil {
			var re *RefusedError
			errors.As(err, &re)
			return nil, &RefusedError{Category: c, Dest: addr, Reason: "resolves to " + re.Reason}
		}
	}
	d := &net.Dialer{Timeout: dialTimeout, Control: g.controlConn(c)}
	var firstErr error
	for _, ip := range ips {
		conn, err := d.DialContext(ctx, network, net.JoinHostPort(ip.Unmap().String(), port))
		if err == nil {
			return conn, nil
		}
		if firstErr == nil {
			firstErr = err
		}
		if ctx.Err() != nil {
			break
		}
	}
	return nil, firstErr
}

// controlConn re-checks the address the socket is about to connect to: the
// last word, whatever resolved it.
func (g *Gate) controlConn(c Category) func(network, address string, _ syscall.RawConn) error {
	return func(network, address string, _ syscall.RawConn) error {
		ap, err := netip.ParseAddrPort(address)
		if err != nil {
			return &RefusedError{Category: c, Dest: address, Reason: "unparseable connect address"}
		}
		if err := g.checkAddr(c, ap.Addr()); err != nil {
			var re *RefusedError
			errors.As(err, &re)
			return &RefusedError{Category: c, Dest: address, Reason: re.Reason}
		}
		return nil
	}
}

func ipNetwork(network string) string {
	switch network {
	case "tcp4":
		return "ip4"
	case "tcp6":
		return "ip6"
	}
	return "ip"
}
