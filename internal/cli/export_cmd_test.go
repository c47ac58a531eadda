package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestFerryExportReadsTheFeedItIsGiven runs `ferry export` against the demo:
// an OData URL with options is read as given (the rows its filter selects,
// every page, no $count asked for) into NDJSON and CSV; the CSV URL into CSV.
func TestFerryExportReadsTheFeedItIsGiven(t *testing.T) {
	d, _, _ := startTestDemoWith(t, demoOptions{Issues: 120})
	filtered := d.info.ODataURL + "Issues?$filter=" + url.PathEscape("Status eq 'Done'") + "&$select=Key,Status"
	want, _ := allRows(t, filtered, d.info.Token)
	if len(want) == 0 || len(want) == 120 {
		t.Fatalf("the filter selects %d of 120 issues; it checks nothing", len(want))
	}
	dir := t.TempDir()
	run := func(args ...string) string {
		t.Helper()
		out := filepath.Join(dir, "out")
		var stderr bytes.Buffer
		err := Run(context.Background(), append([]string{"ferry", "export", "--token", d.info.Token, "--out", out, "--quiet"}, args...),
			func(string) string { return "" }, nil, &bytes.Buffer{}, &stderr)
		if err != nil {
			t.Fatalf("ferry export %v: %v\n%s", args, err, stderr.String())
		}
		b, err := os.ReadFile(out)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	d.sim.ResetStats()
	lines := strings.Split(strings.TrimSpace(run("--url", filtered, "--format", "ndjson")), "\n")
	if len(lines) != len(want) {
		t.Fatalf("ndjson: %d rows, the filter selects %d", len(lines), len(want))
	}
	for i, l := range lines {
		var row map[string]any
		if err := json.Unmarshal([]byte(l), &row); err != nil || row["Key"] != want[i]["Key"] || row["Status"] != "Done" || len(row) != 2 {
			t.Fatalf("ndjson row %d = %s, want %v", i, l, want[i])
		}
	}
	csvText := run("--url", filtered, "--format", "csv")
	recs, err := readRFC4180([]byte(csvText))
	if err != nil || len(recs)-1 != len(want) || strings.Join(recs[0], ",") != "Key,Status" {
		t.Fatalf("csv from OData: %d records %v %v", len(recs), recs[:1], err)
	}
	whole := run("--url", d.info.CSVURL)
	recs, err = readRFC4180([]byte(whole))
	if err != nil || len(recs)-1 != 120 {
		t.Fatalf("csv feed: %d rows %v", len(recs)-1, err)
	}
}
