package export

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"
)

// parseCSV is a strict RFC 4180 reader that keeps every byte of a quoted
// field; null marks an empty unquoted field.
func parseCSV(t *testing.T, b []byte) (recs [][]string, nulls [][]bool) {
	t.Helper()
	var rec []string
	var nul []bool
	for i := 0; i < len(b); {
		var field []byte
		quoted := false
		if b[i] == '"' {
			quoted = true
			for i++; ; i++ {
				if i >= len(b) {
					t.Fatalf("unterminated quote in %q", b)
				}
				if b[i] == '"' {
					if i+1 < len(b) && b[i+1] == '"' {
						field = append(field, '"')
						i++
						continue
					}
					i++
					break
				}
				field = append(field, b[i])
			}
		} else {
			for i < len(b) && b[i] != ',' && b[i] != '\r' {
				if b[i] == '\n' || b[i] == '"' {
					t.Fatalf("bare %q outside quotes in %q", b[i], b)
				}
				field = append(field, b[i])
				i++
			}
		}
		rec, nul = append(rec, string(field)), append(nul, !quoted && len(field) == 0)
		switch {
		case i < len(b) && b[i] == ',':
			i++
		case i+1 < len(b) && b[i] == '\r' && b[i+1] == '\n':
			i += 2
			recs, nulls, rec, nul = append(recs, rec), append(nulls, nul), nil, nil
		default:
			t.Fatalf("record %d: expected , or CRLF at byte %d of %q", len(recs), i, b)
		}
	}
	return recs, nulls
}

// Values must come back byte for byte: line breaks of every kind (a bare CR
// was dropped, a LF became CRLF), and a ";" inside a multi-value item (it
// became ",").
func TestCSVWriterKeepsEveryByte(t *testing.T) {
	cols := []Column{{Name: "Text", Edm: EdmString}, {Name: "Items", Edm: EdmString, Collection: true},
		{Name: "Points", Edm: EdmDecimal}, {Name: "At", Edm: EdmDateTimeOffset}}
	texts := []string{"a\nb", "a\r\nb", "a\rb", "end\r", "\r", "\n", `say "hi", then go`, " edge spaces ", "", "ünï — ✓",
		"semi;colon", `back\slash`, "tab\tinside"}
	var buf bytes.Buffer
	w, err := newCSVWriter(&buf, cols, false)
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2024, 6, 24, 19, 24, 50, 123e6, time.UTC)
	for _, s := range texts {
		if err := w.writeValues([]any{s, []string{s + "x", "a;b", `c\;d`}, json.Number("-2.50"), at}); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.writeValues([]any{nil, []string{}, nil, nil}); err != nil {
		t.Fatal(err)
	}
	if err := w.flush(); err != nil {
		t.Fatal(err)
	}
	recs, nulls := parseCSV(t, buf.Bytes())
	if len(recs) != len(texts)+2 || strings.Join(recs[0], ",") != "Text,Items,Points,At" {
		t.Fatalf("%d records, header %q", len(recs), recs[0])
	}
	for i, s := range texts {
		rec := recs[i+1]
		if got := UnguardCell(rec[0]); got != s {
			t.Errorf("text %q came back as %q (cell %q)", s, got, rec[0])
		}
		items := SplitMultiValue(UnguardCell(rec[1]))
		if want := []string{s + "x", "a;b", `c\;d`}; strings.Join(items, "|") != strings.Join(want, "|") || len(items) != 3 {
			t.Errorf("items %q came back as %q (cell %q)", want, items, rec[1])
		}
		if rec[2] != "-2.50" || rec[3] != "2024-06-24T19:24:50.123Z" {
			t.Errorf("typed cells %q %q", rec[2], rec[3])
		}
		if s == "" && nulls[i+1][0] {
			t.Error("an empty string was written as null")
		}
	}
	last := nulls[len(nulls)-1]
	if !last[0] || !last[1] || !last[2] || !last[3] {
		t.Errorf("nulls and an empty list must be empty unquoted fields: %q", recs[len(recs)-1])
	}
}

// A text cell never starts a formula, nor does any part a spreadsheet
// splitting on ";" or tab would see as a cell; the guard comes off again.
func TestCSVGuardsFormulasReversibly(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"=1+1", "'=1+1"},
		{"+1", "'+1"},
		{"-1", "'-1"},
		{"@SUM(A1)", "'@SUM(A1)"},
		{"\tx", "'\tx"},
		{"\rx", "'\rx"},
		{"'quoted", "''quoted"},
		{"  =x", "  '=x"},
		{"a;=b", "a;'=b"},
		{"a; -b", "a; '-b"},
		{"a\t=b", "a\t'=b"},
		{"\t=b", "'\t'=b"},
		{"a;b;c", "a;b;c"},
		{"plain", "plain"},
		{"x=1; y=2", "x=1; y=2"},
		{"", ""},
	} {
		got := GuardCell(tc.in)
		if got != tc.want {
			t.Errorf("GuardCell(%q) = %q, want %q", tc.in, got, tc.want)
		}
		if back := UnguardCell(got); back != tc.in {
			t.Errorf("UnguardCell(%q) = %q, want %q", got, back, tc.in)
		}
	}
}

func FuzzCSVCellRoundTrip(f *testing.F) {
	for _, s := range []string{"=1", "a;=b", "'x", "\t\t=", "a\rb", "x\\;y", " ; ;'", "semi;;colon"} {
		f.Add(s, "b")
	}
	f.Fuzz(func(t *testing.T, a, b string) {
		if back := UnguardCell(GuardCell(a)); back != a {
			t.Fatalf("guard of %q came back as %q", a, back)
		}
		g := GuardCell(a)
		start := true
		for i := 0; i < len(g); i++ {
			c := g[i]
			if start && c == ' ' {
				continue
			}
			if start && strings.IndexByte("=+-@\t\r", c) >= 0 {
				t.Fatalf("GuardCell(%q) = %q leaves a formula start at %d", a, g, i)
			}
			start = c == ';' || c == '\t'
		}
		items := []string{a, b}
		if a == "" || b == "" {
			return // Jira has no empty items; Ferry drops them
		}
		got := SplitMultiValue(UnguardCell(GuardCell(JoinMultiValue(items))))
		if len(got) != 2 || got[0] != a || got[1] != b {
			t.Fatalf("%q came back as %q", items, got)
		}
		var buf bytes.Buffer
		w, _ := newCSVWriter(&buf, []Column{{Name: "T", Edm: EdmString}}, false)
		w.writeValues([]any{a})
		w.flush()
		recs, _ := parseCSV(t, buf.Bytes())
		if len(recs) != 2 || UnguardCell(recs[1][0]) != a {
			t.Fatalf("%q came back as %q", a, recs)
		}
	})
}
