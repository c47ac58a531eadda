package odata

import (
	"strings"
	"testing"
	"time"
)

func foldOf(t *testing.T, filter string, m FieldMap) Fold {
	t.Helper()
	e, err := ParseFilter(filter, issues)
	if err != nil {
		t.Fatalf("ParseFilter(%s): %v", filter, err)
	}
	f, err := e.Fold(m)
	if err != nil {
		t.Fatalf("Fold(%s): %v", filter, err)
	}
	return f
}

// Exact folds: JQL says exactly what OData means.
func TestFoldExact(t *testing.T) {
	for _, tc := range []struct{ filter, want string }{
		{"Resolved eq null", `resolved IS EMPTY`},
		{"Resolved ne null", `resolved IS NOT EMPTY`},
		{"not (Resolved eq null)", `resolved IS NOT EMPTY`},
		{"Id eq 10", `id = 10`},
		{"Id in (10, 11)", `id IN (10, 11)`},
		{"StoryPoints ge 2.5", `cf[10016] >= 2.5`},
		{"not (StoryPoints lt 2.5)", `(cf[10016] >= 2.5 OR cf[10016] IS EMPTY)`},
		{"StoryPoints ne 3", `(cf[10016] != 3 OR cf[10016] IS EMPTY)`},
		{"StoryPoints in (1, 2.5)", `(cf[10016] = 1 OR cf[10016] = 2.5)`},
		{"not (StoryPoints in (1, 3))", `((cf[10016] != 1 AND cf[10016] != 3) OR cf[10016] IS EMPTY)`},
		{"DueDate in (2024-01-31)", `duedate = "2024-01-31"`},
		{"DueDate le 2024-01-31", `duedate <= "2024-01-31"`},
		{"Created ge 2024-01-31T10:00:00Z", `created >= "2024-01-31 10:00"`},
		{"Created lt 2024-01-31T12:00:00+02:00", `created < "2024-01-31 10:00"`},
		{"Created ge 2024-01-31T10:00Z and Created lt 2024-02-01T00:00Z", `(created >= "2024-01-31 10:00" AND created < "2024-02-01 00:00")`},
		{"not (Created lt 2024-01-31T10:00Z)", `created >= "2024-01-31 10:00"`}, // Created is never null
		{"StoryPoints eq 1 or StoryPoints gt 5 and Id eq 1", `(cf[10016] = 1 OR (cf[10016] > 5 AND id = 1))`},
		{"Project ne null", ``},                   // a non-nullable property is never null
		{"Project eq null or Id eq 3", `id = 3`},  // … so that side matches nothing
		{"Project ne null and Id eq 3", `id = 3`}, // … and this one everything
		{"Project eq null", `NEVER`},              // the whole filter matches nothing
		{"not (Project ne null) and Id eq 3", `NEVER`},
	} {
		t.Run(tc.filter, func(t *testing.T) {
			f := foldOf(t, tc.filter, fields)
			got := f.JQL
			if f.Never {
				got = "NEVER"
			}
			if got != tc.want || !f.Exact {
				t.Fatalf("JQL = %s (exact %v)\n         want %s exactly", got, f.Exact, tc.want)
			}
		})
	}
}

// Widened folds: the JQL holds every match (and more); Match decides.
func TestFoldWidensWhatJQLCannotSayExactly(t *testing.T) {
	for _, tc := range []struct{ filter, want string }{
		{"Key eq 'PROJ-1'", `key = "PROJ-1"`},   // case-insensitive, old keys of moved issues
		{"Status eq 'Done'", `status = "Done"`}, // case-insensitive and by id
		{"Status in ('Done','To Do')", `status IN ("Done", "To Do")`},
		{"Status ne 'Done'", ``}, // JQL != drops "done" and an id match: nothing narrower holds
		{"not (Status eq 'Done')", ``},
		{"not (Status ne 'Done')", `status = "Done"`},
		{"Team eq 'x' or Id eq 1", `("Team \"A\"" = "x" OR id = 1)`},
		{"Team ne 'x'", ``},
		{"Team gt 'x'", `"Team \"A\"" IS NOT EMPTY`}, // an ordering never matches null
		{"Summary eq 'x'", ``},                       // a text field: JQL has only ~
		{"contains(Summary,'x') and Id eq 4", `id = 4`},
		{"Key gt 'PROJ-9'", ``},                 // JQL orders keys by number, OData by code point
		{"Id gt 10", ``},                        // JQL orders "id" as an issue key
		{"Status eq ''", `status IS NOT EMPTY`}, // JQL has no empty string
		{"Project eq 'a\tb'", ``},               // nor reliable control characters
		{"Flagged eq true", ``},
		{"Created ge 2024-01-31T10:00:30Z", `created >= "2024-01-31 10:00"`},
		{"Created gt 2024-01-31T10:00:00Z", `created >= "2024-01-31 10:00"`},
		{"Created lt 2024-01-31T10:00:00.5Z", `created < "2024-01-31 10:01"`},
		{"Created le 2024-01-31T10:00:00Z", `created < "2024-01-31 10:01"`},
		{"Created eq 2024-01-31T10:00:00Z", `(created >= "2024-01-31 10:00" AND created < "2024-01-31 10:01")`},
		{"Created ne 2024-01-31T10:00:00Z", ``},
		{"Resolved lt 2024-01-31T10:00:00.5Z", `resolved < "2024-01-31 10:01"`},
		{"not (Resolved ge 2024-01-31T10:00:30Z)", `(resolved < "2024-01-31 10:01" OR resolved IS EMPTY)`},
		{"Status eq 'A' or contains(Summary,'x')", ``},
	} {
		t.Run(tc.filter, func(t *testing.T) {
			f := foldOf(t, tc.filter, fields)
			if f.JQL != tc.want || f.Exact || f.Never {
				t.Fatalf("JQL = %s (exact %v, never %v)\n         want %s, not exact", f.JQL, f.Exact, f.Never, tc.want)
			}
		})
	}
}

