package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"ferry/internal/export"
	"ferry/internal/jirasim"
)

// The BI tables beyond Issues (issue 16), end to end against the simulator
// as two users with different permissions. The truth suite (truth_test.go)
// checks every table's OData options and CSV against its full walk; these
// tests check the walks themselves against truths computed elsewhere: the
// simulated Jira's own REST API read as a second client, and each user's
// Issues feed.

// simGet reads the simulated Jira's REST API directly, as a user (Basic
// with the user's email and API token) — the second client.
func simGet(t *testing.T, d *demo, user int, path string, out any) {
	t.Helper()
	u := d.sim.Users()[user]
	req, _ := http.NewRequest("GET", d.info.SimURL+path, nil)
	req.SetBasicAuth(u.Email, u.APIToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("GET %s as user %d: %d", path, user, resp.StatusCode)
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		t.Fatal(err)
	}
}

// tableDemo starts a demo with a data source holding every table, and a
// token for user 2 (who browses some projects only).
func tableDemo(t *testing.T, issues int) (d *demo, feed string, tokens []string) {
	t.Helper()
	d, _, logs := startTestDemo(t, issues)
	t.Cleanup(func() {
		if t.Failed() {
			t.Log(logs.String())
		}
	})
	src := csvSource(t, d)
	tok2, _, err := d.app.appAPI.Tokens.Create(context.Background(), d.tenant, d.sim.Users()[2].AccountID, "tables", 5, 365)
	if err != nil {
		t.Fatal(err)
	}
	return d, d.info.AppURL + "/odata/" + src + "/", []string{d.info.Token, tok2}
}

func idsOf(rows []map[string]any, prop string) map[string]bool {
	out := map[string]bool{}
	for _, r := range rows {
		out[fmt.Sprint(r[prop])] = true
	}
	return out
}

// Each user sees exactly the rows of the issues they may browse: user 2's
// rows of every per-issue table are the admin's rows of user 2's issues,
// value for value, and the admin has rows user 2 does not.
func TestTablesShowEachUserOnlyTheirIssuesRows(t *testing.T) {
	d, feed, tokens := tableDemo(t, 120)
	issues := [2][]map[string]any{decodedWalk(t, feed+"Issues", tokens[0]), decodedWalk(t, feed+"Issues", tokens[1])}
	mine := idsOf(issues[1], "Id")
	if len(mine) == 0 || len(mine) >= len(issues[0]) {
		t.Fatalf("user 2 sees %d of %d issues; the test would prove nothing", len(mine), len(issues[0]))
	}
	for _, set := range []string{"Changelog", "Worklogs", "Comments", "IssueLinks", "StatusHistory"} {
		admin, user := decodedWalk(t, feed+set, tokens[0]), decodedWalk(t, feed+set, tokens[1])
		var want []map[string]any
		for _, r := range admin {
			if mine[fmt.Sprint(r["IssueId"])] {
				want = append(want, r)
			}
		}
		if len(want) == 0 || len(want) == len(admin) {
			t.Fatalf("%s: %d of the admin's %d rows are of user 2's issues; the test would prove nothing", set, len(want), len(admin))
		}
		if set == "IssueLinks" {
			// A link shows on an issue only when its other end is visible too.
			want = where(want, func(r map[string]any) bool { return mine[fmt.Sprint(r["LinkedIssueId"])] })
		}
		g, _ := json.Marshal(user)
		w, _ := json.Marshal(want)
		if string(g) != string(w) {
			t.Errorf("%s: user 2 got %d rows, the admin's rows of user 2's issues are %d (first differing at %d)",
				set, len(user), len(want), firstDiff(keysOf(user, "Id"), keysOf(want, "Id")))
		}
	}
	// Every table serves its rows by key, and only to whom may see them.
	sets := readMetadata(t, feed, tokens[0])
	for _, name := range export.TableNames()[1:] {
		rows := decodedWalk(t, feed+name, tokens[0])
		key := sets[name].Key
		r := rows[len(rows)/2]
		lit := fmt.Sprint(r[key])
		if _, isNum := r[key].(json.Number); !isNum {
			lit = "'" + strings.ReplaceAll(lit, "'", "''") + "'"
		}
		code, _, body := fetch(t, feed+name+"("+url.PathEscape(lit)+")", tokens[0])
		var got map[string]any
		dec := json.NewDecoder(bytes.NewReader(body))
		dec.UseNumber()
		dec.Decode(&got)
		delete(got, "@odata.context")
		g, _ := json.Marshal(got)
		w, _ := json.Marshal(r)
		if code != 200 || string(g) != string(w) {
			t.Errorf("%s(%s) = %d %s, the walk's row is %s", name, lit, code, g, w)
		}
		if name == "Users" {
			continue // every user sees every user
		}
		visible := false
		for _, r2 := range decodedWalk(t, feed+name, tokens[1]) {
			if fmt.Sprint(r2[key]) == fmt.Sprint(r[key]) {
				visible = true
			}
		}
		if code, _, _ := fetch(t, feed+name+"("+url.PathEscape(lit)+")", tokens[1]); (code == 200) != visible {
			t.Errorf("%s(%s) as user 2 = %d; in user 2's walk: %v", name, lit, code, visible)
		}
	}
	// Projects: exactly the ones each user may browse, as the simulator
	// grants them.
	for u, tok := range tokens {
		rows := decodedWalk(t, feed+"Projects", tok)
		got := slices.Sorted(func(yield func(string) bool) {
			for _, r := range rows {
				if !yield(r["Key"].(string)) {
					return
				}
			}
		})
		want := slices.Clone(d.sim.Users()[[]int{0, 2}[u]].Projects)
		sort.Strings(want)
		if !slices.Equal(got, want) {
			t.Errorf("Projects as user %d: %v, the user browses %v", u, got, want)
		}
	}
}

