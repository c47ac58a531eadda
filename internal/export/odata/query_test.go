package odata

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

func intp(n int) *int { return &n }

func wantError(t *testing.T, err error, status int, target string) {
	t.Helper()
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("err = %v, want *Error %d", err, status)
	}
	if e.Status != status {
		t.Fatalf("status = %d (%v), want %d", e.Status, e, status)
	}
	if target != "" && e.Target != target && !strings.Contains(e.Message, target) {
		t.Fatalf("error %v does not name %q", e, target)
	}
}

func TestParseQueryAccepts(t *testing.T) {
	for _, tc := range []struct {
		raw  string
		want Query
	}{
		{"", Query{}},
		{"$top=5", Query{Top: intp(5)}},
		{"%24top=5", Query{Top: intp(5)}},
		{"$TOP=5&$Skip=2", Query{Top: intp(5), Skip: 2}},
		{"top=5&skip=0", Query{Top: intp(5)}}, // 4.01: "$" is optional
		{"$top=0", Query{Top: intp(0)}},
		{"$count=true", Query{Count: true}},
		{"$count=false", Query{}},
		{"$count=TRUE", Query{Count: true}},
		{"$select=*", Query{}},
		{"$select=Key,Summary", Query{Select: []string{"Key", "Summary"}}},
		{"$select=Summary,%20Key%20,%20Summary", Query{Select: []string{"Summary", "Key"}}},
		{"$select=Summary,*", Query{}},
		{"$orderby=Created desc,Id", Query{OrderBy: []OrderItem{{"Created", true}, {"Id", false}}}},
		{"$orderby=Created%20asc", Query{OrderBy: []OrderItem{{"Created", false}}}},
		{"$orderby=Created  DESC", Query{OrderBy: []OrderItem{{"Created", true}}}},
		{"$skiptoken=abc-_", Query{SkipToken: "abc-_"}},
		{"$format=json", Query{Format: "json"}},
		{"$format=application/json;odata.metadata=minimal", Query{Format: "application/json;odata.metadata=minimal"}},
		{"$format=application%2Fjson%3Bodata.metadata%3Dnone%3Bodata.streaming%3Dtrue", Query{Format: "application/json;odata.metadata=none;odata.streaming=true"}},
		{"$format=application/json;odata.metadata=full;IEEE754Compatible=true", Query{Format: "application/json;odata.metadata=full;IEEE754Compatible=true"}},
		{"$format=xml", Query{Format: "xml"}},                                                                                        // for $metadata; Negotiate refuses it for data
		{"$filter=Status+eq+'a+b'", Query{Filter: &Expr{Op: OpEq, Property: "Status", Value: Literal{Type: EdmString, Str: "a b"}}}}, // form encoding: + is a space
		{"$filter=Status%20eq%20'a%2Bb'", Query{Filter: &Expr{Op: OpEq, Property: "Status", Value: Literal{Type: EdmString, Str: "a+b"}}}},
		{"token=abc&foo=%zz&x", Query{}},     // custom options are ignored, even malformed ones
		{"@p=1&$top=1", Query{Top: intp(1)}}, // an unused alias is ignored
		{"&&$top=1&", Query{Top: intp(1)}},
	} {
		t.Run(tc.raw, func(t *testing.T) {
			q, err := ParseQuery(tc.raw, issues, 0)
			if err != nil {
				t.Fatal(err)
			}
			q.set = ""
			if !reflect.DeepEqual(q, tc.want) {
				t.Fatalf("got %+v, want %+v", q, tc.want)
			}
		})
	}
}

func TestParseQueryDecodesFilter(t *testing.T) {
	for _, raw := range []string{
		"$filter=Created%20ge%202024-01-01T00:00:00Z",
		"%24filter=Created ge 2024-01-01T00:00:00Z",
		"$filter=Created%20ge%202024-01-01T01:00:00%2B01:00",
		"$filter=Created+ge+2024-01-01T01:00:00%2B01:00", // "+" is a space, %2B a plus
	} {
		q, err := ParseQuery(raw, issues, 0)
		if err != nil {
			t.Fatalf("%s: %v", raw, err)
		}
		if q.Filter == nil || q.Filter.Op != OpGe || q.Filter.Property != "Created" || !q.Filter.Value.Time.Equal(mustTime("2024-01-01T00:00:00Z")) {
			t.Fatalf("%s: filter %v", raw, q.Filter)
		}
	}
}

