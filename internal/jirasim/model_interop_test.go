package jirasim

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestInteropJiraJSDataModel walks worklogs, comments, the worklog stream,
// boards, sprints, sprint issues, versions, components and users with
// jira.js (its response schemas set to throw), as the admin and as the
// restricted user, and compares what it collected with the sim's own
// answers read here.
func TestInteropJiraJSDataModel(t *testing.T) {
	nodeModules := filepath.Join(repoRoot(t), "interop", "node_modules")
	node, err := exec.LookPath("node")
	_, jerr := os.Stat(filepath.Join(nodeModules, "jira.js", "package.json"))
	if err != nil || jerr != nil {
		if requireInterop() {
			t.Fatalf("interop prerequisites missing: node %v, jira.js %v", err, jerr)
		}
		t.Skip("node or interop/node_modules/jira.js missing (cd interop && npm ci); set FERRY_REQUIRE_INTEROP=1 to make this fatal")
	}
	s, srv := newTestSim(t, Options{Issues: 1200, Projects: 3, Users: 6, Seed: 77})
	users := s.Users()
	// Issues of every project, some with many worklogs or comments.
	var issues []string
	for i := 0; i < 1200 && len(issues) < 30; i += 37 {
		issues = append(issues, strconv.Itoa(10001+i))
	}
	for i := 0; i < 1200 && len(issues) < 36; i++ {
		if s.data.worklogCount(i) > 20 || s.data.commentCount(i) > 10 {
			issues = append(issues, strconv.Itoa(10001+i))
		}
	}
	var sprints []int
	for p := range s.ProjectKeys() {
		sprints = append(sprints, busiestSprint(s, p).ID, sprintID(p, 5))
	}
	type cred struct {
		Email    string `json:"email"`
		APIToken string `json:"api_token"`
	}
	cfg, _ := json.Marshal(map[string]any{
		"base_url": srv.URL, "issues": issues, "sprints": sprints, "projects": s.ProjectKeys(),
		"users": []cred{{users[0].Email, users[0].APIToken}, {users[1].Email, users[1].APIToken}},
	})
	ctx, cancel := context.WithTimeout(t.Context(), 120*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, filepath.Join("testdata", "model_interop.mjs"))
	cmd.Env = append(os.Environ(), "NODE_PATH="+nodeModules, "SIM_MODEL_INTEROP="+string(cfg))
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("node: %v\nstderr:\n%s\nstdout:\n%.2000s", err, stderr.String(), stdout.String())
	}
	lines := strings.Split(strings.TrimSpace(stdout.String()), "\n")
	if len(lines) != 2 {
		t.Fatalf("node printed %d lines:\n%s\n%s", len(lines), stdout.String(), stderr.String())
	}
	for k, u := range []User{users[0], users[1]} {
		var got struct {
			Worklogs, Comments map[string][]string
			SprintIssues       map[string][]string `json:"sprint_issues"`
			Versions           map[string][]string
			Components         map[string][]string
			Boards             []int
			Stream             []int64
			Listed             int
			Users, Emails      int
		}
		if err := json.Unmarshal([]byte(lines[k]), &got); err != nil {
			t.Fatal(err)
		}
		auth := basicAuth(u)
		can := map[string]bool{}
		for _, p := range u.Projects {
			can[p] = true
		}
		c := s.snapshot()
		for _, id := range issues {
			i, _ := strconv.Atoi(id)
			key := c.key(i - 10001)
			visible := can[key[:strings.IndexByte(key, '-')]]
			w, seen := got.Worklogs[id]
			if seen != visible {
				t.Errorf("%s: jira.js read %s's worklogs: %v, may browse: %v", u.DisplayName, key, seen, visible)
				continue
			}
			if !visible {
				continue
			}
			var want []string
			for _, x := range issueWorklogs(t, srv.URL, auth, id, 0) {
				want = append(want, x.ID)
			}
			if !slices.Equal(w, want) {
				t.Errorf("%s %s: jira.js walked worklogs %v, the sim lists %v", u.DisplayName, key, w, want)
			}
			var wantC []string
			for _, x := range issueComments(t, srv.URL, auth, id, 0) {
				wantC = append(wantC, x.ID)
			}
			if !slices.Equal(got.Comments[id], wantC) {
				t.Errorf("%s %s: jira.js walked comments %v, the sim lists %v", u.DisplayName, key, got.Comments[id], wantC)
			}
		}
		stream, _, _ := worklogStream(t, srv.URL, auth, 0)
		if !reflect.DeepEqual(got.Stream, stream) || got.Listed != len(stream) || len(stream) == 0 {
			t.Errorf("%s: jira.js streamed %d worklogs and listed %d, the sim streams %d", u.DisplayName, len(got.Stream), got.Listed, len(stream))
		}
		var boards struct{ Values []struct{ ID int } }
		getJSON(t, srv.URL, "/rest/agile/1.0/board", auth, &boards)
		var wantBoards []int
		for _, b := range boards.Values {
			wantBoards = append(wantBoards, b.ID)
		}
		if !slices.Equal(got.Boards, wantBoards) {
			t.Errorf("%s: jira.js boards %v, want %v", u.DisplayName, got.Boards, wantBoards)
		}
		for _, sp := range sprints {
			rec, _ := s.data.sprintByID(sp)
			ids, seen := got.SprintIssues[strconv.Itoa(sp)]
			if seen != can[s.ProjectKeys()[rec.Project]] {
				t.Errorf("%s: sprint %d read %v, project browsable %v", u.DisplayName, sp, seen, can[s.ProjectKeys()[rec.Project]])
				continue
			}
			var want []string
			for _, i := range s.data.sprintIssues(rec.Project, rec.K) {
				want = append(want, strconv.Itoa(10001+i))
			}
			if seen && !slices.Equal(ids, want) {
				t.Errorf("%s: sprint %d: jira.js %v, want %v", u.DisplayName, sp, ids, want)
			}
		}
		for _, key := range s.ProjectKeys() {
			if _, seen := got.Versions[key]; seen != can[key] {
				t.Errorf("%s: versions of %s read %v, browsable %v", u.DisplayName, key, seen, can[key])
			}
			if can[key] && (len(got.Versions[key]) != 4 || len(got.Components[key]) != 3) {
				t.Errorf("%s: %s has %d versions, %d components", u.DisplayName, key, len(got.Versions[key]), len(got.Components[key]))
			}
		}
		if got.Users != len(users)+len(otherAccounts) || got.Emails == 0 {
			t.Errorf("%s: %d users, %d with an email", u.DisplayName, got.Users, got.Emails)
		}
	}
	if warn := stderr.String(); warn != "" {
		t.Logf("node stderr:\n%s", warn)
	}
}
