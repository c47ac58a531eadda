package jirasim

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestInteropJiraJS pages through the simulator with jira.js over Basic,
// Connect JWT (atlassian-jwt) and an OAuth bearer token.
func TestInteropJiraJS(t *testing.T) {
	nodeModules := filepath.Join(repoRoot(t), "interop", "node_modules")
	node, err := exec.LookPath("node")
	_, jerr := os.Stat(filepath.Join(nodeModules, "jira.js", "package.json"))
	_, aerr := os.Stat(filepath.Join(nodeModules, "atlassian-jwt", "package.json"))
	if err != nil || jerr != nil || aerr != nil {
		if requireInterop() {
			t.Fatalf("interop prerequisites missing: node %v, jira.js %v, atlassian-jwt %v", err, jerr, aerr)
		}
		t.Skip("node or interop/node_modules (jira.js, atlassian-jwt) missing; set FERRY_REQUIRE_INTEROP=1 to make this fatal")
	}
	s, srv := newTestSim(t, Options{Issues: 2500, Projects: 3, Users: 6, Seed: 77})
	app := newTestApp(t, srv.URL, "interop-app")
	in := app.install(s)
	admin, restricted := s.Users()[0], s.Users()[1]
	pageURL, err := s.PageURL(in.AddonKey, "home", restricted.AccountID)
	if err != nil {
		t.Fatal(err)
	}
	cfg, _ := json.Marshal(map[string]string{
		"base_url": srv.URL, "email": admin.Email, "api_token": admin.APIToken,
		"addon_key": in.AddonKey, "shared_secret": in.SharedSecret, "oauth_client_id": in.OAuthClientID,
		"restricted_account_id": restricted.AccountID, "page_url": pageURL,
	})
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, filepath.Join("testdata", "interop.mjs"))
	cmd.Env = append(os.Environ(), "NODE_PATH="+nodeModules, "SIM_INTEROP="+string(cfg))
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("node interop: %v\nstderr:\n%s\nstdout:\n%s", err, stderr.String(), stdout.String())
	}
	var out struct {
		Basic struct {
			AccountID                                                   string `json:"account_id"`
			Fields, IDs, Pages, Count, FullPage, Bulk, Changelogs, Proj int
		}
		JWT struct {
			Keys, Pages int
			Property    map[string]bool
		}
		Bearer struct {
			Keys, Pages int
			Projects    []string
		}
		Page struct {
			QSHOK bool `json:"qsh_ok"`
			Sub   string
		}
	}
	lines := strings.Split(strings.TrimSpace(stdout.String()), "\n")
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &out); err != nil {
		t.Fatalf("node output %q: %v\nstderr: %s", stdout.String(), err, stderr.String())
	}
	raw := map[string]map[string]any{}
	json.Unmarshal([]byte(lines[len(lines)-1]), &raw)
	b := raw["basic"]
	if b["account_id"] != admin.AccountID || b["ids"].(float64) != 2500 || b["count"].(float64) != 2500 || b["pages"].(float64) != 3 ||
		b["full_page"].(float64) != 100 || b["bulk"].(float64) != 100 || b["changelogs"].(float64) == 0 || b["projects"].(float64) != 3 {
		t.Errorf("basic: %v", b)
	}
	if out.JWT.Keys != 2500 || out.JWT.Pages != 4 || !out.JWT.Property["ok"] {
		t.Errorf("jwt: %+v", out.JWT)
	}
	if out.Bearer.Keys == 0 || out.Bearer.Keys >= 2500 || !slices.Equal(out.Bearer.Projects, restricted.Projects) {
		t.Errorf("bearer: %+v (restricted user browses %v)", out.Bearer, restricted.Projects)
	}
	if !out.Page.QSHOK || out.Page.Sub != restricted.AccountID {
		t.Errorf("page url: %+v", out.Page)
	}
	if warn := stderr.String(); warn != "" {
		t.Logf("node stderr:\n%s", warn)
	}
}