// Widen drops every value Jira could refuse as unknown.
func TestFoldWideDropsValuesJiraMayRefuse(t *testing.T) {
	wide := FieldMap{Zone: time.UTC, Fields: fields.Fields, Widen: true}
	for _, tc := range []struct{ filter, narrow, wide string }{
		{"Project eq 'Nope'", `project = "Nope"`, ``},
		{"Team eq 'Nope'", `"Team \"A\"" = "Nope"`, `"Team \"A\"" IS NOT EMPTY`},
		{"Id eq 99 and StoryPoints gt 1", `(id = 99 AND cf[10016] > 1)`, `cf[10016] > 1`},
		{"Key in ('X-1','Y-2')", `key IN ("X-1", "Y-2")`, ``},
	} {
		n, w := foldOf(t, tc.filter, fields), foldOf(t, tc.filter, wide)
		if n.JQL != tc.narrow || !n.Refusable || w.JQL != tc.wide || w.Refusable || w.Exact {
			t.Errorf("%s: narrow %q (refusable %v), wide %q (refusable %v, exact %v)", tc.filter, n.JQL, n.Refusable, w.JQL, w.Refusable, w.Exact)
		}
	}
	if f := foldOf(t, "StoryPoints gt 1", fields); f.Refusable {
		t.Error("numbers are never refused")
	}
}

// A string literal never leaves its JQL string, whatever it holds.
func TestJQLStringLiteralsCannotInject(t *testing.T) {
	m := FieldMap{Zone: time.UTC, Fields: map[string]JQLField{"Summary": {Clause: "summary", Kind: FoldName}, "Status": {Clause: "status", Kind: FoldName}}}
	for _, tc := range []struct{ filter, want string }{
		{`Summary eq 'x" OR project = SECRET'`, `summary = "x\" OR project = SECRET"`},
		{`Status eq 'x\" OR project = SECRET OR status = \'`, `status = "x\\\" OR project = SECRET OR status = \\"`},
		{`Status eq '\'`, `status = "\\"`},
		{`Status eq '\\" or 1=1 --'`, `status = "\\\\\" or 1=1 --"`},
		{`Status eq 'it''s'`, `status = "it's"`},
		{`Status in ('a"', 'b\')`, `status IN ("a\"", "b\\")`},
		{`Status eq ') OR (project = SECRET'`, `status = ") OR (project = SECRET"`},
	} {
		t.Run(tc.filter, func(t *testing.T) {
			got := foldOf(t, tc.filter, m).JQL
			if got != tc.want {
				t.Fatalf("JQL = %s\n         want %s", got, tc.want)
			}
			if n := unescapedQuotes(got); n%2 != 0 || strings.Count(got, `"`) == 0 {
				t.Fatalf("unbalanced quoting in %s", got)
			}
		})
	}
}

// unescapedQuotes counts the double quotes that delimit JQL strings.
func unescapedQuotes(s string) int {
	n := 0
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '\\':
			i++
		case '"':
			n++
		}
	}
	return n
}

func TestFoldOfNothing(t *testing.T) {
	var none *Expr
	if f, err := none.Fold(fields); f.JQL != "" || !f.Exact || err != nil {
		t.Fatalf("nil filter: %+v %v", f, err)
	}
	// A property without a mapping is decided on the stream.
	if f := foldOf(t, "Status eq 'x'", FieldMap{Zone: time.UTC}); f.JQL != "" || f.Exact {
		t.Fatalf("unmapped: %+v", f)
	}
}

