package odata

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite golden files in testdata")

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update once)", err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("%s differs:\n got: %s\nwant: %s", name, got, want)
	}
	if !json.Valid(got) {
		t.Fatalf("%s is not valid JSON", name)
	}
}

var rowOne = Row{
	"Key": "PROJ-1", "Id": int64(10001), "Summary": "Crash on \"save\" <b>&</b>\n\u2028\x01\xff",
	"Status": "Done", "Project": "PROJ", "StoryPoints": 2.5, "Flagged": true,
	"DueDate": "2024-01-31", "Created": time.Date(2024, 6, 24, 21, 24, 50, 123456789, berlin),
	"Updated": time.Date(2024, 6, 24, 19, 24, 50, 0, time.UTC), "Resolved": nil,
	"Labels": []string{"a", "b"}, "Team": "Blue",
}

var rowTwo = Row{ // most nullable fields absent
	"Key": "PROJ-2", "Id": 10002, "Project": "PROJ", "StoryPoints": json.Number("13.25"),
	"DueDate": time.Date(2024, 2, 29, 23, 0, 0, 0, time.UTC),
	"Created": time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC), "Updated": time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC),
	"Labels": nil,
}

func TestRowWriterPageWithCountAndNextLink(t *testing.T) {
	var buf bytes.Buffer
	q := Query{}
	rw := NewRowWriter(&buf, ContextURL("https://f.example/odata/s1", issues, q), q.Columns(issues))
	if err := rw.WriteCount(1234); err != nil {
		t.Fatal(err)
	}
	for _, r := range []Row{rowOne, rowTwo} {
		if err := rw.WriteRow(r); err != nil {
			t.Fatal(err)
		}
	}
	if err := rw.Close("https://f.example/odata/s1/Issues?$count=true&$skiptoken=abc"); err != nil {
		t.Fatal(err)
	}
	golden(t, "page_full.json", buf.Bytes())
}

func TestRowWriterSelectedColumns(t *testing.T) {
	var buf bytes.Buffer
	q, err := ParseQuery("$select=Created,StoryPoints,Labels", issues, 0)
	if err != nil {
		t.Fatal(err)
	}
	rw := NewRowWriter(&buf, ContextURL("https://f.example/odata/s1", issues, q), q.Columns(issues))
	rw.WriteRow(rowOne)
	rw.WriteRow(Row{"Key": "PROJ-3", "Created": time.Unix(0, 0), "StoryPoints": big.NewRat(1, 3), "Labels": []any{"x"}})
	rw.Close("")
	golden(t, "page_select.json", buf.Bytes())
}

func TestRowWriterEmptyPage(t *testing.T) {
	var buf bytes.Buffer
	rw := NewRowWriter(&buf, "https://f.example/odata/s1/$metadata#Changelog", changelog.Properties)
	rw.WriteCount(0)
	rw.Close("")
	golden(t, "page_empty.json", buf.Bytes())
}

// The writer streams: each row reaches the writer when it is written.
func TestRowWriterStreamsRowByRow(t *testing.T) {
	var buf bytes.Buffer
	rw := NewRowWriter(&buf, "ctx", changelog.Properties)
	row := Row{"IssueKey": "A-1", "Id": 1, "Field": "status", "Changed": time.Unix(0, 0)}
	rw.WriteRow(row)
	first := buf.Len()
	if first == 0 || !strings.HasSuffix(buf.String(), "}") {
		t.Fatalf("first row not written through: %q", buf.String())
	}
	rw.WriteRow(row)
	if buf.Len() <= first {
		t.Fatal("second row not written through")
	}
	if err := rw.WriteCount(3); err == nil {
		t.Fatal("WriteCount after rows must fail")
	}
}

func TestRowWriterRejectsBadValues(t *testing.T) {
	for name, row := range map[string]Row{
		"null key":           {"IssueKey": nil, "Id": 1, "Field": "f", "Changed": time.Unix(0, 0)},
		"missing key":        {"Id": 1, "Field": "f", "Changed": time.Unix(0, 0)},
		"string for Int64":   {"IssueKey": "A", "Id": "1", "Field": "f", "Changed": time.Unix(0, 0)},
		"float for Int64":    {"IssueKey": "A", "Id": 1.0, "Field": "f", "Changed": time.Unix(0, 0)},
		"string for time":    {"IssueKey": "A", "Id": 1, "Field": "f", "Changed": "2024-01-01T00:00:00Z"},
		"int for string":     {"IssueKey": 7, "Id": 1, "Field": "f", "Changed": time.Unix(0, 0)},
		"uint64 (overflows)": {"IssueKey": "A", "Id": uint64(1 << 63), "Field": "f", "Changed": time.Unix(0, 0)},
	} {
		t.Run(name, func(t *testing.T) {
			var buf bytes.Buffer
			rw := NewRowWriter(&buf, "ctx", changelog.Properties)
			if err := rw.WriteRow(row); err == nil {
				t.Fatalf("accepted: %s", buf.String())
			}
			if buf.Len() != 0 {
				t.Fatalf("half a row leaked: %q", buf.String())
			}
			rw.Close("")
			if buf.String() != `{"@odata.context":"ctx","value":[]}`+"\n" {
				t.Fatalf("after a refused row: %s", buf.String())
			}
		})
	}
	nan := Property{Name: "X", Type: EdmDecimal}
	for _, v := range []any{json.Number("1e"), json.Number("NaN"), float32(0) / float32(zero)} {
		if _, err := appendValue(nil, nan, v); err == nil {
			t.Fatalf("accepted %v", v)
		}
	}
	if _, err := appendValue(nil, Property{Name: "D", Type: EdmDate}, "2024-02-30"); err == nil {
		t.Fatal("accepted an impossible date")
	}
	if _, err := appendValue(nil, Property{Name: "L", Type: EdmString, Collection: true}, "x"); err == nil {
		t.Fatal("accepted a string for a collection")
	}
	if _, err := appendValue(nil, Property{Name: "L", Type: EdmString, Collection: true}, []any{nil}); err == nil {
		t.Fatal("accepted a null item")
	}
}

var zero = 0.0

type failWriter struct{ n int }

func (f *failWriter) Write(p []byte) (int, error) {
	if f.n--; f.n < 0 {
		return 0, errors.New("client went away")
	}
	return len(p), nil
}

func TestRowWriterStopsAfterWriteError(t *testing.T) {
	rw := NewRowWriter(&failWriter{n: 1}, "ctx", changelog.Properties)
	row := Row{"IssueKey": "A-1", "Id": 1, "Field": "status", "Changed": time.Unix(0, 0)}
	if err := rw.WriteRow(row); err != nil {
		t.Fatal(err)
	}
	if err := rw.WriteRow(row); err == nil {
		t.Fatal("write error not reported")
	}
	if err := rw.WriteRow(row); err == nil {
		t.Fatal("write error forgotten")
	}
}

func TestAppendStringMatchesEncodingJSON(t *testing.T) {
	for _, s := range []string{"", "plain", "q\"b\\s/", "\x00\x1f\x7f", "é✓😀", "\u2028\u2029", "<>&"} {
		got := appendString(nil, s)
		var back string
		if err := json.Unmarshal(got, &back); err != nil || back != s {
			t.Fatalf("%q → %s → %q %v", s, got, back, err)
		}
	}
	if got := string(appendString(nil, "a\xffb")); got != "\"a\ufffdb\"" {
		t.Fatalf("invalid UTF-8: %s", got)
	}
}
