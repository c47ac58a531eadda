package odata

import (
	"testing"
)

func TestParseFilterAccepts(t *testing.T) {
	// input → canonical form (String), which must parse back to itself.
	for _, tc := range []struct{ in, want string }{
		{"Key eq 'PROJ-1'", "Key eq 'PROJ-1'"},
		{"Summary eq 'it''s'", "Summary eq 'it''s'"},
		{"Summary eq ''", "Summary eq ''"},
		{"Summary eq 'x\" OR project = SECRET'", "Summary eq 'x\" OR project = SECRET'"},
		{"Id gt 10", "Id gt 10"},
		{"Id ge -5", "Id ge -5"},
		{"Id lt +7", "Id lt 7"},
		{"StoryPoints le 3.50", "StoryPoints le 3.50"},
		{"StoryPoints eq 3", "StoryPoints eq 3"},
		{"Flagged eq true", "Flagged eq true"},
		{"Flagged", "Flagged eq true"},
		{"not Flagged", "not (Flagged eq true)"},
		{"DueDate lt 2024-01-31", "DueDate lt 2024-01-31"},
		{"Created ge 2024-01-31T10:00:00Z", "Created ge 2024-01-31T10:00:00Z"},
		{"Created ge 2024-01-31T10:00Z", "Created ge 2024-01-31T10:00:00Z"},
		{"Created lt 2024-01-31T10:00:00.123+02:00", "Created lt 2024-01-31T10:00:00.123+02:00"},
		{"Resolved eq null", "Resolved eq null"},
		{"null ne Resolved", "Resolved ne null"},
		{"'Done' eq Status", "Status eq 'Done'"},
		{"10 lt Id", "Id gt 10"},
		{"2024-01-01T00:00:00Z le Created", "Created ge 2024-01-01T00:00:00Z"},
		{"Status in ('Done','In Progress')", "Status in ('Done','In Progress')"},
		{"Id in (1, 2 ,3)", "Id in (1,2,3)"},
		{"Status eq 'A' and Id gt 1 or Id lt 0", "((Status eq 'A' and Id gt 1) or Id lt 0)"},
		{"Status eq 'A' or Id gt 1 and Id lt 0", "(Status eq 'A' or (Id gt 1 and Id lt 0))"},
		{"(Status eq 'A' or Id gt 1) and Id lt 0", "((Status eq 'A' or Id gt 1) and Id lt 0)"},
		{"not (Status eq 'A' or Status eq 'B')", "not (Status eq 'A' or Status eq 'B')"},
		{"not not Id eq 1", "not (not (Id eq 1))"},
		{"not Id eq 1 and Id eq 2", "(not (Id eq 1) and Id eq 2)"},
		{"  ( ( Id eq 1 ) )  ", "Id eq 1"},
		{"Id EQ 1 AND Status Ne 'x'", "(Id eq 1 and Status ne 'x')"},
		{"Flagged eq TRUE", "Flagged eq true"},
		{"contains(Summary,'crash')", "contains(Summary,'crash')"},
		{"startswith(Key, 'PROJ-')", "startswith(Key,'PROJ-')"},
		{"endswith(Summary,'!') eq true", "endswith(Summary,'!')"},
		{"contains(Summary,'x') eq false", "not (contains(Summary,'x'))"},
		{"contains(Summary,'x') ne true", "not (contains(Summary,'x'))"},
		{"Summary eq '(a, b) and or not eq'", "Summary eq '(a, b) and or not eq'"},
		{"Summary eq 'Ünïcødé ✓'", "Summary eq 'Ünïcødé ✓'"},
	} {
		t.Run(tc.in, func(t *testing.T) {
			e, err := ParseFilter(tc.in, issues)
			if err != nil {
				t.Fatal(err)
			}
			if got := e.String(); got != tc.want {
				t.Fatalf("String() = %s, want %s", got, tc.want)
			}
			again, err := ParseFilter(e.String(), issues)
			if err != nil || again.String() != tc.want {
				t.Fatalf("canonical form does not parse back: %v %v", again, err)
			}
		})
	}
}

func TestParseFilterLiterals(t *testing.T) {
	e, err := ParseFilter("Summary eq 'it''s \"quoted\"'", issues)
	if err != nil || e.Value.Type != EdmString || e.Value.Str != `it's "quoted"` {
		t.Fatalf("%+v %v", e, err)
	}
	e, _ = ParseFilter("Created gt 2024-06-24T21:24:50+02:00", issues)
	if !e.Value.Time.Equal(mustTime("2024-06-24T19:24:50Z")) {
		t.Fatalf("time %v", e.Value.Time)
	}
	e, _ = ParseFilter("DueDate eq 2024-02-29", issues)
	if e.Value.Type != EdmDate || e.Value.Time.Format("2006-01-02") != "2024-02-29" {
		t.Fatalf("date %+v", e.Value)
	}
}

