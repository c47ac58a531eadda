package jirasim

import (
	"bytes"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"testing"
)

type searchPage struct {
	Issues []struct {
		ID     string         `json:"id"`
		Key    string         `json:"key"`
		Fields map[string]any `json:"fields"`
	} `json:"issues"`
	NextPageToken string `json:"nextPageToken"`
	IsLast        bool   `json:"isLast"`
	Total         *int   `json:"total"`
}

// searchAll pages through search/jql and returns issue ids (and keys if asked).
func searchAll(t testing.TB, base, auth, jql string, fields []string, max int) (ids, keys []string, pages int) {
	t.Helper()
	token := ""
	for {
		body := map[string]any{"jql": jql, "maxResults": max}
		if fields != nil {
			body["fields"] = fields
		}
		if token != "" {
			body["nextPageToken"] = token
		}
		var p searchPage
		call(t, base, "POST", "/rest/api/3/search/jql", auth, body).status(t, 200).decode(t, &p)
		pages++
		if p.Total != nil {
			t.Fatal("search/jql must not report total")
		}
		for _, is := range p.Issues {
			ids = append(ids, is.ID)
			keys = append(keys, is.Key)
		}
		if p.IsLast != (p.NextPageToken == "") {
			t.Fatalf("isLast %v with token %q", p.IsLast, p.NextPageToken)
		}
		if p.IsLast {
			return ids, keys, pages
		}
		token = p.NextPageToken
	}
}

func TestSameSeedSameData(t *testing.T) {
	fetch := func(seed int64) []byte {
		s, srv := newTestSim(t, Options{Issues: 400, Projects: 4, Users: 9, Seed: seed})
		s.SetBaseURL("https://example.atlassian.net") // self links identical across servers
		var ids []string
		for i := 10001; i < 10001+100; i++ {
			ids = append(ids, fmt.Sprint(i*3%400+10001))
		}
		r := call(t, srv.URL, "POST", "/rest/api/3/issue/bulkfetch", basicAuth(s.Users()[0]), map[string]any{"issueIdsOrKeys": ids, "fields": []string{"*all"}}).status(t, 200)
		cl := call(t, srv.URL, "POST", "/rest/api/3/changelog/bulkfetch", basicAuth(s.Users()[0]), map[string]any{"issueIdsOrKeys": ids}).status(t, 200)
		users := fmt.Sprint(s.Users())
		return append(append(r.body, cl.body...), users...)
	}
	a, b, c := fetch(11), fetch(11), fetch(12)
	if !bytes.Equal(a, b) {
		t.Error("same seed produced different data")
	}
	if bytes.Equal(a, c) {
		t.Error("different seeds produced the same data")
	}
}

func TestSearchPagesToTheEndWithNextPageToken(t *testing.T) {
	s, srv := newTestSim(t, Options{Issues: 3000, Projects: 3, Users: 4, Seed: 5})
	admin := basicAuth(s.Users()[0])
	ids, _, pages := searchAll(t, srv.URL, admin, "created >= 2000-01-01", nil, 1000)
	if len(ids) != 3000 || pages != 3 {
		t.Fatalf("id paging: %d ids in %d pages", len(ids), pages)
	}
	if ids[0] != "10001" || ids[2999] != "13000" {
		t.Errorf("default order is by id: %s … %s", ids[0], ids[2999])
	}
	// Ids only: up to 5000 a page; with fields: at most 100.
	var p searchPage
	call(t, srv.URL, "GET", "/rest/api/3/search/jql?jql=created%3E%3D2000-01-01&maxResults=9000&fields=id,key", admin, nil).status(t, 200).decode(t, &p)
	if len(p.Issues) != 3000 || !p.IsLast || p.Issues[0].Key == "" {
		t.Errorf("id/key page: %d issues, isLast %v", len(p.Issues), p.IsLast)
	}
	call(t, srv.URL, "GET", "/rest/api/3/search/jql?jql=created%3E%3D2000-01-01&maxResults=9000", admin, nil).status(t, 200).decode(t, &p)
	if len(p.Issues) != 3000 {
		t.Errorf("default fields are id only, so 5000 a page: got %d", len(p.Issues))
	}
	call(t, srv.URL, "GET", "/rest/api/3/search/jql?jql=created%3E%3D2000-01-01&maxResults=500&fields=summary", admin, nil).status(t, 200).decode(t, &p)
	if len(p.Issues) != 100 || p.IsLast {
		t.Errorf("field pages are capped at 100: got %d", len(p.Issues))
	}
	call(t, srv.URL, "GET", "/rest/api/3/search/jql?jql=created%3E%3D2000-01-01&fields=summary", admin, nil).status(t, 200).decode(t, &p)
	if len(p.Issues) != 50 {
		t.Errorf("default page is 50: got %d", len(p.Issues))
	}
	// A sorted query pages in order, completely.
	k1 := s.ProjectKeys()[1]
	_, keys, _ := searchAll(t, srv.URL, admin, "project = "+k1+" ORDER BY updated DESC", []string{"updated", "key"}, 77)
	var count struct{ Count int }
	call(t, srv.URL, "POST", "/rest/api/3/search/approximate-count", admin, map[string]string{"jql": "project = " + k1}).status(t, 200).decode(t, &count)
	if len(keys) != count.Count || count.Count == 0 {
		t.Errorf("sorted paging returned %d of %d", len(keys), count.Count)
	}
	seen := map[string]bool{}
	for _, k := range keys {
		if seen[k] || !strings.HasPrefix(k, k1+"-") {
			t.Fatalf("duplicate or foreign key %s", k)
		}
		seen[k] = true
	}
	// Descending key order walks backwards.
	_, keys, _ = searchAll(t, srv.URL, admin, "project = "+k1+" ORDER BY key DESC", []string{"key"}, 500)
	if len(keys) != count.Count || keys[len(keys)-1] != k1+"-1" {
		t.Errorf("key DESC: %d keys ending %s", len(keys), keys[len(keys)-1])
	}
	// A token belongs to its query.
	call(t, srv.URL, "GET", "/rest/api/3/search/jql?jql=created%3E%3D2000-01-01&maxResults=10", admin, nil).status(t, 200).decode(t, &p)
	r := call(t, srv.URL, "GET", "/rest/api/3/search/jql?jql=project%3D"+k1+"&nextPageToken="+url.QueryEscape(p.NextPageToken), admin, nil).status(t, 400)
	if !strings.Contains(string(r.body), "next page token") {
		t.Errorf("foreign token: %s", r.body)
	}
	call(t, srv.URL, "GET", "/rest/api/3/search/jql?jql=project%3D"+k1+"&nextPageToken=garbage", admin, nil).status(t, 400)
}

