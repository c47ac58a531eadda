package jirasim

import (
	"context"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"
)

// offlineToken runs the documented offlineUserAuthToken mutation.
func offlineToken(t testing.TB, s *Sim, systemToken, contextID, accountID string) (string, int) {
	t.Helper()
	r := call(t, s.BaseURL(), "POST", "/graphql", "Bearer "+systemToken, map[string]any{
		"query":     offlineMutation,
		"variables": map[string]any{"input": map[string]any{"contextIds": []string{contextID}, "userId": accountID}},
	}).status(t, 200)
	var out struct {
		Data struct {
			Offline struct {
				Success   bool
				Errors    []struct{ Message string }
				AuthToken struct {
					Token string
					TTL   int
				}
			} `json:"offlineUserAuthToken"`
		}
	}
	r.decode(t, &out)
	if !out.Data.Offline.Success {
		t.Fatalf("offlineUserAuthToken refused: %s", r.body)
	}
	return out.Data.Offline.AuthToken.Token, out.Data.Offline.AuthToken.TTL
}

// The mutation exactly as Atlassian documents it for remotes.
const offlineMutation = `mutation forge_remote_offlineUserAuthToken($input: OfflineUserAuthTokenInput!) {
  offlineUserAuthToken(input: $input) { success errors { message } authToken { token ttl } }
}`

// searchKeys pages through /search/jql and returns the issue keys; a
// refused query fails the test.
func searchKeys(t testing.TB, base, prefix, auth, jql string) []string {
	t.Helper()
	keys, status, body := trySearch(t, base, prefix, auth, jql)
	if status != 200 {
		t.Fatalf("search %q: HTTP %d %s", jql, status, body)
	}
	return keys
}

// trySearch is searchKeys that reports the status and body of a refusal.
func trySearch(t testing.TB, base, prefix, auth, jql string) ([]string, int, string) {
	t.Helper()
	var keys []string
	next := ""
	for page := 0; ; page++ {
		q := url.Values{"jql": {jql}, "fields": {"key"}, "maxResults": {"5000"}}
		if next != "" {
			q.Set("nextPageToken", next)
		}
		r := call(t, base, "GET", prefix+"/rest/api/3/search/jql?"+q.Encode(), auth, nil)
		if r.resp.StatusCode != 200 {
			return nil, r.resp.StatusCode, string(r.body)
		}
		var out struct {
			Issues        []struct{ Key string }
			NextPageToken string
			IsLast        bool
		}
		r.decode(t, &out)
		for _, is := range out.Issues {
			keys = append(keys, is.Key)
		}
		if out.IsLast || out.NextPageToken == "" || page > 100 {
			return keys, 200, ""
		}
		next = out.NextPageToken
	}
}

