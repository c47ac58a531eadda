package egress

import (
	"errors"
	"net"
	"net/netip"
	"strings"
	"testing"
)

func TestCheckAddrRefusesInternalAddresses(t *testing.T) {
	for _, s := range []string{
		"127.0.0.1", "127.255.0.9", "::1", // loopback
		"10.0.0.1", "172.16.0.1", "172.31.255.255", "192.168.1.1", // RFC 1918
		"fc00::1", "fd12:3456::1", // unique-local
		"169.254.169.254", "169.254.170.2", "fd00:ec2::254", "100.100.100.200", // metadata
		"169.254.0.1", "fe80::1", // link-local
		"0.0.0.0", "0.1.2.3", "::", // unspecified / this network
		"100.64.0.1", "100.127.255.254", // CGNAT
		"224.0.0.1", "239.255.255.250", "ff02::1", // multicast
		"255.255.255.255", "240.0.0.1", // broadcast, reserved
		"192.0.2.1", "2001:db8::1", // documentation
		"::ffff:127.0.0.1", "::ffff:10.0.0.1", "::ffff:169.254.169.254", // IPv4-mapped
		"64:ff9b::a00:1", "64:ff9b::7f00:1", "64:ff9b::a9fe:a9fe", // NAT64 of 10.0.0.1, 127.0.0.1, metadata
		"2002:a00:1::1", "2002:7f00:1::", // 6to4 of 10.0.0.1, 127.0.0.1
		"2001::1",    // Teredo
		"::10.0.0.1", // IPv4-compatible
	} {
		t.Run(s, func(t *testing.T) {
			err := CheckAddr(netip.MustParseAddr(s), false)
			if !errors.Is(err, ErrDestinationRefused) {
				t.Fatalf("CheckAddr(%s) = %v, want refused", s, err)
			}
		})
	}
}

func TestCheckAddrNamesTheMetadataService(t *testing.T) {
	err := CheckAddr(netip.MustParseAddr("169.254.169.254"), true)
	if err == nil || !strings.Contains(err.Error(), "metadata") {
		t.Fatalf("got %v, want an error naming the metadata service", err)
	}
}

func TestCheckAddrAllowsPublicAddresses(t *testing.T) {
	for _, s := range []string{"104.192.136.1", "52.218.128.1", "8.8.8.8", "2600:1f14::1", "64:ff9b::808:808", "2002:808:808::1", "::ffff:8.8.8.8"} {
		if err := CheckAddr(netip.MustParseAddr(s), false); err != nil {
			t.Errorf("CheckAddr(%s) = %v, want nil", s, err)
		}
	}
}

func TestAllowLoopbackPermitsOnlyLoopback(t *testing.T) {
	for _, s := range []string{"127.0.0.1", "127.1.2.3", "::1", "::ffff:127.0.0.1"} {
		if err := CheckAddr(netip.MustParseAddr(s), true); err != nil {
			t.Errorf("CheckAddr(%s, allowLoopback) = %v, want nil", s, err)
		}
	}
	for _, s := range []string{"10.0.0.1", "192.168.0.1", "169.254.169.254", "0.0.0.0", "::", "fe80::1", "64:ff9b::7f00:1", "fd00:ec2::254"} {
		if err := CheckAddr(netip.MustParseAddr(s), true); err == nil {
			t.Errorf("CheckAddr(%s, allowLoopback) = nil, want refused", s)
		}
	}
}

func TestCheckAddrRefusesZonesAndInvalid(t *testing.T) {
	if err := CheckAddr(netip.Addr{}, true); err == nil {
		t.Error("invalid address allowed")
	}
	if err := CheckAddr(netip.MustParseAddr("fe80::1%eth0"), true); err == nil {
		t.Error("zoned address allowed")
	}
}

