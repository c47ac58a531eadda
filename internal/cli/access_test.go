package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"

	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"ferry/internal/export"
	"ferry/internal/forge"
	"ferry/internal/jirasim"
)

// platforms are the two ways a site installs Ferry: every promise of site
// administration is checked on both.
var platforms = []string{"connect", "forge"}

// onPlatforms runs a test once per platform.
func onPlatforms(t *testing.T, test func(t *testing.T, platform string)) {
	for _, p := range platforms {
		t.Run(p, func(t *testing.T) { test(t, p) })
	}
}

// startSite runs `ferry demo` in-process with extra configuration,
// installed through Connect.
func startSite(t *testing.T, vars map[string]string, issues int) *demo {
	t.Helper()
	return startSiteOn(t, "connect", vars, issues)
}

// startSiteOn runs `ferry demo` in-process with extra configuration,
// installed through platform ("connect" or "forge").
func startSiteOn(t *testing.T, platform string, vars map[string]string, issues int) *demo {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "demo")
	logs := &LogBuffer{}
	ctx, cancel := context.WithCancel(context.Background())
	all := map[string]string{"FERRY_LOG_FORMAT": "json", "FERRY_LOG_LEVEL": "debug"}
	for k, v := range vars {
		all[k] = v
	}
	d, err := startDemo(ctx, env{getenv: func(k string) string { return all[k] }, stdout: io.Discard, stderr: logs},
		demoOptions{AppAddr: "127.0.0.1:0", SimAddr: "127.0.0.1:0", DataDir: dir, Issues: issues, Platform: platform})
	if err != nil {
		cancel()
		t.Fatalf("demo: %v\n%s", err, logs)
	}
	t.Cleanup(func() {
		cancel()
		if err := d.wait(); err != nil {
			t.Errorf("demo shut down with %v", err)
		}
	})
	return d
}

// forgePage marks the page credential of a user on Forge: a Custom UI page
// holds no token; each of its calls goes through invokeRemote, which the
// simulated Forge signs with a fresh Forge Invocation Token for the user
// (apiCall).
const forgePage = "forge-page:"

// pageFor is what the app's page gives accountID to call the API with: on
// Connect the context token the admin page embeds, on Forge the user.
func pageFor(t *testing.T, d *demo, accountID string) string {
	t.Helper()
	if d.info.Platform == "forge" {
		return forgePage + accountID
	}
	return pageToken(t, d, accountID)
}

// forgeAPICall makes the call a Custom UI page makes through invokeRemote:
// the simulated Forge sends it to /forge/app-api/… with a FIT (and the
// user's and the app's tokens) from the page the path belongs to.
func forgeAPICall(t *testing.T, d *demo, accountID, method, path string, body any) (int, []byte) {
	t.Helper()
	module := forge.ModuleDataSources
	for _, p := range []string{"/app-api/settings", "/app-api/users", "/app-api/admin/", "/app-api/deletion"} {
		if strings.HasPrefix(path, p) {
			module = forge.ModuleAdmin
		}
	}
	inst := d.sim.ForgeInstallations()[0].ID
	req, err := d.sim.NewForgeRequest(context.Background(), inst, jirasim.ForgeCall{Kind: "ui", Module: module, Method: method,
		Path: forge.RouteAPI + strings.TrimPrefix(path, "/app-api"), AccountID: accountID, Body: body})
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, out
}

// reachedThroughForge fails the test unless, on Forge, Ferry reached the
// simulated site the Forge way: as the page's user with the invocation's
// user token, and with each storage operation in ops on the site's
// Key-Value Store. A Forge test that passed without it would prove nothing
// about Forge.
func reachedThroughForge(t *testing.T, d *demo, ops ...string) {
	t.Helper()
	if d.info.Platform != "forge" {
		return
	}
	st := d.sim.ForgeStats()
	if st.GatewayCalls["user"] == 0 {
		t.Errorf("no call reached Jira as the page's user through Forge: %v", st.GatewayCalls)
	}
	for _, op := range ops {
		if st.StorageCalls[op] == 0 {
			t.Errorf("no %q on Forge storage: %v", op, st.StorageCalls)
		}
	}
}