// TestForgeGatewayHonoursEachUsersPermissions: through /ex/jira/{cloudId}
// a Forge user token and an offline impersonation token see exactly what
// the same user sees with HTTP Basic and through a Connect app's JWT-bearer
// token, for generated queries and every kind of user; the app's bot sees
// every project; and a restricted user sees fewer issues than the admin.
func TestForgeGatewayHonoursEachUsersPermissions(t *testing.T) {
	s, srv := newTestSim(t, Options{Issues: 400, Projects: 4, Users: 8, Seed: 31})
	rm := newForgeRemote(t, s)
	in := installForge(t, s, testForgeApp(rm))
	capp := newTestApp(t, srv.URL, "connect-app")
	cin := capp.install(s)
	sys := rm.last("/forge/events").Header.Get("x-forge-oauth-system")
	prefix := "/ex/jira/" + s.CloudID()
	keys := s.ProjectKeys()
	all := "project in (" + strings.Join(keys, ",") + ") ORDER BY key"
	queries := []string{all, "status = Done AND project in (" + strings.Join(keys, ",") + ")", `created >= "2023-06-01" AND project != ` + keys[0]}
	for _, k := range keys {
		queries = append(queries, "project = "+k)
	}
	admin := searchKeys(t, srv.URL, "", basicAuth(s.Users()[0]), all)
	restrictedJQL := "project = " + s.Users()[1].Projects[0] + " OR project = " + s.Users()[1].Projects[0] + " ORDER BY key"
	if bot := searchKeys(t, srv.URL, prefix, "Bearer "+sys, all); !slices.Equal(bot, admin) || len(bot) != 400 {
		t.Fatalf("the app bot sees %d issues, the admin %d", len(bot), len(admin))
	}
	checked := 0
	for _, u := range s.Users() {
		if u.Closed {
			continue
		}
		off, ttl := offlineToken(t, s, sys, in.WorkspaceARI, u.AccountID)
		if ttl != 900 || tokenExp(t, off).Sub(s.now()) < 899*time.Second {
			t.Fatalf("offline token ttl %d", ttl)
		}
		resp, err := s.InvokeForge(context.Background(), in.ID, "ferry-admin", u.AccountID, ForgeRequest{Method: "GET", Path: "/forge/ui/whoami"})
		if err != nil || resp.Status != 200 {
			t.Fatal(resp, err)
		}
		usr := rm.last("/forge/ui/whoami").Header.Get("x-forge-oauth-user")
		connect := bearerFor(t, srv.URL, cin, u.AccountID, "READ")
		for _, jql := range queries {
			// A query naming a project the user cannot browse is refused
			// (Jira: "does not exist"); every path must refuse it alike.
			truth, tStatus, tBody := trySearch(t, srv.URL, "", basicAuth(u), jql)
			for _, p := range []struct{ name, prefix, auth string }{
				{"offline token", prefix, "Bearer " + off}, {"user token", prefix, "Bearer " + usr}, {"Connect bearer", "", connect},
			} {
				got, status, body := trySearch(t, srv.URL, p.prefix, p.auth, jql)
				if status != tStatus || body != tBody || !slices.Equal(got, truth) {
					t.Fatalf("%s, %s: %s answers %d with %d issues, Basic %d with %d", u.DisplayName, jql, p.name, status, len(got), tStatus, len(truth))
				}
			}
			for _, k := range truth {
				if !slices.Contains(u.Projects, k[:strings.IndexByte(k, '-')]) {
					t.Fatalf("%s sees %s outside their projects %v", u.DisplayName, k, u.Projects)
				}
			}
			checked++
		}
		// Who the token acts as.
		var me struct{ AccountID string }
		gw(t, s, "GET", "/rest/api/3/myself", off, nil).status(t, 200).decode(t, &me)
		if me.AccountID != u.AccountID {
			t.Fatalf("offline token acts as %s, want %s", me.AccountID, u.AccountID)
		}
	}
	restrictedOff, _ := offlineToken(t, s, sys, in.WorkspaceARI, s.Users()[1].AccountID)
	restricted := searchKeys(t, srv.URL, prefix, "Bearer "+restrictedOff, restrictedJQL)
	if len(restricted) == 0 || len(restricted) >= len(admin) {
		t.Fatalf("restricted user sees %d of %d", len(restricted), len(admin))
	}
	var bot struct{ AccountID, AccountType string }
	gw(t, s, "GET", "/rest/api/3/myself", sys, nil).status(t, 200).decode(t, &bot)
	if bot.AccountID != in.BotAccountID || bot.AccountType != "app" {
		t.Fatalf("system token acts as %+v, want the bot %s", bot, in.BotAccountID)
	}
	t.Logf("%d user×query comparisons", checked)
}

