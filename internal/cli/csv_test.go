package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"ferry/internal/export"
)

// csvFields are fields of every kind Ferry maps, including the simulator's
// Notes (line breaks of every kind, quotes, separators, formula starts) and
// Tags (options holding ";", "\" and "=").
var csvFields = []string{"summary", "status", "project", "priority", "issuetype", "assignee", "reporter", "created", "updated", "resolutiondate", "description", "labels", "fixVersions",
	"customfield_10010", "customfield_10011", "customfield_10012", "customfield_10013", "customfield_10014", "customfield_10015", "customfield_10016"}

// csvCalendar is csvSource's working calendar: StatusHistory's
// WorkingSeconds is a number in every closed interval, so the truth suite
// filters on values.
var csvCalendar = &export.WorkingTime{Days: []string{"mon", "tue", "wed", "thu", "fri"}, Start: "09:00", End: "17:00",
	TimeZone: "Europe/Berlin", Holidays: []string{"2023-12-25", "2024-01-01", "2024-05-01"}}

// csvSource creates a data source with csvFields, every table and
// csvCalendar.
func csvSource(t *testing.T, d *demo) string {
	t.Helper()
	ctx := context.Background()
	tn, err := d.app.tenants.ByID(ctx, d.tenant)
	if err != nil {
		t.Fatal(err)
	}
	app, err := d.app.platform.Properties(ctx, tn)
	if err != nil {
		t.Fatal(err)
	}
	src, err := d.app.appAPI.Sources.Create(ctx, app, d.tenant, export.Input{Name: "Every field", JQL: demoJQL, Fields: csvFields,
		Tables: export.TableNames(), Visibility: export.VisibilityEveryone, WorkingTime: csvCalendar}, d.sim.Users()[0].AccountID, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return src.ID
}

// The CSV encodings, written here from the README's description (not
// from Ferry's code), so that the test checks the documented rule.

// unguard removes the apostrophe Ferry puts before a part that a
// spreadsheet could run as a formula: at the start of the cell and after
// each ";" or tab, after any spaces.
func unguard(s string) string {
	var b strings.Builder
	start := true
	for i := 0; i < len(s); i++ {
		if start && s[i] == ' ' {
			b.WriteByte(' ')
			continue
		}
		if start && s[i] == '\'' {
			start = false
			continue
		}
		start = false
		b.WriteByte(s[i])
		start = s[i] == ';' || s[i] == '\t'
	}
	return b.String()
}

// splitItems reads a multi-value cell: items joined by "; ", with "\;" and
// "\\" inside an item.
func splitItems(s string) []string {
	items := []string{}
	if s == "" {
		return items
	}
	var cur strings.Builder
	for i := 0; i < len(s); i++ {
		switch {
		case s[i] == '\\' && i+1 < len(s):
			i++
			cur.WriteByte(s[i])
		case s[i] == ';':
			items = append(items, cur.String())
			cur.Reset()
			if i+1 < len(s) && s[i+1] == ' ' {
				i++
			}
		default:
			cur.WriteByte(s[i])
		}
	}
	return append(items, cur.String())
}

// formulaRisk reports a part of a text cell that a spreadsheet would run:
// one starting with =, +, -, @, tab or CR (after spaces), at the start of
// the cell or after a ";" or tab a spreadsheet may split on.
func formulaRisk(s string) bool {
	start := true
	for i := 0; i < len(s); i++ {
		c := s[i]
		if start && c == ' ' {
			continue
		}
		if start && strings.IndexByte("=+-@\t\r", c) >= 0 {
			return true
		}
		start = c == ';' || c == '\t'
	}
	return false
}

// csvMatchesRow checks every cell of a CSV record against the OData row of
// the same issue: the same value, byte for byte, through the documented
// encodings. null is true where the reader reports NULL (DuckDB).
func csvMatchesRow(t *testing.T, reader string, header []string, rec []string, nulls []bool, row map[string]any) {
	t.Helper()
	for i, name := range header {
		v, ok := row[name]
		if !ok {
			t.Errorf("%s: column %s is not an OData property", reader, name)
			continue
		}
		cell := rec[i]
		switch x := v.(type) {
		case nil:
			if cell != "" {
				t.Errorf("%s: %v.%s: null became %q", reader, row["Key"], name, cell)
			}
		case string:
			if nulls != nil && nulls[i] {
				t.Errorf("%s: %v.%s: %q became NULL", reader, row["Key"], name, x)
			}
			got := cell
			if !isTyped(name) {
				if formulaRisk(cell) {
					t.Errorf("%s: %v.%s: %q could run as a formula", reader, row["Key"], name, cell)
				}
				got = unguard(cell)
			}
			if got != x {
				t.Errorf("%s: %v.%s: %q came back as %q (cell %q)", reader, row["Key"], name, x, got, cell)
			}
		case []any:
			if formulaRisk(cell) {
				t.Errorf("%s: %v.%s: %q could run as a formula", reader, row["Key"], name, cell)
			}
			got, _ := json.Marshal(splitItems(unguard(cell)))
			want, _ := json.Marshal(itemTexts(x))
			if !bytes.Equal(got, want) {
				t.Errorf("%s: %v.%s: %s came back as %s (cell %q)", reader, row["Key"], name, want, got, cell)
			}
		case json.Number:
			if cell != x.String() {
				t.Errorf("%s: %v.%s: %s came back as %q", reader, row["Key"], name, x, cell)
			}
		case bool:
			if cell != map[bool]string{true: "true", false: "false"}[x] {
				t.Errorf("%s: %v.%s: %v came back as %q", reader, row["Key"], name, x, cell)
			}
		default:
			t.Errorf("%s: %s: unexpected OData value %T", reader, name, v)
		}
	}
}

// isTyped names the columns whose OData strings are dates and date-times
// (not text, so never guarded).
func isTyped(name string) bool {
	switch name {
	case "Created", "Resolved", "ReviewDate", "GoLive":
		return true
	}
	return false
}

// odataRowsByKey reads a whole set through OData, numbers kept as written.
func odataRowsByKey(t *testing.T, url, token, key string) map[string]map[string]any {
	t.Helper()
	out := map[string]map[string]any{}
	for url != "" {
		code, _, body := fetch(t, url, token)
		if code != 200 {
			t.Fatalf("GET %s = %d: %s", url, code, body)
		}
		var p struct {
			Value    []map[string]any `json:"value"`
			NextLink string           `json:"@odata.nextLink"`
		}
		dec := json.NewDecoder(bytes.NewReader(body))
		dec.UseNumber()
		if err := dec.Decode(&p); err != nil {
			t.Fatal(err)
		}
		for _, r := range p.Value {
			k, _ := r[key].(string)
			out[k] = r
		}
		url = p.NextLink
	}
	return out
}

func TestCSVValuesRoundTripByteForByteAndNeverRunAsFormulas(t *testing.T) {
	d, _, _ := startTestDemo(t, 400)
	src := csvSource(t, d)
	for _, table := range []struct{ csv, set, key string }{{"issues.csv", "Issues", "Key"}, {"changelog.csv", "Changelog", "Id"}} {
		rows := odataRowsByKey(t, d.info.AppURL+"/odata/"+src+"/"+table.set, d.info.Token, table.key)
		code, _, body := fetch(t, d.info.AppURL+"/export/"+src+"/"+table.csv, d.info.Token)
		if code != 200 {
			t.Fatalf("%s: %d %s", table.csv, code, body)
		}
		recs, err := readRFC4180(body)
		if err != nil {
			t.Fatalf("%s is not RFC 4180: %v", table.csv, err)
		}
		if len(recs)-1 != len(rows) {
			t.Fatalf("%s: %d records, OData has %d rows", table.csv, len(recs)-1, len(rows))
		}
		header := recs[0]
		for _, rec := range recs[1:] {
			csvMatchesRow(t, "RFC 4180", header, rec, nil, rows[rec[0]])
		}
		if table.set == "Issues" {
			hazards := 0
			for _, row := range rows {
				if n, _ := row["Notes"].(string); strings.ContainsAny(n, "\r\n;=\"") {
					hazards++
				}
			}
			if hazards < 10 {
				t.Fatalf("only %d rows carry CSV hazards; the test would prove little", hazards)
			}
		}
		readWithRealReaders(t, table.csv, body, rows)
	}
}

// readRFC4180 is a strict RFC 4180 reader that keeps every byte of a
// quoted field (Go's encoding/csv drops the CR of a CRLF inside quotes).
func readRFC4180(b []byte) ([][]string, error) {
	b = bytes.TrimPrefix(b, []byte("\uFEFF"))
	var recs [][]string
	var rec []string
	var field []byte
	for i := 0; i < len(b); {
		if b[i] == '"' {
			i++
			for {
				if i >= len(b) {
					return nil, fmt.Errorf("unterminated quoted field in record %d", len(recs))
				}
				if b[i] == '"' {
					if i+1 < len(b) && b[i+1] == '"' {
						field = append(field, '"')
						i += 2
						continue
					}
					i++
					break
				}
				field = append(field, b[i])
				i++
			}
		}
		switch {
		case i >= len(b):
		case b[i] == ',':
			rec, field = append(rec, string(field)), nil
			i++
			continue
		case b[i] == '\r' && i+1 < len(b) && b[i+1] == '\n':
			recs, rec, field = append(recs, append(rec, string(field))), nil, nil
			i += 2
			continue
		case b[i] == '"' || b[i] == '\r' || b[i] == '\n':
			return nil, fmt.Errorf("record %d: bare %q outside quotes", len(recs), b[i])
		default:
			field = append(field, b[i])
			i++
			continue
		}
		if rec != nil || field != nil {
			recs = append(recs, append(rec, string(field)))
		}
		break
	}
	return recs, nil
}

// readWithRealReaders feeds the CSV to Python's csv module, pandas and
// DuckDB, and checks what each read against the OData rows.
func readWithRealReaders(t *testing.T, name string, body []byte, rows map[string]map[string]any) {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, body, 0o600); err != nil {
		t.Fatal(err)
	}
	if py := pythonWithPandas(t); py != "" {
		out, err := exec.Command(py, "testdata/csv_readers.py", path).Output()
		if err != nil {
			t.Fatalf("python readers: %v", err)
		}
		var got map[string]json.RawMessage
		if err := json.Unmarshal(out, &got); err != nil {
			t.Fatal(err)
		}
		for _, reader := range []string{"csv", "pandas"} {
			var recs [][]string
			if err := json.Unmarshal(got[reader], &recs); err != nil {
				t.Fatalf("%s: %v", reader, err)
			}
			if len(recs)-1 != len(rows) {
				t.Errorf("%s read %d records of %s, want %d", reader, len(recs)-1, name, len(rows))
				continue
			}
			for _, rec := range recs[1:] {
				csvMatchesRow(t, "python "+reader, recs[0], rec, nil, rows[rec[0]])
			}
		}
	}
	mods := interopModules(t, "@duckdb/node-api")
	cmd := exec.Command("node", "testdata/csv_duckdb.js", path)
	cmd.Env = append(os.Environ(), "NODE_PATH="+mods)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("duckdb: %v\n%s", err, stderr.String())
	}
	var recs [][]*string
	if err := json.Unmarshal(out, &recs); err != nil {
		t.Fatal(err)
	}
	if len(recs)-1 != len(rows) {
		t.Fatalf("duckdb read %d records of %s, want %d", len(recs)-1, name, len(rows))
	}
	header := make([]string, len(recs[0]))
	for i, h := range recs[0] {
		header[i] = *h
	}
	for _, rec := range recs[1:] {
		cells, nulls := make([]string, len(rec)), make([]bool, len(rec))
		for i, c := range rec {
			if c == nil {
				nulls[i] = true
			} else {
				cells[i] = *c
			}
		}
		csvMatchesRow(t, "duckdb", header, cells, nulls, rows[cells[0]])
	}
}

