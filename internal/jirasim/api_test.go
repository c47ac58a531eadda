package jirasim

import (
	"net/url"
	"strings"
	"testing"
)

// TestResponsesMatchJiraSpec drives every simulated endpoint that the
// OpenAPI document describes and validates each response against it.
func TestResponsesMatchJiraSpec(t *testing.T) {
	jiraSpec(t)
	s, srv := newTestSim(t, Options{Issues: 250, Projects: 3, Users: 8, Seed: 42})
	app := newTestApp(t, srv.URL, "ferry-test")
	in := app.install(s)
	admin := basicAuth(s.Users()[0])
	users := s.Users()
	k0 := s.ProjectKeys()[0]

	check := func(r result, tmpl string, params map[string]string) result {
		t.Helper()
		checkSpec(t, r.req, tmpl, params, r.resp, r.body)
		return r
	}
	// search/jql: GET and POST, id pages, full pages, errors.
	check(call(t, srv.URL, "GET", "/rest/api/3/search/jql?jql="+url.QueryEscape("project = "+k0)+"&maxResults=7", admin, nil).status(t, 200), "/rest/api/3/search/jql", nil)
	check(call(t, srv.URL, "GET", "/rest/api/3/search/jql?jql="+url.QueryEscape("project = "+k0)+"&fields=*all&maxResults=3", admin, nil).status(t, 200), "/rest/api/3/search/jql", nil)
	check(call(t, srv.URL, "POST", "/rest/api/3/search/jql", admin, map[string]any{"jql": "status = Done ORDER BY updated DESC", "fields": []string{"summary", "status", "assignee", "customfield_10014", "key"}, "maxResults": 5}).status(t, 200), "/rest/api/3/search/jql", nil)
	check(call(t, srv.URL, "POST", "/rest/api/3/search/jql", admin, map[string]any{"jql": ""}).status(t, 400), "/rest/api/3/search/jql", nil)
	check(call(t, srv.URL, "GET", "/rest/api/3/search/jql?jql=project", "", nil).status(t, 401), "/rest/api/3/search/jql", nil)
	check(call(t, srv.URL, "POST", "/rest/api/3/search/approximate-count", admin, map[string]string{"jql": "project = " + k0}).status(t, 200), "/rest/api/3/search/approximate-count", nil)
	check(call(t, srv.URL, "POST", "/rest/api/3/search/approximate-count", admin, map[string]string{"jql": "project = "}).status(t, 400), "/rest/api/3/search/approximate-count", nil)

	bulk := check(call(t, srv.URL, "POST", "/rest/api/3/issue/bulkfetch", admin, map[string]any{"issueIdsOrKeys": []string{"10003", k0 + "-1", "not a key!", "99999999"}, "fields": []string{"*all"}}).status(t, 200), "/rest/api/3/issue/bulkfetch", nil)
	var b struct {
		Issues      []issueJSON
		IssueErrors []issueError
	}
	bulk.decode(t, &b)
	if len(b.Issues) != 2 || b.Issues[0].ID != "10003" || b.Issues[1].Key != k0+"-1" || len(b.IssueErrors) != 1 || b.IssueErrors[0].ID != "not a key!" {
		t.Errorf("bulkfetch: %d issues %+v errors", len(b.Issues), b.IssueErrors)
	}
	check(call(t, srv.URL, "POST", "/rest/api/3/issue/bulkfetch", admin, map[string]any{"issueIdsOrKeys": []string{}}).status(t, 400), "/rest/api/3/issue/bulkfetch", nil)
	check(call(t, srv.URL, "POST", "/rest/api/3/changelog/bulkfetch", admin, map[string]any{"issueIdsOrKeys": []string{"10001", "10002", "10003", "10004"}, "maxResults": 2}).status(t, 200), "/rest/api/3/changelog/bulkfetch", nil)
	check(call(t, srv.URL, "GET", "/rest/api/3/field", admin, nil).status(t, 200), "/rest/api/3/field", nil)
	check(call(t, srv.URL, "GET", "/rest/api/3/project/search?maxResults=2", admin, nil).status(t, 200), "/rest/api/3/project/search", nil)
	check(call(t, srv.URL, "GET", "/rest/api/3/myself?expand=groups", admin, nil).status(t, 200), "/rest/api/3/myself", nil)
	check(call(t, srv.URL, "GET", "/rest/api/3/myself", appJWT(t, in, "GET", "/rest/api/3/myself"), nil).status(t, 200), "/rest/api/3/myself", nil)
	check(call(t, srv.URL, "GET", "/rest/api/3/serverInfo", admin, nil).status(t, 200), "/rest/api/3/serverInfo", nil)
	for _, u := range users {
		check(call(t, srv.URL, "GET", "/rest/api/3/user?accountId="+url.QueryEscape(u.AccountID), admin, nil).status(t, 200), "/rest/api/3/user", nil)
	}
	check(call(t, srv.URL, "GET", "/rest/api/3/user?accountId=nobody", admin, nil).status(t, 404), "/rest/api/3/user", nil)
	var q []string
	for _, u := range users {
		q = append(q, "accountId="+url.QueryEscape(u.AccountID))
	}
	check(call(t, srv.URL, "GET", "/rest/api/3/user/bulk?maxResults=5&"+strings.Join(q, "&"), admin, nil).status(t, 200), "/rest/api/3/user/bulk", nil)
	check(call(t, srv.URL, "GET", "/rest/api/3/user/groups?accountId="+url.QueryEscape(users[0].AccountID), admin, nil).status(t, 200), "/rest/api/3/user/groups", nil)
	check(call(t, srv.URL, "GET", "/rest/api/3/groups/picker?query=jira", admin, nil).status(t, 200), "/rest/api/3/groups/picker", nil)
	check(call(t, srv.URL, "GET", "/rest/api/3/groups/picker?accountId="+url.QueryEscape(users[0].AccountID), admin, nil).status(t, 200), "/rest/api/3/groups/picker", nil)
	check(call(t, srv.URL, "GET", "/rest/api/3/user/search?query="+url.QueryEscape(strings.Fields(users[1].DisplayName)[0]), admin, nil).status(t, 200), "/rest/api/3/user/search", nil)
	check(call(t, srv.URL, "GET", "/rest/api/3/user/search?query=nobody-is-called-this", admin, nil).status(t, 200), "/rest/api/3/user/search", nil)
	check(call(t, srv.URL, "GET", "/rest/api/3/user/search", admin, nil).status(t, 400), "/rest/api/3/user/search", nil)
	check(call(t, srv.URL, "GET", "/rest/api/3/project/search?id=10000&id=10001", admin, nil).status(t, 200), "/rest/api/3/project/search", nil)
	// mypermissions: global and project permissions, with and without a
	// project context, as a user and as the app acting as one; bad keys.
	for _, auth := range []string{admin, basicAuth(users[1]), bearerFor(t, srv.URL, in, users[1].AccountID, "READ ACT_AS_USER")} {
		check(call(t, srv.URL, "GET", "/rest/api/3/mypermissions?permissions=ADMINISTER,BROWSE_PROJECTS,USER_PICKER", auth, nil).status(t, 200), "/rest/api/3/mypermissions", nil)
		check(call(t, srv.URL, "GET", "/rest/api/3/mypermissions?projectKey="+k0+"&permissions=BROWSE_PROJECTS,EDIT_ISSUES", auth, nil).status(t, 200), "/rest/api/3/mypermissions", nil)
	}
	check(call(t, srv.URL, "GET", "/rest/api/3/mypermissions?permissions=ADMINISTER", appJWT(t, in, "GET", "/rest/api/3/mypermissions?permissions=ADMINISTER"), nil).status(t, 200), "/rest/api/3/mypermissions", nil)
	check(call(t, srv.URL, "GET", "/rest/api/3/mypermissions", admin, nil).status(t, 400), "/rest/api/3/mypermissions", nil)
	check(call(t, srv.URL, "GET", "/rest/api/3/mypermissions?permissions=ADMINISTER,NOT_A_PERMISSION", admin, nil).status(t, 400), "/rest/api/3/mypermissions", nil)
	check(call(t, srv.URL, "GET", "/rest/api/3/mypermissions?projectKey=NOPE&permissions=BROWSE_PROJECTS", admin, nil).status(t, 404), "/rest/api/3/mypermissions", nil)
	check(call(t, srv.URL, "GET", "/rest/api/3/mypermissions?permissions=ADMINISTER", "", nil).status(t, 401), "/rest/api/3/mypermissions", nil)

	created := check(call(t, srv.URL, "POST", "/rest/api/3/issue", admin, map[string]any{"fields": map[string]any{
		"project": map[string]string{"key": k0}, "summary": "Planted canary", "issuetype": map[string]string{"name": "Bug"},
		"description": adf("canary-7f3e"), "labels": []string{"canary"},
	}}).status(t, 201), "/rest/api/3/issue", nil)
	var ref IssueRef
	created.decode(t, &ref)
	check(call(t, srv.URL, "POST", "/rest/api/3/issue", admin, map[string]any{"fields": map[string]any{"project": map[string]string{"key": "NOPE"}}}).status(t, 400), "/rest/api/3/issue", nil)
	check(call(t, srv.URL, "GET", "/rest/api/3/issue/"+ref.Key+"?expand=changelog", admin, nil).status(t, 200), "/rest/api/3/issue/{issueIdOrKey}", map[string]string{"issueIdOrKey": ref.Key})
	check(call(t, srv.URL, "GET", "/rest/api/3/issue/10005?expand=changelog", admin, nil).status(t, 200), "/rest/api/3/issue/{issueIdOrKey}", map[string]string{"issueIdOrKey": "10005"})
	check(call(t, srv.URL, "GET", "/rest/api/3/issue/NOPE-1", admin, nil).status(t, 404), "/rest/api/3/issue/{issueIdOrKey}", map[string]string{"issueIdOrKey": "NOPE-1"})

	// App properties, as the app itself.
	props := "/rest/atlassian-connect/1/addons/" + in.AddonKey + "/properties"
	pp := map[string]string{"addonKey": in.AddonKey, "propertyKey": "settings"}
	check(call(t, srv.URL, "PUT", props+"/settings", appJWT(t, in, "PUT", props+"/settings"), `{"a":1}`).status(t, 201), "/rest/atlassian-connect/1/addons/{addonKey}/properties/{propertyKey}", pp)
	check(call(t, srv.URL, "PUT", props+"/settings", appJWT(t, in, "PUT", props+"/settings"), `{"a":2}`).status(t, 200), "/rest/atlassian-connect/1/addons/{addonKey}/properties/{propertyKey}", pp)
	check(call(t, srv.URL, "PUT", props+"/settings", appJWT(t, in, "PUT", props+"/settings"), `{"a":`).status(t, 400), "/rest/atlassian-connect/1/addons/{addonKey}/properties/{propertyKey}", pp)
	check(call(t, srv.URL, "GET", props+"/settings", appJWT(t, in, "GET", props+"/settings"), nil).status(t, 200), "/rest/atlassian-connect/1/addons/{addonKey}/properties/{propertyKey}", pp)
	check(call(t, srv.URL, "GET", props, appJWT(t, in, "GET", props), nil).status(t, 200), "/rest/atlassian-connect/1/addons/{addonKey}/properties", map[string]string{"addonKey": in.AddonKey})
	check(call(t, srv.URL, "GET", props+"/settings", admin, nil).status(t, 401), "/rest/atlassian-connect/1/addons/{addonKey}/properties/{propertyKey}", pp)
	check(call(t, srv.URL, "DELETE", props+"/settings", appJWT(t, in, "DELETE", props+"/settings"), nil).status(t, 204), "/rest/atlassian-connect/1/addons/{addonKey}/properties/{propertyKey}", pp)
	check(call(t, srv.URL, "GET", props+"/settings", appJWT(t, in, "GET", props+"/settings"), nil).status(t, 404), "/rest/atlassian-connect/1/addons/{addonKey}/properties/{propertyKey}", pp)

	// Every user, through Basic and through an app bearer token, sees
	// responses of the same shape.
	for i, u := range users {
		if u.Closed {
			continue
		}
		for _, auth := range []string{basicAuth(u), bearerFor(t, srv.URL, in, u.AccountID, "READ ACT_AS_USER")} {
			r := call(t, srv.URL, "POST", "/rest/api/3/search/jql", auth, map[string]any{"jql": "created >= 2020-01-01 ORDER BY key", "fields": []string{"*all"}, "maxResults": 4})
			check(r.status(t, 200), "/rest/api/3/search/jql", nil)
			check(call(t, srv.URL, "GET", "/rest/api/3/myself", auth, nil).status(t, 200), "/rest/api/3/myself", nil)
			if i > 2 {
				break
			}
		}
	}
}

func TestRemovedSearchAnswersGone(t *testing.T) {
	s, srv := newTestSim(t, Options{Issues: 10, Seed: 1})
	r := call(t, srv.URL, "GET", "/rest/api/3/search?jql=project%3DX", basicAuth(s.Users()[0]), nil).status(t, 410)
	var e errorCollection
	r.decode(t, &e)
	if len(e.ErrorMessages) != 1 || !strings.Contains(e.ErrorMessages[0], "/rest/api/3/search/jql") {
		t.Errorf("410 body: %s", r.body)
	}
}

func TestUnknownRESTPathIsJiraShaped404(t *testing.T) {
	s, srv := newTestSim(t, Options{Issues: 10, Seed: 1})
	r := call(t, srv.URL, "GET", "/rest/api/3/nothing-here", basicAuth(s.Users()[0]), nil).status(t, 404)
	var e errorCollection
	r.decode(t, &e)
	if len(e.ErrorMessages) != 1 {
		t.Errorf("404 body: %s", r.body)
	}
}