func TestParseQueryRejects(t *testing.T) {
	for _, tc := range []struct {
		raw    string
		status int
		target string
	}{
		{"$top=-1", 400, "$top"},
		{"$top=abc", 400, "$top"},
		{"$top=", 400, "$top"},
		{"$top=+1", 400, "$top"},
		{"$top=1.5", 400, "$top"},
		{"$top=99999999999999999999", 400, "$top"},
		{"$top=101", 400, "$top"}, // over maxTop
		{"$skip=-3", 400, "$skip"},
		{"$count=yes", 400, "$count"},
		{"$count=", 400, "$count"},
		{"$top=1&$top=2", 400, "$top"},
		{"$top=1&%24top=2", 400, "$top"},
		{"$top=1&TOP=2", 400, "$top"},
		{"$foo=1", 400, "$foo"},
		{"$select=Nope", 400, "Nope"},
		{"$select=Key,,Summary", 400, "$select"},
		{"$select=", 400, "$select"},
		{"$select=key", 400, "key"}, // property names are case-sensitive
		{"$orderby=Nope", 400, "Nope"},
		{"$orderby=Created sideways", 400, "$orderby"},
		{"$orderby=Created,Created desc", 400, "$orderby"},
		{"$filter=", 400, "$filter"},
		{"$filter=Nope eq 1", 400, "Nope"},
		{"$skiptoken=", 400, "$skiptoken"},
		{"$skiptoken=x&$skip=1", 400, "$skip"},
		{"$top=%zz", 400, "$top"},
		{"$expand=Comments", 501, "$expand"},
		{"$search=foo", 501, "$search"},
		{"$apply=groupby((Status))", 501, "$apply"},
		{"$compute=Id add 1 as X", 501, "$compute"},
		{"expand=Comments", 501, "$expand"},
		{"$select=Labels/x", 501, "$select"},
		{"$orderby=Summary", 501, "Summary"},
		{"$orderby=Labels", 501, "Labels"},
		{"$orderby=length(Summary)", 501, "$orderby"},
		{"$orderby=Created desc nulls", 501, "$orderby"},
		{"$format=atom", 406, "$format"},
		{"$format=application/json;odata.metadata=partial", 406, "$format"},
		{"$format=application/json;IEEE754Compatible=maybe", 406, "$format"},
		{"$format=application/json;foo=bar", 406, "$format"},
		{"$filter=Created%20ge%202024-01-01T01:00:00+01:00", 400, "$filter"}, // a raw "+" is a space: the hint says %2B
	} {
		t.Run(tc.raw, func(t *testing.T) {
			_, err := ParseQuery(tc.raw, issues, 100)
			wantError(t, err, tc.status, tc.target)
		})
	}
}

// Power Query asks for $expand when a user expands a navigation column: the
// refusal says what to do instead.
func TestExpandRefusalSaysWhatToDo(t *testing.T) {
	for _, raw := range []string{"$expand=Comments", "expand=Issue", "%24EXPAND=Worklogs($select=Id)"} {
		_, err := ParseQuery(raw, issues, 100)
		wantError(t, err, 501, "$expand")
		if !strings.Contains(err.Error(), "own entity set") {
			t.Errorf("%s: %v does not say to load the related table on its own", raw, err)
		}
	}
}

func TestColumnsAlwaysIncludeKey(t *testing.T) {
	q, _ := ParseQuery("$select=Status,Summary", issues, 0)
	var names []string
	for _, c := range q.Columns(issues) {
		names = append(names, c.Name)
	}
	if got := strings.Join(names, ","); got != "Key,Summary,Status" {
		t.Fatalf("columns %s", got)
	}
	if got := ContextURL("https://f.example/odata/s1/", issues, q); got != "https://f.example/odata/s1/$metadata#Issues(Status,Summary)" {
		t.Fatalf("context %s", got)
	}
	all, _ := ParseQuery("", issues, 0)
	if len(all.Columns(issues)) != len(issues.Properties) {
		t.Fatal("no $select must give all columns")
	}
	if got := ContextURL("https://f.example/odata/s1", issues, all); got != "https://f.example/odata/s1/$metadata#Issues" {
		t.Fatalf("context %s", got)
	}
}

func TestNextLinkRoundTrips(t *testing.T) {
	raw := "$select=Summary,Key&$filter=" + strings.ReplaceAll("Summary eq 'a&b=c #1+2%' and (Created ge 2024-01-01T00:00:00+01:00 or Status in ('x','y'))", " ", "%20") +
		"&$orderby=Created desc&$count=true&$top=50&$skip=10&$format=json"
	raw = strings.NewReplacer("&b", "%26b", "#", "%23", "+", "%2B", "%'", "%25'").Replace(raw)
	q, err := ParseQuery(raw, issues, 0)
	if err != nil {
		t.Fatal(err)
	}
	link := NextLink("https://f.example/odata/s1/Issues?token=t0k", q, "TOKEN")
	if !strings.HasPrefix(link, "https://f.example/odata/s1/Issues?token=t0k&$select=") {
		t.Fatalf("link %s", link)
	}
	if strings.ContainsAny(link, " +#") {
		t.Fatalf("link must not carry a raw space or plus: %s", link)
	}
	_, rawQuery, _ := strings.Cut(link, "?")
	q2, err := ParseQuery(rawQuery, issues, 0)
	if err != nil {
		t.Fatal(err)
	}
	if q2.Skip != 0 || q2.SkipToken != "TOKEN" {
		t.Fatalf("skip %d token %q", q2.Skip, q2.SkipToken)
	}
	if q2.Filter.String() != q.Filter.String() || !reflect.DeepEqual(q2.Select, q.Select) ||
		!reflect.DeepEqual(q2.OrderBy, q.OrderBy) || *q2.Top != 50 || !q2.Count || q2.Format != "json" {
		t.Fatalf("round trip:\n%+v\n%+v", q, q2)
	}
	if q.Filter.Left.Value.Str != "a&b=c #1+2%" {
		t.Fatalf("decoded literal %q", q.Filter.Left.Value.Str)
	}
	if got := NextLink("https://f.example/Issues", Query{}, "T"); got != "https://f.example/Issues?$skiptoken=T" {
		t.Fatal(got)
	}
}
