package cli

import (
	"bytes"
	"cmp"
	"context"
	"encoding/base64"
	"encoding/csv"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"ferry/internal/export"
	"ferry/internal/jirasim"
)

// simSearch asks the simulated Jira itself, as user (HTTP Basic), which
// issues jql matches, in order: the truth a restricted feed is held to,
// computed without Ferry. A refused query returns ok false.
func simSearch(t testing.TB, base string, user jirasim.User, jql string) (keys []string, ok bool) {
	t.Helper()
	keys, _, ok = simSearchIDs(t, base, user, jql)
	return keys, ok
}

// simSearchIDs is simSearch with each key's issue id.
func simSearchIDs(t testing.TB, base string, user jirasim.User, jql string) (keys []string, ids map[string]string, ok bool) {
	t.Helper()
	ids = map[string]string{}
	auth := "Basic " + base64.StdEncoding.EncodeToString([]byte(user.Email+":"+user.APIToken))
	token := ""
	for {
		body := map[string]any{"jql": jql, "fields": []string{"key"}, "maxResults": 5000}
		if token != "" {
			body["nextPageToken"] = token
		}
		b, _ := json.Marshal(body)
		req, _ := http.NewRequest("POST", base+"/rest/api/3/search/jql", bytes.NewReader(b))
		req.Header.Set("Authorization", auth)
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var page struct {
			Issues []struct {
				ID  string `json:"id"`
				Key string `json:"key"`
			} `json:"issues"`
			NextPageToken string `json:"nextPageToken"`
		}
		err = json.NewDecoder(resp.Body).Decode(&page)
		resp.Body.Close()
		if resp.StatusCode == 400 {
			return nil, nil, false
		}
		if resp.StatusCode != 200 || err != nil {
			t.Fatalf("sim search %q: %d %v", jql, resp.StatusCode, err)
		}
		for _, is := range page.Issues {
			keys = append(keys, is.Key)
			ids[is.Key] = is.ID
		}
		if token = page.NextPageToken; token == "" {
			return keys, ids, true
		}
	}
}

func inProjects(keys []string, projects ...string) []string {
	out := []string{}
	for _, k := range keys {
		for _, p := range projects {
			if strings.HasPrefix(k, p+"-") {
				out = append(out, k)
			}
		}
	}
	return out
}

// restrictedKeys reads every Key of a source's Issues feed, and of its CSV.
func restrictedKeys(t *testing.T, d *demo, src, token, query string) (odata, csvKeys []string, code int, body []byte) {
	t.Helper()
	u := d.info.AppURL + "/odata/" + src + "/Issues?$select=Key" + query
	code, _, body = fetch(t, u, token)
	if code != 200 {
		return nil, nil, code, body
	}
	rows, _ := allRows(t, u, token)
	odata = []string{}
	for _, r := range rows {
		odata = append(odata, r["Key"].(string))
	}
	c, _, b := fetch(t, d.info.AppURL+"/export/"+src+"/issues.csv", token)
	if c != 200 {
		t.Fatalf("CSV of %s = %d: %s", src, c, b)
	}
	recs, err := csv.NewReader(bytes.NewReader(b)).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	col := slices.Index(recs[0], "Key")
	csvKeys = []string{}
	for _, r := range recs[1:] {
		csvKeys = append(csvKeys, r[col])
	}
	return odata, csvKeys, 200, body
}

// TestProjectRestrictionHoldsWhateverTheJQLSays: with export restricted to
// one project, every data source — whatever its JQL names, ORs, orders or
// quotes — returns exactly its issues of that project (the simulated
// Jira's own answer for the source's JQL, filtered by project key), on
// OData (with and without a $filter) and CSV. JQL that Ferry cannot be sure
// to restrict is refused with a 400 naming the JQL, never run unrestricted.
func TestProjectRestrictionHoldsWhateverTheJQLSays(t *testing.T) {
	onPlatforms(t, testProjectRestrictionHoldsWhateverTheJQLSays)
}

