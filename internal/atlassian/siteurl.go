package atlassian

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
)

// ErrSiteURL: a baseUrl Ferry will not call.
var ErrSiteURL = errors.New("atlassian: site URL refused")

// CheckSiteURL decides whether Ferry may install for, and later call, a Jira
// site at raw. Every outbound call with tenant credentials goes to this URL,
// so a forged or odd one would send them elsewhere (SSRF):
//   - https only: the shared secret and user tokens travel in headers;
//   - no user info, query or fragment: a site URL is scheme://host[/path];
//   - IP literals are refused (169.254.169.254, private ranges, odd notations
//     such as 2130706433): Jira Cloud sites have names;
//   - the host must match one of allowed ("*.atlassian.net" matches any name
//     below atlassian.net, not atlassian.net itself; anything else exactly);
//   - loopback (127.0.0.0/8, ::1, localhost, over http or https) only when
//     allowLoopback is set, for the simulator and the demo.
func CheckSiteURL(raw string, allowed []string, allowLoopback bool) error {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || u.Opaque != "" {
		return fmt.Errorf("%w: %q is not an absolute URL", ErrSiteURL, raw)
	}
	if u.User != nil || u.RawQuery != "" || u.Fragment != "" || u.ForceQuery {
		return fmt.Errorf("%w: must not carry user info, query or fragment", ErrSiteURL)
	}
	host := strings.ToLower(u.Hostname())
	port := u.Port()
	if allowLoopback && isLoopback(host) {
		if u.Scheme == "http" || u.Scheme == "https" {
			return nil
		}
	}
	if u.Scheme != "https" {
		return fmt.Errorf("%w: scheme %q; only https sites are accepted", ErrSiteURL, u.Scheme)
	}
	if host == "" || strings.HasSuffix(host, ".") || net.ParseIP(host) != nil || isNumericHost(host) {
		return fmt.Errorf("%w: host %q is an address, not a Jira site name", ErrSiteURL, u.Hostname())
	}
	if host == "localhost" || strings.HasSuffix(host, ".localhost") {
		return fmt.Errorf("%w: host %q is loopback", ErrSiteURL, host)
	}
	if port != "" && port != "443" {
		return fmt.Errorf("%w: port %s; Jira sites use 443", ErrSiteURL, port)
	}
	for _, p := range allowed {
		if hostMatches(strings.ToLower(strings.TrimSpace(p)), host) {
			return nil
		}
	}
	return fmt.Errorf("%w: host %q is not an allowed Jira site (FERRY_CONNECT_ALLOWED_HOSTS)", ErrSiteURL, host)
}

func hostMatches(pattern, host string) bool {
	if suffix, ok := strings.CutPrefix(pattern, "*."); ok {
		return strings.HasSuffix(host, "."+suffix) && len(host) > len(suffix)+1
	}
	return pattern == host
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// isNumericHost catches hosts that resolvers read as IPv4 in other notations
// (2130706433, 0x7f.1, 127.1): every label is a number.
func isNumericHost(host string) bool {
	for _, label := range strings.Split(host, ".") {
		if label == "" {
			return true
		}
		if strings.TrimLeft(strings.ToLower(label), "0123456789abcdefx") != "" || !strings.ContainsAny(label[:1], "0123456789") {
			return false
		}
	}
	return true
}
