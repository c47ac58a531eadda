// Package logging builds Ferry's slog logger. Every record passes through a
// redacting handler: attributes whose key names a secret, personal data or
// Jira content are replaced whole, and values that look like JWTs,
// bearer/basic credentials, access tokens, email addresses, accountIds or
// card numbers are replaced wherever they appear — including inside error
// strings and nested groups. The rules are internal/scrub's, shared with
// error tracking, so logs and error events are scrubbed by one table. Debug and error logs are thereby anonymized
// (statement: Logs Data) without relying on every call site to be careful.
package logging

import (
	"context"
	"io"
	"log/slog"
	"os"

	"golang.org/x/term"

	"ferry/internal/scrub"
)

// Redacted replaces anything removed from a log record.
const Redacted = scrub.Redacted

// Scrub replaces every secret-looking substring of s, with the rules of
// internal/scrub marked for logs: JWTs, bearer/basic credentials, Ferry
// tokens, secret name=value pairs, cookies, user:pass@ in URLs, emails,
// accountIds, card numbers and IBANs. The same table scrubs error events
// before they reach Sentry; logs keep IP addresses (listen addresses) and
// non-secret query parameters.
func Scrub(s string) string { return scrub.Logs.Text(s) }

func secretKey(k string) bool { return scrub.Logs.SecretKey(k) }

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
