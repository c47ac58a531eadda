package jirasim

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestJQLParsesSupportedSubset(t *testing.T) {
	s := New(Options{Issues: 300, Projects: 3, Users: 5, Seed: 7})
	c := s.snapshot()
	all := s.allProjects()
	k0, k1 := s.ProjectKeys()[0], s.ProjectKeys()[1]
	count := func(jql string) int {
		t.Helper()
		cq, err := compileJQL(jql, c, all, true)
		if err != nil {
			t.Fatalf("%s: %v", jql, err)
		}
		n := 0
		for i := 0; i < c.len(); i++ {
			if cq.match(i) {
				n++
			}
		}
		return n
	}
	inP0 := count("project = " + k0)
	inP1 := count(`project = "` + k1 + `"`)
	if inP0 == 0 || inP1 == 0 {
		t.Fatalf("empty projects: %d %d", inP0, inP1)
	}
	if got := count("project in (" + k0 + ", " + strings.ToLower(k1) + ")"); got != inP0+inP1 {
		t.Errorf("project in: %d, want %d", got, inP0+inP1)
	}
	if got := count("project = " + k0 + " OR project = " + k1); got != inP0+inP1 {
		t.Errorf("OR: %d", got)
	}
	if got := count("project not in (" + k0 + ")"); got != 300-inP0 {
		t.Errorf("not in: %d", got)
	}
	done := count(`status = "Done"`)
	notDone := count(`status != Done`)
	if done+notDone != 300 || done == 0 {
		t.Errorf("status split %d + %d", done, notDone)
	}
	if got := count(`project = ` + k0 + ` AND (status = "Done" OR status = "To Do")`); got > inP0 {
		t.Errorf("parenthesised AND/OR: %d > %d", got, inP0)
	}
	if got := count(`NOT status = Done`); got != notDone {
		t.Errorf("NOT: %d", got)
	}
	before, after := count(`created < "2023-06-01"`), count(`created >= "2023-06-01 00:00"`)
	if before+after != 300 || before == 0 || after == 0 {
		t.Errorf("created split %d + %d", before, after)
	}
	if got := count(`updated >= 2022/01/01 AND updated <= "2025-01-01"`); got != 300 {
		t.Errorf("updated range: %d", got)
	}
	if got := count(`key = ` + k0 + `-1`); got != 1 {
		t.Errorf("key =: %d", got)
	}
	if got := count(`issuekey in (` + k0 + `-1, ` + k0 + `-2, 10001)`); got != 2 {
		t.Errorf("issuekey in: %d", got)
	}
	if got := count(`key > ` + k0 + `-10`); got != inP0-10 {
		t.Errorf("key >: %d, want %d", got, inP0-10)
	}
	if got := count(`project = ` + k0 + ` order by key desc, created asc`); got != inP0 {
		t.Errorf("with ORDER BY: %d", got)
	}
	cq, err := compileJQL("ORDER BY updated DESC", c, all, false)
	if err != nil || cq.match != nil || len(cq.order) != 1 || !cq.order[0].Desc {
		t.Errorf("order-only query: %+v %v", cq, err)
	}
}

