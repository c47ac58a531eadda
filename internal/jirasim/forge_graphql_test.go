package jirasim

import (
	"encoding/json"
	"strings"
	"testing"
)

func gql(t testing.TB, s *Sim, token, query string, vars map[string]any) result {
	t.Helper()
	auth := ""
	if token != "" {
		auth = "Bearer " + token
	}
	return call(t, s.BaseURL(), "POST", "/graphql", auth, map[string]any{"query": query, "variables": vars})
}

// TestOfflineUserAuthTokenAnswersWhatWasAsked: the documented mutation
// gets the documented payload; a smaller selection gets only its fields,
// aliases rename them, and the token acts as the user.
func TestOfflineUserAuthTokenAnswersWhatWasAsked(t *testing.T) {
	s, _ := newTestSim(t, Options{Issues: 20, Seed: 41})
	rm := newForgeRemote(t, s)
	in := installForge(t, s, testForgeApp(rm))
	sys := rm.last("/forge/events").Header.Get("x-forge-oauth-system")
	user := s.Users()[2]
	input := map[string]any{"input": map[string]any{"contextIds": []string{in.WorkspaceARI}, "userId": user.AccountID}}

	r := gql(t, s, sys, offlineMutation, input).status(t, 200)
	var full map[string]map[string]map[string]any
	r.decode(t, &full)
	p := full["data"]["offlineUserAuthToken"]
	tok, _ := claim(p, "authToken", "token").(string)
	if p["success"] != true || p["errors"] != nil || tok == "" || claim(p, "authToken", "ttl") != float64(900) || len(p) != 3 {
		t.Fatalf("payload %s", r.body)
	}
	var me struct{ AccountID string }
	gw(t, s, "GET", "/rest/api/3/myself", tok, nil).status(t, 200).decode(t, &me)
	if me.AccountID != user.AccountID {
		t.Fatalf("the offline token acts as %s", me.AccountID)
	}

	// Only what is selected, in selection order, under aliases.
	r = gql(t, s, sys, `mutation M($input: OfflineUserAuthTokenInput!) { t: offlineUserAuthToken(input: $input) { authToken { token } ok: success } }`, input).status(t, 200)
	if !strings.HasPrefix(string(r.body), `{"data":{"t":{"authToken":{"token":"`) || !strings.HasSuffix(string(r.body), `"},"ok":true}}}`) {
		t.Fatalf("projection: %s", r.body)
	}
	// Inline input literal, several operations picked by name, __typename.
	q := `query Other { x } mutation Inline { offlineUserAuthToken(input: {contextIds: ["` + in.WorkspaceARI + `"], userId: "` + user.AccountID + `"}) { __typename success } }`
	body := call(t, s.BaseURL(), "POST", "/graphql", "Bearer "+sys, map[string]any{"query": q, "operationName": "Inline"}).status(t, 200).body
	if string(body) != `{"data":{"offlineUserAuthToken":{"__typename":"OfflineUserAuthTokenPayload","success":true}}}` {
		t.Fatalf("inline input: %s", body)
	}
	// The workspace/{cloudId} form an Atlassian engineer suggested works too.
	alt := map[string]any{"input": map[string]any{"contextIds": []string{"ari:cloud:jira:" + s.CloudID() + ":workspace/" + s.CloudID()}, "userId": user.AccountID}}
	if b := gql(t, s, sys, offlineMutation, alt).status(t, 200).body; !strings.Contains(string(b), `"success":true`) {
		t.Fatalf("workspace/{cloudId}: %s", b)
	}
	st := s.ForgeStats()
	if st.GraphQLCalls != 4 || st.Impersonations[user.AccountID] != 4 || st.TokensIssued["offline"] != 4 {
		t.Fatalf("stats %+v", st)
	}
}