// Worklogs and Comments equal what the simulated Jira lists per issue
// (issue/{id}/worklog and /comment, read directly as the admin): every
// entry, including those of issues with more than Jira embeds in the
// issue's field, with the same values.
func TestWorklogsAndCommentsEqualJirasOwnLists(t *testing.T) {
	d, feed, tokens := tableDemo(t, 120)
	issues := decodedWalk(t, feed+"Issues", tokens[0])
	worklogs, comments := decodedWalk(t, feed+"Worklogs", tokens[0]), decodedWalk(t, feed+"Comments", tokens[0])
	byIssue := func(rows []map[string]any) map[string][]map[string]any {
		out := map[string][]map[string]any{}
		for _, r := range rows {
			k := fmt.Sprint(r["IssueId"])
			out[k] = append(out[k], r)
		}
		return out
	}
	wl, cm := byIssue(worklogs), byIssue(comments)
	long := 0
	for _, is := range issues {
		id := fmt.Sprint(is["Id"])
		var wp struct {
			Total    int `json:"total"`
			Worklogs []struct {
				ID               string `json:"id"`
				Started          string `json:"started"`
				TimeSpentSeconds int64  `json:"timeSpentSeconds"`
				Author           struct {
					DisplayName string `json:"displayName"`
				} `json:"author"`
			} `json:"worklogs"`
		}
		simGet(t, d, 0, "/rest/api/3/issue/"+id+"/worklog?maxResults=5000", &wp)
		if wp.Total > 20 {
			long++
		}
		got := wl[id]
		if len(got) != len(wp.Worklogs) || len(wp.Worklogs) != wp.Total {
			t.Fatalf("issue %s: %d worklog rows, Jira lists %d of %d", id, len(got), len(wp.Worklogs), wp.Total)
		}
		for k, w := range wp.Worklogs {
			r := got[k]
			started, _ := export.ParseJiraTime(w.Started)
			rs, _ := time.Parse(time.RFC3339Nano, fmt.Sprint(r["Started"]))
			if fmt.Sprint(r["Id"]) != w.ID || fmt.Sprint(r["TimeSpentSeconds"]) != strconv.FormatInt(w.TimeSpentSeconds, 10) ||
				r["Author"] != w.Author.DisplayName || !rs.Equal(started) {
				t.Fatalf("issue %s worklog %s: row %v, Jira %+v", id, w.ID, r, w)
			}
		}
		var cp struct {
			Total    int `json:"total"`
			Comments []struct {
				ID      string `json:"id"`
				Created string `json:"created"`
			} `json:"comments"`
		}
		simGet(t, d, 0, "/rest/api/3/issue/"+id+"/comment?maxResults=100&orderBy=created", &cp)
		if len(cm[id]) != cp.Total {
			t.Fatalf("issue %s: %d comment rows, Jira has %d", id, len(cm[id]), cp.Total)
		}
		for k, c := range cp.Comments {
			if fmt.Sprint(cm[id][k]["Id"]) != c.ID {
				t.Fatalf("issue %s: comment row %d is %v, Jira's is %s", id, k, cm[id][k]["Id"], c.ID)
			}
		}
	}
	if long == 0 || len(worklogs) == 0 || len(comments) == 0 {
		t.Fatalf("%d worklogs, %d comments, %d issues with more worklogs than Jira embeds: the test would prove little", len(worklogs), len(comments), long)
	}
}