func testProjectRestrictionHoldsWhateverTheJQLSays(t *testing.T, platform string) {
	ctx := context.Background()
	d := startSiteOn(t, platform, nil, 80)
	users := d.sim.Users()
	admin := users[0]
	keys := d.sim.ProjectKeys()
	a, b := keys[0], keys[1]
	props := siteProperties(t, d)
	page := pageFor(t, d, admin.AccountID)
	setProjects := func(p ...string) {
		t.Helper()
		mustAPI(t, d, page, "PUT", "/app-api/settings", map[string]any{"tokenMaxDays": 365,
			"creators":  map[string]any{"everyone": false, "groups": []string{}, "users": []string{}},
			"exporters": map[string]any{"everyone": true, "groups": []string{}, "users": []string{}},
			"projects":  p}, nil)
	}
	source := func(jql string) string {
		ds, err := d.app.appAPI.Sources.Create(ctx, props, d.tenant, export.Input{Name: "scope", JQL: jql, Fields: []string{"summary", "status"},
			Tables: []string{export.TableIssues, export.TableChangelog}, Visibility: export.VisibilityEveryone}, admin.AccountID, time.Now().UTC())
		if err != nil {
			t.Fatal(err)
		}
		return ds.ID
	}
	setProjects(a)
	sorted := func(s []string) []string { s = slices.Clone(s); slices.Sort(s); return s }
	compared := 0
	for _, c := range []struct {
		jql     string
		ordered bool
		truth   string // what to ask the simulated Jira when not jql itself
	}{
		{"project = " + b, false, ""},
		{"project = " + a + " OR project = " + b, false, ""},
		{"project in (" + a + ", " + b + ") ORDER BY key DESC", true, ""},
		{"project = " + b + " OR project = " + a + " ORDER BY created DESC, key ASC", true, ""},
		{`summary ~ "x\" ORDER BY " OR project = ` + b, false, ""},
		{`project = ` + b + ` OR summary ~ 'order by ) OR ('`, false, ""},
		{"NOT project = " + a, false, ""},
		{"project != " + a, false, ""},
		{"key in (" + b + "-1, " + b + "-2, " + a + "-1, " + a + "-3)", false, ""},
		{`(project = ` + b + `) OR (project = "` + a + `")`, false, ""},
		// Jira's search refuses an unbounded query; restricted, it is bounded.
		{"ORDER BY key DESC", true, "project = " + a + " ORDER BY key DESC"},
	} {
		truth := cmp.Or(c.truth, c.jql)
		want, idOf, ok := simSearchIDs(t, d.sim.BaseURL(), admin, truth)
		if !ok {
			t.Fatalf("the simulated Jira refuses %q", c.jql)
		}
		want = inProjects(want, a)
		compared += len(want)
		src := source(c.jql)
		got, gotCSV, code, body := restrictedKeys(t, d, src, d.info.Token, "")
		if code != 200 {
			t.Errorf("%q: %d %s", c.jql, code, body)
			continue
		}
		if !c.ordered {
			got, gotCSV, want = sorted(got), sorted(gotCSV), sorted(want)
		}
		if !slices.Equal(got, want) || !slices.Equal(gotCSV, want) {
			t.Errorf("%q:\n OData %v\n CSV   %v\n want  %v", c.jql, got, gotCSV, want)
		}
		// A $filter folds into the restricted JQL, never around it.
		filtered, _, code, body := restrictedKeys(t, d, src, d.info.Token, "&$filter="+strings.ReplaceAll("Status eq 'Done' or Status eq 'To Do'", " ", "%20"))
		if code != 200 || len(inProjects(filtered, a)) != len(filtered) {
			t.Errorf("%q with a $filter: %d %v %s", c.jql, code, filtered, body)
		}
		// Changelog rows belong to those issues only.
		rows, _ := allRows(t, d.info.AppURL+"/odata/"+src+"/Changelog", d.info.Token)
		allowed := map[string]bool{}
		for _, k := range want {
			allowed[idOf[k]] = true
		}
		for _, r := range rows {
			if id := strconv.FormatFloat(r["IssueId"].(float64), 'f', -1, 64); !allowed[id] {
				t.Errorf("%q: a changelog row of issue %s, not one of the project's", c.jql, id)
				break
			}
		}
	}

	if compared < 40 {
		t.Fatalf("only %d issues of project %s compared: the cases test too little", compared, a)
	}

	// JQL the lexer cannot be sure of is refused, and so counted.
	before := export.FeedRefusals("project_scope")
	for _, jql := range []string{
		`summary ~ fix\ login OR project = ` + b,
		"project = " + a + ") OR (project = " + b,
		"project = " + b + " ORDER BY created) OR (project = " + a,
	} {
		src := source(jql)
		code, _, body := fetch(t, d.info.AppURL+"/odata/"+src+"/Issues", d.info.Token)
		var e struct {
			Error struct{ Code, Message, Target string } `json:"error"`
		}
		json.Unmarshal(body, &e)
		if code != 400 || e.Error.Target != "jql" || !strings.Contains(e.Error.Message, "only from some projects") {
			t.Errorf("%q: %d %s", jql, code, body)
		}
	}
	if n := export.FeedRefusals("project_scope") - before; n != 3 {
		t.Errorf("project_scope refusals counted %v, want 3", n)
	}

	// Two projects allowed, a user who browses only the first: that one's
	// issues, no error (a project the user cannot see is left out, not
	// refused by Jira).
	restricted := users[1] // browses only the first project
	tok, _, err := d.app.appAPI.Tokens.Create(ctx, d.tenant, restricted.AccountID, "scope", 5, 365)
	if err != nil {
		t.Fatal(err)
	}
	setProjects(a, b)
	src := source("project in (" + strings.Join(restricted.Projects, ",") + ") OR project = " + a)
	want, _ := simSearch(t, d.sim.BaseURL(), restricted, "project in ("+strings.Join(restricted.Projects, ",")+") OR project = "+a)
	got, _, code, body := restrictedKeys(t, d, src, tok, "")
	if code != 200 || !slices.Equal(sorted(got), sorted(inProjects(want, a, b))) {
		t.Errorf("two projects, user browsing one: %d %v, want %v %s", code, got, inProjects(want, a, b), body)
	}
	setProjects(b)
	if code, _, body := fetch(t, d.info.AppURL+"/odata/"+src+"/Issues", tok); code != 403 || !strings.Contains(string(body), b) {
		t.Errorf("only a project the user cannot browse: %d %s", code, body)
	}
	// Lifting the restriction brings every project back at once.
	setProjects()
	all, _ := simSearch(t, d.sim.BaseURL(), admin, "project = "+b)
	got, _, _, _ = restrictedKeys(t, d, source("project = "+b), d.info.Token, "")
	if len(all) == 0 || !slices.Equal(sorted(got), sorted(all)) {
		t.Errorf("without a restriction: %d rows, want %d", len(got), len(all))
	}
	reachedThroughForge(t, d, "set", "get")
	feedsReadThroughForge(t, d, admin.AccountID, restricted.AccountID)
}