// TestForgeGatewayRefusals: the gateway takes only live Forge tokens of
// an installed app on its own site; the site URL takes none of them; and
// each refusal changes nothing.
func TestForgeGatewayRefusals(t *testing.T) {
	clock := &fakeClock{t: time.Now()}
	s, srv := newTestSim(t, Options{Issues: 30, Seed: 32})
	s.SetClock(clock.now)
	rm := newForgeRemote(t, s)
	app := testForgeApp(rm)
	in := installForge(t, s, app)
	capp := newTestApp(t, srv.URL, "connect-app")
	cin := capp.install(s)
	sys := rm.last("/forge/events").Header.Get("x-forge-oauth-system")
	other, _ := newTestSim(t, Options{Issues: 30, Seed: 33})
	orm := newForgeRemote(t, other)
	installForge(t, other, testForgeApp(orm))
	foreign := orm.last("/forge/events").Header.Get("x-forge-oauth-system")
	restrictedOff, _ := offlineToken(t, s, sys, in.WorkspaceARI, s.Users()[1].AccountID)
	prefix := "/ex/jira/" + s.CloudID()

	for _, tc := range []struct {
		name, path, auth string
		want             int
	}{
		{"no credentials", prefix + "/rest/api/3/myself", "", 401},
		{"HTTP Basic", prefix + "/rest/api/3/myself", basicAuth(s.Users()[0]), 401},
		{"Connect JWT", prefix + "/rest/api/3/myself", appJWT(t, cin, "GET", "/rest/api/3/myself"), 401},
		{"Connect bearer", prefix + "/rest/api/3/myself", bearerFor(t, srv.URL, cin, s.Users()[0].AccountID, "READ"), 401},
		{"garbage bearer", prefix + "/rest/api/3/myself", "Bearer not-a-token", 401},
		{"another site's token", prefix + "/rest/api/3/myself", "Bearer " + foreign, 401},
		{"Forge token on the site URL", "/rest/api/3/myself", "Bearer " + sys, 401},
		{"another cloudId", "/ex/jira/" + other.CloudID() + "/rest/api/3/myself", "Bearer " + sys, 404},
		{"outside /rest", prefix + "/_sim/users", "Bearer " + sys, 404},
		{"restricted user, other project's issue", prefix + "/rest/api/3/issue/" + s.ProjectKeys()[2] + "-1", "Bearer " + restrictedOff, 404},
	} {
		if r := call(t, srv.URL, "GET", tc.path, tc.auth, nil); r.resp.StatusCode != tc.want {
			t.Errorf("%s: HTTP %d, want %d: %s", tc.name, r.resp.StatusCode, tc.want, r.body)
		}
	}

	// Writes need write:jira-work; without it the issue is not created.
	count := func() int {
		return len(searchKeys(t, srv.URL, "", basicAuth(s.Users()[0]), "project = "+s.ProjectKeys()[0]))
	}
	before := count()
	nwRemote := newForgeRemote(t, s)
	nwRemote.appID = "ari:cloud:ecosystem::app/" + s.uuidFrom("no-write-app")
	noWrite := testForgeApp(nwRemote)
	noWrite.Scopes = slices.DeleteFunc(slices.Clone(noWrite.Scopes), func(sc string) bool { return sc == "write:jira-work" })
	nw := installForge(t, s, noWrite)
	nwSys, _, err := s.forgeTokenFor(nw.ID)
	if err != nil {
		t.Fatal(err)
	}
	issue := map[string]any{"fields": map[string]any{"project": map[string]string{"key": s.ProjectKeys()[0]}, "summary": "via Forge", "issuetype": map[string]string{"name": "Task"}}}
	if r := gw(t, s, "POST", "/rest/api/3/issue", nwSys, issue); r.resp.StatusCode != 403 || count() != before {
		t.Fatalf("write without write:jira-work: %d, issues %d → %d", r.resp.StatusCode, before, count())
	}
	if r := gw(t, s, "POST", "/rest/api/3/issue", sys, issue); r.resp.StatusCode != 201 || count() != before+1 {
		t.Fatalf("write with write:jira-work: %d %s", r.resp.StatusCode, r.body)
	}

	// Expiry: the token works until its exp and not after.
	if r := gw(t, s, "GET", "/rest/api/3/myself", sys, nil); r.resp.StatusCode != 200 {
		t.Fatalf("live token: %d", r.resp.StatusCode)
	}
	clock.advance(tokenExp(t, sys).Sub(clock.now()))
	if r := gw(t, s, "GET", "/rest/api/3/myself", sys, nil); r.resp.StatusCode != 401 || !strings.Contains(string(r.body), "expired") {
		t.Fatalf("expired token: %d %s", r.resp.StatusCode, r.body)
	}
	// After uninstall, even a fresh token is refused.
	fresh, _, err := s.forgeTokenFor(in.ID)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.UninstallForge(context.Background(), in.ID); err != nil {
		t.Fatal(err)
	}
	if r := gw(t, s, "GET", "/rest/api/3/myself", fresh, nil); r.resp.StatusCode != 401 {
		t.Fatalf("token of an uninstalled app: %d", r.resp.StatusCode)
	}
}

// forgeTokenFor mints a system token the way a trigger would (tests).
func (s *Sim) forgeTokenFor(id string) (string, time.Time, error) {
	in, err := s.liveForge(id)
	if err != nil {
		return "", time.Time{}, err
	}
	tok, exp := s.mintForgeToken(in, tokenSystem, -1, in.botScope, s.ForgeTimings().SystemTokenTTL)
	return tok, exp, nil
}
