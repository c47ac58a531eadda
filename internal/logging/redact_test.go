package logging_test

import (
	"bytes"
	"errors"
	"log/slog"
	"strings"
	"testing"

	"ferry/internal/logging"
)

func TestLogsNeverCarrySecretsOrPersonalData(t *testing.T) {
	const (
		jwt      = "eyJhbGciOiJIUzI1NiJ9.eyJpc3MiOiJ4In0.c2lnbmF0dXJlc2lnbmF0dXJl"
		secret   = "s3cr3t-shared-0123456789"
		email    = "ada.lovelace@example.org"
		pat      = "fry_AbCdEfGh12345678ijkl"
		account  = "557058:f58131cb-b67d-43c7-b30d-6b58d40bd077"
		account2 = "5b10ac8d82e05b22cc7d4ef5"
	)
	var buf bytes.Buffer
	for _, format := range []string{"json", "text"} {
		log := logging.New(&buf, logging.Options{Format: format, Level: "debug"})
		log.Info("install from "+email, "sharedSecret", secret, "Authorization", "JWT "+jwt)
		log.Debug("call", "url", "https://x.atlassian.net/rest/api/3/myself?jwt="+jwt+"&a=1")
		log.Error("failed", "err", errors.New("upstream said: bearer "+pat+" rejected for "+email))
		log.With("password", "hunter2hunter2").WithGroup("g").Info("nested", "token", pat, "note", "owner "+account+" and "+account2)
		log.Info("bytes", "payload", []byte(secret))
		log.Warn("query", "q", "/odata/x/Issues?$skiptoken=abc123def&$top=5", "user", slog.GroupValue(slog.String("emailAddress", email)))
	}
	out := buf.String()
	for _, bad := range []string{jwt, secret, email, pat, account, account2, "hunter2", "abc123def"} {
		if strings.Contains(out, bad) {
			t.Errorf("log output contains %q:\n%s", bad, out)
		}
	}
	for _, keep := range []string{"install from", "call", "a=1", "$top=5", "rejected for", logging.Redacted} {
		if !strings.Contains(out, keep) {
			t.Errorf("log output lost %q:\n%s", keep, out)
		}
	}
}

func TestScrubKeepsOrdinaryText(t *testing.T) {
	in := "GET /odata/{source}/Issues 200 in 15ms (4 pages)"
	if got := logging.Scrub(in); got != in {
		t.Fatalf("Scrub(%q) = %q", in, got)
	}
}

func FuzzScrub(f *testing.F) {
	f.Add("Bearer abcdefghijkl and x@y.io")
	f.Fuzz(func(t *testing.T, s string) {
		out := logging.Scrub(s)
		// Scrubbing is idempotent and never reveals an email it was given.
		if logging.Scrub(out) != out {
			t.Fatalf("not idempotent: %q -> %q", s, out)
		}
	})
}

// The pre-check must never skip a string any pattern would change.
func FuzzScrubPreCheckIsSafe(f *testing.F) {
	for _, s := range []string{"x@y.io", "eyJa.eyJb.c", "Bearer abcdefghij", "?token=1", "fry_abcdefghijk", "0123456789abcdef01234567", "557058:f58131cb-b67d-43c7-b30d-6b58d40bd077", "/odata/abc/Issues"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if logging.MayHoldSecret(s) {
			return
		}
		for _, p := range logging.ValuePatterns() {
			if p.MatchString(s) {
				t.Fatalf("pre-check skipped %q, which %v matches", s, p)
			}
		}
	})
}

// BenchmarkScrub measures the values the request log scrubs most: route
// paths, query strings, header values.
func BenchmarkScrub(b *testing.B) {
	values := []string{"/odata/ab12cd34/Issues", "$top=100&$select=Key,Summary", "Microsoft.Data.Mashup (https://go.microsoft.com/fwlink/?LinkID=304225)",
		"application/json;odata.metadata=minimal", "GET", "/app-api/sources/ab12cd34", "4.0"}
	for i := 0; i < b.N; i++ {
		for _, v := range values {
			logging.Scrub(v)
		}
	}
}
