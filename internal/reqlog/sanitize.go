package reqlog

import (
	"net/http"
	"net/url"
	"regexp"
	"strings"

	"ferry/internal/logging"
)

// Redacted replaces every secret removed from a logged request.
const Redacted = logging.Redacted

// secretParams are query parameters whose values are never logged, compared
// after percent-decoding, lower-casing and dropping a leading '$' (OData's
// $skiptoken carries a resumable cursor that is as good as a credential).
var secretParams = map[string]bool{
	"jwt": true, "token": true, "access_token": true, "refresh_token": true, "id_token": true,
	"skiptoken": true, "signature": true, "sig": true, "sentry_key": true, "sentry_secret": true,
	"assertion": true, "client_secret": true, "code": true, "password": true, "api_key": true,
	"apikey": true, "key": true, "x-amz-signature": true, "x-amz-credential": true,
	"x-amz-security-token": true, "secret": true, "auth": true,
}

// secretParam reports whether a decoded parameter name holds a secret.
func secretParam(name string) bool {
	n := strings.TrimLeft(strings.ToLower(strings.TrimSpace(name)), "$")
	if secretParams[n] {
		return true
	}
	for _, f := range []string{"token", "secret", "password", "signature", "jwt", "credential"} {
		if strings.Contains(n, f) {
			return true
		}
	}
	return false
}

// SanitizeQuery returns raw (a URL's RawQuery) with the value of every
// secret parameter replaced by [redacted] and every other value scrubbed of
// secret-looking text (JWTs, emails, accountIds). Pairs are split on '&' and
// ';' so that "a=1;jwt=…" cannot smuggle a token past it; a name that does
// not percent-decode keeps its text but loses its value, because we cannot
// tell what it names. Order and separators are kept.
func SanitizeQuery(raw string) string {
	if raw == "" {
		return ""
	}
	var b strings.Builder
	b.Grow(len(raw))
	start := 0
	for i := 0; i <= len(raw); i++ {
		if i < len(raw) && raw[i] != '&' && raw[i] != ';' {
			continue
		}
		b.WriteString(sanitizePair(raw[start:i]))
		if i < len(raw) {
			b.WriteByte(raw[i])
		}
		start = i + 1
	}
	return b.String()
}

func sanitizePair(p string) string {
	name, value, hasValue := strings.Cut(p, "=")
	dec, err := url.QueryUnescape(name)
	if err != nil || secretParam(dec) {
		if !hasValue {
			return name
		}
		return name + "=" + Redacted
	}
	if !hasValue {
		return scrubComponent(name)
	}
	return scrubComponent(name) + "=" + scrubComponent(value)
}

// scrubComponent removes secret-looking text from a URL component, in its
// raw and in its decoded form (an email written as a%40b.io is still one).
func scrubComponent(s string) string {
	if dec, err := url.QueryUnescape(s); err == nil && dec != s {
		if logging.Scrub(dec) != dec {
			return Redacted
		}
	}
	return logging.Scrub(s)
}

// SanitizePath scrubs a raw URL path of secret-looking text. Route patterns
// such as /unsubscribe/{token} are not on the logged prefixes; what remains
// (source names, project ids) is kept, minus anything that looks like a JWT,
// token, email or accountId.
func SanitizePath(p string) string {
	parts := strings.Split(p, "/")
	for i, s := range parts {
		parts[i] = scrubComponent(s)
	}
	return strings.Join(parts, "/")
}

// loggedHeaders is the allowlist of request headers kept in the log.
// Authorization, Cookie and every other header are dropped unseen.
var loggedHeaders = []string{
	"User-Agent", "Accept", "Accept-Encoding", "Accept-Language", "Content-Type", "Content-Length",
	"Content-Encoding", "OData-Version", "OData-MaxVersion", "Prefer", "X-Request-Id", "If-None-Match",
}

// SanitizeHeaders keeps only allowlisted headers, each value scrubbed.
func SanitizeHeaders(h http.Header) map[string]string {
	out := make(map[string]string, 4)
	for _, k := range loggedHeaders {
		if v := h.Values(k); len(v) > 0 {
			out[k] = logging.Scrub(strings.Join(v, ", "))
		}
	}
	return out
}

// secretJSONField matches a JSON string member whose name looks secret, in
// whole or truncated bodies alike ("sharedSecret" of the Connect install
// payload, "password", "token", …).
var secretJSONField = regexp.MustCompile(`(?i)("[a-z0-9_.-]*(?:secret|token|password|passwd|jwt|authorization|cookie|credential|apikey|api_key|privatekey|private_key|assertion|email|accountid)[a-z0-9_.-]*"\s*:\s*)"(?:[^"\\]|\\.)*("|$)`)

// SanitizeBody removes secrets from a (possibly truncated) request body:
// values of secret-named JSON fields, secret form fields, and anything
// secret-looking elsewhere (JWTs, tokens, emails, accountIds).
func SanitizeBody(contentType string, body []byte) []byte {
	if len(body) == 0 {
		return body
	}
	s := string(body)
	if strings.HasPrefix(strings.ToLower(contentType), "application/x-www-form-urlencoded") {
		s = SanitizeQuery(s)
	} else {
		s = secretJSONField.ReplaceAllString(s, `${1}"`+Redacted+`"`)
	}
	return []byte(logging.Scrub(s))
}
