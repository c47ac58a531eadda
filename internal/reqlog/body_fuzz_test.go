package reqlog_test

import (
	"encoding/json"
	"strings"
	"testing"

	"ferry/internal/reqlog"
)

// Request bodies are the client's and may be cut at BodyCap anywhere: the
// value of a secret-named JSON field never survives sanitising, whole or
// truncated, whatever surrounds it.
func FuzzSanitizeBody(f *testing.F) {
	f.Add(`{"clientKey":"ck","sharedSecret":"%s","baseUrl":"https://a.atlassian.net"}`, "S3cretValue0123456789", 40)
	f.Add(`{"a":[{"password":"%s"}]}`, "hunter2hunter2xx", 1000)
	f.Add(`{"apiToken" : "%s"`, "tok_ABCDEFGHIJKLMNOP", 17)
	f.Fuzz(func(t *testing.T, shape, secret string, cut int) {
		if len(secret) < 12 || strings.ContainsAny(secret, "\"\\%") || !strings.Contains(shape, `"%s"`) || strings.Count(shape, "%") != 1 {
			return
		}
		body := strings.Replace(shape, "%s", secret, 1)
		var v any
		if json.Unmarshal([]byte(body), &v) != nil && !strings.HasPrefix(body, `{"apiToken"`) {
			return
		}
		// Only shapes where the secret is a JSON string value of a field whose
		// name says secret.
		i := strings.Index(shape, `"%s"`)
		head := strings.TrimRight(shape[:i], " \t\r\n")
		if !strings.HasSuffix(head, ":") {
			return
		}
		name := head[:len(head)-1]
		name = strings.TrimRight(name, " \t\r\n")
		j := strings.LastIndexByte(name[:max(len(name)-1, 0)], '"')
		if j < 0 || !strings.HasSuffix(name, `"`) {
			return
		}
		field := strings.ToLower(name[j+1 : len(name)-1])
		if !strings.Contains(field, "secret") && !strings.Contains(field, "password") && !strings.Contains(field, "token") {
			return
		}
		if strings.ContainsAny(field, "\\\"") {
			return
		}
		if cut <= 0 || cut > len(body) {
			cut = len(body)
		}
		out := string(reqlog.SanitizeBody("application/json", []byte(body[:cut])))
		if strings.Contains(out, secret) {
			t.Fatalf("secret survived: %q → %q", body[:cut], out)
		}
	})
}