// feedsReadThroughForge fails the test unless, on Forge, the feeds read the
// simulated site as each of owners through offline impersonation.
func feedsReadThroughForge(t *testing.T, d *demo, owners ...string) {
	t.Helper()
	if d.info.Platform != "forge" {
		return
	}
	st := d.sim.ForgeStats()
	for _, o := range owners {
		if st.Impersonations[o] == 0 {
			t.Errorf("no feed read Jira as %s through offline impersonation: %v", o, st.Impersonations)
		}
	}
}

// apiCall calls the app's JSON API (path /app-api/…) from a page: with its
// context token on Connect, through invokeRemote on Forge (pageFor).
func apiCall(t *testing.T, d *demo, token, method, path string, body any) (int, []byte) {
	t.Helper()
	if who, ok := strings.CutPrefix(token, forgePage); ok {
		return forgeAPICall(t, d, who, method, path, body)
	}
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, d.info.AppURL+path, rd)
	req.Header.Set("Authorization", "JWT "+token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, out
}

func mustAPI(t *testing.T, d *demo, token, method, path string, body, out any) {
	t.Helper()
	code, b := apiCall(t, d, token, method, path, body)
	if code/100 != 2 {
		t.Fatalf("%s %s = %d: %s", method, path, code, b)
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			t.Fatalf("%s %s: %v: %s", method, path, err, b)
		}
	}
}

// The roles of the matrix, as a site would have them: the administrator
// holds ADMINISTER but is in no administrators' group; the outsider sits in
// jira-administrators and site-admins without ADMINISTER (a group name
// makes nobody an administrator).
const (
	roleAdmin    = "admin"
	roleCreator  = "creator"
	roleMember   = "member"
	roleOutsider = "outsider"
)

var roles = []string{roleAdmin, roleCreator, roleMember, roleOutsider}

type siteRoles struct {
	siteAdmin jirasim.User // the simulated site's own admin, who sets things up
	users     map[string]jirasim.User
	page      map[string]string // context tokens of each role's page
}

// setUpRoles gives four active users their roles in the simulated Jira and
// has the site admin save settings: creators are bi-creators, exporters
// bi-users.
func setUpRoles(t *testing.T, d *demo) siteRoles {
	t.Helper()
	all := d.sim.Users()
	var picked []jirasim.User
	for _, u := range all[2:] {
		if !u.Closed && len(picked) < len(roles) {
			picked = append(picked, u)
		}
	}
	access := map[string]struct{ groups, global []string }{
		roleAdmin:    {[]string{"jira-users"}, []string{"ADMINISTER", "USER_PICKER"}},
		roleCreator:  {[]string{"jira-users", "bi-creators", "bi-users"}, []string{"USER_PICKER"}},
		roleMember:   {[]string{"jira-users", "bi-users"}, []string{"USER_PICKER"}},
		roleOutsider: {[]string{"jira-administrators", "jira-users", "site-admins"}, []string{"USER_PICKER"}},
	}
	sr := siteRoles{siteAdmin: all[0], users: map[string]jirasim.User{}, page: map[string]string{}}
	for i, r := range roles {
		if err := d.sim.SetUserAccess(picked[i].AccountID, access[r].groups, access[r].global); err != nil {
			t.Fatal(err)
		}
		sr.users[r] = picked[i]
		sr.page[r] = pageFor(t, d, picked[i].AccountID)
	}
	mustAPI(t, d, pageFor(t, d, all[0].AccountID), "PUT", "/app-api/settings", map[string]any{
		"tokenMaxDays": 365,
		"creators":     map[string]any{"everyone": false, "groups": []string{"bi-creators"}, "users": []string{}},
		"exporters":    map[string]any{"everyone": false, "groups": []string{"bi-users"}, "users": []string{}},
	}, nil)
	return sr
}

// visibilities of the matrix's sources: shared with everyone, shared with
// the bi-users group, private.
var visibilities = []string{export.VisibilityEveryone, export.VisibilityGroups, export.VisibilityPrivate}

