package jirasim

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"testing"
)

const benchIssues = 100_000

func benchPost(b *testing.B, client *http.Client, url, auth string, body []byte) []byte {
	req, _ := http.NewRequest("POST", url, bytes.NewReader(body))
	req.Header.Set("Authorization", auth)
	req.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		b.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		b.Fatalf("%s: %d %s", url, resp.StatusCode, raw)
	}
	return raw
}

// BenchmarkSearchIDPages enumerates all 100k issue ids in pages of 5000, as
// Ferry's export does first. One op = the whole enumeration.
func BenchmarkSearchIDPages(b *testing.B) {
	s, srv := newTestSim(b, Options{Issues: benchIssues, Projects: 5, Users: 20, Seed: 1})
	auth := basicAuth(s.Users()[0])
	client := srv.Client()
	b.ResetTimer()
	for b.Loop() {
		token, n := "", 0
		for {
			body, _ := json.Marshal(map[string]any{"jql": "created >= 2000-01-01", "maxResults": 5000, "nextPageToken": token})
			var p searchPage
			if err := json.Unmarshal(benchPost(b, client, srv.URL+"/rest/api/3/search/jql", auth, body), &p); err != nil {
				b.Fatal(err)
			}
			n += len(p.Issues)
			if p.IsLast {
				break
			}
			token = p.NextPageToken
		}
		if n != benchIssues {
			b.Fatalf("enumerated %d", n)
		}
	}
	b.ReportMetric(float64(benchIssues)*float64(b.N)/b.Elapsed().Seconds(), "issues/s")
}

// BenchmarkBulkFetch100 hydrates 100 issues with every field per request.
func BenchmarkBulkFetch100(b *testing.B) {
	s, srv := newTestSim(b, Options{Issues: benchIssues, Projects: 5, Users: 20, Seed: 1})
	auth := basicAuth(s.Users()[0])
	client := srv.Client()
	bodies := make([][]byte, 1000)
	for k := range bodies {
		ids := make([]string, 100)
		for j := range ids {
			ids[j] = strconv.Itoa(10001 + k*100 + j)
		}
		bodies[k], _ = json.Marshal(map[string]any{"issueIdsOrKeys": ids, "fields": []string{"*all"}})
	}
	b.ResetTimer()
	k := 0
	for b.Loop() {
		benchPost(b, client, srv.URL+"/rest/api/3/issue/bulkfetch", auth, bodies[k%len(bodies)])
		k++
	}
	b.ReportMetric(100*float64(b.N)/b.Elapsed().Seconds(), "issues/s")
}

// BenchmarkGenerateIssue is the in-process cost of one generated issue.
func BenchmarkGenerateIssue(b *testing.B) {
	s := New(Options{Issues: benchIssues, Projects: 5, Users: 20, Seed: 1})
	sel := parseFields([]string{"*all"}, "")
	c := s.snapshot()
	buf := make([]byte, 0, 8192)
	i := 0
	for b.Loop() {
		buf = s.appendIssue(buf[:0], "https://x.atlassian.net", c, i%benchIssues, sel)
		i++
	}
}