// FuzzProjectRestrictionAgainstTheSimulator: for any JQL, the restricted
// query Ferry would run either is refused (by Ferry or by the simulated
// Jira's own, independent JQL parser) or returns issues of the allowed
// project only, and none the unrestricted query would not.
func FuzzProjectRestrictionAgainstTheSimulator(f *testing.F) {
	sim := jirasim.New(jirasim.Options{Issues: 60, Projects: 3, Users: 3, Seed: 7})
	srv := httptest.NewServer(sim)
	f.Cleanup(srv.Close)
	sim.SetBaseURL(srv.URL)
	admin := sim.Users()[0]
	keys := sim.ProjectKeys()
	a := keys[0]
	aID := "10000" // the first project's id in the simulated site
	for _, s := range []string{
		"project = " + keys[1], "project = " + a + " OR project = " + keys[1] + " ORDER BY key DESC",
		`summary ~ "x\" ORDER BY " OR project = ` + keys[1], `summary ~ 'a\'b' OR project = ` + keys[2],
		"project = " + a + ") OR (project = " + keys[1], "NOT project = " + a, "ORDER BY created",
		`summary ~ "order by" OR project in (` + keys[1] + `, ` + keys[2] + `)`, "key = " + keys[1] + "-1",
		"(project = " + keys[1] + " ORDER BY key)", "status = Done OR project != " + a,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, jql string) {
		q, err := export.RestrictJQL(jql, []string{aID})
		if err != nil {
			return
		}
		got, ok := simSearch(t, srv.URL, admin, q)
		if !ok {
			return
		}
		if bad := slices.DeleteFunc(slices.Clone(got), func(k string) bool { return strings.HasPrefix(k, a+"-") }); len(bad) > 0 {
			t.Fatalf("JQL %q restricted to %q returns issues of other projects: %v", jql, q, bad)
		}
		if all, ok := simSearch(t, srv.URL, admin, jql); ok {
			for _, k := range got {
				if !slices.Contains(all, k) {
					t.Fatalf("JQL %q restricted to %q returns %s, which the JQL alone does not", jql, q, k)
				}
			}
		}
	})
}