func TestCreatedIssuesAreSearchable(t *testing.T) {
	s, srv := newTestSim(t, Options{Issues: 40, Projects: 2, Users: 3, Seed: 9})
	admin := basicAuth(s.Users()[0])
	k0 := s.ProjectKeys()[0]
	ref, err := s.CreateIssue(NewIssue{Project: k0, Summary: "canary-summary-91c2", Description: "canary-description-5d0e"})
	if err != nil {
		t.Fatal(err)
	}
	if ref.ID != "10041" || !strings.HasPrefix(ref.Key, k0+"-") {
		t.Errorf("ref %+v", ref)
	}
	_, keys, _ := searchAll(t, srv.URL, admin, "project = "+k0+" ORDER BY key ASC", []string{"key"}, 100)
	if keys[len(keys)-1] != ref.Key {
		t.Errorf("key order puts the new issue last in its project: %v", keys)
	}
	r := call(t, srv.URL, "GET", "/rest/api/3/issue/"+ref.Key, admin, nil).status(t, 200)
	if !bytes.Contains(r.body, []byte("canary-summary-91c2")) || !bytes.Contains(r.body, []byte("canary-description-5d0e")) {
		t.Errorf("issue body: %s", r.body)
	}
	r = call(t, srv.URL, "POST", "/rest/api/3/search/jql", admin, map[string]any{"jql": "key = " + ref.Key, "fields": []string{"summary"}}).status(t, 200)
	if !bytes.Contains(r.body, []byte("canary-summary-91c2")) {
		t.Errorf("search by key: %s", r.body)
	}
}

