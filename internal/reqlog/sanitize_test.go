package reqlog_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"ferry/internal/reqlog"
)

func TestSanitizeQueryRemovesSecrets(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"", ""},
		{"$top=5&$skip=10", "$top=5&$skip=10"},
		{"jwt=" + jwt + "&lic=active", "jwt=[redacted]&lic=active"},
		{"%24skiptoken=abc&$skiptoken=def", "%24skiptoken=[redacted]&$skiptoken=[redacted]"},
		{"access_token=a&TOKEN=b&Signature=c&sentry_key=d&X-Amz-Signature=e", "access_token=[redacted]&TOKEN=[redacted]&Signature=[redacted]&sentry_key=[redacted]&X-Amz-Signature=[redacted]"},
		{"j%77t=abc", "j%77t=[redacted]"},
		{"a=1;jwt=abc", "a=1;jwt=[redacted]"},
		{"bad%zz=secret", "bad%zz=[redacted]"},
		{"u=" + email, "u=[redacted]"},
		{"u=ada.lovelace%40example.org", "u=[redacted]"},
		{"owner=" + url.QueryEscape(account), "owner=[redacted]"},
		{"flag&x=", "flag&x="},
	} {
		if got := reqlog.SanitizeQuery(c.in); got != c.want {
			t.Errorf("SanitizeQuery(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

func TestSanitizeHeadersKeepsOnlyTheAllowlist(t *testing.T) {
	h := http.Header{}
	h.Set("Authorization", "JWT "+jwt)
	h.Set("Cookie", "s="+pat)
	h.Set("X-Forwarded-For", "203.0.113.9")
	h.Set("Accept", "application/json")
	h.Set("Prefer", "odata.maxpagesize=500")
	got := reqlog.SanitizeHeaders(h)
	if len(got) != 2 || got["Accept"] != "application/json" || got["Prefer"] != "odata.maxpagesize=500" {
		t.Errorf("SanitizeHeaders = %v", got)
	}
}

func TestSanitizeBodyRemovesSecretFieldsEvenWhenTruncated(t *testing.T) {
	body := `{"key":"k","clientKey":"ck","sharedSecret":"s3cr3t\"x","baseUrl":"https://x.atlassian.net","password":"hunter2hunter2","note":"` + jwt
	got := string(reqlog.SanitizeBody("application/json", []byte(body)))
	for _, bad := range []string{"s3cr3t", "hunter2", jwt} {
		if strings.Contains(got, bad) {
			t.Errorf("body keeps %q: %s", bad, got)
		}
	}
	if !strings.Contains(got, `"clientKey":"ck"`) || !strings.Contains(got, "x.atlassian.net") {
		t.Errorf("body lost ordinary fields: %s", got)
	}
	form := string(reqlog.SanitizeBody("application/x-www-form-urlencoded", []byte("assertion="+jwt+"&grant_type=x")))
	if form != "assertion=[redacted]&grant_type=x" {
		t.Errorf("form body = %q", form)
	}
}

// FuzzSanitizeQuery: whatever the input, no secret parameter keeps a value —
// as our splitter sees it and as Go's own url.ParseQuery (what handlers use)
// sees it — and sanitizing is idempotent.
func FuzzSanitizeQuery(f *testing.F) {
	for _, s := range []string{"jwt=a.b.c&x=1", "%24skiptoken=abc", "a=1;token=2", "j%77t=x", "%zz=1&sig=2", "=&&=;", "x=" + email} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		out := reqlog.SanitizeQuery(raw)
		if again := reqlog.SanitizeQuery(out); again != out {
			t.Fatalf("not idempotent: %q -> %q -> %q", raw, out, again)
		}
		vals, _ := url.ParseQuery(out)
		for k, vs := range vals {
			if !secret(k) {
				continue
			}
			for _, v := range vs {
				if v != "" && v != reqlog.Redacted {
					t.Fatalf("%q -> %q: secret parameter %q keeps value %q", raw, out, k, v)
				}
			}
		}
	})
}

func secret(k string) bool {
	k = strings.TrimLeft(strings.ToLower(strings.TrimSpace(k)), "$")
	switch k {
	case "jwt", "token", "access_token", "skiptoken", "signature", "sig", "sentry_key", "code", "key", "assertion":
		return true
	}
	return strings.Contains(k, "token") || strings.Contains(k, "secret")
}
