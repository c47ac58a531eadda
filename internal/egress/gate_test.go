package egress

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

// These tests only ever connect to loopback servers they start. Every
// non-loopback destination is refused before a socket is opened; fakeDNS
// fails the test if a name it does not know is looked up.

type fakeDNS struct {
	t     *testing.T
	mu    sync.Mutex
	names map[string][]netip.Addr
	calls []string
}

func (r *fakeDNS) LookupNetIP(_ context.Context, _, host string) ([]netip.Addr, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls = append(r.calls, host)
	a, ok := r.names[host]
	if !ok {
		r.t.Errorf("unexpected DNS lookup of %q", host)
		return nil, errors.New("no such host")
	}
	return a, nil
}

func addrs(s ...string) []netip.Addr {
	var out []netip.Addr
	for _, x := range s {
		out = append(out, netip.MustParseAddr(x))
	}
	return out
}

// site is a loopback HTTP server that counts the requests it gets.
type site struct {
	*httptest.Server
	hits atomic.Int64
}

func newSite(t *testing.T, h http.HandlerFunc) *site {
	s := &site{}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.hits.Add(1)
		if h != nil {
			h(w, r)
			return
		}
		io.WriteString(w, "ok")
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *site) hostPort() string { u, _ := url.Parse(s.URL); return u.Host }

func loopbackGate(t *testing.T, jiraHosts []string, opts ...Option) *Gate {
	t.Helper()
	g, err := New(Config{Region: "us-west-2", AllowLoopback: true, AllowedHostPatterns: jiraHosts}, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return g
}

func counter(t *testing.T, c Category, outcome string) float64 {
	t.Helper()
	mfs, err := prometheus.DefaultGatherer.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "ferry_egress_requests_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			l := map[string]string{}
			for _, lp := range m.GetLabel() {
				l[lp.GetName()] = lp.GetValue()
			}
			if l["category"] == string(c) && l["outcome"] == outcome {
				return m.GetCounter().GetValue()
			}
		}
	}
	t.Fatalf("no ferry_egress_requests_total{category=%q,outcome=%q}", c, outcome)
	return 0
}

func get(ctx context.Context, cl *http.Client, u string) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return "", err
	}
	resp, err := cl.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return string(b), err
}

func wantRefused(t *testing.T, err error, reason string) {
	t.Helper()
	if !errors.Is(err, ErrDestinationRefused) {
		t.Fatalf("err = %v, want ErrDestinationRefused", err)
	}
	var re *RefusedError
	if !errors.As(err, &re) {
		t.Fatalf("err %v carries no *RefusedError", err)
	}
	if !strings.Contains(err.Error(), reason) {
		t.Fatalf("err = %q, want it to mention %q", err, reason)
	}
}

func TestJiraClientReachesAnAllowedSite(t *testing.T) {
	a := newSite(t, nil)
	g := loopbackGate(t, []string{a.hostPort()})
	before := counter(t, Jira, "allowed")
	body, err := get(t.Context(), g.Client(Jira), a.URL+"/rest/api/3/myself")
	if err != nil || body != "ok" {
		t.Fatalf("get = %q, %v", body, err)
	}
	if got := counter(t, Jira, "allowed") - before; got != 1 {
		t.Errorf("allowed counter rose by %v, want 1", got)
	}
}

func TestRequestToUnlistedHostIsRefusedAndCounted(t *testing.T) {
	a, b := newSite(t, nil), newSite(t, nil)
	g := loopbackGate(t, []string{a.hostPort()})
	before := counter(t, Jira, "refused")
	_, err := get(t.Context(), g.Client(Jira), b.URL+"/")
	wantRefused(t, err, "not an allowed destination")
	if b.hits.Load() != 0 {
		t.Fatal("the unlisted server was reached")
	}
	if got := counter(t, Jira, "refused") - before; got != 1 {
		t.Errorf("refused counter rose by %v, want 1", got)
	}
	// The same host is not allowed for another category either.
	_, err = get(t.Context(), g.Client(Sentry), a.URL+"/")
	wantRefused(t, err, "not an allowed destination")
}

func TestRedirectFromAllowedToForbiddenHostIsRefused(t *testing.T) {
	b := newSite(t, nil)
	a := newSite(t, func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, b.URL+"/steal?token=secret", http.StatusFound)
	})
	g := loopbackGate(t, []string{a.hostPort()})
	_, err := get(t.Context(), g.Client(Jira), a.URL+"/")
	wantRefused(t, err, "redirect from "+a.URL+" refused")
	if b.hits.Load() != 0 {
		t.Fatal("the redirect target was reached")
	}
	// Our part of the error never carries the path or query (which may hold
	// tokens); net/http's *url.Error around it does, so callers log ours.
	var re *RefusedError
	if errors.As(err, &re); strings.Contains(re.Error(), "secret") || strings.Contains(re.Error(), "steal") {
		t.Errorf("refusal leaks the path or query: %v", re)
	}
}

