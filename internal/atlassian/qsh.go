package atlassian

import (
	"crypto/sha256"
	"encoding/hex"
	"sort"
	"strings"
	"unicode/utf8"
)

// ContextQSH is the qsh of a token that is bound to a user's context, not to
// one request. Ferry accepts it only on its own JSON API, never on lifecycle
// routes or pages (the flaw behind CVE-2021-26073 and CVE-2021-26077).
const ContextQSH = "context-qsh"

// CanonicalRequest is Atlassian's canonical request string
// METHOD&path&query for the qsh claim:
//   - the method upper-cased;
//   - the path as sent (percent-encoding kept), without the base path (the
//     path part of the base URL the request is relative to), with '&'
//     escaped as %26 so it cannot pose as the separator, a leading '/', no
//     trailing '/', and "/" when empty;
//   - the query without the jwt parameter, keys sorted bytewise, each key
//     and value percent-encoded per RFC 3986 (space is %20, never '+'),
//     repeated keys' values sorted and joined with ','.
func CanonicalRequest(method, escapedPath, basePath, rawQuery string) string {
	return strings.ToUpper(method) + "&" + canonicalPath(escapedPath, basePath) + "&" + canonicalQuery(rawQuery)
}

// QSH is the hex SHA-256 of CanonicalRequest.
func QSH(method, escapedPath, basePath, rawQuery string) string {
	sum := sha256.Sum256([]byte(CanonicalRequest(method, escapedPath, basePath, rawQuery)))
	return hex.EncodeToString(sum[:])
}

func canonicalPath(p, basePath string) string {
	basePath = strings.TrimSuffix(basePath, "/")
	if basePath != "" && strings.HasPrefix(p, basePath) {
		p = p[len(basePath):]
	}
	if p == "" {
		return "/"
	}
	p = strings.ReplaceAll(p, "&", "%26")
	if p[0] != '/' {
		p = "/" + p
	}
	if len(p) > 1 && p[len(p)-1] == '/' {
		p = p[:len(p)-1]
	}
	return p
}

// canonicalQuery parses the query the way Node's querystring does (which is
// what atlassian-jwt and atlassian-connect-express use): pairs split on '&'
// only, '+' is a space, a malformed %-escape stays literal, and invalid UTF-8
// becomes U+FFFD. Go's url.ParseQuery drops such pairs instead, which would
// make Ferry's hash differ from the signer's.
func canonicalQuery(rawQuery string) string {
	vals := map[string][]string{}
	for _, pair := range strings.Split(rawQuery, "&") {
		if pair == "" {
			continue
		}
		k, v, _ := strings.Cut(pair, "=")
		k, v = unescape(k), unescape(v)
		if k == "jwt" {
			continue
		}
		vals[k] = append(vals[k], v)
	}
	keys := make([]string, 0, len(vals))
	for k := range vals {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for i, k := range keys {
		if i > 0 {
			b.WriteByte('&')
		}
		vs := vals[k]
		sort.Strings(vs)
		b.WriteString(rfc3986(k))
		b.WriteByte('=')
		for j, v := range vs {
			if j > 0 {
				b.WriteByte(',')
			}
			b.WriteString(rfc3986(v))
		}
	}
	return b.String()
}

func unhex(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

func unescape(s string) string {
	if !strings.ContainsAny(s, "%+") && utf8.ValidString(s) {
		return s
	}
	b := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '+':
			b = append(b, ' ')
		case c == '%' && i+2 < len(s):
			hi, ok1 := unhex(s[i+1])
			lo, ok2 := unhex(s[i+2])
			if ok1 && ok2 {
				b = append(b, hi<<4|lo)
				i += 2
				continue
			}
			b = append(b, c)
		default:
			b = append(b, c)
		}
	}
	if utf8.Valid(b) {
		return string(b)
	}
	// Each invalid byte becomes one U+FFFD, as Node's Buffer.toString does.
	var out strings.Builder
	for len(b) > 0 {
		r, n := utf8.DecodeRune(b)
		out.WriteRune(r)
		b = b[n:]
	}
	return out.String()
}

// rfc3986 percent-encodes everything but the unreserved characters
// ALPHA / DIGIT / "-" / "." / "_" / "~", in upper-case hex.
func rfc3986(s string) string {
	const hexUpper = "0123456789ABCDEF"
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '.' || c == '_' || c == '~' {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(hexUpper[c>>4])
		b.WriteByte(hexUpper[c&15])
	}
	return b.String()
}