func TestParseFilterRejects(t *testing.T) {
	for _, tc := range []struct {
		in     string
		status int
		target string
	}{
		// malformed → 400
		{"Nope eq 1", 400, "Nope"},
		{"summary eq 'x'", 400, "summary"}, // case-sensitive
		{"Id eq", 400, "$filter"},
		{"Id", 400, "Id"},
		{"Id 1", 400, "Id"},
		{"eq 1", 400, "eq"},
		{"Summary eq 'open", 400, "$filter"},
		{"(Id eq 1", 400, "$filter"},
		{"Id eq 1)", 400, "$filter"},
		{"Id eq 1 and", 400, "$filter"},
		{"Id eq 1 Id eq 2", 400, "$filter"},
		{"", 400, "$filter"},
		{"Id eq 99999999999999999999", 400, "$filter"},
		{"DueDate eq 2024-02-30", 400, "$filter"},
		{"Created eq 2024-01-31T25:00:00Z", 400, "$filter"},
		{"Id eq 12abc", 400, "$filter"},
		{"Status in 'x'", 400, "$filter"},
		{"Status in ('x' 'y')", 400, "$filter"},
		{"frobnicate(Summary)", 400, "frobnicate"},
		{"Summary/Length eq 1", 400, "Summary"},
		{"Nope/any(l:l eq 'x')", 400, "Nope"},
		// type mismatches → 400 naming the property
		{"Id eq 'x'", 400, "Id"},
		{"Summary eq 1", 400, "Summary"},
		{"Flagged eq 1", 400, "Flagged"},
		{"Created ge 2024-01-01", 400, "Created"},
		{"DueDate ge 2024-01-01T00:00:00Z", 400, "DueDate"},
		{"Status in ('x', 1)", 400, "Status"},
		{"Labels eq 'x'", 400, "Labels"},
		{"contains(Id,'1')", 400, "Id"},
		{"contains(Summary,1)", 400, "Summary"},
		// valid OData, not supported → 501
		{"Labels/any(l:l eq 'x')", 501, "any"},
		{"Labels/all(l:l eq 'x')", 501, "all"},
		{"Id add 1 eq 2", 501, "add"},
		{"Id mod 2 eq 0", 501, "mod"},
		{"Status has 'x'", 501, "has"},
		{"tolower(Summary) eq 'x'", 501, "tolower"},
		{"year(Created) eq 2024", 501, "year"},
		{"Summary eq tolower('X')", 501, "$filter"},
		{"Id eq Id", 501, "$filter"},
		{"Summary eq Status", 501, "$filter"},
		{"1 eq 1", 501, "$filter"},
		{"Id eq @p", 501, "$filter"},
		{"Id eq duration'P1D'", 501, "$filter"},
		{"StoryPoints eq 1e3", 501, "$filter"},
		{"Id eq 1.5", 501, "Id"},
		{"Resolved gt null", 501, "Resolved"},
		{"(Id eq 1) eq true", 501, "$filter"},
		{"$it/Id eq 1", 501, "$filter"},
		{"contains(Summary,'x') gt true", 501, "contains"},
		{"ns.fn(Summary)", 501, "ns.fn"},
	} {
		t.Run(tc.in, func(t *testing.T) {
			_, err := ParseFilter(tc.in, issues)
			wantError(t, err, tc.status, tc.target)
		})
	}
}

func TestParseFilterLimits(t *testing.T) {
	deep := ""
	for i := 0; i < 200; i++ {
		deep += "("
	}
	_, err := ParseFilter(deep+"Id eq 1", issues)
	wantError(t, err, 400, "$filter")
	nots := ""
	for i := 0; i < 200; i++ {
		nots += "not "
	}
	_, err = ParseFilter(nots+"Id eq 1", issues)
	wantError(t, err, 400, "$filter")
	long := make([]byte, maxFilterLen+1)
	for i := range long {
		long[i] = ' '
	}
	_, err = ParseFilter(string(long), issues)
	wantError(t, err, 400, "$filter")
	_, err = ParseFilter("Summary eq '\xff'", issues)
	wantError(t, err, 400, "$filter")
}
