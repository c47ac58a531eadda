package jirasim

import (
	"crypto/sha256"
	"encoding/hex"
	"net/url"
	"sort"
	"strings"
)

// canonicalRequest builds Atlassian's canonical request string
// (METHOD&path&query) for the qsh claim. basePath is the path of the
// product's (or app's) base URL and is stripped from the request path.
// rawQuery is parsed as sent; the jwt parameter never takes part.
func canonicalRequest(method, escapedPath, basePath, rawQuery string) string {
	p := escapedPath
	basePath = strings.TrimSuffix(basePath, "/")
	if basePath != "" && strings.HasPrefix(p, basePath) {
		p = p[len(basePath):]
	}
	if p == "" {
		p = "/"
	}
	// An unescaped '&' in the path would be confused with the separator.
	p = strings.ReplaceAll(p, "&", "%26")
	if !strings.HasPrefix(p, "/") {
		p = "/" + p
	}
	if len(p) > 1 {
		p = strings.TrimSuffix(p, "/")
	}
	return strings.ToUpper(method) + "&" + p + "&" + canonicalQuery(rawQuery)
}

func canonicalQuery(rawQuery string) string {
	vals, _ := url.ParseQuery(rawQuery)
	keys := make([]string, 0, len(vals))
	for k := range vals {
		if k != "jwt" {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		vs := append([]string(nil), vals[k]...)
		sort.Strings(vs)
		enc := make([]string, len(vs))
		for i, v := range vs {
			enc[i] = rfc3986(v)
		}
		parts = append(parts, rfc3986(k)+"="+strings.Join(enc, ","))
	}
	return strings.Join(parts, "&")
}

// rfc3986 percent-encodes everything but the unreserved characters, so a
// space is %20 (never '+') as the qsh spec requires.
func rfc3986(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '.' || c == '_' || c == '~' {
			b.WriteByte(c)
			continue
		}
		const hexUpper = "0123456789ABCDEF"
		b.WriteByte('%')
		b.WriteByte(hexUpper[c>>4])
		b.WriteByte(hexUpper[c&15])
	}
	return b.String()
}

// QSH returns the query string hash of a request, as Jira and Connect apps
// compute it. basePath is the path part of the base URL the request is
// relative to.
func QSH(method, escapedPath, basePath, rawQuery string) string {
	sum := sha256.Sum256([]byte(canonicalRequest(method, escapedPath, basePath, rawQuery)))
	return hex.EncodeToString(sum[:])
}

// qshOfURL is QSH for an absolute URL relative to base.
func qshOfURL(method, rawURL, base string) (string, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return "", err
	}
	b, err := url.Parse(base)
	if err != nil {
		return "", err
	}
	return QSH(method, u.EscapedPath(), b.EscapedPath(), u.RawQuery), nil
}