// TestUserNeverSeesUnbrowsableProject checks every read path for every user.
func TestUserNeverSeesUnbrowsableProject(t *testing.T) {
	s, srv := newTestSim(t, Options{Issues: 600, Projects: 4, Users: 8, Seed: 21})
	app := newTestApp(t, srv.URL, "perm-app")
	in := app.install(s)
	users := s.Users()
	if len(users[1].Projects) != 1 {
		t.Fatalf("user 1 should browse exactly one project: %v", users[1].Projects)
	}
	if len(users[0].Projects) != 4 || !users[0].Admin {
		t.Fatalf("admin browses all: %v", users[0].Projects)
	}
	// Issues of every project, for probing.
	var probe []string
	for _, k := range s.ProjectKeys() {
		probe = append(probe, k+"-1", k+"-2")
	}
	for _, u := range users {
		if u.Closed {
			continue
		}
		for _, auth := range []string{basicAuth(u), bearerFor(t, srv.URL, in, u.AccountID, "READ ACT_AS_USER")} {
			name := u.DisplayName + " " + strings.Fields(auth)[0]
			_, keys, _ := searchAll(t, srv.URL, auth, "created >= 2000-01-01 ORDER BY updated", []string{"key"}, 100)
			allowed := map[string]bool{}
			for _, p := range u.Projects {
				allowed[p] = true
			}
			for _, k := range keys {
				if !allowed[k[:strings.IndexByte(k, '-')]] {
					t.Fatalf("%s: search returned %s from a project they cannot browse", name, k)
				}
			}
			var b struct{ Issues []issueJSON }
			call(t, srv.URL, "POST", "/rest/api/3/issue/bulkfetch", auth, map[string]any{"issueIdsOrKeys": probe, "fields": []string{"key"}}).status(t, 200).decode(t, &b)
			if len(b.Issues) != 2*len(u.Projects) {
				t.Errorf("%s: bulkfetch returned %d issues, want %d", name, len(b.Issues), 2*len(u.Projects))
			}
			for _, is := range b.Issues {
				if !allowed[is.Key[:strings.IndexByte(is.Key, '-')]] {
					t.Fatalf("%s: bulkfetch leaked %s", name, is.Key)
				}
			}
			var cl struct {
				IssueChangeLogs []struct{ IssueID string } `json:"issueChangeLogs"`
			}
			call(t, srv.URL, "POST", "/rest/api/3/changelog/bulkfetch", auth, map[string]any{"issueIdsOrKeys": probe}).status(t, 200).decode(t, &cl)
			for _, l := range cl.IssueChangeLogs {
				r := call(t, srv.URL, "GET", "/rest/api/3/issue/"+l.IssueID+"?fields=key", basicAuth(users[0]), nil)
				var is issueJSON
				r.decode(t, &is)
				if !allowed[is.Key[:strings.IndexByte(is.Key, '-')]] {
					t.Fatalf("%s: changelog leaked %s", name, is.Key)
				}
			}
			for _, k := range s.ProjectKeys() {
				get := call(t, srv.URL, "GET", "/rest/api/3/issue/"+k+"-1", auth, nil)
				q := call(t, srv.URL, "POST", "/rest/api/3/search/jql", auth, map[string]any{"jql": "project = " + k})
				if allowed[k] {
					get.status(t, 200)
					q.status(t, 200)
				} else {
					get.status(t, 404)
					q.status(t, 400)
				}
			}
			var ps struct{ Values []struct{ Key string } }
			call(t, srv.URL, "GET", "/rest/api/3/project/search", auth, nil).status(t, 200).decode(t, &ps)
			var got []string
			for _, p := range ps.Values {
				got = append(got, p.Key)
			}
			if !slices.Equal(got, u.Projects) {
				t.Errorf("%s: project/search %v, want %v", name, got, u.Projects)
			}
		}
	}
	// The app's own JWT sees everything.
	path := "/rest/api/3/search/approximate-count"
	var count struct{ Count int }
	call(t, srv.URL, "POST", path, appJWT(t, in, "POST", path), map[string]string{"jql": "created >= 2000-01-01"}).status(t, 200).decode(t, &count)
	if count.Count != 600 {
		t.Errorf("app sees %d issues, want 600", count.Count)
	}
}

func TestEmailOnlyWhenProfileAllows(t *testing.T) {
	s, srv := newTestSim(t, Options{Issues: 10, Users: 12, Seed: 3})
	admin := basicAuth(s.Users()[0])
	var hidden, shown int
	for _, u := range s.Users() {
		var j userJSON
		call(t, srv.URL, "GET", "/rest/api/3/user?accountId="+url.QueryEscape(u.AccountID), admin, nil).status(t, 200).decode(t, &j)
		switch {
		case u.Closed:
			if j.Active || j.EmailAddress != "" || j.DisplayName != "Former user" {
				t.Errorf("closed account shown as %+v", j)
			}
		case u.EmailVisible:
			shown++
			if j.EmailAddress != u.Email {
				t.Errorf("%s: email hidden though visible", u.DisplayName)
			}
		default:
			hidden++
			if j.EmailAddress != "" {
				t.Errorf("%s: email shown though hidden", u.DisplayName)
			}
		}
	}
	if hidden == 0 || shown == 0 {
		t.Errorf("want both visible and hidden emails: %d shown, %d hidden", shown, hidden)
	}
	var groups []groupName
	call(t, srv.URL, "GET", "/rest/api/3/user/groups?accountId="+url.QueryEscape(s.Users()[0].AccountID), admin, nil).status(t, 200).decode(t, &groups)
	if len(groups) == 0 || groups[0].Name != "jira-administrators" {
		t.Errorf("admin groups: %+v", groups)
	}
	call(t, srv.URL, "GET", "/rest/api/3/user/groups?accountId="+url.QueryEscape(s.Users()[1].AccountID), admin, nil).status(t, 200).decode(t, &groups)
	for _, g := range groups {
		if g.Name == "jira-administrators" {
			t.Error("non-admin in jira-administrators")
		}
	}
}