func TestJQLErrorsAreSpecific(t *testing.T) {
	s := New(Options{Issues: 30, Projects: 2, Users: 3, Seed: 1})
	c := s.snapshot()
	restricted := s.data.users[1].browse // sees only the first project
	hidden := s.ProjectKeys()[1]
	cases := []struct{ jql, want string }{
		{"", unboundedJQL},
		{"ORDER BY created", unboundedJQL},
		{`project = "ABC`, "Error in the JQL Query: The quoted string 'ABC' has not been completed."},
		{"project foo", "Expecting operator but got 'foo'"},
		{"project =", "Expecting either a value, list or function before the end of the query."},
		{"project = )", "Expecting either a value, list or function but got ')'"},
		{"(project = X", "Expecting ')' before the end of the query."},
		{"project in (A, B", "Expecting ')' before the end of the query."},
		{"project = A B", "Expecting either 'OR' or 'AND' but got 'B'. (line 1, character 13)"},
		{"project = A\nAND B = 1 garbage", "(line 2, character 11)"},
		{"and = 1", "'and' is a reserved JQL word"},
		{"environment ~ foo", "Field 'environment' does not exist or you do not have permission to view it."},
		{"status is EMPTY", "The operator 'is' is not supported by the 'status' field."},
		{`priority = "Urgent"`, "The value 'Urgent' does not exist for the field 'priority'."},
		{`Team = "Nope"`, "The value 'Nope' does not exist for the field 'Team'."},
		{"project ~ foo", "The operator '~' is not supported by the 'project' field."},
		{"created in (2024-01-01)", "The operator 'in' is not supported by the 'created' field."},
		{"project = NOPE", "The value 'NOPE' does not exist for the field 'project'."},
		{"project = " + hidden, "The value '" + hidden + "' does not exist for the field 'project'."},
		{`status = "Sleeping"`, "The value 'Sleeping' does not exist for the field 'status'."},
		{`created > "yesterday"`, "Date value 'yesterday' for field 'created' is invalid."},
		{`created > -5d`, "Date value '-5d' for field 'created' is invalid."},
		{"assignee = currentUser()", "Unable to find JQL function 'currentUser()'."},
		{"key = nonsense", "The issue key 'nonsense' for field 'key' is invalid."},
		{"key = " + hidden + "-1", "An issue with key '" + hidden + "-1' does not exist for field 'key'."},
		{"project = A ORDER BY summary", "Not able to sort using field 'summary'."},
		{"project = A ORDER created", "Expecting 'BY' but got 'created'."},
		{"project != A !", "Expecting operator but got '!'"},
	}
	for _, tc := range cases {
		_, err := compileJQL(tc.jql, c, restricted, true)
		var je *JQLError
		if !errors.As(err, &je) {
			t.Errorf("%q: err %v, want a JQLError", tc.jql, err)
			continue
		}
		if !strings.Contains(je.Msg, tc.want) {
			t.Errorf("%q:\n got  %s\n want …%s…", tc.jql, je.Msg, tc.want)
		}
	}
}

func FuzzJQL(f *testing.F) {
	for _, seed := range []string{
		`project = CORE AND status = "Done" ORDER BY key DESC`,
		`(project in (A, "B") OR key > CORE-5) AND created >= "2024-01-31 10:00"`,
		`NOT updated < 2023/02/01`,
		`"project" = 'x\'y'`,
		`key in (CORE-1,10001) order by created, updated asc`,
		"project = A\nAND (",
		`status != "To Do" OR issuekey <= DATA-3`,
	} {
		f.Add(seed)
	}
	s := New(Options{Issues: 50, Projects: 3, Users: 3, Seed: 3})
	c := s.snapshot()
	all := s.allProjects()
	f.Fuzz(func(t *testing.T, src string) {
		q, err := parseJQL(src)
		if err != nil {
			var je *JQLError
			if !errors.As(err, &je) || !strings.HasPrefix(je.Msg, "Error in the JQL Query: ") && !strings.HasPrefix(je.Msg, "Unable to find JQL function") {
				t.Fatalf("parse error of the wrong kind: %v", err)
			}
			return
		}
		cq, err := compileJQL(src, c, all, false)
		if err != nil {
			var je *JQLError
			if !errors.As(err, &je) || je.Msg == "" {
				t.Fatalf("compile error of the wrong kind: %v", err)
			}
			return
		}
		if (q.Where == nil) != (cq.match == nil) {
			t.Fatalf("where/match mismatch for %q", src)
		}
		if cq.match != nil {
			for i := 0; i < c.len(); i++ {
				cq.match(i)
			}
		}
	})
}

