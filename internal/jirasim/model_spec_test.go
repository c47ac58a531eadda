package jirasim

import (
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
)

// The data model's endpoints are checked against Atlassian's documents: the
// platform API for worklogs, comments, versions, components and users, and
// the Jira Software document for the Agile API. Where the Agile document
// gives only an example (sprints, sprint issues), the answer is compared
// with the example's shape as well: every key the sim sends must be one the
// example has, with the same JSON type.

var (
	agileOnce sync.Once
	agileDoc  *openapi3.T
	agileErr  error
)

func agileSpec(t testing.TB) *openapi3.T {
	t.Helper()
	jiraSpec(t) // registers the date-time format Jira uses
	path := filepath.Join(repoRoot(t), "..", "shared", "specs", "jira-software-cloud-v3.openapi.json")
	agileOnce.Do(func() {
		if _, err := os.Stat(path); err != nil {
			agileErr = err
			return
		}
		agileDoc, agileErr = openapi3.NewLoader().LoadFromFile(path)
		if agileErr == nil {
			relaxAnySchemas(agileDoc)
		}
	})
	if agileErr != nil {
		if os.IsNotExist(agileErr) && !requireInterop() {
			t.Skipf("Jira Software OpenAPI spec not found at %s (set FERRY_REQUIRE_INTEROP=1 to make this fatal)", path)
		}
		t.Fatalf("loading %s: %v", path, agileErr)
	}
	return agileDoc
}

func checkAgile(t testing.TB, r result, tmpl string, params map[string]string) result {
	t.Helper()
	doc := agileSpec(t)
	if err := specErrorIn(t, doc, r.req, tmpl, params, r.resp.StatusCode, r.resp.Header, r.body); err != nil {
		t.Errorf("%s %s → %d does not match the Jira Software spec:\n%v\nbody: %.600s", r.req.Method, r.req.URL, r.resp.StatusCode, err, r.body)
	}
	if r.resp.StatusCode == 200 {
		// The document's example for /sprint/{sprintId}/issue is a single
		// issue, although the answer is a page like the board variant's.
		exTmpl := tmpl
		if tmpl == "/rest/agile/1.0/sprint/{sprintId}/issue" {
			exTmpl = "/rest/agile/1.0/board/{boardId}/sprint/{sprintId}/issue"
		}
		op := doc.Paths.Value(exTmpl).GetOperation(r.req.Method)
		if ex := exampleOf(op); ex != nil && !hasSchema(op) {
			var got any
			if err := json.Unmarshal(r.body, &got); err != nil {
				t.Fatalf("%s: %v", r.req.URL, err)
			}
			for _, p := range likeExample(got, ex, "$") {
				t.Errorf("%s: %s", r.req.URL.Path, p)
			}
		}
	}
	return r
}

// exampleOf is the 200 answer's example, decoded.
func exampleOf(op *openapi3.Operation) any {
	resp := op.Responses.Value("200")
	if resp == nil || resp.Value == nil {
		return nil
	}
	mt := resp.Value.Content.Get("application/json")
	if mt == nil || mt.Example == nil {
		return nil
	}
	ex := mt.Example
	if s, ok := ex.(string); ok {
		if json.Unmarshal([]byte(s), &ex) != nil {
			return nil
		}
	}
	return ex
}

func hasSchema(op *openapi3.Operation) bool {
	mt := op.Responses.Value("200").Value.Content.Get("application/json")
	return mt != nil && mt.Schema != nil
}

// beyondExample are keys Jira Cloud sends that the Agile examples predate.
var beyondExample = map[string]bool{"createdDate": true}