func TestJQLDateTimesInUserZone(t *testing.T) {
	m := FieldMap{Zone: berlin, Fields: fields.Fields}
	if f := foldOf(t, "Created ge 2024-01-31T10:00:00Z", m); f.JQL != `created >= "2024-01-31 11:00"` || !f.Exact {
		t.Fatalf("%+v", f)
	}
	if f := foldOf(t, "Created ge 2024-07-01T10:00:00Z", m); f.JQL != `created >= "2024-07-01 12:00"` {
		t.Fatalf("summer time: %+v", f)
	}
	// 2024-10-27 02:30 happens twice in Berlin: the bound moves outwards to
	// a wall time JQL can read only one way, and the stream decides.
	if f := foldOf(t, "Created ge 2024-10-27T00:30:00Z", m); f.JQL != `created >= "2024-10-27 01:30"` || f.Exact {
		t.Fatalf("ambiguous lower bound: %+v", f)
	}
	if f := foldOf(t, "Created lt 2024-10-27T01:30:00Z", m); f.JQL != `created < "2024-10-27 03:00"` || f.Exact {
		t.Fatalf("ambiguous upper bound: %+v", f)
	}
	if f := foldOf(t, "Created ge 2024-10-27T02:30:00Z", m); f.JQL != `created >= "2024-10-27 03:30"` || !f.Exact {
		t.Fatalf("after the change: %+v", f)
	}
	// Dates are calendar days: no zone involved.
	if f := foldOf(t, "DueDate eq 2024-10-27", m); f.JQL != `duedate = "2024-10-27"` {
		t.Fatal(f.JQL)
	}
	// Without a zone a date-time cannot be folded: the stream decides.
	if f := foldOf(t, "Created ge 2024-01-31T10:00:00Z", FieldMap{Fields: fields.Fields}); f.JQL != "" || f.Exact {
		t.Fatalf("no zone: %+v", f)
	}
}

func TestJQLOrderBy(t *testing.T) {
	q, err := ParseQuery("$orderby=Created desc,Id", issues, 0)
	if err != nil {
		t.Fatal(err)
	}
	got, err := JQLOrderBy(q.OrderBy, issues, fields)
	if err != nil || got != "created DESC, id ASC" {
		t.Fatalf("%s %v", got, err)
	}
	if got, _ := JQLOrderBy(nil, issues, fields); got != "" {
		t.Fatal(got)
	}
	q, _ = ParseQuery("$orderby=Resolved", issues, 0)
	_, err = JQLOrderBy(q.OrderBy, issues, fields) // nullable: JQL puts empties last, OData first
	wantError(t, err, 501, "$orderby")
	q, _ = ParseQuery("$orderby=Updated", issues, 0)
	_, err = JQLOrderBy(q.OrderBy, issues, FieldMap{Zone: time.UTC})
	wantError(t, err, 501, "$orderby")
}

// A date-time of a row inside an issue (a worklog's Updated) is never later
// than the issue's updated: ge, gt and eq narrow Jira's search to issues
// updated since, never exactly; everything else is decided on the stream.
func TestFoldBoundedByUpdated(t *testing.T) {
	m := FieldMap{Zone: berlin, Fields: map[string]JQLField{"Created": {Clause: "updated", Kind: FoldBoundedBy}}}
	for _, tc := range []struct{ filter, want string }{
		{"Created ge 2024-01-31T10:00:00Z", `updated >= "2024-01-31 11:00"`},
		{"Created gt 2024-01-31T10:00:00Z", `updated >= "2024-01-31 11:00"`},
		{"Created eq 2024-01-31T10:00:30Z", `updated >= "2024-01-31 11:00"`},
		{"not (Created lt 2024-01-31T10:00:00Z)", `updated >= "2024-01-31 11:00"`},
		{"Created ge 2024-01-31T10:00:00Z and Created lt 2024-02-01T00:00:00Z", `updated >= "2024-01-31 11:00"`},
		{"Created lt 2024-01-31T10:00:00Z", ``},
		{"Created le 2024-01-31T10:00:00Z", ``},
		{"Created ne 2024-01-31T10:00:00Z", ``},
	} {
		f := foldOf(t, tc.filter, m)
		if f.JQL != tc.want || f.Exact {
			t.Errorf("%s: JQL %q exact %v, want %q and not exact", tc.filter, f.JQL, f.Exact, tc.want)
		}
	}
}
