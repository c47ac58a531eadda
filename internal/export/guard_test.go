package export

import (
	"context"
	"errors"
	"net/http"
	"net/netip"
	"strings"
	"testing"
	"time"

	"ferry/internal/apperr"
)

func mustPrefixes(t testing.TB, s ...string) []netip.Prefix {
	t.Helper()
	var out []netip.Prefix
	for _, x := range s {
		out = append(out, netip.MustParsePrefix(x))
	}
	return out
}

// TestClientAddrBelievesForwardedForOnlyFromTrustedProxies: by default the
// peer is the client whatever the header says; behind trusted proxies the
// client is the rightmost address that is not one of them, so a spoofed
// entry further left changes nothing.
func TestClientAddrBelievesForwardedForOnlyFromTrustedProxies(t *testing.T) {
	proxies := mustPrefixes(t, "10.0.0.0/8", "2001:db8:1::/48")
	for _, c := range []struct {
		name, peer string
		xff        []string
		trusted    []netip.Prefix
		want       string
		bad        bool
	}{
		{"no proxies configured", "198.51.100.7:4711", []string{"203.0.113.1"}, nil, "198.51.100.7", false},
		{"untrusted peer", "198.51.100.7:4711", []string{"10.0.0.1"}, proxies, "198.51.100.7", false},
		{"one proxy", "10.0.0.2:80", []string{"203.0.113.1"}, proxies, "203.0.113.1", false},
		{"spoofed left of the client", "10.0.0.2:80", []string{"127.0.0.1, 203.0.113.1"}, proxies, "203.0.113.1", false},
		{"spoofed trusted address", "10.0.0.2:80", []string{"10.9.9.9, 203.0.113.1, 10.0.0.3"}, proxies, "203.0.113.1", false},
		{"two headers", "10.0.0.2:80", []string{"192.0.2.1", "203.0.113.1, 10.0.0.3"}, proxies, "203.0.113.1", false},
		{"all trusted", "10.0.0.2:80", []string{"10.0.0.5, 10.0.0.3"}, proxies, "10.0.0.5", false},
		{"no header", "10.0.0.2:80", nil, proxies, "10.0.0.2", false},
		{"ipv6 with port", "[2001:db8:1::5]:443", []string{"[2001:db8:2::9]:1234"}, proxies, "2001:db8:2::9", false},
		{"ipv4-mapped peer", "[::ffff:10.0.0.2]:80", []string{"203.0.113.1"}, proxies, "203.0.113.1", false},
		{"garbage from the proxy's side", "10.0.0.2:80", []string{"203.0.113.1, not-an-ip"}, proxies, "", true},
		{"garbage left of the client is never read", "10.0.0.2:80", []string{"not-an-ip, 203.0.113.1"}, proxies, "203.0.113.1", false},
		{"zone", "10.0.0.2:80", []string{"fe80::1%eth0"}, proxies, "", true},
		{"a name", "10.0.0.2:80", []string{"example.com"}, proxies, "", true},
	} {
		r, _ := http.NewRequest("GET", "http://ferry/odata/x/", nil)
		r.RemoteAddr = c.peer
		for _, h := range c.xff {
			r.Header.Add("X-Forwarded-For", h)
		}
		got, err := ClientAddr(r, c.trusted)
		if c.bad {
			if apperr.CodeOf(err) != apperr.EINVALID {
				t.Errorf("%s: %v, %v; want a 400", c.name, got, err)
			}
			continue
		}
		if err != nil || got.String() != c.want {
			t.Errorf("%s: %v, %v; want %s", c.name, got, err, c.want)
		}
	}
}

// FuzzClientAddr: the answer is the peer itself unless the peer is a
// trusted proxy, and otherwise an address the header or the peer named.
func FuzzClientAddr(f *testing.F) {
	f.Add("10.0.0.2:80", "203.0.113.1, 10.0.0.3")
	f.Add("198.51.100.7:1", "10.0.0.1")
	f.Add("[2001:db8::1]:5", "[::1]:2, , x")
	proxies := mustPrefixes(f, "10.0.0.0/8")
	f.Fuzz(func(t *testing.T, peer, xff string) {
		r, _ := http.NewRequest("GET", "http://ferry/", nil)
		r.RemoteAddr = peer
		r.Header.Set("X-Forwarded-For", xff)
		got, err := ClientAddr(r, proxies)
		if err != nil {
			return
		}
		p, perr := parseHostAddr(peer)
		if perr != nil {
			t.Fatalf("peer %q does not parse but the answer is %v", peer, got)
		}
		if !inAny(proxies, p) && got != p {
			t.Fatalf("untrusted peer %v, header %q: client %v", p, xff, got)
		}
		named := got == p
		for _, h := range strings.Split(xff, ",") {
			if a, err := parseHostAddr(strings.TrimSpace(h)); err == nil && a == got {
				named = true
			}
		}
		if !named {
			t.Fatalf("client %v is neither the peer nor in the header %q", got, xff)
		}
	})
}