// likeExample lists where got departs from the example's shape. Issue
// fields are left to the platform's IssueBean schema.
func likeExample(got, ex any, at string) []string {
	var out []string
	switch e := ex.(type) {
	case map[string]any:
		g, ok := got.(map[string]any)
		if !ok {
			return []string{fmt.Sprintf("%s: %T, the example has an object", at, got)}
		}
		for k, v := range g {
			ev, has := e[k]
			switch {
			case k == "fields":
			case !has && !beyondExample[k]:
				out = append(out, fmt.Sprintf("%s.%s: not in the example", at, k))
			case has:
				out = append(out, likeExample(v, ev, at+"."+k)...)
			}
		}
	case []any:
		g, ok := got.([]any)
		if !ok {
			return []string{fmt.Sprintf("%s: %T, the example has an array", at, got)}
		}
		if len(e) > 0 {
			for k, v := range g {
				out = append(out, likeExample(v, e[0], at+"["+strconv.Itoa(k)+"]")...)
			}
		}
	case string:
		if _, ok := got.(string); !ok {
			return []string{fmt.Sprintf("%s: %T, the example has a string", at, got)}
		}
		if _, err := time.Parse(agileTime, e); err == nil {
			if _, err := time.Parse(agileTime, got.(string)); err != nil {
				out = append(out, fmt.Sprintf("%s: %q is not a date-time like the example's %q", at, got, e))
			}
		}
	case float64:
		if _, ok := got.(float64); !ok {
			return []string{fmt.Sprintf("%s: %T, the example has a number", at, got)}
		}
	case bool:
		if _, ok := got.(bool); !ok {
			return []string{fmt.Sprintf("%s: %T, the example has a boolean", at, got)}
		}
	}
	return out
}

// checkIssueBeans validates each issue of a sprint-issue page against the
// platform's IssueBean schema.
func checkIssueBeans(t testing.TB, body []byte) {
	t.Helper()
	var page struct {
		Issues []any `json:"issues"`
	}
	if err := json.Unmarshal(body, &page); err != nil {
		t.Fatal(err)
	}
	sc := jiraSpec(t).Components.Schemas["IssueBean"].Value
	for _, is := range page.Issues {
		if err := sc.VisitJSON(is); err != nil {
			t.Errorf("sprint issue is not an IssueBean: %v", err)
		}
	}
}

