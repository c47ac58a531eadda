package jirasim

import (
	"encoding/json"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestFieldListCoversEveryFieldType: GET /rest/api/3/field lists a field of
// every built-in custom field type the platform document names (read from
// the document, not from a list here) and of every system field type, each
// field shows up in issues with a value of the shape its schema says, and
// each one has a value somewhere in the corpus.
func TestFieldListCoversEveryFieldType(t *testing.T) {
	doc := jiraSpec(t)
	// CustomFieldDefinitionJsonBean.type describes the built-in types as
	// "*  `name`: …".
	desc := doc.Components.Schemas["CustomFieldDefinitionJsonBean"].Value.Properties["type"].Value.Description
	var wantCustom []string
	for _, m := range regexp.MustCompile("(?m)^ \\*  `([a-z]+)`:").FindAllStringSubmatch(desc, -1) {
		wantCustom = append(wantCustom, cft+m[1])
	}
	if len(wantCustom) < 20 {
		t.Fatalf("read only %d custom field types from the document", len(wantCustom))
	}
	s, srv := newTestSim(t, Options{Issues: 400, Projects: 3, Users: 8, Seed: 31})
	admin := basicAuth(s.Users()[0])
	type schema struct {
		Type, Items, System, Custom string
		CustomID                    int
	}
	var fields []struct {
		ID, Name string
		Custom   bool
		Schema   *schema
	}
	getJSON(t, srv.URL, "/rest/api/3/field", admin, &fields)
	customs := map[string]bool{}
	systems := map[string]bool{}
	for _, f := range fields {
		if f.Schema == nil {
			continue
		}
		if f.Custom {
			customs[f.Schema.Custom] = true
			if !strings.HasPrefix(f.ID, "customfield_") || f.ID != "customfield_"+strconv.Itoa(f.Schema.CustomID) {
				t.Errorf("custom field %s has customId %d", f.ID, f.Schema.CustomID)
			}
		} else {
			systems[f.Schema.System] = true
		}
	}
	for _, c := range wantCustom {
		if !customs[c] {
			t.Errorf("no field of the document's custom type %s", c)
		}
	}
	// System fields and the Jira Software / JSM types the data model needs.
	for _, sys := range []string{"summary", "description", "status", "priority", "issuetype", "project", "assignee", "reporter", "creator",
		"created", "updated", "resolution", "resolutiondate", "labels", "fixVersions", "versions", "components", "duedate", "environment",
		"comment", "worklog", "issuelinks", "attachment", "timetracking", "timeoriginalestimate", "timeestimate", "timespent",
		"aggregatetimeoriginalestimate", "aggregatetimeestimate", "aggregatetimespent", "progress", "aggregateprogress", "workratio",
		"votes", "watches", "subtasks", "security", "statuscategorychangedate", "lastViewed"} {
		if !systems[sys] {
			t.Errorf("no system field %s", sys)
		}
	}
	for _, c := range []string{"com.pyxis.greenhopper.jira:gh-sprint", "com.pyxis.greenhopper.jira:gh-lexo-rank",
		"com.atlassian.servicedesk:sd-sla-field", "com.atlassian.servicedesk:sd-request-participants"} {
		if !customs[c] {
			t.Errorf("no field of type %s", c)
		}
	}

	// Every listed field in every issue, with a value of its schema's shape;
	// each field non-empty somewhere.
	nonEmpty := map[string]int{}
	var ids []string
	for i := 0; i < 400; i++ {
		ids = append(ids, strconv.Itoa(10001+i))
	}
	for k := 0; k < len(ids); k += 100 {
		var page struct {
			Issues []struct {
				Key    string
				Fields map[string]json.RawMessage
			}
		}
		call(t, srv.URL, "POST", "/rest/api/3/issue/bulkfetch", admin, map[string]any{"issueIdsOrKeys": ids[k : k+100], "fields": []string{"*all"}}).status(t, 200).decode(t, &page)
		for _, is := range page.Issues {
			for _, f := range fields {
				if f.Schema == nil {
					continue
				}
				v, ok := is.Fields[f.ID]
				if !ok {
					t.Fatalf("%s: field %s missing from *all", is.Key, f.ID)
				}
				if string(v) == "null" {
					continue
				}
				if err := shapeOf(f.Schema.Type, f.Schema.Items, f.Schema.System, v); err != "" {
					t.Errorf("%s %s (%s/%s): %s: %s", is.Key, f.ID, f.Schema.Type, f.Schema.Items, err, v)
					continue
				}
				if string(v) != "[]" && string(v) != "{}" {
					nonEmpty[f.ID]++
				}
			}
		}
	}
	for _, f := range fields {
		if f.Schema != nil && nonEmpty[f.ID] == 0 && f.ID != "subtasks" && f.ID != "security" && f.ID != "lastViewed" {
			t.Errorf("field %s (%s) never has a value", f.ID, f.Name)
		}
	}
}

// shapeOf checks a field value against what Jira sends for a schema type,
// written from Atlassian's documentation of each shape.
func shapeOf(typ, items, system string, v json.RawMessage) string {
	var x any
	if err := json.Unmarshal(v, &x); err != nil {
		return err.Error()
	}
	obj := func(keys ...string) string {
		m, ok := x.(map[string]any)
		if !ok {
			return "not an object"
		}
		for _, k := range keys {
			if _, ok := m[k]; !ok {
				return "no " + k
			}
		}
		return ""
	}
	switch typ {
	case "string":
		if system == "description" || system == "environment" {
			return obj("type", "version", "content")
		}
		if _, ok := x.(string); !ok {
			return "not a string"
		}
	case "number":
		if _, ok := x.(float64); !ok {
			return "not a number"
		}
	case "date":
		if s, ok := x.(string); !ok || len(s) != 10 {
			return "not a date"
		} else if _, err := time.Parse("2006-01-02", s); err != nil {
			return err.Error()
		}
	case "datetime":
		s, _ := x.(string)
		if _, err := time.Parse(jiraTime, s); err != nil {
			return "not a Jira date-time"
		}
	case "user":
		return obj("accountId", "displayName", "active")
	case "group":
		return obj("name", "groupId")
	case "option":
		return obj("value", "id")
	case "option-with-child":
		if e := obj("value", "id"); e != "" {
			return e
		}
		if c, ok := x.(map[string]any)["child"]; ok {
			if _, ok := c.(map[string]any)["value"]; !ok {
				return "child without a value"
			}
		}
	case "version":
		return obj("id", "name", "released", "archived")
	case "project":
		return obj("id", "key", "name")
	case "status":
		return obj("id", "name", "statusCategory")
	case "priority", "issuetype", "resolution":
		return obj("id", "name")
	case "securitylevel":
		return obj("id", "name")
	case "comments-page":
		return obj("comments", "total", "maxResults", "startAt")
	case "timetracking":
		return obj()
	case "progress":
		return obj("progress", "total")
	case "votes":
		return obj("votes", "hasVoted")
	case "watches":
		return obj("watchCount", "isWatching")
	case "sd-servicelevelagreement":
		if e := obj("id", "name", "completedCycles"); e != "" {
			return e
		}
		m := x.(map[string]any)
		cycles, _ := m["completedCycles"].([]any)
		if m["ongoingCycle"] == nil && len(cycles) == 0 {
			return "neither an ongoing nor a completed cycle"
		}
	case "any":
	case "array":
		if items == "worklog" {
			return obj("worklogs", "total", "maxResults", "startAt")
		}
		arr, ok := x.([]any)
		if !ok {
			return "not an array"
		}
		for _, it := range arr {
			raw, _ := json.Marshal(it)
			var e string
			switch items {
			case "string":
				if _, ok := it.(string); !ok {
					e = "item not a string"
				}
			case "json":
				if m, ok := it.(map[string]any); !ok || m["id"] == nil || m["name"] == nil || m["state"] == nil {
					e = "sprint item without id, name or state"
				}
			case "issuelinks":
				m, _ := it.(map[string]any)
				if m["type"] == nil || m["inwardIssue"] == nil && m["outwardIssue"] == nil {
					e = "link without a type or an issue"
				}
			case "attachment":
				m, _ := it.(map[string]any)
				if m["filename"] == nil || m["size"] == nil || m["mimeType"] == nil {
					e = "attachment without filename, size or mimeType"
				}
			case "component":
				m, _ := it.(map[string]any)
				if m["id"] == nil || m["name"] == nil {
					e = "component without id or name"
				}
			default:
				e = shapeOf(items, "", "", raw)
			}
			if e != "" {
				return e
			}
		}
	default:
		return "unknown schema type " + typ
	}
	return ""
}

// TestPlantedCommentsAndWorklogs: text planted through the control API
// (a canary) reaches every place Jira would show it — the comment and
// worklog endpoints, the issue fields, worklog/updated once a minute has
// passed, worklog/list, time tracking — and only for users who may browse
// the issue. A page of worklog/updated never splits equal update times.
func TestPlantedCommentsAndWorklogs(t *testing.T) {
	clock := &fakeClock{t: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}
	s, srv := newTestSim(t, Options{Issues: 50, Projects: 2, Users: 6, Seed: 3})
	s.setClock(clock.now)
	users := s.Users()
	admin, restricted := basicAuth(users[0]), basicAuth(users[1])
	k0, k1 := s.ProjectKeys()[0], s.ProjectKeys()[1]
	const canary = "canary-9b1f; =cmd|' /C calc'!A0"
	var out struct{ ID string }
	call(t, srv.URL, "POST", "/_sim/comments", "", map[string]any{"issue": k1 + "-2", "body": canary, "author": users[2].AccountID}).status(t, 201).decode(t, &out)
	commentID := out.ID
	var before struct {
		Fields struct {
			Timetracking struct{ TimeSpentSeconds int }
		}
	}
	getJSON(t, srv.URL, "/rest/api/3/issue/"+k1+"-2?fields=timetracking", admin, &before)
	call(t, srv.URL, "POST", "/_sim/worklogs", "", map[string]any{"issue": k1 + "-2", "comment": canary, "time_spent_seconds": 5400}).status(t, 201).decode(t, &out)
	worklogID := out.ID
	// Bad input is refused and changes nothing.
	for _, bad := range []struct{ path, body string }{
		{"/_sim/comments", `{"issue":"NOPE-1","body":"x"}`}, {"/_sim/comments", `{"issue":"` + k0 + `-1","body":" "}`},
		{"/_sim/comments", `{"issue":"` + k0 + `-1","body":"x","author":"nobody"}`}, {"/_sim/worklogs", `{"issue":"` + k0 + `-1","started":"yesterday"}`},
		{"/_sim/worklogs", `{"issue":"` + k0 + `-1","time_spent_seconds":-5}`}, {"/_sim/worklogs", `{"issue":`},
	} {
		call(t, srv.URL, "POST", bad.path, "", bad.body).status(t, 400)
	}

	var cs struct{ Comments []cmJSON }
	getJSON(t, srv.URL, "/rest/api/3/issue/"+k1+"-2/comment", admin, &cs)
	last := cs.Comments[len(cs.Comments)-1]
	if last.ID != commentID || !strings.Contains(string(last.Body), `"text":"canary-9b1f; =cmd|' /C calc'!A0"`) {
		t.Errorf("planted comment not last on the issue: %+v", last)
	}
	var is struct {
		Fields struct {
			Comment      struct{ Comments []cmJSON }
			Worklog      struct{ Worklogs []wlJSON }
			Timetracking struct{ TimeSpentSeconds int }
		}
	}
	getJSON(t, srv.URL, "/rest/api/3/issue/"+k1+"-2?fields=comment,worklog,timetracking", admin, &is)
	if n := len(is.Fields.Comment.Comments); n == 0 || is.Fields.Comment.Comments[n-1].ID != commentID {
		t.Error("comment field lacks the planted comment")
	}
	// As in Jira, adding a comment or a worklog updates the issue: its
	// updated field, and JQL on updated, see the change.
	var upd struct{ Fields struct{ Updated string } }
	getJSON(t, srv.URL, "/rest/api/3/issue/"+k1+"-2?fields=updated", admin, &upd)
	if u, err := time.Parse("2006-01-02T15:04:05.000-0700", upd.Fields.Updated); err != nil || u.Before(clock.now().Truncate(time.Millisecond)) {
		t.Errorf("issue updated %q (%v) after a comment and a worklog at %s", upd.Fields.Updated, err, clock.now())
	}
	var found0 struct{ Issues []struct{ Key string } }
	call(t, srv.URL, "POST", "/rest/api/3/search/jql", admin, map[string]any{"jql": `updated >= "2026-02-28"`, "fields": []string{"key"}}).status(t, 200).decode(t, &found0)
	if len(found0.Issues) != 1 || found0.Issues[0].Key != k1+"-2" { // the generated data ends in 2024
		t.Errorf("JQL updated >= the day before the comment finds %v, want only %s-2", found0.Issues, k1)
	}
	found := false
	for _, w := range issueWorklogs(t, srv.URL, admin, k1+"-2", 0) {
		if w.ID == worklogID && strings.Contains(string(w.Comment), "canary-9b1f") && w.TimeSpentSeconds == 5400 && w.Author.AccountID == users[0].AccountID {
			found = true
		}
	}
	if !found {
		t.Error("worklog endpoint lacks the planted worklog")
	}
	if got := is.Fields.Timetracking.TimeSpentSeconds - before.Fields.Timetracking.TimeSpentSeconds; got != 5400 {
		t.Errorf("time spent grew by %d, want 5400", got)
	}
	// Not within the minute it was logged; after it, once.
	since := clock.now().Add(-time.Hour).UnixMilli()
	ids, _, _ := worklogStream(t, srv.URL, admin, since)
	if len(ids) != 0 {
		t.Errorf("worklog/updated shows %d worklogs of the last minute", len(ids))
	}
	clock.advance(61 * time.Second)
	ids, _, _ = worklogStream(t, srv.URL, admin, since)
	if len(ids) != 1 || strconv.FormatInt(ids[0], 10) != worklogID {
		t.Errorf("worklog/updated after a minute: %v, want [%s]", ids, worklogID)
	}
	var listed []wlJSON
	call(t, srv.URL, "POST", "/rest/api/3/worklog/list", admin, map[string]any{"ids": ids}).status(t, 200).decode(t, &listed)
	if len(listed) != 1 || !strings.Contains(string(listed[0].Comment), "canary-9b1f") {
		t.Errorf("worklog/list: %+v", listed)
	}
	// The restricted user browses only the first project.
	if code := getJSON(t, srv.URL, "/rest/api/3/issue/"+k1+"-2/comment", restricted, nil); code != 404 {
		t.Errorf("restricted user reads comments of %s-2: %d", k1, code)
	}
	if ids, _, _ := worklogStream(t, srv.URL, restricted, since); len(ids) != 0 {
		t.Errorf("restricted user sees planted worklogs of %s: %v", k1, ids)
	}
	call(t, srv.URL, "POST", "/rest/api/3/worklog/list", restricted, map[string]any{"ids": ids}).status(t, 200).decode(t, &listed)
	if len(listed) != 0 {
		t.Error("restricted user lists a worklog of a project they may not browse")
	}

	// 1001 worklogs updated at the same moment cross a page boundary; the
	// page holds them all rather than lose the last.
	at := clock.now().Add(-10 * time.Minute)
	for k := 0; k < worklogUpdatedPage+1; k++ {
		if _, err := s.AddWorklog(NewWorklog{Issue: k0 + "-1", Updated: at, TimeSpentSeconds: 60}); err != nil {
			t.Fatal(err)
		}
	}
	ids, _, _ = worklogStream(t, srv.URL, admin, at.Add(-time.Second).UnixMilli())
	if len(ids) != worklogUpdatedPage+2 { // the 1001 and the canary
		t.Errorf("stream over equal update times: %d worklogs, want %d", len(ids), worklogUpdatedPage+2)
	}
}

// TestAddCommentAndWorklogThroughREST: Jira's POST endpoints for comments
// and worklogs answer in the spec's shapes, refuse bad input naming the
// field, respect browse permission, and what they add is read back.
func TestAddCommentAndWorklogThroughREST(t *testing.T) {
	s, srv := newTestSim(t, Options{Issues: 40, Projects: 2, Users: 6, Seed: 8})
	users := s.Users()
	admin, restricted := basicAuth(users[0]), basicAuth(users[1])
	k0, k1 := s.ProjectKeys()[0], s.ProjectKeys()[1]
	post := func(path, auth string, body any, want int, tmpl string) result {
		t.Helper()
		r := call(t, srv.URL, "POST", path, auth, body).status(t, want)
		checkSpec(t, r.req, tmpl, map[string]string{"issueIdOrKey": strings.Split(path, "/")[5]}, r.resp, r.body)
		return r
	}
	const ct, wt = "/rest/api/3/issue/{issueIdOrKey}/comment", "/rest/api/3/issue/{issueIdOrKey}/worklog"
	body := map[string]any{"body": adf("canary-rest-4411 in a comment")}
	var added cmJSON
	post("/rest/api/3/issue/"+k0+"-3/comment", restricted, body, 201, ct).decode(t, &added)
	post("/rest/api/3/issue/"+k1+"-3/comment", restricted, body, 404, ct)
	for _, bad := range []any{map[string]any{}, map[string]any{"body": "plain"}, map[string]any{"body": adf("  ")},
		map[string]any{"body": adf("x"), "visibility": map[string]string{"type": "group", "value": "jira-users"}}} {
		r := post("/rest/api/3/issue/"+k0+"-3/comment", admin, bad, 400, ct)
		if !strings.Contains(string(r.body), `"errors":{"`) {
			t.Errorf("400 without a field: %s", r.body)
		}
	}
	cs := issueComments(t, srv.URL, restricted, k0+"-3", 0)
	if last := cs[len(cs)-1]; last.ID != added.ID || !strings.Contains(string(last.Body), "canary-rest-4411") {
		t.Errorf("added comment not read back: %+v", last)
	}
	var wl wlJSON
	post("/rest/api/3/issue/"+k0+"-3/worklog", restricted, map[string]any{"started": "2024-05-01T09:30:00.000+0200", "timeSpent": "1h 30m",
		"comment": adf("canary-rest-4411 in a worklog")}, 201, wt).decode(t, &wl)
	if wl.TimeSpentSeconds != 5400 || wl.Author.AccountID != users[1].AccountID || !strings.HasPrefix(wl.Started, "2024-05-01T07:30:00") {
		t.Errorf("worklog: %+v", wl)
	}
	for _, bad := range []map[string]any{{"timeSpentSeconds": 60}, {"started": "2024-05-01", "timeSpentSeconds": 60},
		{"started": "2024-05-01T09:30:00.000+0200"}, {"started": "2024-05-01T09:30:00.000+0200", "timeSpent": "soon"},
		{"started": "2024-05-01T09:30:00.000+0200", "timeSpentSeconds": 60, "comment": "plain"}} {
		post("/rest/api/3/issue/"+k0+"-3/worklog", admin, bad, 400, wt)
	}
	post("/rest/api/3/issue/"+k1+"-3/worklog", restricted, map[string]any{"started": "2024-05-01T09:30:00.000+0200", "timeSpentSeconds": 60}, 404, wt)
	found := false
	for _, w := range issueWorklogs(t, srv.URL, admin, k0+"-3", 0) {
		found = found || w.ID == wl.ID && strings.Contains(string(w.Comment), "canary-rest-4411")
	}
	if !found {
		t.Error("added worklog not read back")
	}
	for in, want := range map[string]int{"1w": 144000, "2d 4h": 72000, "90": 5400, "3h 20m": 12000, "": 0, "1x": 0, "-5m": 0} {
		if got := parseJiraDuration(in); got != want {
			t.Errorf("parseJiraDuration(%q) = %d, want %d", in, got, want)
		}
	}
}
