package scrub_test

import (
	"strings"
	"testing"

	"ferry/internal/scrub"
)

// A quote inside a cookie header (RFC 6265 allows quoted cookie values)
// used to end the match and leave the rest of the header behind, which a
// second pass then removed (found by FuzzText: not idempotent).
func TestCookieHeaderValuesWithQuotesAreRemovedWhole(t *testing.T) {
	for _, in := range []string{
		`Cookie: a="sekrit-value-123"; b=2`,
		`cookie:0"sekrit-value-123`,
		`Set-Cookie: id="sekrit-value-123"; Path=/; HttpOnly`,
		`{"Cookie": "a=sekrit-value-123; b=\"x\"", "ua": "kept"}`,
		`'cookie': 'sekrit-value-123'`,
	} {
		for _, p := range []*scrub.Profile{scrub.Events, scrub.Logs} {
			out := p.Text(in)
			if strings.Contains(out, "sekrit-value-123") {
				t.Errorf("%s: %q → %q keeps the cookie value", p.Name(), in, out)
			}
			if again := p.Text(out); again != out {
				t.Errorf("%s: %q → %q → %q: not idempotent", p.Name(), in, out, again)
			}
		}
	}
	// A quoted field ends at its closing quote: what follows it is kept.
	if out := scrub.Events.Text(`{"Cookie": "a=b", "ua": "kept"}`); !strings.Contains(out, `"ua": "kept"`) {
		t.Errorf("the field after a quoted cookie value was removed too: %q", out)
	}
}
