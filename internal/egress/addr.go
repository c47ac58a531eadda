package egress

import (
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

// Host is a destination host after ParseHost: exactly one of Name (a
// normalised DNS name) and Addr (an IP literal) is set.
type Host struct {
	Name string     // lower-case DNS name without trailing dot; empty for IP literals
	Addr netip.Addr // valid only for IP literals
}

// IsIP reports whether the host was written as an IP literal.
func (h Host) IsIP() bool { return h.Addr.IsValid() }

// String returns the host as it would appear in a URL without brackets.
func (h Host) String() string {
	if h.IsIP() {
		return h.Addr.String()
	}
	return h.Name
}

// ErrHostNotation is returned by ParseHost for hosts that are not a plain
// DNS name, dotted-decimal IPv4 or plain IPv6 literal. Many resolvers and
// URL parsers read "2130706433", "0177.0.0.1", "0x7f.1" or "127.1" as
// 127.0.0.1; an allowlist that compares strings would not, so such forms are
// refused before any resolution happens.
var ErrHostNotation = errors.New("egress: unusual host notation")

// ParseHost validates and normalises a URL host (without port). It accepts
// DNS names made of letters, digits and hyphens, dotted-decimal IPv4, and
// IPv6 literals with or without brackets. It refuses IPv4 in decimal, octal,
// hexadecimal or shortened form, anything ending in a number that is not a
// plain IPv4 address, IPv6 zone identifiers, and non-ASCII names.
func ParseHost(host string) (Host, error) {
	if host == "" {
		return Host{}, fmt.Errorf("%w: empty host", ErrHostNotation)
	}
	if len(host) > 255 {
		return Host{}, fmt.Errorf("%w: host is %d bytes long", ErrHostNotation, len(host))
	}
	if strings.HasPrefix(host, "[") || strings.Contains(host, ":") {
		s := host
		if strings.HasPrefix(s, "[") {
			if !strings.HasSuffix(s, "]") {
				return Host{}, fmt.Errorf("%w: %q has an unclosed bracket", ErrHostNotation, host)
			}
			s = s[1 : len(s)-1]
		}
		if strings.Contains(s, "%") {
			return Host{}, fmt.Errorf("%w: %q has an IPv6 zone identifier", ErrHostNotation, host)
		}
		a, err := netip.ParseAddr(s)
		if err != nil || !a.Is6() {
			return Host{}, fmt.Errorf("%w: %q is not an IPv6 address (a host may not contain a port here)", ErrHostNotation, host)
		}
		return Host{Addr: a}, nil
	}
	if a, err := netip.ParseAddr(host); err == nil && a.Is4() {
		return Host{Addr: a}, nil
	}
	name := strings.ToLower(strings.TrimSuffix(host, "."))
	if a, ok := lenientIPv4(name); ok {
		return Host{}, fmt.Errorf("%w: %q is %s written in a non-standard IPv4 form; only dotted-decimal a.b.c.d is accepted", ErrHostNotation, host, a)
	}
	labels := strings.Split(name, ".")
	if endsInNumber(labels[len(labels)-1]) {
		return Host{}, fmt.Errorf("%w: %q ends in a number but is not a dotted-decimal IPv4 address", ErrHostNotation, host)
	}
	for _, l := range labels {
		if err := checkLabel(l); err != nil {
			return Host{}, fmt.Errorf("%w: %q: %v", ErrHostNotation, host, err)
		}
	}
	return Host{Name: name}, nil
}

func checkLabel(l string) error {
	switch {
	case l == "":
		return errors.New("empty label")
	case len(l) > 63:
		return errors.New("label longer than 63 bytes")
	case l[0] == '-' || l[len(l)-1] == '-':
		return errors.New("label starts or ends with a hyphen")
	}
	for i := 0; i < len(l); i++ {
		c := l[i]
		switch {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9', c == '-':
		case c >= 0x80:
			return errors.New("non-ASCII name; use the punycode (xn--) form")
		default:
			return fmt.Errorf("character %q is not allowed in a host name", c)
		}
	}
	return nil
}

// endsInNumber follows the WHATWG URL standard: a host whose last label is a
// decimal number or 0x-prefixed hex is parsed as IPv4 by browsers and many
// clients, so it can never be a DNS name we compare as a string.
func endsInNumber(l string) bool {
	if l == "" {
		return false
	}
	if _, ok := ipv4Number(l); ok {
		return true
	}
	for i := 0; i < len(l); i++ {
		if l[i] < '0' || l[i] > '9' {
			return false
		}
	}
	return true
}

// lenientIPv4 parses s the way inet_aton(3) and the WHATWG URL parser do:
// one to four parts, each decimal, octal (leading 0) or hex (0x), the last
// part filling the remaining bytes. It returns the address meant.
func lenientIPv4(s string) (netip.Addr, bool) {
	parts := strings.Split(s, ".")
	if len(parts) > 4 {
		return netip.Addr{}, false
	}
	var nums []uint64
	for _, p := range parts {
		n, ok := ipv4Number(p)
		if !ok {
			return netip.Addr{}, false
		}
		nums = append(nums, n)
	}
	var v uint64
	for i, n := range nums[:len(nums)-1] {
		if n > 255 {
			return netip.Addr{}, false
		}
		v |= n << (8 * (3 - i))
	}
	last := nums[len(nums)-1]
	if last >= 1<<(8*(5-len(nums))) {
		return netip.Addr{}, false
	}
	v |= last
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)}), true
}