// TestOfflineUserAuthTokenRefusals: each refusal is the documented
// success:false payload (or an HTTP/GraphQL error) and issues no token.
func TestOfflineUserAuthTokenRefusals(t *testing.T) {
	s, _ := newTestSim(t, Options{Issues: 20, Users: 12, Seed: 42})
	rm := newForgeRemote(t, s)
	in := installForge(t, s, testForgeApp(rm))
	sys := rm.last("/forge/events").Header.Get("x-forge-oauth-system")
	resp, err := s.InvokeForge(t.Context(), in.ID, "ferry-admin", s.Users()[0].AccountID, ForgeRequest{Method: "GET", Path: "/forge/ui/x"})
	if err != nil || resp.Status != 200 {
		t.Fatal(resp, err)
	}
	userTok := rm.last("/forge/ui/x").Header.Get("x-forge-oauth-user")
	other, _ := newTestSim(t, Options{Issues: 20, Seed: 43})
	orm := newForgeRemote(t, other)
	oin := installForge(t, other, testForgeApp(orm))
	foreign := orm.last("/forge/events").Header.Get("x-forge-oauth-system")
	noImp := testForgeApp(newForgeRemote(t, s))
	noImpRemote := newForgeRemote(t, s)
	noImpRemote.appID = "ari:cloud:ecosystem::app/" + s.uuidFrom("no-impersonation")
	noImp = testForgeApp(noImpRemote)
	noImp.Impersonation = nil
	installForge(t, s, noImp)
	noImpSys := noImpRemote.last("/forge/events").Header.Get("x-forge-oauth-system")

	var closed, service User
	for _, u := range s.Users() {
		if u.Closed && closed.AccountID == "" {
			closed = u
		}
	}
	service = s.Users()[3]
	if err := s.SetServiceAccount(service.AccountID, true); err != nil {
		t.Fatal(err)
	}
	good := s.Users()[2].AccountID
	input := func(ctx, user string) map[string]any {
		return map[string]any{"input": map[string]any{"contextIds": []string{ctx}, "userId": user}}
	}
	s.ResetForgeStats()
	for _, tc := range []struct {
		name, token, query string
		vars               map[string]any
		status             int
		want               string // in the body
	}{
		{"no token", "", offlineMutation, input(in.WorkspaceARI, good), 401, "Unauthorized"},
		{"another site's system token", foreign, offlineMutation, input(in.WorkspaceARI, good), 401, "Unauthorized"},
		{"another site's context", sys, offlineMutation, input(oin.WorkspaceARI, good), 200, "Could not load permissions"},
		{"site ARI as context", sys, offlineMutation, input("ari:cloud:jira::site/"+s.CloudID(), good), 200, "Could not load permissions"},
		{"installation ARI as context", sys, offlineMutation, input(in.ID, good), 200, "Could not load permissions"},
		{"user token", userTok, offlineMutation, input(in.WorkspaceARI, good), 200, "needs the app system token"},
		{"unknown user", sys, offlineMutation, input(in.WorkspaceARI, "712020:nobody"), 200, "does not exist"},
		{"closed user", sys, offlineMutation, input(in.WorkspaceARI, closed.AccountID), 200, "does not exist"},
		{"service account", sys, offlineMutation, input(in.WorkspaceARI, service.AccountID), 200, "Service accounts"},
		{"no allowImpersonation", noImpSys, offlineMutation, input(in.WorkspaceARI, good), 200, "allowImpersonation"},
		{"no contextIds", sys, offlineMutation, map[string]any{"input": map[string]any{"userId": good}}, 200, "contextIds is required"},
		{"variable missing", sys, offlineMutation, nil, 200, "was not provided"},
		{"a query", sys, `{ me { id } }`, nil, 200, "only the offlineUserAuthToken mutation"},
		{"unknown field", sys, `mutation { somethingElse { id } }`, nil, 200, "somethingElse"},
		{"unknown subfield", sys, `mutation($input: OfflineUserAuthTokenInput!) { offlineUserAuthToken(input: $input) { token } }`, input(in.WorkspaceARI, good), 200, "is not defined on type OfflineUserAuthTokenPayload"},
		{"no selection", sys, `mutation($input: OfflineUserAuthTokenInput!) { offlineUserAuthToken(input: $input) }`, input(in.WorkspaceARI, good), 200, "selection of subfields"},
		{"syntax", sys, `mutation { offlineUserAuthToken(input: $input) { success }`, nil, 400, "Syntax error"},
		{"fragment", sys, `mutation { ...F } fragment F on Mutation { x }`, nil, 400, "fragments"},
	} {
		if tc.name == "closed user" && closed.AccountID == "" {
			t.Fatal("the dataset has no closed account")
		}
		r := gql(t, s, tc.token, tc.query, tc.vars)
		if r.resp.StatusCode != tc.status || !strings.Contains(string(r.body), tc.want) {
			t.Errorf("%s: HTTP %d %s, want %d with %q", tc.name, r.resp.StatusCode, r.body, tc.status, tc.want)
		}
		if tc.status == 200 && strings.Contains(string(r.body), `"success"`) && !strings.Contains(string(r.body), `"success":false`) {
			t.Errorf("%s: not a refusal: %s", tc.name, r.body)
		}
	}
	st := s.ForgeStats()
	if st.TokensIssued["offline"] != 0 || st.GraphQLCalls != 18 {
		t.Fatalf("refusals issued %d tokens; %d calls counted", st.TokensIssued["offline"], st.GraphQLCalls)
	}
	if err := s.SetServiceAccount(service.AccountID, false); err != nil {
		t.Fatal(err)
	}
	if b := gql(t, s, sys, offlineMutation, input(in.WorkspaceARI, service.AccountID)).body; !strings.Contains(string(b), `"success":true`) {
		t.Fatalf("after clearing the service-account flag: %s", b)
	}
}

// FuzzParseGraphQL: the parser never panics, and whatever it accepts it
// accepts again identically (no hidden state).
func FuzzParseGraphQL(f *testing.F) {
	for _, seed := range []string{
		offlineMutation,
		`{ a }`, `query Q($x: [Int!]! = [1, 2]) @d(a: 1) { a(b: {c: "d", e: [true, null, ENUM]}) { f: g } }`,
		`mutation { offlineUserAuthToken(input: {contextIds: ["x"], userId: "\u00e9\n"}) { success } }`,
		`# comment` + "\n" + `mutation { a(b: """block "" string""") }`, `mutation { ...F }`, `{ a(b: -1.5e3) }`, "\ufeff{ a }",
		`{`, `{ a(b: ) }`, `mutation ($a: String, $a: String) { b }`,
	} {
		f.Add(seed, "")
	}
	f.Fuzz(func(t *testing.T, q, name string) {
		op1, err1 := parseGraphQL(q, name)
		op2, err2 := parseGraphQL(q, name)
		if (err1 == nil) != (err2 == nil) {
			t.Fatal("parse is not deterministic")
		}
		if err1 != nil {
			return
		}
		if op1.kind != op2.kind || op1.name != op2.name || len(op1.sel) != len(op2.sel) || len(op1.sel) == 0 {
			t.Fatalf("unstable or empty parse: %+v / %+v", op1, op2)
		}
		_, _ = json.Marshal(op1.kind)
	})
}