func TestRedirectToMetadataServiceIsRefusedBeforeDialing(t *testing.T) {
	for _, target := range []string{
		"http://169.254.169.254/latest/meta-data/iam/security-credentials/",
		"https://169.254.169.254/",
		"http://[fd00:ec2::254]/",
		"http://[::ffff:169.254.169.254]/",
		"http://2852039166/",          // 169.254.169.254 in decimal
		"http://0xa9.0xfe.0xa9.0xfe/", // ... in hex
		"http://0251.0376.0251.0376/", // ... in octal
		"http://169.254.43518/",       // ... shortened
		"http://metadata.google.internal/",
		"ftp://" + "127.0.0.1/",
	} {
		t.Run(target, func(t *testing.T) {
			a := newSite(t, func(w http.ResponseWriter, r *http.Request) {
				http.Redirect(w, r, target, http.StatusFound)
			})
			dns := &fakeDNS{t: t}
			g := loopbackGate(t, []string{a.hostPort()}, WithResolver(dns))
			_, err := get(t.Context(), g.Client(Jira), a.URL+"/")
			wantRefused(t, err, "refused")
			if len(dns.calls) != 0 {
				t.Fatalf("resolved %v before refusing", dns.calls)
			}
		})
	}
}

func TestRedirectsWithinAllowedHostAreFollowedUpToFive(t *testing.T) {
	a := newSite(t, func(w http.ResponseWriter, r *http.Request) {
		n := len(r.URL.Path) - 1 // "/", "/x", "/xx", ...
		if r.URL.Query().Get("stop") != "" && n == 5 {
			io.WriteString(w, "ok")
			return
		}
		http.Redirect(w, r, r.URL.Path+"x?"+r.URL.RawQuery, http.StatusFound)
	})
	g := loopbackGate(t, []string{a.hostPort()})
	// Five redirects then a 200: fine.
	if body, err := get(t.Context(), g.Client(Jira), a.URL+"/?stop=1"); err != nil || body != "ok" {
		t.Fatalf("5 redirects: %q, %v", body, err)
	}
	// Endless redirects: refused at the sixth.
	a.hits.Store(0)
	_, err := get(t.Context(), g.Client(Jira), a.URL+"/")
	wantRefused(t, err, "more than 5 redirects")
	if n := a.hits.Load(); n != 6 {
		t.Errorf("server saw %d requests, want 6", n)
	}
}

func TestNameResolvingToPrivateAddressIsRefused(t *testing.T) {
	dns := &fakeDNS{t: t, names: map[string][]netip.Addr{
		"evil.atlassian.net":                 addrs("10.0.0.1"),
		"rebind.atlassian.net":               addrs("104.192.136.1", "127.0.0.1"),
		"meta.atlassian.net":                 addrs("::ffff:169.254.169.254"),
		"nat64.atlassian.net":                addrs("64:ff9b::a9fe:a9fe"),
		"evil.example":                       addrs("10.0.0.1"),
		"email-smtp.us-west-2.amazonaws.com": addrs("169.254.169.254"),
	}}
	g, err := New(Config{
		Region:              "us-west-2",
		SMTPAddr:            "email-smtp.us-west-2.amazonaws.com:587",
		AllowedHostPatterns: []string{"*.atlassian.net", "evil.example"},
	}, WithResolver(dns))
	if err != nil {
		t.Fatal(err)
	}
	for host, reason := range map[string]string{
		"evil.atlassian.net":   "resolves to 10.0.0.1 is a private address",
		"evil.example":         "resolves to 10.0.0.1 is a private address",
		"rebind.atlassian.net": "resolves to 127.0.0.1 is a loopback address",
		"meta.atlassian.net":   "cloud metadata service",
		"nat64.atlassian.net":  "NAT64",
	} {
		_, err := get(t.Context(), g.Client(Jira), "https://"+host+"/rest/api/3/serverInfo")
		wantRefused(t, err, reason)
	}
	_, err = g.DialContext(t.Context(), SMTP, "tcp", "email-smtp.us-west-2.amazonaws.com:587")
	wantRefused(t, err, "cloud metadata service")
}

func TestPlainHTTPIsRefusedOutsideLoopback(t *testing.T) {
	dns := &fakeDNS{t: t}
	g, err := New(Config{Region: "us-west-2"}, WithResolver(dns))
	if err != nil {
		t.Fatal(err)
	}
	_, err = get(t.Context(), g.Client(Jira), "http://tenant.atlassian.net/")
	wantRefused(t, err, "plain http is refused")
	_, err = get(t.Context(), g.Client(Jira), "https://tenant.atlassian.net:8443/")
	wantRefused(t, err, "not an allowed destination")
	_, err = get(t.Context(), g.Client(Jira), "https://127.0.0.1/")
	wantRefused(t, err, "loopback address")
	if len(dns.calls) != 0 {
		t.Fatalf("resolved %v before refusing", dns.calls)
	}
}