func ipv4Number(p string) (uint64, bool) {
	if p == "" || len(p) > 34 {
		return 0, false
	}
	base := 10
	switch {
	case strings.HasPrefix(p, "0x") || strings.HasPrefix(p, "0X"):
		base, p = 16, p[2:]
		if p == "" {
			return 0, true // WHATWG: "0x" alone is zero
		}
	case len(p) > 1 && p[0] == '0':
		base, p = 8, p[1:]
	}
	if p[0] == '+' || p[0] == '-' || p[0] == '_' || strings.Contains(p, "_") {
		return 0, false
	}
	n, err := strconv.ParseUint(p, base, 64)
	if err != nil {
		// Overflowing numbers are still "a number" for the purpose of
		// refusing the host; report them as out of range.
		var ne *strconv.NumError
		if errors.As(err, &ne) && errors.Is(ne.Err, strconv.ErrRange) {
			return 1 << 40, true
		}
		return 0, false
	}
	return n, true
}

// addrRule is one refused range and why.
type addrRule struct {
	prefix netip.Prefix
	reason string
}

// Metadata endpoints are named separately so the error says what was hit.
var metadataAddrs = map[netip.Addr]string{
	netip.MustParseAddr("169.254.169.254"): "cloud metadata service",
	netip.MustParseAddr("169.254.170.2"):   "container metadata service",
	netip.MustParseAddr("fd00:ec2::254"):   "cloud metadata service",
	netip.MustParseAddr("100.100.100.200"): "cloud metadata service",
}

var refusedRanges = func() []addrRule {
	r := func(p, why string) addrRule { return addrRule{netip.MustParsePrefix(p), why} }
	return []addrRule{
		r("0.0.0.0/8", "unspecified/this-network address"),
		r("10.0.0.0/8", "private address (RFC 1918)"),
		r("100.64.0.0/10", "carrier-grade NAT address (RFC 6598)"),
		r("127.0.0.0/8", "loopback address"),
		r("169.254.0.0/16", "link-local address"),
		r("172.16.0.0/12", "private address (RFC 1918)"),
		r("192.0.0.0/24", "IETF protocol assignment"),
		r("192.0.2.0/24", "documentation address"),
		r("192.88.99.0/24", "6to4 relay anycast address"),
		r("192.168.0.0/16", "private address (RFC 1918)"),
		r("198.18.0.0/15", "benchmarking address"),
		r("198.51.100.0/24", "documentation address"),
		r("203.0.113.0/24", "documentation address"),
		r("224.0.0.0/4", "multicast address"),
		r("240.0.0.0/4", "reserved address"),
		r("255.255.255.255/32", "broadcast address"),
		r("::/128", "unspecified address"),
		r("::1/128", "loopback address"),
		r("::/96", "IPv4-compatible IPv6 address (deprecated)"),
		r("64:ff9b:1::/48", "local-use NAT64 address"),
		r("100::/64", "discard-only address"),
		r("2001::/32", "Teredo tunnel address"),
		r("2001:db8::/32", "documentation address"),
		r("fc00::/7", "unique-local (private) IPv6 address"),
		r("fe80::/10", "link-local address"),
		r("fec0::/10", "site-local address (deprecated)"),
		r("ff00::/8", "multicast address"),
	}
}()

var (
	nat64Prefix = netip.MustParsePrefix("64:ff9b::/96")
	sixToFour   = netip.MustParsePrefix("2002::/16")
)

// CheckAddr is the address policy applied to every connection Ferry opens:
// it returns an error wrapping ErrDestinationRefused for loopback, private,
// link-local, cloud-metadata, unspecified, CGNAT, multicast, broadcast,
// reserved and documentation addresses, including when they are embedded in
// IPv4-mapped, NAT64 (64:ff9b::/96) or 6to4 IPv6 addresses. allowLoopback
// permits 127.0.0.0/8 and ::1 and nothing else.
func CheckAddr(a netip.Addr, allowLoopback bool) error {
	if !a.IsValid() {
		return refuse("invalid address")
	}
	if a.Zone() != "" {
		return refuse(fmt.Sprintf("%s has an IPv6 zone", a))
	}
	orig := a
	a = a.Unmap()
	if a.Is6() {
		switch {
		case nat64Prefix.Contains(a):
			b := a.As16()
			if err := CheckAddr(netip.AddrFrom4([4]byte(b[12:16])), false); err != nil {
				return refuse(fmt.Sprintf("%s embeds a refused IPv4 address via NAT64", orig))
			}
			return nil
		case sixToFour.Contains(a):
			b := a.As16()
			if err := CheckAddr(netip.AddrFrom4([4]byte(b[2:6])), false); err != nil {
				return refuse(fmt.Sprintf("%s embeds a refused IPv4 address via 6to4", orig))
			}
			return nil
		}
	}
	if allowLoopback && a.IsLoopback() {
		return nil
	}
	if why, ok := metadataAddrs[a]; ok {
		return refuse(fmt.Sprintf("%s is a %s", orig, why))
	}
	for _, r := range refusedRanges {
		if r.prefix.Contains(a) {
			return refuse(fmt.Sprintf("%s is a %s", orig, r.reason))
		}
	}
	return nil
}

func refuse(reason string) error {
	return &RefusedError{Reason: reason}
}
