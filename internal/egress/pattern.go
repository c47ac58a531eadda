package egress

import (
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
)

// hostPattern is one allowed destination: an exact host or "*.suffix"
// (any host below suffix), and a port ("*" = any).
type hostPattern struct {
	host     string // normalised host, or suffix without "*."
	wildcard bool
	port     string
}

func (p hostPattern) String() string {
	h := p.host
	if p.wildcard {
		h = "*." + h
	} else if strings.Contains(h, ":") {
		h = "[" + h + "]"
	}
	return h + ":" + p.port
}

func (p hostPattern) matchHost(host string) bool {
	if p.wildcard {
		return strings.HasSuffix(host, "."+p.host)
	}
	return host == p.host
}

func (p hostPattern) match(host, port string) bool {
	return (p.port == "*" || p.port == port) && p.matchHost(host)
}

// parsePattern parses "host", "*.suffix", with optional ":port" or ":*".
func parsePattern(s string) (hostPattern, error) {
	s = strings.TrimSpace(s)
	host, port := s, "443"
	if h, pt, err := net.SplitHostPort(s); err == nil {
		host, port = h, pt
		if port != "*" {
			if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
				return hostPattern{}, fmt.Errorf("host pattern %q: bad port", s)
			}
		}
	}
	p := hostPattern{port: port}
	if rest, ok := strings.CutPrefix(host, "*."); ok {
		h, err := ParseHost(rest)
		if err != nil {
			return hostPattern{}, fmt.Errorf("host pattern %q: %w", s, err)
		}
		if h.IsIP() || !strings.Contains(h.Name, ".") {
			return hostPattern{}, fmt.Errorf("host pattern %q is too broad; name a registered domain such as *.atlassian.net", s)
		}
		p.host, p.wildcard = h.Name, true
		return p, nil
	}
	h, err := ParseHost(host)
	if err != nil {
		return hostPattern{}, fmt.Errorf("host pattern %q: %w", s, err)
	}
	p.host = h.String()
	return p, nil
}

// urlPattern turns a configured endpoint URL into an exact destination.
func urlPattern(setting, raw string, allowLoopback bool) (hostPattern, *url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return hostPattern{}, nil, cfgErr(setting, "not an absolute URL")
	}
	h, err := ParseHost(u.Hostname())
	if err != nil {
		return hostPattern{}, nil, cfgErr(setting, err.Error())
	}
	switch u.Scheme {
	case "https":
	case "http":
		if !allowLoopback || !isLoopbackHost(h) {
			return hostPattern{}, nil, cfgErr(setting, "must be an https:// URL (http:// only for loopback with FERRY_EGRESS_ALLOW_LOOPBACK)")
		}
	default:
		return hostPattern{}, nil, cfgErr(setting, fmt.Sprintf("scheme %q is not allowed; use https://", u.Scheme))
	}
	if h.IsIP() {
		if err := CheckAddr(h.Addr, allowLoopback); err != nil {
			return hostPattern{}, nil, cfgErr(setting, err.Error())
		}
	}
	return hostPattern{host: h.String(), port: portOf(u)}, u, nil
}

func portOf(u *url.URL) string {
	if p := u.Port(); p != "" {
		return p
	}
	if u.Scheme == "http" {
		return "80"
	}
	return "443"
}

// isLoopbackHost is true for loopback IP literals and "localhost"; the
// address is still checked after resolution.
func isLoopbackHost(h Host) bool {
	if h.IsIP() {
		return h.Addr.Unmap().IsLoopback()
	}
	return h.Name == "localhost"
}