// matrix is the promise, written out: for each action and role, what
// happens on a source shared with everyone, shared with bi-users, and
// private — Y allowed, F refused (403), H hidden (404). Actions that do
// not depend on a source have one column.
var matrix = []struct {
	action string
	want   map[string]string
}{
	{"view source", map[string]string{roleAdmin: "YYY", roleCreator: "YYH", roleMember: "YYH", roleOutsider: "YHH"}},
	{"create", map[string]string{roleAdmin: "YYY", roleCreator: "YYY", roleMember: "FFF", roleOutsider: "FFF"}},
	{"edit own", map[string]string{roleAdmin: "YYY", roleCreator: "YYY", roleMember: "YYY", roleOutsider: "YYY"}},
	{"edit other's", map[string]string{roleAdmin: "YYY", roleCreator: "FFH", roleMember: "FFH", roleOutsider: "FHH"}},
	{"delete own", map[string]string{roleAdmin: "YYY", roleCreator: "YYY", roleMember: "YYY", roleOutsider: "YYY"}},
	{"delete other's", map[string]string{roleAdmin: "YYY", roleCreator: "FFH", roleMember: "FFH", roleOutsider: "FHH"}},
	{"transfer other's", map[string]string{roleAdmin: "YYY", roleCreator: "FFF", roleMember: "FFF", roleOutsider: "FFF"}},
	{"pull feed", map[string]string{roleAdmin: "YYY", roleCreator: "YYF", roleMember: "YYF", roleOutsider: "FFF"}},
	{"create token", map[string]string{roleAdmin: "Y", roleCreator: "Y", roleMember: "Y", roleOutsider: "F"}},
	{"list all tokens", map[string]string{roleAdmin: "Y", roleCreator: "F", roleMember: "F", roleOutsider: "F"}},
	{"revoke other's token", map[string]string{roleAdmin: "Y", roleCreator: "F", roleMember: "F", roleOutsider: "F"}},
	// Last: the administrator's cell ends every token of the creator.
	{"revoke all of a user's tokens", map[string]string{roleAdmin: "Y", roleCreator: "F", roleMember: "F", roleOutsider: "F"}},
}

func outcome(code int) string {
	switch {
	case code/100 == 2:
		return "Y"
	case code == 403:
		return "F"
	case code == 404:
		return "H"
	}
	return fmt.Sprint(code)
}

// TestPermissionMatrix walks every cell of the matrix above over HTTP —
// the app's API for the pages and the feeds for pulling — with the roles
// set in the simulated Jira, and checks that a refused change changed
// nothing and an allowed one did what it says.
func TestPermissionMatrix(t *testing.T) { onPlatforms(t, testPermissionMatrix) }

