package odata

import (
	"encoding/json"
	"testing"
)

func TestMatchHasODataMeaning(t *testing.T) {
	row := Row{"Key": "PROJ-10", "Id": int64(10), "Summary": "Fix login", "Status": "Done", "Project": "PROJ",
		"StoryPoints": json.Number("2.50"), "Flagged": false, "DueDate": "2024-02-29",
		"Created": mustTime("2024-01-31T10:00:00.123456Z"), "Resolved": nil, "Team": nil}
	get := func(p string) any { return row[p] }
	for _, tc := range []struct {
		filter string
		want   bool
	}{
		{"Status eq 'Done'", true},
		{"Status eq 'done'", false}, // exact and case-sensitive
		{"Status ne 'done'", true},
		{"Status in ('To Do','Done')", true},
		{"Status gt 'Dona'", true}, // code point order
		{"Status lt 'D'", false},
		{"Key gt 'PROJ-9'", false}, // "PROJ-10" < "PROJ-9" by code point
		{"StoryPoints eq 2.5", true},
		{"StoryPoints gt 2", true},
		{"Id le 10", true},
		{"Id in (1, 10)", true},
		{"Flagged eq false", true},
		{"Flagged", false},
		{"DueDate eq 2024-02-29", true},
		{"DueDate lt 2024-03-01", true},
		{"Created eq 2024-01-31T10:00:00.123Z", true}, // the client sees milliseconds
		{"Created gt 2024-01-31T10:00:00Z", true},
		{"Created lt 2024-01-31T11:00:00+01:00", false},
		{"Resolved eq null", true},
		{"Resolved ne null", false},
		{"Resolved gt 2024-01-01T00:00:00Z", false}, // null compares false
		{"not (Resolved gt 2024-01-01T00:00:00Z)", true},
		{"Team ne 'Blue'", true}, // null ne a value is true
		{"Team eq 'Blue'", false},
		{"not (Team in ('Blue'))", true},
		{"contains(Summary,'login')", true},
		{"startswith(Summary,'fix')", false},
		{"endswith(Summary,'login') and not (Status eq 'Open')", true},
		{"contains(Team,'x')", false},
	} {
		e, err := ParseFilter(tc.filter, issues)
		if err != nil {
			t.Fatalf("%s: %v", tc.filter, err)
		}
		if got := e.Match(get); got != tc.want {
			t.Errorf("%s = %v, want %v", tc.filter, got, tc.want)
		}
	}
	var none *Expr
	if !none.Match(get) {
		t.Error("no filter matches every row")
	}
}
