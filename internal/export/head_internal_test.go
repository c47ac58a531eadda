package export

import (
	"encoding/json"
	"strings"
	"testing"

	"ferry/internal/export/odata"
	"ferry/internal/jira"
)

// TestChangesSinceIsAWindowOnUpdated: only a filter that bounds Updated from
// below for every row it selects marks a walk of changes; an Or, a Not, an
// upper bound alone or another date does not.
func TestChangesSinceIsAWindowOnUpdated(t *testing.T) {
	var known []jira.Field
	for _, id := range []string{"created", "updated"} {
		f := jira.Field{ID: id, Key: id, Name: strings.ToUpper(id[:1]) + id[1:], Orderable: true, ClauseNames: []string{id}}
		if err := json.Unmarshal([]byte(`{"type":"datetime","system":"`+id+`"}`), &f.Schema); err != nil {
			t.Fatal(err)
		}
		known = append(known, f)
	}
	set := entitySet("Issues", "Issue", "Key", IssueColumns(known, []string{"created", "updated"}))
	for _, c := range []struct {
		filter string
		want   bool
	}{
		{"Updated ge 2026-01-01T00:00:00Z", true},
		{"Updated gt 2026-01-01T00:00:00Z", true},
		{"Updated ge 2026-01-01T00:00:00Z and Updated lt 2026-02-01T00:00:00Z", true},
		{"Updated lt 2026-02-01T00:00:00Z and Updated ge 2026-01-01T00:00:00Z", true},
		{"Key eq 'A-1' and (Updated ge 2026-01-01T00:00:00Z and Updated lt 2026-02-01T00:00:00Z)", true},
		{"2026-01-01T00:00:00Z le Updated", true},
		{"Updated lt 2026-02-01T00:00:00Z", false},
		{"Updated eq 2026-02-01T00:00:00Z", false},
		{"Created ge 2026-01-01T00:00:00Z", false},
		{"Updated ge 2026-01-01T00:00:00Z or Key eq 'A-1'", false},
		{"not (Updated lt 2026-01-01T00:00:00Z)", false},
	} {
		e, err := odata.ParseFilter(c.filter, set)
		if err != nil {
			t.Fatalf("%s: %v", c.filter, err)
		}
		if got := changesSince(e); got != c.want {
			t.Errorf("%s: changes since a moment %v, want %v", c.filter, got, c.want)
		}
	}
}
