package errortrack

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
)

// DSN is a parsed Sentry DSN: scheme://PUBLICKEY@host[:port][/path]/PROJECT.
type DSN struct {
	Scheme    string
	PublicKey string
	Host      string // host[:port]
	Path      string // prefix before the project id, without trailing slash
	Project   string
}

// ParseDSN reads a Sentry DSN.
func ParseDSN(s string) (DSN, error) {
	u, err := url.Parse(strings.TrimSpace(s))
	if err != nil || u.Host == "" {
		return DSN{}, errors.New("not a URL like https://PUBLICKEY@o0.ingest.sentry.io/PROJECT")
	}
	if u.Scheme != "https" && u.Scheme != "http" {
		return DSN{}, fmt.Errorf("scheme %q: want https", u.Scheme)
	}
	if u.User == nil || u.User.Username() == "" {
		return DSN{}, errors.New("no public key before the @")
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return DSN{}, errors.New("a DSN has no query or fragment")
	}
	path := strings.TrimRight(u.Path, "/")
	i := strings.LastIndexByte(path, '/')
	if i < 0 {
		return DSN{}, errors.New("no project id at the end of the path")
	}
	d := DSN{Scheme: u.Scheme, PublicKey: u.User.Username(), Host: u.Host, Path: path[:i], Project: path[i+1:]}
	if !validProjectID(d.Project) {
		return DSN{}, fmt.Errorf("project id %q: want digits", d.Project)
	}
	if !validKey(d.PublicKey) {
		return DSN{}, errors.New("the public key must be 16 to 64 letters or digits")
	}
	return d, nil
}

// EnvelopeURL is where an SDK posts envelopes for this DSN.
func (d DSN) EnvelopeURL() string {
	return d.Scheme + "://" + d.Host + d.Path + "/api/" + d.Project + "/envelope/"
}

// String is the DSN in its usual form.
func (d DSN) String() string {
	return d.Scheme + "://" + d.PublicKey + "@" + d.Host + d.Path + "/" + d.Project
}

// BrowserDSN is the DSN the app's pages give @sentry/browser: Ferry's own
// public URL with /errors as the path, so the SDK posts to
// {baseURL}/errors/api/{project}/envelope/ — the same origin as the page.
func BrowserDSN(baseURL, publicKey, project string) (string, error) {
	u, err := url.Parse(baseURL)
	if err != nil || u.Host == "" {
		return "", errors.New("base URL is not absolute")
	}
	d := DSN{Scheme: u.Scheme, PublicKey: publicKey, Host: u.Host, Path: strings.TrimRight(u.Path, "/") + "/errors", Project: project}
	return d.String(), nil
}

func validProjectID(s string) bool {
	if s == "" || len(s) > 20 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

func validKey(s string) bool {
	if len(s) < 16 || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z') {
			return false
		}
	}
	return true
}

// ValidPublicKey reports whether s can be a project's public key (config
// checks FERRY_ERRORS_PUBLIC_KEY with it).
func ValidPublicKey(s string) bool { return validKey(s) }

// ValidProjectID reports whether s can be a project id (digits, as every
// SDK's DSN parser expects).
func ValidProjectID(s string) bool { return validProjectID(s) }

// authFromRequest finds the public key: sentry_key in the query (browser
// SDK), or the X-Sentry-Auth header (server SDKs), or an Authorization:
// Sentry … header (older SDKs).
func authKey(query url.Values, header func(string) string) string {
	if k := query.Get("sentry_key"); k != "" {
		return k
	}
	for _, h := range []string{header("X-Sentry-Auth"), header("Authorization")} {
		if k := keyFromAuthHeader(h); k != "" {
			return k
		}
	}
	return ""
}

// keyFromAuthHeader reads sentry_key from "Sentry sentry_version=7,
// sentry_client=…, sentry_key=KEY[, sentry_secret=…]".
func keyFromAuthHeader(h string) string {
	h = strings.TrimSpace(h)
	if len(h) >= 7 && strings.EqualFold(h[:7], "sentry ") {
		h = h[7:]
	} else if !strings.Contains(h, "sentry_key") {
		return ""
	}
	for _, part := range strings.Split(h, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		if ok && strings.TrimSpace(k) == "sentry_key" {
			return strings.Trim(strings.TrimSpace(v), `"`)
		}
	}
	return ""
}