// JQL dates are read in the searching user's time zone, and custom fields,
// resolution date and the other system fields Ferry folds into JQL are
// searchable, each checked against the generated data directly.
func TestJQLZonesCustomFieldsAndResolutionDate(t *testing.T) {
	s := New(Options{Issues: 4000, Projects: 3, Users: 5, Seed: 11}) // issues ~6 h apart: a zone's offset matters
	c := s.snapshot()
	all := s.allProjects()
	sydney, _ := time.LoadLocation("Australia/Sydney")
	count := func(jql string, zone *time.Location) int {
		t.Helper()
		cq, err := compileJQLIn(jql, c, all, true, zone)
		if err != nil {
			t.Fatalf("%s: %v", jql, err)
		}
		n := 0
		for i := 0; i < c.len(); i++ {
			if cq.match(i) {
				n++
			}
		}
		return n
	}
	truth := func(keep func(*issue) bool) int {
		n := 0
		for i := 0; i < c.len(); i++ {
			if keep(c.issue(i)) {
				n++
			}
		}
		return n
	}
	mid := c.issue(2000).Created.Truncate(time.Minute)
	for _, zone := range []*time.Location{time.UTC, sydney} {
		wall := mid.In(zone).Format("2006-01-02 15:04")
		if got, want := count(`created >= "`+wall+`"`, zone), truth(func(is *issue) bool { return !is.Created.Before(mid) }); got != want {
			t.Errorf("%s: created >= %q: %d, want %d", zone, wall, got, want)
		}
	}
	if count(`created >= "`+mid.Format("2006-01-02 15:04")+`"`, sydney) == count(`created >= "`+mid.Format("2006-01-02 15:04")+`"`, time.UTC) {
		t.Error("the same wall time read the same in Sydney and UTC")
	}
	done := func(is *issue) bool { return statuses[is.Status].CatKey == "done" }
	for _, tc := range []struct {
		jql  string
		keep func(*issue) bool
	}{
		{`resolutiondate IS EMPTY`, func(is *issue) bool { return !done(is) }},
		{`resolved >= "2023-01-01"`, func(is *issue) bool {
			return done(is) && !is.Updated.Before(time.Date(2023, 1, 1, 0, 0, 0, 0, time.UTC))
		}},
		{`cf[10010] >= 5`, func(is *issue) bool { return is.Points != nil && *is.Points >= 5 }},
		{`"Story Points" in (1, 2)`, func(is *issue) bool { return is.Points != nil && (*is.Points == 1 || *is.Points == 2) }},
		{`cf[10010] != 3`, func(is *issue) bool { return is.Points != nil && *is.Points != 3 }},
		{`"story points" is empty`, func(is *issue) bool { return is.Points == nil }},
		{`Team = platform`, func(is *issue) bool { return is.Team == 0 }},
		{`cf[10011] in (10101, "Growth")`, func(is *issue) bool { return is.Team == 1 || is.Team == 2 }},
		{`cf[10012] < "2023-01-01"`, func(is *issue) bool { return is.ReviewDate != "" && is.ReviewDate < "2023-01-01" }},
		{`"Go-Live" is not empty`, func(is *issue) bool { return is.GoLive != nil }},
		{`priority = High`, func(is *issue) bool { return is.Priority == 1 }},
		{`type in (Bug, 10003)`, func(is *issue) bool { return is.Type == 1 || is.Type == 2 }},
		{`assignee is EMPTY`, func(is *issue) bool { return is.Assignee < 0 }},
		{`assignee = "` + s.Users()[2].AccountID + `"`, func(is *issue) bool { return is.Assignee == 2 }},
		{`resolution = Done`, done},
		{`Tags = "ops; infra"`, func(is *issue) bool { return slices.Contains(is.Tags, 1) }},
		{`Notes is not empty`, func(is *issue) bool { return is.Notes != "" }},
	} {
		if got, want := count(tc.jql, time.UTC), truth(tc.keep); got != want || want == 0 {
			t.Errorf("%s: %d, want %d (and more than none)", tc.jql, got, want)
		}
	}
}