// TestFailedAttemptsAreLimitedPerAddressAndPerPrefix: a burst of failures
// uses up an address's attempts; then every attempt from it is refused
// until one comes back, and the wait is said. Other addresses and other
// tokens are not affected; one token prefix is limited from any address.
func TestFailedAttemptsAreLimitedPerAddressAndPerPrefix(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	g := &Guard{AddressFailures: 5, PrefixFailures: 3, FailureRefill: 10 * time.Second, Now: func() time.Time { return now }}
	a, b := netip.MustParseAddr("203.0.113.1"), netip.MustParseAddr("203.0.113.2")
	tok := func(i int) string { return TokenPrefix + strings.Repeat(string(rune('A'+i%26)), 43) }
	for i := range 5 {
		if err := g.checkFailures(a, tok(i)); err != nil {
			t.Fatalf("attempt %d: %v", i, err)
		}
		g.failed(a, tok(i))
	}
	err := g.checkFailures(a, tok(6))
	var re *errRetry
	if !errors.As(err, &re) || apperr.CodeOf(err) != apperr.ERATELIMIT || re.RetryAfter() != "10" {
		t.Fatalf("6th attempt: %v", err)
	}
	if err := g.checkFailures(b, tok(7)); err != nil {
		t.Fatalf("another address: %v", err)
	}
	now = now.Add(7 * time.Second)
	if err := g.checkFailures(a, tok(6)); !errors.As(err, &re) || re.RetryAfter() != "3" {
		t.Fatalf("7 s later: %v", err)
	}
	now = now.Add(3 * time.Second)
	if err := g.checkFailures(a, tok(6)); err != nil {
		t.Fatalf("after the refill: %v", err)
	}
	// IPv6: one /64 is one client.
	v6 := func(s string) netip.Addr { return netip.MustParseAddr(s) }
	for i := range 5 {
		g.failed(v6("2001:db8:0:1::"+string(rune('1'+i))), tok(10+i))
	}
	if err := g.checkFailures(v6("2001:db8:0:1:ffff::9"), tok(20)); err == nil {
		t.Error("another address of the same /64 is not limited")
	}
	if err := g.checkFailures(v6("2001:db8:0:2::1"), tok(21)); err != nil {
		t.Errorf("the next /64: %v", err)
	}
	// One prefix from many addresses.
	same := TokenPrefix + "SameSame" + strings.Repeat("x", 35)
	other := TokenPrefix + "SameSame" + strings.Repeat("y", 35) // same first 8: same bucket
	for i := range 3 {
		g.failed(netip.AddrFrom4([4]byte{198, 51, 100, byte(i)}), same)
	}
	if err := g.checkFailures(netip.MustParseAddr("198.51.100.200"), other); err == nil {
		t.Error("a prefix used up from several addresses is not limited")
	}
	if err := g.checkFailures(netip.MustParseAddr("198.51.100.200"), TokenPrefix+"SameSamZ"+strings.Repeat("x", 35)); err != nil {
		t.Errorf("a different prefix: %v", err)
	}
}

func TestLimiterMemoryIsBounded(t *testing.T) {
	g := &Guard{}
	for i := range maxTracked + 500 {
		g.failed(netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)}), TokenPrefix+strings.Repeat("a", 43))
	}
	if n := len(g.byAddr); n > maxTracked {
		t.Errorf("%d addresses tracked, bound %d", n, maxTracked)
	}
}

// TestSiteConcurrencyCap: a site gets its slots back when its requests end.
func TestSiteConcurrencyCap(t *testing.T) {
	g := &Guard{SiteConcurrency: 2}
	ctx1, end1 := context.WithCancel(context.Background())
	ctx2, end2 := context.WithCancel(context.Background())
	defer end2()
	if g.enter(ctx1, "t1") != nil || g.enter(ctx2, "t1") != nil {
		t.Fatal("first two refused")
	}
	err := g.enter(context.Background(), "t1")
	var re *errRetry
	if !errors.As(err, &re) || apperr.CodeOf(err) != apperr.ERATELIMIT || re.RetryAfter() != "2" {
		t.Fatalf("third: %v", err)
	}
	if err := g.enter(context.Background(), "t2"); err != nil {
		t.Fatalf("another site: %v", err)
	}
	end1()
	deadline := time.Now().Add(5 * time.Second)
	for g.Active("t1") != 1 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if err := g.enter(context.Background(), "t1"); err != nil {
		t.Fatalf("after one ended: %v", err)
	}
}