func TestParseHostRefusesUnusualIPNotations(t *testing.T) {
	for _, tc := range []struct{ host, means string }{
		{"2130706433", "127.0.0.1"}, // decimal
		{"0177.0.0.1", "127.0.0.1"}, // octal
		{"0x7f.0.0.1", "127.0.0.1"}, // hex
		{"0x7F000001", "127.0.0.1"}, // hex, one part
		{"127.1", "127.0.0.1"},      // short form
		{"127.0.1", "127.0.0.1"},    // short form
		{"0251.0376.0251.0376", "169.254.169.254"},
		{"0xa9fea9fe", "169.254.169.254"},
		{"3232235777", "192.168.1.1"},
		{"0", "0.0.0.0"},
		{"127.0.0.1.", "127.0.0.1"}, // trailing dot
	} {
		t.Run(tc.host, func(t *testing.T) {
			_, err := ParseHost(tc.host)
			if !errors.Is(err, ErrHostNotation) {
				t.Fatalf("ParseHost(%q) = %v, want ErrHostNotation", tc.host, err)
			}
			if !strings.Contains(err.Error(), tc.means) {
				t.Errorf("error %q does not say the host means %s", err, tc.means)
			}
		})
	}
}

func TestParseHostRefusesOddHosts(t *testing.T) {
	for _, h := range []string{
		"", "[::1%25eth0]", "fe80::1%eth0", "[fe80::1%lo]", // zones
		"1.2.3.4.5", "256.1.1.1", "foo.123", "foo.0x10", "99999999999", // end in a number
		"[127.0.0.1]", "[::1", "example.com:443", // brackets, ports
		"exa_mple.com", "-a.com", "a-.com", "a..com", ".", "ex ample.com", "exa%6dple.com",
		"bücher.de", strings.Repeat("a", 64) + ".com", strings.Repeat("a.", 130) + "com",
	} {
		if got, err := ParseHost(h); err == nil {
			t.Errorf("ParseHost(%q) = %+v, want error", h, got)
		}
	}
}

func TestParseHostNormalises(t *testing.T) {
	for in, want := range map[string]string{
		"Tenant.Atlassian.NET.":      "tenant.atlassian.net",
		"xn--bcher-kva.example":      "xn--bcher-kva.example",
		"1.2.3.4":                    "1.2.3.4",
		"[2600:1f14::1]":             "2600:1f14::1",
		"::FFFF:127.0.0.1":           "::ffff:127.0.0.1",
		"s3.us-west-2.amazonaws.com": "s3.us-west-2.amazonaws.com",
		"0x7f.example.com":           "0x7f.example.com", // a name: does not end in a number
		"localhost":                  "localhost",
	} {
		h, err := ParseHost(in)
		if err != nil {
			t.Errorf("ParseHost(%q): %v", in, err)
			continue
		}
		if h.String() != want {
			t.Errorf("ParseHost(%q) = %q, want %q", in, h.String(), want)
		}
	}
}

func FuzzParseHost(f *testing.F) {
	for _, s := range []string{
		"tenant.atlassian.net", "127.0.0.1", "2130706433", "0177.0.0.1", "0x7f.0.0.1", "127.1",
		"[::1]", "::ffff:10.0.0.1", "fe80::1%eth0", "169.254.169.254", "0x", "1.2.3.4.5",
		"bücher.de", "a..b", "Example.COM.", "0.0.0.0", "[::]", "64:ff9b::a00:1",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		h, err := ParseHost(s)
		if err != nil {
			if !errors.Is(err, ErrHostNotation) {
				t.Fatalf("ParseHost(%q) error %v does not wrap ErrHostNotation", s, err)
			}
			return
		}
		if h.IsIP() == (h.Name != "") {
			t.Fatalf("ParseHost(%q) = %+v: exactly one of Name and Addr must be set", s, h)
		}
		// Idempotent: the normalised form parses to itself.
		h2, err := ParseHost(h.String())
		if err != nil || h2 != h {
			t.Fatalf("ParseHost(%q) = %q, which reparses to %+v, %v", s, h.String(), h2, err)
		}
		if h.IsIP() {
			if h.Addr.Zone() != "" {
				t.Fatalf("ParseHost(%q) kept zone %q", s, h.Addr.Zone())
			}
			_ = CheckAddr(h.Addr, false)
			return
		}
		// An accepted name is never an IP address to any lenient parser.
		if net.ParseIP(h.Name) != nil {
			t.Fatalf("ParseHost(%q) accepted %q as a name, but it is an IP", s, h.Name)
		}
		if a, ok := lenientIPv4(h.Name); ok {
			t.Fatalf("ParseHost(%q) accepted %q as a name, but inet_aton reads it as %s", s, h.Name, a)
		}
		if h.Name != strings.ToLower(h.Name) || strings.HasSuffix(h.Name, ".") {
			t.Fatalf("ParseHost(%q) = %q is not normalised", s, h.Name)
		}
	})
}