// TestModelResponsesMatchJiraSpec drives every data-model endpoint, answers
// and errors, and validates each against Atlassian's documents.
func TestModelResponsesMatchJiraSpec(t *testing.T) {
	jiraSpec(t)
	agileSpec(t)
	s, srv := newTestSim(t, Options{Issues: 2500, Projects: 3, Users: 8, Seed: 42})
	admin := basicAuth(s.Users()[0])
	restricted := basicAuth(s.Users()[1])
	k0, k1 := s.ProjectKeys()[0], s.ProjectKeys()[1]
	check := func(r result, tmpl string, params map[string]string) result {
		t.Helper()
		checkSpec(t, r.req, tmpl, params, r.resp, r.body)
		return r
	}
	get := func(path, auth string, want int) result {
		t.Helper()
		return call(t, srv.URL, "GET", path, auth, nil).status(t, want)
	}
	// An issue with many worklogs and comments, and one with none.
	many, none := -1, -1
	for i := 0; i < 2500 && (many < 0 || none < 0); i++ {
		if s.data.worklogCount(i) > 20 && s.data.commentCount(i) > 0 && many < 0 {
			many = i
		}
		if s.data.worklogCount(i) == 0 && s.data.commentCount(i) == 0 && none < 0 {
			none = i
		}
	}
	if many < 0 || none < 0 {
		t.Fatal("corpus lacks an issue with many worklogs or one with none")
	}
	for _, i := range []int{many, none} {
		id := strconv.Itoa(10001 + i)
		pp := map[string]string{"issueIdOrKey": id}
		check(get("/rest/api/3/issue/"+id+"/worklog", admin, 200), "/rest/api/3/issue/{issueIdOrKey}/worklog", pp)
		check(get("/rest/api/3/issue/"+id+"/worklog?startAt=3&maxResults=4&startedAfter=0", admin, 200), "/rest/api/3/issue/{issueIdOrKey}/worklog", pp)
		check(get("/rest/api/3/issue/"+id+"/comment?orderBy=-created&maxResults=2", admin, 200), "/rest/api/3/issue/{issueIdOrKey}/comment", pp)
	}
	check(get("/rest/api/3/issue/NOPE-1/worklog", admin, 404), "/rest/api/3/issue/{issueIdOrKey}/worklog", map[string]string{"issueIdOrKey": "NOPE-1"})
	check(get("/rest/api/3/issue/10001/worklog", "", 401), "/rest/api/3/issue/{issueIdOrKey}/worklog", map[string]string{"issueIdOrKey": "10001"})
	check(get("/rest/api/3/issue/NOPE-1/comment", admin, 404), "/rest/api/3/issue/{issueIdOrKey}/comment", map[string]string{"issueIdOrKey": "NOPE-1"})
	check(get("/rest/api/3/issue/10001/comment?orderBy=summary", admin, 400), "/rest/api/3/issue/{issueIdOrKey}/comment", map[string]string{"issueIdOrKey": "10001"})

	upd := check(get("/rest/api/3/worklog/updated?since=0", admin, 200), "/rest/api/3/worklog/updated", nil)
	var page struct {
		Values []struct {
			WorklogID int64 `json:"worklogId"`
		} `json:"values"`
		NextPage string `json:"nextPage"`
	}
	upd.decode(t, &page)
	if page.NextPage == "" {
		t.Fatal("worklog/updated of 2500 issues fits one page; the test needs more")
	}
	check(get(strings.TrimPrefix(page.NextPage, srv.URL), restricted, 200), "/rest/api/3/worklog/updated", nil)
	check(get("/rest/api/3/worklog/updated", "", 401), "/rest/api/3/worklog/updated", nil)
	var ids []int64
	for _, v := range page.Values[:10] {
		ids = append(ids, v.WorklogID)
	}
	check(call(t, srv.URL, "POST", "/rest/api/3/worklog/list", admin, map[string]any{"ids": ids}).status(t, 200), "/rest/api/3/worklog/list", nil)
	check(call(t, srv.URL, "POST", "/rest/api/3/worklog/list", admin, map[string]any{"idz": ids}).status(t, 400), "/rest/api/3/worklog/list", nil)
	check(call(t, srv.URL, "POST", "/rest/api/3/worklog/list", admin, `{"ids":`).status(t, 400), "/rest/api/3/worklog/list", nil)

	pk := map[string]string{"projectIdOrKey": k0}
	check(get("/rest/api/3/project/"+k0+"/versions", admin, 200), "/rest/api/3/project/{projectIdOrKey}/versions", pk)
	check(get("/rest/api/3/project/"+k0+"/version?maxResults=2", admin, 200), "/rest/api/3/project/{projectIdOrKey}/version", pk)
	check(get("/rest/api/3/project/"+k0+"/version?status=archived,unreleased&orderBy=-releaseDate", admin, 200), "/rest/api/3/project/{projectIdOrKey}/version", pk)
	check(get("/rest/api/3/project/"+k1+"/version", restricted, 404), "/rest/api/3/project/{projectIdOrKey}/version", map[string]string{"projectIdOrKey": k1})
	check(get("/rest/api/3/project/"+k1+"/versions", restricted, 404), "/rest/api/3/project/{projectIdOrKey}/versions", map[string]string{"projectIdOrKey": k1})
	check(get("/rest/api/3/project/"+k0+"/components", admin, 200), "/rest/api/3/project/{projectIdOrKey}/components", pk)
	check(get("/rest/api/3/project/10000/components", restricted, 200), "/rest/api/3/project/{projectIdOrKey}/components", map[string]string{"projectIdOrKey": "10000"})
	check(get("/rest/api/3/project/"+k1+"/components", restricted, 404), "/rest/api/3/project/{projectIdOrKey}/components", map[string]string{"projectIdOrKey": k1})
	check(get("/rest/api/3/users/search?maxResults=3&startAt=2", admin, 200), "/rest/api/3/users/search", nil)
	check(get("/rest/api/3/users/search", admin, 200), "/rest/api/3/users/search", nil)
	check(get("/rest/api/3/project/search?expand=lead,description", admin, 200), "/rest/api/3/project/search", nil)

	// The Agile API.
	checkAgile(t, get("/rest/agile/1.0/board", admin, 200), "/rest/agile/1.0/board", nil)
	checkAgile(t, get("/rest/agile/1.0/board?type=kanban&maxResults=1", admin, 200), "/rest/agile/1.0/board", nil)
	checkAgile(t, get("/rest/agile/1.0/board?projectKeyOrId="+k0, restricted, 200), "/rest/agile/1.0/board", nil)
	checkAgile(t, get("/rest/agile/1.0/board?type=wall", admin, 400), "/rest/agile/1.0/board", nil)
	checkAgile(t, get("/rest/agile/1.0/board/1", admin, 200), "/rest/agile/1.0/board/{boardId}", map[string]string{"boardId": "1"})
	checkAgile(t, get("/rest/agile/1.0/board/2", restricted, 404), "/rest/agile/1.0/board/{boardId}", map[string]string{"boardId": "2"})
	bp := map[string]string{"boardId": "1"}
	checkAgile(t, get("/rest/agile/1.0/board/1/sprint", admin, 200), "/rest/agile/1.0/board/{boardId}/sprint", bp)
	checkAgile(t, get("/rest/agile/1.0/board/1/sprint?state=active,future", admin, 200), "/rest/agile/1.0/board/{boardId}/sprint", bp)
	checkAgile(t, get("/rest/agile/1.0/board/1/sprint?state=done", admin, 400), "/rest/agile/1.0/board/{boardId}/sprint", bp)
	kanban := strconv.Itoa(len(s.ProjectKeys()) + 1)
	checkAgile(t, get("/rest/agile/1.0/board/"+kanban+"/sprint", admin, 400), "/rest/agile/1.0/board/{boardId}/sprint", map[string]string{"boardId": kanban})
	sp := busiestSprint(s, 0)
	sid := strconv.Itoa(sp.ID)
	checkAgile(t, get("/rest/agile/1.0/sprint/"+sid, admin, 200), "/rest/agile/1.0/sprint/{sprintId}", map[string]string{"sprintId": sid})
	checkAgile(t, get("/rest/agile/1.0/sprint/99999", admin, 404), "/rest/agile/1.0/sprint/{sprintId}", map[string]string{"sprintId": "99999"})
	r := checkAgile(t, get("/rest/agile/1.0/sprint/"+sid+"/issue?maxResults=3&fields=*all", admin, 200), "/rest/agile/1.0/sprint/{sprintId}/issue", map[string]string{"sprintId": sid})
	checkIssueBeans(t, r.body)
	r = checkAgile(t, get("/rest/agile/1.0/board/1/sprint/"+sid+"/issue?jql="+url.QueryEscape("status != Done"), admin, 200), "/rest/agile/1.0/board/{boardId}/sprint/{sprintId}/issue", map[string]string{"boardId": "1", "sprintId": sid})
	checkIssueBeans(t, r.body)
	checkAgile(t, get("/rest/agile/1.0/board/1/sprint/"+sid+"/issue?jql="+url.QueryEscape("status = "), admin, 400), "/rest/agile/1.0/board/{boardId}/sprint/{sprintId}/issue", map[string]string{"boardId": "1", "sprintId": sid})
	other := strconv.Itoa(busiestSprint(s, 1).ID)
	checkAgile(t, get("/rest/agile/1.0/sprint/"+other+"/issue", restricted, 404), "/rest/agile/1.0/sprint/{sprintId}/issue", map[string]string{"sprintId": other})

	// An issue with every field, for every user who sees it.
	for _, auth := range []string{admin, restricted} {
		check(get("/rest/api/3/issue/"+strconv.Itoa(10001+many)+"?fields=*all", auth, 200), "/rest/api/3/issue/{issueIdOrKey}", map[string]string{"issueIdOrKey": strconv.Itoa(10001 + many)})
	}
	check(call(t, srv.URL, "POST", "/rest/api/3/search/jql", admin, map[string]any{"jql": "project = " + k0, "fields": []string{"*all"}, "maxResults": 100}).status(t, 200), "/rest/api/3/search/jql", nil)
}

// busiestSprint is the sprint of project p with the most issues.
func busiestSprint(s *Sim, p int) sprintRec {
	best, n := 0, -1
	for k := 0; k < sprintCount; k++ {
		if m := len(s.data.sprintIssues(p, k)); m > n {
			best, n = k, m
		}
	}
	return s.data.sprint(p, best)
}
