package jirasim

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"strings"
	"testing"
	"time"
)

func TestCLIServesAndInstalls(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	pr, pw := io.Pipe()
	var stderr bytes.Buffer
	done := make(chan error, 1)
	go func() {
		done <- RunCLI(ctx, []string{"--addr", "127.0.0.1:0", "--issues", "120", "--projects", "2", "--users", "5", "--seed", "3", "--latency", "1ms", "--jitter", "1ms", "--json"}, pw, &lockedWriter{w: &stderr})
		pw.Close()
	}()
	line, err := bufio.NewReader(pr).ReadString('\n')
	if err != nil {
		t.Fatal(err)
	}
	go io.Copy(io.Discard, pr)
	var first struct {
		BaseURL string `json:"base_url"`
		Users   []struct {
			Email     string `json:"email"`
			APIToken  string `json:"api_token"`
			AccountID string `json:"account_id"`
			Admin     bool   `json:"admin"`
		} `json:"users"`
		Forge map[string]string `json:"forge"`
	}
	if err := json.Unmarshal([]byte(line), &first); err != nil || first.BaseURL == "" || len(first.Users) == 0 || !first.Users[0].Admin {
		t.Fatalf("first line %q: %v", line, err)
	}
	if first.Forge["jwks_url"] != first.BaseURL+"/forge/.well-known/jwks.json" || first.Forge["graphql_url"] != first.BaseURL+"/graphql" {
		t.Errorf("forge URLs %v", first.Forge)
	}
	call(t, first.Forge["jwks_url"], "GET", "", "", nil).status(t, 200)
	u := User{Email: first.Users[0].Email, APIToken: first.Users[0].APIToken}
	var count struct{ Count int }
	call(t, first.BaseURL, "POST", "/rest/api/3/search/approximate-count", basicAuth(u), map[string]string{"jql": "created > 2000-01-01"}).status(t, 200).decode(t, &count)
	if count.Count != 120 {
		t.Errorf("count %d", count.Count)
	}
	app := newTestApp(t, first.BaseURL, "cli-app")
	var out bytes.Buffer
	if err := RunCLI(ctx, []string{"install", "--sim", first.BaseURL, "--app", app.srv.URL}, &out, io.Discard); err != nil {
		t.Fatalf("install: %v", err)
	}
	if !strings.Contains(out.String(), "installed cli-app") || !strings.Contains(out.String(), "/jira/apps/cli-app/home") {
		t.Errorf("install output: %s", out.String())
	}
	if err := RunCLI(ctx, []string{"install", "--sim", first.BaseURL, "--app", app.srv.URL, "--variant", "alg-none"}, io.Discard, io.Discard); err == nil || !strings.Contains(err.Error(), "401") {
		t.Errorf("broken variant: %v", err)
	}
	var inst []Installation
	call(t, first.BaseURL, "GET", "/_sim/installations", "", nil).status(t, 200).decode(t, &inst)
	if len(inst) != 1 || inst[0].AddonKey != "cli-app" {
		t.Errorf("installations %+v", inst)
	}
	if strings.Contains(out.String(), inst[0].SharedSecret) {
		t.Error("install output shows the shared secret")
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("RunCLI: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("RunCLI did not stop")
	}
	if strings.Contains(stderr.String(), u.APIToken) {
		t.Error("API token in logs")
	}
}

func TestControlAPI(t *testing.T) {
	s, srv := newTestSim(t, Options{Issues: 30, Projects: 2, Users: 4, Seed: 1})
	app := newTestApp(t, srv.URL, "ctl")
	call(t, srv.URL, "POST", "/_sim/install", "", map[string]string{"app": app.srv.URL, "variant": "expired"}).status(t, 502)
	call(t, srv.URL, "POST", "/_sim/install", "", map[string]string{"app": app.srv.URL, "variant": "nonsense"}).status(t, 400)
	call(t, srv.URL, "POST", "/_sim/install", "", map[string]string{"app": app.srv.URL}).status(t, 200)
	call(t, srv.URL, "POST", "/_sim/license", "", map[string]string{"addon_key": "ctl", "state": "expired"}).status(t, 200)
	if in, _ := s.Installation("ctl"); in.License != "expired" {
		t.Errorf("license %s", in.License)
	}
	call(t, srv.URL, "POST", "/_sim/disable", "", map[string]string{"addon_key": "ctl"}).status(t, 200)
	call(t, srv.URL, "POST", "/_sim/enable", "", map[string]string{"addon_key": "ctl"}).status(t, 200)
	var pu struct{ URL string }
	call(t, srv.URL, "GET", "/_sim/page-url?addon_key=ctl&module_key=admin", "", nil).status(t, 200).decode(t, &pu)
	if !strings.HasPrefix(pu.URL, app.srv.URL+"/app/admin?") {
		t.Errorf("page url %s", pu.URL)
	}
	var ref IssueRef
	call(t, srv.URL, "POST", "/_sim/issues", "", map[string]string{"project": s.ProjectKeys()[1], "summary": "canary"}).status(t, 201).decode(t, &ref)
	if ref.ID != "10031" {
		t.Errorf("created %+v", ref)
	}
	var users []UserCredentials
	call(t, srv.URL, "GET", "/_sim/users", "", nil).status(t, 200).decode(t, &users)
	if len(users) != 4 || !users[0].Admin {
		t.Errorf("users %+v", users)
	}
	call(t, srv.URL, "POST", "/_sim/knobs", "", map[string]any{"latency": "2ms", "rate": 50, "fault_rate": 0}).status(t, 200)
	if k := s.getKnobs(); k.Latency != 2*time.Millisecond || k.Rate != 50 {
		t.Errorf("knobs %+v", k)
	}
	call(t, srv.URL, "POST", "/_sim/knobs", "", map[string]any{"fault_rate": 2}).status(t, 400)
	call(t, srv.URL, "POST", "/_sim/rename", "", map[string]string{"base_url": "http://localhost:1"}).status(t, 200)
	if s.BaseURL() != "http://localhost:1" {
		t.Error("rename ignored")
	}
	call(t, srv.URL, "POST", "/_sim/uninstall", "", map[string]string{"addon_key": "ctl"}).status(t, 200)
	call(t, srv.URL, "POST", "/_sim/uninstall", "", map[string]string{"addon_key": "ctl"}).status(t, 404)
}
