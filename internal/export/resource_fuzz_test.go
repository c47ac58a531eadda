package export

import (
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"ferry/internal/export/odata"
)

// The path after /odata/{source}/ is the client's: an entity set, its
// $count, an entity by key. Whatever it is, the answer is a resource of the
// service or an OData error with a client status, never a panic.
func FuzzParseResource(f *testing.F) {
	for _, s := range []string{"Issues", "Issues/$count", "Issues('P-1')", "Issues(Key='P-1')", "Issues('P-1')/Summary",
		"Changelog('1-2-3')", "Issues(", "Issues()", "Issues('a''b')", "$metadata", "Issues('x')/$count", "((", "Sprints"} {
		f.Add(s)
	}
	svc, _ := service(DataSource{Fields: []string{"summary", "status"}, Tables: []string{TableIssues, TableChangelog}}, nil)
	f.Fuzz(func(t *testing.T, rest string) {
		res, err := parseResource(rest, svc)
		if err != nil {
			var oe *odata.Error
			if !errors.As(err, &oe) || oe.Status < 400 || oe.Status == http.StatusInternalServerError {
				t.Fatalf("%q: %v is not an OData client error", rest, err)
			}
			return
		}
		if res.set.Name != TableIssues && res.set.Name != TableChangelog {
			t.Fatalf("%q: resolved to set %q", rest, res.set.Name)
		}
		if !strings.HasPrefix(rest, res.set.Name) {
			t.Fatalf("%q: resolved to %q", rest, res.set.Name)
		}
	})
}

// Jira's date-times are outside input on every row: what parses prints back
// to the same instant.
func FuzzParseJiraTime(f *testing.F) {
	for _, s := range []string{"2024-06-24T19:24:50.000+0000", "2024-06-24T19:24:50Z", "2024-06-24T19:24:50.123456789+05:30",
		"2024-02-30T00:00:00.000+0000", "0000-01-01T00:00:00.000-2359", "2024-06-24T19:24:50+0000", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		tm, err := ParseJiraTime(s)
		if err != nil {
			return
		}
		back, err := time.Parse(time.RFC3339Nano, tm.Format(time.RFC3339Nano))
		if err != nil || !back.Equal(tm) {
			t.Fatalf("%q → %v → %v, %v", s, tm, back, err)
		}
	})
}
