package jirasim

import (
	"net/url"
	"slices"
	"strings"
	"testing"
)

// myPermissions asks mypermissions as auth and returns havePermission per key.
func myPermissions(t *testing.T, base, auth, query string) map[string]bool {
	t.Helper()
	var out struct {
		Permissions map[string]struct {
			Key            string `json:"key"`
			HavePermission bool   `json:"havePermission"`
		} `json:"permissions"`
	}
	call(t, base, "GET", "/rest/api/3/mypermissions?"+query, auth, nil).status(t, 200).decode(t, &out)
	have := map[string]bool{}
	for k, p := range out.Permissions {
		if p.Key != k {
			t.Errorf("permission %s carries key %q", k, p.Key)
		}
		have[k] = p.HavePermission
	}
	return have
}

// TestMyPermissionsAnswersFromGlobalPermissionsNotGroupNames: ADMINISTER is
// a global permission of its own. Giving it to a user outside every
// administrators' group makes them an administrator at once; putting a user
// in jira-administrators without it does not. The app acting as the user
// sees the same answer as the user.
func TestMyPermissionsAnswersFromGlobalPermissionsNotGroupNames(t *testing.T) {
	s, srv := newTestSim(t, Options{Issues: 40, Projects: 3, Users: 6, Seed: 5})
	app := newTestApp(t, srv.URL, "ferry-test")
	in := app.install(s)
	users := s.Users()
	adminQ := "permissions=ADMINISTER"
	asUser := func(i int) []string {
		return []string{basicAuth(users[i]), bearerFor(t, srv.URL, in, users[i].AccountID, "READ ACT_AS_USER")}
	}
	for i, u := range users {
		if u.Closed {
			continue
		}
		for _, auth := range asUser(i) {
			if got := myPermissions(t, srv.URL, auth, adminQ)["ADMINISTER"]; got != u.Admin {
				t.Errorf("user %d (admin %v): ADMINISTER = %v", i, u.Admin, got)
			}
		}
	}

	// User 2 gets ADMINISTER without any administrators' group; user 3 goes
	// into jira-administrators and site-admins without it.
	resp := call(t, srv.URL, "POST", "/_sim/users/access", "", map[string]any{"account_id": users[2].AccountID, "global_permissions": []string{"ADMINISTER", "USER_PICKER"}}).status(t, 200)
	if !strings.Contains(string(resp.body), `"ADMINISTER"`) {
		t.Fatalf("control answer: %s", resp.body)
	}
	if err := s.SetUserAccess(users[3].AccountID, []string{"jira-administrators", "site-admins", "jira-users"}, nil); err != nil {
		t.Fatal(err)
	}
	for _, auth := range asUser(2) {
		if !myPermissions(t, srv.URL, auth, adminQ)["ADMINISTER"] {
			t.Error("user 2 was given ADMINISTER but mypermissions says no")
		}
	}
	for _, auth := range asUser(3) {
		if myPermissions(t, srv.URL, auth, adminQ)["ADMINISTER"] {
			t.Error("user 3 is in jira-administrators without ADMINISTER, but mypermissions says yes")
		}
	}
	var groups []groupName
	call(t, srv.URL, "GET", "/rest/api/3/user/groups?accountId="+url.QueryEscape(users[3].AccountID), basicAuth(users[0]), nil).status(t, 200).decode(t, &groups)
	if len(groups) != 3 || !slices.ContainsFunc(groups, func(g groupName) bool { return g.Name == "site-admins" }) {
		t.Errorf("user 3's groups after the change: %+v", groups)
	}
	// A new group exists for the group picker once someone is in it.
	s.SetUserAccess(users[4].AccountID, []string{"BI-Analysts"}, nil)
	var found struct {
		Groups []struct{ Name string } `json:"groups"`
	}
	call(t, srv.URL, "GET", "/rest/api/3/groups/picker?query=bi-", basicAuth(users[0]), nil).status(t, 200).decode(t, &found)
	if len(found.Groups) != 1 || found.Groups[0].Name != "BI-Analysts" {
		t.Errorf("groups picker for bi-: %+v", found.Groups)
	}
	if got := s.Users()[4].Groups; !slices.Equal(got, []string{"BI-Analysts"}) {
		t.Errorf("Users()[4].Groups = %v", got)
	}

	// Project permissions follow browse rights: user 1 browses only the
	// first project.
	keys := s.ProjectKeys()
	if !myPermissions(t, srv.URL, basicAuth(users[1]), "projectKey="+keys[0]+"&permissions=BROWSE_PROJECTS")["BROWSE_PROJECTS"] {
		t.Error("user 1 cannot browse the first project by mypermissions")
	}
	call(t, srv.URL, "GET", "/rest/api/3/mypermissions?projectKey="+keys[1]+"&permissions=BROWSE_PROJECTS", basicAuth(users[1]), nil).status(t, 404)

	// Bad input changes nothing.
	for _, body := range []map[string]any{
		{"account_id": "nobody", "global_permissions": []string{"ADMINISTER"}},
		{"account_id": users[1].AccountID, "global_permissions": []string{"BROWSE_PROJECTS"}}, // a project permission
		{"account_id": users[1].AccountID, "groups": []string{" padded "}},
	} {
		call(t, srv.URL, "POST", "/_sim/users/access", "", body).status(t, 400)
	}
	if u := s.Users()[1]; slices.Contains(u.GlobalPermissions, "ADMINISTER") || slices.Contains(u.Groups, " padded ") {
		t.Errorf("refused changes applied: %+v", u)
	}
}

func TestUserSearchFindsActiveUsersByNameOrEmailPrefix(t *testing.T) {
	s, srv := newTestSim(t, Options{Issues: 10, Users: 8, Seed: 5})
	users := s.Users()
	var got []userJSON
	call(t, srv.URL, "GET", "/rest/api/3/user/search?query=ADA", basicAuth(users[0]), nil).status(t, 200).decode(t, &got)
	var want []string
	for _, u := range users {
		if !u.Closed && (strings.Contains(strings.ToLower(u.DisplayName), "ada") || strings.HasPrefix(u.Email, "ada")) {
			want = append(want, u.AccountID)
		}
	}
	var ids []string
	for _, u := range got {
		ids = append(ids, u.AccountID)
	}
	if len(want) == 0 || !slices.Equal(ids, want) {
		t.Errorf("search ada = %v, want %v", ids, want)
	}
	call(t, srv.URL, "GET", "/rest/api/3/user/search?accountId="+url.QueryEscape(users[1].AccountID), basicAuth(users[0]), nil).status(t, 200).decode(t, &got)
	if len(got) != 1 || got[0].AccountID != users[1].AccountID {
		t.Errorf("search by accountId: %+v", got)
	}
}
