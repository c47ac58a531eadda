package staff_test

import (
	"regexp"
	"strings"
	"testing"
	"unicode/utf8"

	"ferry/internal/staff"
)

var anyEmail = regexp.MustCompile(`[^\s@]+@[^\s@]+\.[^\s@]+`)

// FuzzBreakGlassReasonAndTicket: the reason and ticket a staff member types
// are kept in the audit trail for good. Whatever is accepted has the right
// length and no email address; nothing panics.
func FuzzBreakGlassReasonAndTicket(f *testing.F) {
	for _, s := range []string{"customer reports a 401 on the feed", "SUP-1234", "bob@example.com", "short", "", "\x00\xff",
		"ticket #42 / jira:SUP-7", strings.Repeat("x", 600), "mail a@b.co please", "JIRA-1@x.io"} {
		f.Add(s, s)
	}
	f.Fuzz(func(t *testing.T, reason, ticket string) {
		if staff.CheckReason(reason) == nil {
			n := utf8.RuneCountInString(strings.TrimSpace(reason))
			if n < staff.MinReasonLen || n > staff.MaxReasonLen || anyEmail.MatchString(reason) || !utf8.ValidString(reason) || strings.ContainsRune(reason, 0) {
				t.Fatalf("reason %q accepted", reason)
			}
		}
		if staff.CheckTicket(ticket) == nil {
			tk := strings.TrimSpace(ticket)
			if len(tk) < 2 || len(tk) > 64 || strings.ContainsAny(tk, " @\n\t<>\"'") {
				t.Fatalf("ticket %q accepted", ticket)
			}
		}
	})
}