func testPermissionMatrix(t *testing.T, platform string) {
	ctx := context.Background()
	d := startSiteOn(t, platform, nil, 40)
	sr := setUpRoles(t, d)
	props := siteProperties(t, d)
	sources := d.app.appAPI.Sources
	tokens := d.app.appAPI.Tokens
	// newSource makes a source owned by owner with visibility v, as the
	// store would hold it, bypassing the API under test.
	newSource := func(owner, v string) export.DataSource {
		in := export.Input{Name: "matrix " + owner[len(owner)-4:] + " " + v, JQL: demoJQL, Fields: []string{"summary"},
			Tables: []string{export.TableIssues}, Visibility: v}
		if v == export.VisibilityGroups {
			in.Groups = []string{"bi-users"}
		}
		ds, err := sources.Create(ctx, props, d.tenant, in, owner, time.Now().UTC())
		if err != nil {
			t.Fatal(err)
		}
		return ds
	}
	stored := func(id string) (export.DataSource, bool) {
		ds, err := sources.Get(ctx, props, d.tenant, id)
		return ds, err == nil
	}
	// otherOwner is whose sources count as someone else's for a role.
	otherOwner := func(role string) string {
		if role == roleCreator {
			return sr.users[roleAdmin].AccountID
		}
		return sr.users[roleCreator].AccountID
	}
	// Each role's token, made before anything was restricted (the store
	// API, not the checks under test).
	feedToken := map[string]string{}
	for _, r := range roles {
		plain, _, err := tokens.Create(ctx, d.tenant, sr.users[r].AccountID, "matrix", 30, 365)
		if err != nil {
			t.Fatal(err)
		}
		feedToken[r] = plain
	}
	body := func(v string) map[string]any {
		b := map[string]any{"name": "changed " + v, "jql": demoJQL, "fields": []string{"summary", "status"}, "tables": []string{"Issues"}, "visibility": v}
		if v == export.VisibilityGroups {
			b["groups"] = []string{"bi-users"}
		}
		return b
	}

	for _, row := range matrix {
		for _, role := range roles {
			want := row.want[role]
			page := sr.page[role]
			for col := range want {
				v := ""
				if len(want) > 1 {
					v = visibilities[col]
				}
				name := fmt.Sprintf("%s/%s/%s", row.action, role, v)
				expect := want[col : col+1]
				var code int
				var detail []byte
				switch row.action {
				case "view source":
					ds := newSource(otherOwner(role), v)
					code, detail = apiCall(t, d, page, "GET", "/app-api/sources/"+ds.ID, nil)
					// The list shows exactly the sources one may view.
					var list []struct{ ID string }
					mustAPI(t, d, page, "GET", "/app-api/sources", nil, &list)
					listed := slices.ContainsFunc(list, func(s struct{ ID string }) bool { return s.ID == ds.ID })
					if listed != (expect == "Y") {
						t.Errorf("%s: listed = %v", name, listed)
					}
				case "create":
					b := body(v)
					b["name"] = "created by " + role + " " + v
					code, detail = apiCall(t, d, page, "POST", "/app-api/sources", b)
					var made struct {
						ID    string
						Owner struct{ AccountID string }
					}
					if code == 201 {
						json.Unmarshal(detail, &made)
						if ds, ok := stored(made.ID); !ok || ds.Owner != sr.users[role].AccountID || ds.Visibility != v {
							t.Errorf("%s: stored %+v", name, ds)
						}
					}
				case "edit own", "edit other's":
					owner := otherOwner(role)
					if row.action == "edit own" {
						owner = sr.users[role].AccountID
					}
					ds := newSource(owner, v)
					code, detail = apiCall(t, d, page, "PUT", "/app-api/sources/"+ds.ID, body(v))
					after, _ := stored(ds.ID)
					changed := after.Name != ds.Name || len(after.History) != len(ds.History)
					if changed != (code == 200) || code == 200 && after.Owner != owner {
						t.Errorf("%s: %d, stored %+v", name, code, after)
					}
				case "delete own", "delete other's":
					owner := otherOwner(role)
					if row.action == "delete own" {
						owner = sr.users[role].AccountID
					}
					ds := newSource(owner, v)
					code, detail = apiCall(t, d, page, "DELETE", "/app-api/sources/"+ds.ID, nil)
					after, ok := stored(ds.ID)
					if ok == (code == 204) || ok && (after.Name != ds.Name || len(after.History) != len(ds.History)) {
						t.Errorf("%s: %d, still stored: %v", name, code, ok)
					}
				case "transfer other's":
					ds := newSource(otherOwner(role), v)
					to := sr.users[roleMember].AccountID
					code, detail = apiCall(t, d, page, "PUT", "/app-api/sources/"+ds.ID+"/owner", map[string]string{"accountId": to})
					after, _ := stored(ds.ID)
					if (after.Owner == to) != (code == 200) {
						t.Errorf("%s: %d, owner now %s", name, code, after.Owner)
					}
					if code == 200 {
						last := after.History[len(after.History)-1]
						if last.Action != "transferred" || last.By != sr.users[role].AccountID || last.To != to {
							t.Errorf("%s: history %+v", name, last)
						}
					}
				case "pull feed":
					ds := newSource(otherOwner(role), v)
					code, _, detail = fetch(t, d.info.AppURL+"/odata/"+ds.ID+"/Issues?$top=1", feedToken[role])
				case "create token":
					code, detail = apiCall(t, d, page, "POST", "/app-api/tokens", map[string]any{"label": "by " + role, "days": 5})
				case "list all tokens":
					code, detail = apiCall(t, d, page, "GET", "/app-api/admin/tokens", nil)
					if code == 200 {
						var all []struct{ Owner struct{ AccountID string } }
						json.Unmarshal(detail, &all)
						owners := map[string]bool{}
						for _, tk := range all {
							owners[tk.Owner.AccountID] = true
						}
						for _, r := range roles {
							if !owners[sr.users[r].AccountID] {
								t.Errorf("%s: %s's tokens are not listed", name, r)
							}
						}
					}
				case "revoke other's token":
					victim := otherOwner(role)
					plain, tk, err := tokens.Create(ctx, d.tenant, victim, "victim", 5, 365)
					if err != nil {
						t.Fatal(err)
					}
					code, detail = apiCall(t, d, page, "DELETE", "/app-api/admin/tokens/"+tk.ID, nil)
					// Through the owner's own route, someone else's token is not found.
					if c, _ := apiCall(t, d, page, "DELETE", "/app-api/tokens/"+tk.ID, nil); c != 404 {
						t.Errorf("%s: revoking through the own-token route = %d", name, c)
					}
					// The victim's feed stops at once, or goes on.
					if c, _, _ := fetch(t, d.info.ODataURL+"Issues?$top=1", plain); (c == 200) == (code == 204) || c != 200 && c != 401 {
						t.Errorf("%s: %d, then the token's feed answers %d", name, code, c)
					}
				case "revoke all of a user's tokens":
					victim := otherOwner(role)
					var plains []string
					for range 2 {
						plain, _, err := tokens.Create(ctx, d.tenant, victim, "victim", 5, 365)
						if err != nil {
							t.Fatal(err)
						}
						plains = append(plains, plain)
					}
					code, detail = apiCall(t, d, page, "DELETE", "/app-api/admin/users/"+victim+"/tokens", nil)
					var res struct{ Revoked int }
					json.Unmarshal(detail, &res)
					if code == 200 && res.Revoked < 2 {
						t.Errorf("%s: revoked %d", name, res.Revoked)
					}
					for _, plain := range plains {
						if c, _, _ := fetch(t, d.info.ODataURL+"Issues?$top=1", plain); (c == 200) == (code == 200) || c != 200 && c != 401 {
							t.Errorf("%s: %d, then a token's feed answers %d", name, code, c)
						}
					}
				}
				if got := outcome(code); got != expect {
					t.Errorf("%s: got %s (%d), want %s: %.300s", name, got, code, expect, detail)
				}
			}
		}
	}
	reachedThroughForge(t, d, "set", "get", "query", "delete")
	feedsReadThroughForge(t, d, sr.users[roleAdmin].AccountID, sr.users[roleCreator].AccountID, sr.users[roleMember].AccountID)
	// Ownership given by an administrator shows in the history as theirs.
	ds := newSource(sr.users[roleCreator].AccountID, export.VisibilityEveryone)
	mustAPI(t, d, sr.page[roleAdmin], "PUT", "/app-api/sources/"+ds.ID+"/owner", map[string]string{"accountId": sr.users[roleMember].AccountID}, nil)
	var full struct {
		Owner   struct{ DisplayName string }
		History []struct{ Action, By, To string }
	}
	mustAPI(t, d, sr.page[roleMember], "GET", "/app-api/sources/"+ds.ID, nil, &full)
	if full.Owner.DisplayName != sr.users[roleMember].DisplayName || full.History[0].Action != "transferred" ||
		full.History[0].By != sr.users[roleAdmin].DisplayName || full.History[0].To != sr.users[roleMember].DisplayName {
		t.Errorf("after the transfer: %+v", full)
	}
}

