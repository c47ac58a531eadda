package export_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"ferry/internal/export"
	"ferry/internal/jira"
	"ferry/internal/jirasim"
)

// BenchmarkConvertPage measures Ferry's CPU per row: reading a search page
// of 100 issues with the benchmark's 15 fields and turning each into the
// row's values (no HTTP, no encoding).
//
//	go test -run '^$' -bench ConvertPage -benchmem ./internal/export/
func BenchmarkConvertPage(b *testing.B) {
	c, sim := benchSim(b, jirasim.Options{Issues: 200, Projects: 2, Users: 5, Seed: 1})
	fields, err := c.Fields(context.Background())
	if err != nil {
		b.Fatal(err)
	}
	cols := export.IssueColumns(fields, benchFields)
	u := sim.Users()[0]
	body, _ := json.Marshal(map[string]any{"jql": benchJQL, "fields": append([]string{"key"}, benchFields...), "maxResults": 100})
	req, _ := http.NewRequest("POST", sim.BaseURL()+"/rest/api/3/search/jql", strings.NewReader(string(body)))
	req.Header.Set("Content-Type", "application/json")
	req.SetBasicAuth(u.Email, u.APIToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		b.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	b.SetBytes(int64(len(page)))
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		p, err := jira.ReadPage(page)
		if err != nil || len(p.Issues) != 100 {
			b.Fatal(len(p.Issues), err)
		}
		for i := range p.Issues {
			row := make([]any, len(cols))
			for j, col := range cols {
				row[j] = col.Value(&p.Issues[i])
			}
		}
	}
	b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N*100), "µs/row")
}