// No table carries an email address: not the Users table (which has no
// such column), not any other, in OData or CSV — though the simulated
// users do have one in Jira's answers.
func TestNoTableCarriesAnEmailAddress(t *testing.T) {
	d, feed, tokens := tableDemo(t, 60)
	src := strings.TrimSuffix(strings.TrimPrefix(feed, d.info.AppURL+"/odata/"), "/")
	// The truth: users/search read directly, as the admin (the second
	// client), emails and all.
	var jiraUsers []map[string]any
	for start := 0; ; start += 50 {
		var page []map[string]any
		simGet(t, d, 0, "/rest/api/3/users/search?maxResults=50&startAt="+strconv.Itoa(start), &page)
		jiraUsers = append(jiraUsers, page...)
		if len(page) < 50 {
			break
		}
	}
	users := decodedWalk(t, feed+"Users", tokens[0])
	if len(users) != len(jiraUsers) {
		t.Fatalf("Users: %d rows, Jira lists %d users", len(users), len(jiraUsers))
	}
	var emails []string
	for i, u := range jiraUsers {
		r := users[i]
		if r["AccountId"] != u["accountId"] || r["DisplayName"] != u["displayName"] || r["Active"] != u["active"] || r["AccountType"] != u["accountType"] {
			t.Errorf("Users row %d = %v, Jira's user %v", i, r, u)
		}
		if e, _ := u["emailAddress"].(string); e != "" {
			emails = append(emails, e)
		}
	}
	if len(emails) == 0 {
		t.Fatal("Jira's answer carries no email address; the test would prove nothing")
	}
	var bodies []string
	for _, name := range export.TableNames() {
		_, _, b := fetch(t, feed+name, tokens[0])
		bodies = append(bodies, string(b))
		_, _, b = fetch(t, d.info.AppURL+"/export/"+src+"/"+strings.ToLower(name)+".csv", tokens[0])
		bodies = append(bodies, string(b))
	}
	_, _, meta := fetch(t, feed+"$metadata", tokens[0])
	if strings.Contains(strings.ToLower(string(meta)), "email") {
		t.Error("$metadata declares an email column")
	}
	for _, u := range d.sim.Users() {
		emails = append(emails, u.Email)
	}
	for _, e := range emails {
		for i, b := range bodies {
			if strings.Contains(strings.ToLower(b), strings.ToLower(e)) {
				t.Fatalf("%s (body %d) carries an email address", export.TableNames()[i/2], i)
			}
		}
	}
}