// TestAdministratorIsWhomJiraGrantsAdminister: taking ADMINISTER away in
// Jira takes the admin page away at once; giving it makes an administrator
// of someone in no administrators' group. Group names count for nothing.
func TestAdministratorIsWhomJiraGrantsAdminister(t *testing.T) {
	onPlatforms(t, testAdministratorIsWhomJiraGrantsAdminister)
}

func testAdministratorIsWhomJiraGrantsAdminister(t *testing.T, platform string) {
	d := startSiteOn(t, platform, nil, 20)
	users := d.sim.Users()
	u := users[2]
	page := pageFor(t, d, u.AccountID)
	me := func() map[string]any {
		var out map[string]any
		mustAPI(t, d, page, "GET", "/app-api/me", nil, &out)
		return out
	}
	if err := d.sim.SetUserAccess(u.AccountID, []string{"jira-administrators", "site-admins"}, []string{"USER_PICKER"}); err != nil {
		t.Fatal(err)
	}
	if m := me(); m["admin"] != false {
		t.Errorf("in jira-administrators without ADMINISTER: admin = %v", m["admin"])
	}
	if code, _ := apiCall(t, d, page, "GET", "/app-api/settings", nil); code != 403 {
		t.Errorf("settings without ADMINISTER: %d", code)
	}
	if err := d.sim.SetUserAccess(u.AccountID, []string{"jira-users"}, []string{"ADMINISTER"}); err != nil {
		t.Fatal(err)
	}
	if m := me(); m["admin"] != true || m["canCreate"] != true || m["canExport"] != true {
		t.Errorf("with ADMINISTER: %v", m)
	}
	if code, _ := apiCall(t, d, page, "GET", "/app-api/settings", nil); code != 200 {
		t.Errorf("settings with ADMINISTER: %d", code)
	}
	// The site's own admin loses ADMINISTER: no settings, no deletion.
	admin := pageFor(t, d, users[0].AccountID)
	if err := d.sim.SetUserAccess(users[0].AccountID, nil, []string{"USER_PICKER"}); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"/app-api/settings", "/app-api/deletion", "/app-api/admin/tokens", "/app-api/admin/token-history"} {
		if code, _ := apiCall(t, d, admin, "GET", p, nil); code != 403 {
			t.Errorf("GET %s after losing ADMINISTER: %d", p, code)
		}
	}
	reachedThroughForge(t, d)
}

