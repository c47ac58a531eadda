package odata

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

// checkRefusal fails unless err is nil or an *Error a client may see: a 4xx
// or 501, never a 500 from bad input.
func checkRefusal(t *testing.T, in string, err error) {
	t.Helper()
	if err == nil {
		return
	}
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("%q: error %T %v is not *Error", in, err, err)
	}
	if !(e.Status >= 400 && e.Status < 500 || e.Status == 501) {
		t.Fatalf("%q: status %d: %v", in, e.Status, e)
	}
	if e.Code == "" || e.Message == "" {
		t.Fatalf("%q: empty code or message: %+v", in, e)
	}
}

func FuzzParseFilter(f *testing.F) {
	for _, s := range []string{
		"Key eq 'PROJ-1'", "Summary eq 'it''s'", "not (Status eq 'A' or Id gt 1) and Flagged",
		"Created ge 2024-01-31T10:00:00+02:00", "Status in ('a','b')", "contains(Summary,'x') eq false",
		"Labels/any(l:l eq 'x')", "Id add 1 eq 2", "((((", "'", "Id eq 1e3", "DueDate eq 2024-02-29",
		"Resolved eq null", "10 lt Id", "StoryPoints le -3.50", "Summary eq '\"\\'",
	} {
		f.Add(s)
	}
	m := FieldMap{Zone: berlin, Fields: fields.Fields}
	f.Fuzz(func(t *testing.T, s string) {
		e, err := ParseFilter(s, issues)
		checkRefusal(t, s, err)
		if err != nil {
			return
		}
		// The canonical form parses back to itself.
		canon := e.String()
		again, err := ParseFilter(canon, issues)
		if err != nil || again.String() != canon {
			t.Fatalf("%q → %q → %v %v", s, canon, again, err)
		}
		// Every parsed filter folds (at worst to no JQL at all), and
		// evaluates on a row without panicking.
		for _, widen := range []bool{false, true} {
			m.Widen = widen
			fo, err := e.Fold(m)
			if err != nil {
				t.Fatalf("%q: Fold: %v", s, err)
			}
			if unescapedQuotes(fo.JQL)%2 != 0 {
				t.Fatalf("%q: unbalanced JQL quoting: %s", s, fo.JQL)
			}
			if fo.Never && !fo.Exact {
				t.Fatalf("%q: a fold that matches nothing must be exact", s)
			}
		}
		e.Match(func(p string) any { return sampleRow[p] })
	})
}

var sampleRow = Row{"Key": "PROJ-1", "Id": int64(10), "Summary": "it's", "Status": nil, "Project": "PROJ",
	"StoryPoints": json.Number("2.5"), "Flagged": true, "DueDate": "2024-02-29", "Created": mustTime("2024-01-31T10:00:00.123Z"),
	"Labels": []string{"x"}, "Team": "Blue"}

func FuzzParseQuery(f *testing.F) {
	for _, s := range []string{
		"$top=5&$skip=10", "%24top=5", "$select=Key,%20Summary&$orderby=Created%20desc,Id",
		"$filter=Created%20ge%202024-01-01T00:00:00Z&$count=true", "$select=*", "top=1&TOP=2",
		"$expand=x", "$format=json", "$skiptoken=abc&$skip=1", "$orderby=Summary", "$top=-1",
		"$filter=Status%20in%20('a'%2C'b')&$select=Status", "a=%zz&$count=TRUE",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		q, err := ParseQuery(raw, issues, 1000)
		checkRefusal(t, raw, err)
		if err != nil {
			return
		}
		if q.Top != nil && (*q.Top < 0 || *q.Top > 1000) || q.Skip < 0 {
			t.Fatalf("%q: top %v skip %d", raw, q.Top, q.Skip)
		}
		for _, s := range q.Select {
			if _, ok := issues.Property(s); !ok {
				t.Fatalf("%q: selected unknown %q", raw, s)
			}
		}
		for _, o := range q.OrderBy {
			if p, ok := issues.Property(o.Property); !ok || !p.Sortable {
				t.Fatalf("%q: ordered by %q", raw, o.Property)
			}
		}
		// The next page's link carries the same query.
		_, rawNext, _ := strings.Cut(NextLink("https://f.example/Issues", q, "tok"), "?")
		q2, err := ParseQuery(rawNext, issues, 1000)
		if err != nil {
			t.Fatalf("%q: nextLink does not parse: %v", raw, err)
		}
		if q2.fingerprint() != q.fingerprint() || q2.SkipToken != "tok" {
			t.Fatalf("%q: nextLink changed the query", raw)
		}
	})
}

func FuzzVerifyToken(f *testing.F) {
	good := SignToken(key, []byte(`{"q":"x","r":"next","n":1}`))
	f.Add(good)
	f.Add(good[:len(good)-1])
	f.Add("")
	f.Add("AQ")
	f.Add(SignToken(otherKey, []byte("p")))
	q := Query{set: "Issues"}
	f.Fuzz(func(t *testing.T, tok string) {
		payload, err := VerifyToken(key, tok)
		checkRefusal(t, tok, err)
		if err == nil && tok != SignToken(key, payload) {
			t.Fatalf("%q verified but is not the token of its payload", tok)
		}
		q.SkipToken = tok
		_, err = DecodeCursor(key, q)
		checkRefusal(t, tok, err)
	})
}

func FuzzNegotiate(f *testing.F) {
	for _, s := range []string{"", "application/json", "*/*;q=0.1, application/json;odata.metadata=full", "application/xml",
		"application/json;IEEE754Compatible=true;odata.metadata=none", "text/csv;q=1, application/*;q=0.5", ";;;,,,", "application/json;q=abc"} {
		f.Add(s, "")
		f.Add("", s)
	}
	f.Fuzz(func(t *testing.T, format, accept string) {
		m, err := Negotiate(Query{Format: format}, accept)
		checkRefusal(t, format+"|"+accept, err)
		if err == nil && m.Metadata != MetadataMinimal && m.Metadata != MetadataNone && m.Metadata != MetadataFull {
			t.Fatalf("%q %q: metadata %q", format, accept, m.Metadata)
		}
		checkRefusal(t, accept, NegotiateMetadata(Query{Format: format}, accept))
	})
}

func FuzzKeyFilter(f *testing.F) {
	for _, s := range []string{"'PROJ-1'", "Key='PROJ-1'", "'it''s'", "Key='a',Id=1", "5", "'", "Key=", "=''", "Nope='x'"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, pred string) {
		e, err := KeyFilter(issues, pred)
		checkRefusal(t, pred, err)
		if err == nil && (e.Op != OpEq || e.Property != "Key") {
			t.Fatalf("%q: filter %s is not Key eq …", pred, e)
		}
	})
}
