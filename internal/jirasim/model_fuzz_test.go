package jirasim

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
)

var (
	fuzzSimOnce sync.Once
	fuzzSim     *Sim
)

func modelFuzzSim() *Sim {
	fuzzSimOnce.Do(func() { fuzzSim = New(Options{Issues: 300, Projects: 3, Users: 6, Seed: 1}) })
	return fuzzSim
}

// FuzzModelQueries sends arbitrary paths and query strings to the data
// model's endpoints: every answer is JSON with a 2xx or 4xx status, never a
// crash or a 5xx.
//
//	go test -fuzz FuzzModelQueries ./internal/jirasim/
func FuzzModelQueries(f *testing.F) {
	for _, seed := range []string{
		"/rest/api/3/issue/10005/worklog?startAt=1&maxResults=2&startedAfter=0&startedBefore=99999999999999",
		"/rest/api/3/issue/APOL-3/comment?orderBy=-created&maxResults=0",
		"/rest/api/3/worklog/updated?since=-1",
		"/rest/api/3/worklog/updated?since=9223372036854775807",
		"/rest/agile/1.0/board?type=scrum,kanban&name=APO&projectKeyOrId=10000&startAt=-3",
		"/rest/agile/1.0/board/1/sprint?state=closed,,active",
		"/rest/agile/1.0/board/99999999999999999999/sprint",
		"/rest/agile/1.0/sprint/0/issue",
		"/rest/agile/1.0/sprint/17/issue?jql=status%20%3D%20Done%20ORDER%20BY%20created&fields=summary,-summary",
		"/rest/agile/1.0/board/1/sprint/17/issue?jql=(((",
		"/rest/api/3/project/APOL/version?status=archived&orderBy=-name&query=1",
		"/rest/api/3/project/%00/components?componentSource=x",
		"/rest/api/3/users/search?startAt=999999999&maxResults=-1",
	} {
		f.Add(seed)
	}
	s := modelFuzzSim()
	auth := basicAuth(s.Users()[1])
	f.Fuzz(func(t *testing.T, target string) {
		if !strings.HasPrefix(target, "/rest/") || strings.ContainsAny(target, " \r\n#") {
			return
		}
		req, err := http.NewRequest("GET", "http://sim"+target, nil)
		if err != nil {
			return
		}
		req.Header.Set("Authorization", auth)
		rec := httptest.NewRecorder()
		s.ServeHTTP(rec, req)
		if rec.Code >= 500 {
			t.Fatalf("%s: %d %s", target, rec.Code, rec.Body)
		}
		// ServeMux answers unclean paths ("//", "/./") with a redirect.
		if (rec.Code < 300 || rec.Code >= 400) && !json.Valid(rec.Body.Bytes()) {
			t.Fatalf("%s: %d, not JSON: %.200s", target, rec.Code, rec.Body)
		}
	})
}

// FuzzPlantControl sends arbitrary bodies to the planting control API and
// to Jira's comment and worklog POSTs: 201 or 400, never a crash; the
// worklog list request is fuzzed alongside.
//
//	go test -fuzz FuzzPlantControl ./internal/jirasim/
func FuzzPlantControl(f *testing.F) {
	f.Add("/_sim/comments", `{"issue":"APOL-1","body":"canary","author":"","created":"2024-01-02T03:04:05Z"}`)
	f.Add("/_sim/worklogs", `{"issue":"10002","comment":"c","started":"2024-01-02T03:04:05+02:00","time_spent_seconds":60}`)
	f.Add("/_sim/worklogs", `{"issue":"","time_spent_seconds":-1}`)
	f.Add("/rest/api/3/worklog/list", `{"ids":[1000200,9000000000,-1]}`)
	f.Add("/rest/api/3/worklog/list", `{"ids":null}`)
	f.Add("/rest/api/3/issue/10002/comment", `{"body":{"type":"doc","version":1,"content":[{"type":"paragraph","content":[{"type":"text","text":"x"}]}]}}`)
	f.Add("/rest/api/3/issue/10002/worklog", `{"started":"2024-05-01T09:30:00.000+0200","timeSpent":"1w 2d 3h 4m"}`)
	s := modelFuzzSim()
	auth := basicAuth(s.Users()[0])
	f.Fuzz(func(t *testing.T, path, body string) {
		switch path {
		case "/_sim/comments", "/_sim/worklogs", "/rest/api/3/worklog/list", "/rest/api/3/issue/10002/comment", "/rest/api/3/issue/10002/worklog":
		default:
			return
		}
		req := httptest.NewRequest("POST", "http://sim"+path, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", auth)
		rec := httptest.NewRecorder()
		s.ServeHTTP(rec, req)
		switch {
		case rec.Code >= 500:
			t.Fatalf("%s %q: %d %s", path, body, rec.Code, rec.Body)
		case rec.Code != 200 && rec.Code != 201 && rec.Code != 400:
			t.Fatalf("%s %q: status %d", path, body, rec.Code)
		case !json.Valid(rec.Body.Bytes()):
			t.Fatalf("%s: not JSON", path)
		}
	})
}

// TestLikeExampleCatchesDrift keeps the example comparison live.
func TestLikeExampleCatchesDrift(t *testing.T) {
	ex := map[string]any{"id": 37.0, "name": "s", "startDate": "2015-04-11T15:22:00.000+10:00", "values": []any{map[string]any{"a": true}}}
	for _, got := range []map[string]any{
		{"id": "37"},               // wrong type
		{"extra": 1.0},             // unknown key
		{"startDate": "11/Apr/15"}, // not a date-time
		{"values": []any{map[string]any{"a": "yes"}}}, // item drift
		{"values": map[string]any{}},                  // not an array
	} {
		if len(likeExample(any(got), any(ex), "$")) == 0 {
			t.Errorf("drift accepted: %v", got)
		}
	}
	if p := likeExample(any(map[string]any{"id": 1.0, "startDate": "2024-01-01T00:00:00.000Z", "createdDate": "x"}), any(ex), "$"); len(p) != 0 {
		t.Errorf("valid answer refused: %v", p)
	}
}