// Incremental refresh: a filter on a date inside an issue (Worklogs and
// Comments Updated or Created, StatusHistory Entered) narrows Jira's search
// to the issues updated since, so only the changed window is read: the
// points spent (counted by the simulator) follow the changed issues, and
// the rows are exactly the full walk's rows that match.
//
// The everyday case among them: a comment or a worklog added today to an
// issue untouched for years. Jira updates the issue when it is added, so
// the narrowed search still finds it — the filtered walk must have it.
func TestIncrementalRefreshReadsOnlyTheChangedWindow(t *testing.T) {
	d, feed, tokens := tableDemo(t, 400)
	issues := decodedWalk(t, feed+"Issues", tokens[0])
	oldest := issues[0]
	for _, is := range issues {
		if is["Updated"].(string) < oldest["Updated"].(string) {
			oldest = is
		}
	}
	newComment, err := d.sim.AddComment(jirasim.NewComment{Issue: oldest["Key"].(string), Body: "late word"})
	if err != nil {
		t.Fatal(err)
	}
	newWorklog, err := d.sim.AddWorklog(jirasim.NewWorklog{Issue: oldest["Key"].(string), Comment: "late work"})
	if err != nil {
		t.Fatal(err)
	}
	added := map[string]string{"Comments": newComment, "Worklogs": newWorklog}
	issues = decodedWalk(t, feed+"Issues", tokens[0])
	var updated []string
	for _, is := range issues {
		updated = append(updated, is["Updated"].(string))
	}
	sort.Strings(updated)
	since := updated[len(updated)*19/20] // about one issue in twenty changed since
	at, _ := time.Parse(time.RFC3339, since)
	at = at.Add(-1500 * time.Millisecond) // not on a minute: the superset-then-drop rule too
	changed := 0
	for _, u := range updated {
		if u >= at.UTC().Format(time.RFC3339) {
			changed++
		}
	}
	for _, c := range []struct{ set, prop string }{{"Comments", "Updated"}, {"Comments", "Created"}, {"StatusHistory", "Entered"}, {"Worklogs", "Updated"}} {
		full := decodedWalk(t, feed+c.set, tokens[0])
		d.sim.ResetStats()
		decodedWalk(t, feed+c.set, tokens[0])
		fullPoints := d.sim.Stats().Points
		want := where(full, func(r map[string]any) bool {
			v, _ := time.Parse(time.RFC3339Nano, r[c.prop].(string))
			return !v.Before(at)
		})
		if len(want) == 0 {
			t.Fatalf("%s: no row has %s since %s; the test would prove nothing", c.set, c.prop, at)
		}
		d.sim.ResetStats()
		got := decodedWalk(t, feed+c.set+"?$filter="+c.prop+"%20ge%20"+at.UTC().Format("2006-01-02T15:04:05.000Z"), tokens[0])
		st := d.sim.Stats()
		sameKeys(t, c.set+" "+c.prop+" ge", got, want, "Id")
		if id, ok := added[c.set]; ok && !idsOf(got, "Id")[id] {
			t.Errorf("%s %s ge: the %s added today to %s (last updated long before) is not in the window", c.set, c.prop, c.set, oldest["Key"])
		}
		// Points follow the issues read: the changed ones, not all of them.
		if st.Points*5 > fullPoints {
			t.Errorf("%s %s ge: %d points, the full walk %d (%d of %d issues changed)", c.set, c.prop, st.Points, fullPoints, changed, len(issues))
		}
		t.Logf("%s %s ge: %d rows of %d; %d points against %d for the full walk; requests %v", c.set, c.prop, len(got), len(full), st.Points, fullPoints, st.Requests)
	}
}

