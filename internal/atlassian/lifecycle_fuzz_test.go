package atlassian

import (
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"ferry/internal/config"
)

// Lifecycle payloads arrive unsigned (Connect signs the token, not the body):
// whatever the body says, an accepted payload is for this app, names the site
// the token was signed for, and the event it was sent to.
func FuzzLifecyclePayload(f *testing.F) {
	f.Add(`{"key":"ferry-bi-connector","clientKey":"ck-1","sharedSecret":"s","baseUrl":"https://a.atlassian.net","eventType":"installed"}`, "ck-1")
	f.Add(`{"key":"ferry-bi-connector","clientKey":"ck-1"}`, "ck-2")
	f.Add(`{"key":"other","clientKey":"ck-1"}`, "ck-1")
	f.Add(`{"clientKey":"ck","clientKey":"x","key":"ferry-bi-connector"}`, "x")
	f.Add(`[]`, "")
	f.Add(`{"key":"ferry-bi-connector","clientKey":"ck-1","eventType":"uninstalled"}`, "ck-1")
	c := &Connect{cfg: config.Config{AddonKey: "ferry-bi-connector"}}
	f.Fuzz(func(t *testing.T, body, iss string) {
		r, _ := http.NewRequest("POST", "/lifecycle/installed", strings.NewReader(body))
		p, err := readPayload(r)
		if err != nil {
			return
		}
		if err := c.checkPayload(&token{claims: Claims{Iss: iss}}, p, "installed"); err != nil {
			return
		}
		if p.Key != "ferry-bi-connector" || p.ClientKey != iss || p.ClientKey == "" || (p.EventType != "" && p.EventType != "installed") {
			t.Fatalf("accepted %+v for issuer %q", p, iss)
		}
	})
}

// Every call with a tenant's credentials goes to the site URL an install
// names: what CheckSiteURL accepts is an https name below an allowed domain
// on port 443, nothing else (no address, user info, query or fragment).
func FuzzCheckSiteURL(f *testing.F) {
	for _, s := range []string{"https://acme.atlassian.net", "https://acme.atlassian.net:443/jira", "http://acme.atlassian.net",
		"https://169.254.169.254", "https://2130706433", "https://a.atlassian.net@evil.example", "https://evil.example#.atlassian.net",
		"https://acme.atlassian.net.", "https://ACME.Atlassian.NET", "https://x.atlassian.net:8443", "https://atlassian.net",
		"https://[::1]", "https://a.atlassian.net\\@evil", "//a.atlassian.net", "https://0x7f.1/"} {
		f.Add(s)
	}
	allowed := []string{"*.atlassian.net"}
	f.Fuzz(func(t *testing.T, raw string) {
		if CheckSiteURL(raw, allowed, false) != nil {
			return
		}
		u, err := url.Parse(raw)
		if err != nil || u.Scheme != "https" || u.User != nil || u.RawQuery != "" || u.Fragment != "" {
			t.Fatalf("accepted %q: %+v %v", raw, u, err)
		}
		host := strings.ToLower(u.Hostname())
		if !strings.HasSuffix(host, ".atlassian.net") || net.ParseIP(host) != nil || (u.Port() != "" && u.Port() != "443") {
			t.Fatalf("accepted %q: host %q port %q", raw, host, u.Port())
		}
		if strings.ContainsAny(host, "@\\/#?% ") {
			t.Fatalf("accepted %q: host %q holds URL syntax", raw, host)
		}
	})
}

// Install keys come from Atlassian's key service over the network: only an
// RSA key of at least 2048 bits in a PEM PUBLIC KEY block is taken.
func FuzzParseRSAPublicKey(f *testing.F) {
	f.Add([]byte("-----BEGIN PUBLIC KEY-----\nMIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA\n-----END PUBLIC KEY-----\n"))
	f.Add([]byte("-----BEGIN RSA PUBLIC KEY-----\nAAAA\n-----END RSA PUBLIC KEY-----\n"))
	f.Add([]byte("not pem"))
	f.Fuzz(func(t *testing.T, b []byte) {
		k, err := parseRSAPublicKey(b)
		if err == nil && (k == nil || k.N.BitLen() < 2048) {
			t.Fatalf("accepted a key of %d bits", k.N.BitLen())
		}
	})
}