// TestSettingsRefuseBadInputAndChangeNothing: every malformed or unknown
// value names its field and leaves the stored settings as they were.
func TestSettingsRefuseBadInputAndChangeNothing(t *testing.T) {
	onPlatforms(t, testSettingsRefuseBadInputAndChangeNothing)
}

func testSettingsRefuseBadInputAndChangeNothing(t *testing.T, platform string) {
	d := startSiteOn(t, platform, nil, 20)
	admin := pageFor(t, d, d.sim.Users()[0].AccountID)
	keys := d.sim.ProjectKeys()
	good := func() map[string]any {
		return map[string]any{"tokenMaxDays": 30,
			"creators":        map[string]any{"everyone": false, "groups": []string{"jira-users"}, "users": []string{d.sim.Users()[1].AccountID}},
			"exporters":       map[string]any{"everyone": true, "groups": []string{}, "users": []string{}},
			"projects":        []string{strings.ToLower(keys[0])},
			"allowedNetworks": []string{"203.0.113.0/24", "2001:db8::/32"}}
	}
	var saved map[string]any
	mustAPI(t, d, admin, "PUT", "/app-api/settings", good(), &saved)
	if p := saved["projects"].([]any)[0].(map[string]any); p["key"] != keys[0] || p["id"] == "" {
		t.Errorf("project saved as %v", p)
	}
	_, want := apiCall(t, d, admin, "GET", "/app-api/settings", nil)
	for _, c := range []struct {
		field string
		edit  func(m map[string]any)
	}{
		{"allowedNetworks", func(m map[string]any) { m["allowedNetworks"] = []string{"203.0.113.0/33"} }},
		{"allowedNetworks", func(m map[string]any) { m["allowedNetworks"] = []string{"10.1.2.3/8"} }},
		{"allowedNetworks", func(m map[string]any) { m["allowedNetworks"] = []string{"intranet"} }},
		{"allowedNetworks", func(m map[string]any) { m["allowedNetworks"] = []string{"192.168.0.0/16", "fe80::1%eth0"} }},
		{"projects", func(m map[string]any) { m["projects"] = []string{"NOPE"} }},
		{"creators.groups", func(m map[string]any) {
			m["creators"] = map[string]any{"everyone": false, "groups": []string{"no-such-group"}, "users": []string{}}
		}},
		{"exporters.users", func(m map[string]any) {
			m["exporters"] = map[string]any{"everyone": false, "groups": []string{}, "users": []string{"557058:nobody"}}
		}},
		{"exporters.groups", func(m map[string]any) {
			m["exporters"] = map[string]any{"everyone": true, "groups": []string{"jira-users"}, "users": []string{}}
		}},
		{"tokenMaxDays", func(m map[string]any) { m["tokenMaxDays"] = 0 }},
		{"body", func(m map[string]any) { m["creatorGroups"] = []string{"jira-users"} }},
	} {
		m := good()
		m["allowedNetworks"] = []string{"198.51.100.0/24"} // a change that must not land
		c.edit(m)
		code, b := apiCall(t, d, admin, "PUT", "/app-api/settings", m)
		var p struct{ Field, Detail string }
		json.Unmarshal(b, &p)
		if code != 400 || p.Field != c.field || p.Detail == "" {
			t.Errorf("%s: %d %s", c.field, code, b)
		}
		if _, now := apiCall(t, d, admin, "GET", "/app-api/settings", nil); !bytes.Equal(now, want) {
			t.Errorf("%s: refused settings changed what is stored:\n%s\n%s", c.field, want, now)
		}
	}
	reachedThroughForge(t, d, "set", "get")
}
