// Package logging builds Ferry's slog logger. Every record passes through a
// redacting handler: attributes whose key names a secret are replaced whole,
// and values that look like JWTs, bearer/basic credentials, access tokens or
// email addresses are replaced wherever they appear — including inside error
// strings and nested groups. Debug and error logs are thereby anonymized
// (statement: Logs Data) without relying on every call site to be careful.
package logging

import (
	"context"
	"io"
	"log/slog"
	"os"
	"regexp"
	"strings"

	"golang.org/x/term"
)

// Redacted replaces anything removed from a log record.
const Redacted = "[redacted]"

// secretKeys are attribute-key fragments whose values are never logged.
// Matching is case-insensitive on the key with "_" and "-" removed.
var secretKeys = []string{
	"secret", "token", "password", "passwd", "authorization", "cookie", "jwt",
	"apikey", "credential", "assertion", "privatekey", "dsn", "email", "accountid",
	"body", "summary", "description", "jql",
}

// allowedKeys end in a secret-looking fragment but hold no secret.
var allowedKeys = map[string]bool{
	"tokenprefix": true, "tokenid": true, "tokens": true, "accountpseudonym": true,
	"bodybytes": true, "tokencount": true,
}

var valuePatterns = []*regexp.Regexp{
	// JWTs: three base64url parts, the first two starting with '{"'.
	regexp.MustCompile(`eyJ[A-Za-z0-9_-]{2,}\.[A-Za-z0-9_-]{2,}\.[A-Za-z0-9_-]*`),
	// Authorization header values.
	regexp.MustCompile(`(?i)\b(bearer|basic|jwt)\s+[A-Za-z0-9._~+/=-]{8,}`),
	// Ferry's own personal access tokens.
	regexp.MustCompile(`\bfry_[A-Za-z0-9_-]{8,}`),
	// Email addresses.
	regexp.MustCompile(`[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}`),
	// Secrets passed in query strings.
	regexp.MustCompile(`(?i)([?&](jwt|token|access_token|skiptoken|\$skiptoken|sentry_key|signature|assertion)=)[^&\s"]+`),
	// Atlassian accountIds: "557058:<uuid>" and 24-hex forms.
	regexp.MustCompile(`\b\d{6}:[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b`),
	regexp.MustCompile(`\b[0-9a-f]{24}\b`),
}

// Scrub replaces every secret-looking substring of s.
func Scrub(s string) string {
	if !mayHoldSecret(s) {
		return s // most log values (routes, codes, counts) need no regexp at all
	}
	for i, p := range valuePatterns {
		if i == 4 {
			s = p.ReplaceAllString(s, "${1}"+Redacted)
			continue
		}
		s = p.ReplaceAllString(s, Redacted)
	}
	return s
}

// mayHoldSecret is a one-pass pre-check: false only when no pattern of
// valuePatterns can match s — no '@', '=' or ':', no "eyJ", "fry_", "bearer",
// "basic" or "jwt" (any case), and no run of 24 hexadecimal digits.
func mayHoldSecret(s string) bool {
	run := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '@' || c == '=' || c == ':':
			return true
		case c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F':
			if run++; run >= 24 {
				return true
			}
		default:
			run = 0
		}
	}
	for _, w := range []string{"eyj", "fry_", "bearer", "basic", "jwt"} {
		if containsFold(s, w) {
			return true
		}
	}
	return false
}

// containsFold reports whether s contains the lower-case ASCII word w in
// any case, without allocating.
func containsFold(s, w string) bool {
	for i := 0; i+len(w) <= len(s); i++ {
		j := 0
		for ; j < len(w); j++ {
			c := s[i+j]
			if c >= 'A' && c <= 'Z' {
				c += 'a' - 'A'
			}
			if c != w[j] {
				break
			}
		}
		if j == len(w) {
			return true
		}
	}
	return false
}

func secretKey(k string) bool {
	k = strings.ToLower(strings.NewReplacer("_", "", "-", "", ".", "").Replace(k))
	if allowedKeys[k] {
		return false
	}
	for _, f := range secretKeys {
		if strings.Contains(k, f) {
			return true
		}
	}
	return false
}

// redactAttr is slog's ReplaceAttr: it sees every attribute, groups included.
func redactAttr(_ []string, a slog.Attr) slog.Attr {
	if a.Key == slog.TimeKey || a.Key == slog.LevelKey || a.Key == slog.SourceKey {
		return a
	}
	if secretKey(a.Key) {
		return slog.String(a.Key, Redacted)
	}
	v := a.Value.Resolve()
	switch v.Kind() {
	case slog.KindString:
		return slog.String(a.Key, Scrub(v.String()))
	case slog.KindAny:
		switch x := v.Any().(type) {
		case error:
			return slog.String(a.Key, Scrub(x.Error()))
		case []byte:
			return slog.String(a.Key, Redacted)
		default:
			return slog.String(a.Key, Scrub(v.String()))
		}
	}
	return slog.Attr{Key: a.Key, Value: v}
}

// handler redacts the message too; ReplaceAttr covers everything else.
type handler struct{ slog.Handler }

func (h handler) Handle(ctx context.Context, r slog.Record) error {
	nr := slog.NewRecord(r.Time, r.Level, Scrub(r.Message), r.PC)
	r.Attrs(func(a slog.Attr) bool { nr.AddAttrs(a); return true })
	return h.Handler.Handle(ctx, nr)
}
func (h handler) WithAttrs(as []slog.Attr) slog.Handler { return handler{h.Handler.WithAttrs(as)} }
func (h handler) WithGroup(n string) slog.Handler       { return handler{h.Handler.WithGroup(n)} }

// Options configures New.
type Options struct {
	Format string // json | text | auto
	Level  string // debug | info | warn | error
}

// New returns a redacting logger writing to w. "auto" picks text on a
// terminal and JSON otherwise.
func New(w io.Writer, o Options) *slog.Logger {
	var lvl slog.Level
	_ = lvl.UnmarshalText([]byte(o.Level))
	ho := &slog.HandlerOptions{Level: lvl, ReplaceAttr: redactAttr}
	format := o.Format
	if format == "" || format == "auto" {
		format = "json"
		if f, ok := w.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
			format = "text"
		}
	}
	var h slog.Handler
	if format == "text" {
		h = slog.NewTextHandler(w, ho)
	} else {
		h = slog.NewJSONHandler(w, ho)
	}
	return slog.New(handler{h})
}
