package egress

import (
	"strings"
	"testing"
)

// Host patterns are configuration (FERRY_CONNECT_ALLOWED_HOSTS): an accepted
// pattern never matches an IP address, and a wildcard never matches its bare
// domain or a name outside it.
func FuzzParsePattern(f *testing.F) {
	for _, s := range []string{"*.atlassian.net", "127.0.0.1:*", "localhost:*", "*.com", "*", "*.*.net", "a.b:0", "[::1]:443", "*.xn--80ak6aa92e.com", "host:99999"} {
		f.Add(s, "acme.atlassian.net")
	}
	f.Fuzz(func(t *testing.T, pattern, host string) {
		p, err := parsePattern(pattern)
		if err != nil {
			return
		}
		h, err := ParseHost(host)
		if err != nil || h.IsIP() {
			return
		}
		if !p.matchHost(h.Name) {
			return
		}
		trimmed := strings.TrimSpace(pattern)
		if hp, _, ok := strings.Cut(trimmed, ":"); ok && !strings.HasPrefix(trimmed, "[") {
			trimmed = hp
		}
		if suffix, ok := strings.CutPrefix(trimmed, "*."); ok {
			if !strings.HasSuffix(h.Name, "."+strings.ToLower(suffix)) {
				t.Fatalf("%q matched %q outside its domain", pattern, h.Name)
			}
		}
	})
}