// Real OData clients read $metadata with the relations and walk every
// table: Apache Olingo's client sees each navigation property with its
// referential constraint, partner and binding, and reads every set through
// its nextLinks to the rows the Go walk has; @odata/client's $count agrees.
func TestRealODataClientsWalkEveryTable(t *testing.T) {
	mods := nodeModules(t)
	d, feed, tokens := tableDemo(t, 90)
	cmd := exec.Command("node", "testdata/odata_tables.js", feed, tokens[0])
	cmd.Env = append(os.Environ(), "NODE_PATH="+mods)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("node clients: %v\n%s", err, stderr.String())
	}
	var got map[string]struct {
		Navs, Bindings               []string
		Rows, Pages, Distinct, Count int
	}
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if len(got) != len(export.TableNames()) {
		t.Fatalf("the clients saw %d sets, the source has %d tables", len(got), len(export.TableNames()))
	}
	for _, name := range export.TableNames() {
		g := got[name]
		rows := decodedWalk(t, feed+name, tokens[0])
		if g.Rows != len(rows) || g.Distinct != len(rows) || g.Count != len(rows) || len(rows) == 0 {
			t.Errorf("%s: Olingo read %d rows (%d distinct keys) in %d pages, @odata/client counts %d, the Go walk has %d", name, g.Rows, g.Distinct, g.Pages, g.Count, len(rows))
		}
		if len(rows) > 40 && g.Pages < 2 {
			t.Errorf("%s: %d rows in %d pages of 40", name, len(rows), g.Pages)
		}
	}
	_ = d
	// The relations as the README lists them, as Olingo read them.
	for set, want := range map[string][]string{
		"Worklogs":      {"Issue:Ferry.Issue~Worklogs(IssueId=Id)"},
		"Comments":      {"Issue:Ferry.Issue~Comments(IssueId=Id)"},
		"IssueLinks":    {"Issue:Ferry.Issue~Links(IssueId=Id)", "LinkedIssue:Ferry.Issue(LinkedIssueId=Id)"},
		"StatusHistory": {"Issue:Ferry.Issue~StatusHistory(IssueId=Id)"},
		"Changelog":     {"Issue:Ferry.Issue~Changes(IssueId=Id)"},
		"Versions":      {"Project:Ferry.Project~Versions(ProjectId=Id)"},
		"Components":    {"Project:Ferry.Project~Components(ProjectId=Id)"},
		"SprintIssues":  {"Issue:Ferry.Issue~Sprints(IssueId=Id)", "Sprint:Ferry.Sprint~Issues(SprintId=Id)"},
		"Issues": {"Changes:Collection(Ferry.ChangeItem)~Issue", "Comments:Collection(Ferry.Comment)~Issue", "Links:Collection(Ferry.IssueLink)~Issue",
			"Sprints:Collection(Ferry.SprintIssue)~Issue", "StatusHistory:Collection(Ferry.StatusInterval)~Issue", "Worklogs:Collection(Ferry.Worklog)~Issue"},
		"Projects": {"Components:Collection(Ferry.Component)~Project", "Versions:Collection(Ferry.Version)~Project"},
		"Sprints":  {"Issues:Collection(Ferry.SprintIssue)~Sprint"},
		"Users":    nil,
	} {
		if !slices.Equal(got[set].Navs, want) {
			t.Errorf("%s navigation properties: %v, want %v", set, got[set].Navs, want)
		}
		if len(got[set].Bindings) != len(want) {
			t.Errorf("%s bindings: %v", set, got[set].Bindings)
		}
	}
}

// TestIncrementalRefreshOfIssuesCostsOneLoop: Power BI's incremental refresh
// asks for Issues with Updated ge RangeStart and Updated lt RangeEnd. Such a
// window of a few pages is read as one search/jql chain with nothing before
// it: no approximate-count, one call per page of 100, as a sequential loop
// reads it; its rows are those of the full walk in the window.
func TestIncrementalRefreshOfIssuesCostsOneLoop(t *testing.T) {
	d, feed, tokens := tableDemo(t, 2000)
	issues := decodedWalk(t, feed+"Issues", tokens[0])
	var updated []string
	for _, is := range issues {
		updated = append(updated, is["Updated"].(string))
	}
	sort.Strings(updated)
	for _, part := range []struct{ from, to int }{{0, 1}, {1000, 1350}, {1500, 1999}, {1700, 1701}} {
		lo, _ := time.Parse(time.RFC3339Nano, updated[part.from])
		hi, _ := time.Parse(time.RFC3339Nano, updated[part.to])
		want := where(issues, func(r map[string]any) bool {
			v, _ := time.Parse(time.RFC3339Nano, r["Updated"].(string))
			return !v.Before(lo) && v.Before(hi)
		})
		filter := "Updated ge " + lo.UTC().Format("2006-01-02T15:04:05.000Z") + " and Updated lt " + hi.UTC().Format("2006-01-02T15:04:05.000Z")
		d.sim.ResetStats()
		got := decodedWalk(t, feed+"Issues?$filter="+url.PathEscape(filter), tokens[0])
		st := d.sim.Stats()
		sameKeys(t, filter, got, want, "Key")
		// JQL reads whole minutes: the loop pages the issues of the
		// minutes the window touches, which may be a few more than it keeps.
		read := st.Points - st.Requests["POST /rest/api/3/search/jql"]
		loop := max(1, (int(read)+99)/100)
		if st.Requests["POST /rest/api/3/search/approximate-count"] != 0 || st.Requests["POST /rest/api/3/search/jql"] != int64(loop) {
			t.Errorf("%s (%d rows): requests %v; one loop reading %d issues makes %d search calls and no count", filter, len(want), st.Requests, read, loop)
		}
	}
}
