package jirasim

import (
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
)

// BenchmarkWorklogStream100k follows worklog/updated from the beginning
// over 100k issues and fetches every worklog through worklog/list, 1000 at
// a time: an incremental pull from zero. One op = the whole site.
func BenchmarkWorklogStream100k(b *testing.B) {
	s, srv := newTestSim(b, Options{Issues: benchIssues, Projects: 5, Users: 20, Seed: 1})
	auth := basicAuth(s.Users()[0])
	client := srv.Client()
	s.worklogsByUpdated() // the index is built once per site
	b.ResetTimer()
	total := 0
	for b.Loop() {
		path := "/rest/api/3/worklog/updated?since=0"
		n := 0
		for {
			req, _ := newGet(srv.URL+path, auth)
			resp, err := client.Do(req)
			if err != nil {
				b.Fatal(err)
			}
			var page struct {
				Values []struct {
					WorklogID int64 `json:"worklogId"`
				} `json:"values"`
				LastPage bool   `json:"lastPage"`
				NextPage string `json:"nextPage"`
			}
			raw, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err := json.Unmarshal(raw, &page); err != nil {
				b.Fatal(err)
			}
			ids := make([]int64, len(page.Values))
			for k, v := range page.Values {
				ids[k] = v.WorklogID
			}
			body, _ := json.Marshal(map[string]any{"ids": ids})
			benchPost(b, client, srv.URL+"/rest/api/3/worklog/list", auth, body)
			n += len(ids)
			if page.LastPage {
				break
			}
			path = strings.TrimPrefix(page.NextPage, srv.URL)
		}
		total = n
	}
	b.ReportMetric(float64(total)*float64(b.N)/b.Elapsed().Seconds(), "worklogs/s")
	b.ReportMetric(float64(total), "worklogs")
}

// BenchmarkWorklogIndex100k is the one-time cost of the update-time index
// of 100k issues' worklogs.
func BenchmarkWorklogIndex100k(b *testing.B) {
	for b.Loop() {
		s := New(Options{Issues: benchIssues, Projects: 5, Users: 20, Seed: 1})
		if len(s.worklogsByUpdated()) == 0 {
			b.Fatal("no worklogs")
		}
	}
}

// BenchmarkIssueWorklogs is one GET /issue/{id}/worklog over HTTP, as a
// per-issue fetch makes it.
func BenchmarkIssueWorklogs(b *testing.B) {
	s, srv := newTestSim(b, Options{Issues: benchIssues, Projects: 5, Users: 20, Seed: 1})
	auth := basicAuth(s.Users()[0])
	client := srv.Client()
	i := 0
	for b.Loop() {
		req, _ := newGet(srv.URL+"/rest/api/3/issue/"+strconv.Itoa(10001+i%benchIssues)+"/worklog", auth)
		resp, err := client.Do(req)
		if err != nil || resp.StatusCode != 200 {
			b.Fatal(err, resp.StatusCode)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		i += 7
	}
}

func newGet(url, auth string) (*http.Request, error) {
	req, err := http.NewRequest("GET", url, nil)
	if err == nil {
		req.Header.Set("Authorization", auth)
	}
	return req, err
}