func TestUnusualNotationsAreRefusedEvenForLoopback(t *testing.T) {
	a := newSite(t, nil)
	_, port, _ := net.SplitHostPort(a.hostPort())
	g := loopbackGate(t, []string{"127.0.0.1:*"})
	for h, reason := range map[string]string{
		"2130706433":     "is 127.0.0.1 written in a non-standard IPv4 form",
		"0177.0.0.1":     "is 127.0.0.1 written in a non-standard IPv4 form",
		"0x7f.0.0.1":     "is 127.0.0.1 written in a non-standard IPv4 form",
		"127.1":          "is 127.0.0.1 written in a non-standard IPv4 form",
		"[::1%25lo]":     "zone identifier",
		"[fe80::1%25lo]": "zone identifier",
	} {
		_, err := get(t.Context(), g.Client(Jira), "http://"+h+":"+port+"/")
		wantRefused(t, err, reason)
	}
	if a.hits.Load() != 0 {
		t.Fatal("a non-standard notation reached the server")
	}
}

type sites map[string]bool

func (s sites) KnownSite(_ context.Context, host string) bool { return s[host] }

func TestJiraRequestsNeedAnInstalledTenantSite(t *testing.T) {
	a := newSite(t, nil)
	g := loopbackGate(t, []string{"127.0.0.1:*"})
	g.SetTenantSites(sites{})
	_, err := get(t.Context(), g.Client(Jira), a.URL+"/")
	wantRefused(t, err, "not the Jira site of an installed tenant")
	g.SetTenantSites(sites{"127.0.0.1": true})
	if _, err := get(t.Context(), g.Client(Jira), a.URL+"/"); err != nil {
		t.Fatal(err)
	}
	g.SetTenantSites(nil)
	if _, err := get(t.Context(), g.Client(Jira), a.URL+"/"); err != nil {
		t.Fatal(err)
	}
}

func TestTLSToLoopbackServer(t *testing.T) {
	s := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") }))
	defer s.Close()
	u, _ := url.Parse(s.URL)
	g := loopbackGate(t, []string{u.Host}, WithTLSConfig(s.Client().Transport.(*http.Transport).TLSClientConfig))
	if body, err := get(t.Context(), g.Client(Jira), s.URL+"/"); err != nil || body != "ok" {
		t.Fatalf("get = %q, %v", body, err)
	}
}

func TestSMTPDialGoesThroughTheGate(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			io.WriteString(c, "220 ready\r\n")
			c.Close()
		}
	}()
	g, err := New(Config{Region: "us-west-2", AllowLoopback: true, SMTPAddr: ln.Addr().String()})
	if err != nil {
		t.Fatal(err)
	}
	before := counter(t, SMTP, "allowed")
	c, err := g.DialContext(t.Context(), SMTP, "tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	line, _ := io.ReadAll(c)
	c.Close()
	if string(line) != "220 ready\r\n" {
		t.Fatalf("read %q", line)
	}
	if counter(t, SMTP, "allowed")-before != 1 {
		t.Error("allowed dial not counted")
	}
	_, err = g.DialContext(t.Context(), SMTP, "tcp", "127.0.0.1:1")
	wantRefused(t, err, "not an allowed destination")
	_, err = g.DialContext(t.Context(), SMTP, "udp", ln.Addr().String())
	wantRefused(t, err, `network "udp" is refused`)
	_, err = g.DialContext(t.Context(), Jira, "tcp", ln.Addr().String())
	wantRefused(t, err, "not an allowed destination")
}

func TestConnectTimeCheckRefusesTheActualAddress(t *testing.T) {
	g := loopbackGate(t, nil)
	ctl := g.controlConn(S3)
	for _, a := range []string{"10.0.0.1:443", "169.254.169.254:80", "[fd00:ec2::254]:80", "[::ffff:10.0.0.1]:443"} {
		wantRefused(t, ctl("tcp4", a, nil), "refused")
	}
	if err := ctl("tcp4", "127.0.0.1:443", nil); err != nil {
		t.Errorf("loopback refused with AllowLoopback: %v", err)
	}
}

func TestClientsIgnoreProxyEnvironment(t *testing.T) {
	g := loopbackGate(t, nil)
	for _, c := range Categories() {
		tr := g.Client(c).Transport.(*gatedTransport).next.(*http.Transport)
		if tr.Proxy != nil {
			t.Errorf("%s client uses a proxy; the gate could not see the real address", c)
		}
	}
}

func TestUnknownCategoryRefusesEverything(t *testing.T) {
	a := newSite(t, nil)
	g := loopbackGate(t, []string{a.hostPort()})
	_, err := get(t.Context(), g.Client(Category("analytics")), a.URL+"/")
	wantRefused(t, err, "unknown category")
	if a.hits.Load() != 0 {
		t.Fatal("unknown category reached the server")
	}
	if counter(t, "other", "refused") < 1 {
		t.Error("refusal not counted under category=other")
	}
}