// pythonWithPandas finds a Python 3 with pandas, or skips (fails in CI).
func pythonWithPandas(t *testing.T) string {
	for _, py := range []string{"python3", "/usr/bin/python3"} {
		if exec.Command(py, "-c", "import pandas").Run() == nil {
			return py
		}
	}
	if os.Getenv("FERRY_REQUIRE_INTEROP") == "1" {
		t.Fatal("python3 with pandas is missing (apt-get install python3-pandas)")
	}
	t.Log("python3 with pandas missing: the Python csv/pandas round trip is skipped (apt-get install python3-pandas)")
	return ""
}

// interopModules finds interop/node_modules holding pkg, or skips (fails
// in CI).
func interopModules(t *testing.T, pkg string) string {
	t.Helper()
	dir, _ := filepath.Abs(filepath.Join("..", "..", "interop", "node_modules"))
	_, nodeErr := exec.LookPath("node")
	if _, err := os.Stat(filepath.Join(dir, pkg)); err != nil || nodeErr != nil {
		if os.Getenv("FERRY_REQUIRE_INTEROP") == "1" {
			t.Fatalf("node or %s missing (run: cd interop && npm ci)", pkg)
		}
		t.Skipf("%s not installed: run `cd interop && npm ci` (bash .ci/run does)", pkg)
	}
	return dir
}

// itemTexts are a collection's items as a CSV cell holds them: text, and
// numbers (attachment sizes) as OData writes them.
func itemTexts(items []any) []string {
	out := make([]string, len(items))
	for i, it := range items {
		out[i] = fmt.Sprint(it)
	}
	return out
}
