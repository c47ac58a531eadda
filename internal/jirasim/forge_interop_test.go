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

// TestInteropForgeKVS drives the storage REST API with Atlassian's own
// @forge/kvs client (interop/node_modules): its requests must be understood
// and our answers must decode into what it returns to an app, including
// "not found" as undefined, query paging and its error codes.
func TestInteropForgeKVS(t *testing.T) {
	nodeModules := filepath.Join(repoRoot(t), "interop", "node_modules")
	node, err := exec.LookPath("node")
	_, kerr := os.Stat(filepath.Join(nodeModules, "@forge", "kvs", "package.json"))
	if err != nil || kerr != nil {
		if requireInterop() {
			t.Fatalf("interop prerequisites missing: node %v, @forge/kvs %v", err, kerr)
		}
		t.Skip("node or interop/node_modules/@forge/kvs missing (cd interop && npm ci); set FERRY_REQUIRE_INTEROP=1 to make this fatal")
	}
	s, _ := newTestSim(t, Options{Issues: 5, Seed: 91})
	rm := newForgeRemote(t, s)
	in := installForge(t, s, testForgeApp(rm))
	cfg, _ := json.Marshal(map[string]string{"storage_url": s.ForgeStorageURL(), "system_token": rm.last("/forge/events").Header.Get("x-forge-oauth-system")})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, filepath.Join("testdata", "forge_kvs.mjs"))
	cmd.Env = append(os.Environ(), "NODE_PATH="+nodeModules, "SIM_FORGE_KVS="+string(cfg))
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("node: %v\nstderr:\n%s\nstdout:\n%s", err, stderr.String(), stdout.String())
	}
	var out struct {
		Get     map[string]any
		GetMeta map[string]any
		Missing bool
		Query   struct {
			Keys  []string
			Pages int
		}
		GetOne        any
		AfterDelete   bool
		DeleteMissing string
		BadKey        string
		TooDeep       string
		Paths         []string
	}
	lines := strings.Split(strings.TrimSpace(stdout.String()), "\n")
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &out); err != nil {
		t.Fatalf("node output %q: %v", stdout.String(), err)
	}
	if out.Get["name"] != "Sales" || out.GetMeta["key"] != "source:1" || out.GetMeta["createdAt"] == nil || out.GetMeta["updatedAt"] == nil || !out.Missing {
		t.Errorf("get: %+v / %+v / missing %v", out.Get, out.GetMeta, out.Missing)
	}
	var want []string
	for i := range 12 {
		want = append(want, "ds:"+leftPad(i)+"="+itoa(i))
	}
	if !slices.Equal(out.Query.Keys, want) || out.Query.Pages != 3 || out.GetOne != true {
		t.Errorf("query: %+v, getOne %v", out.Query, out.GetOne)
	}
	if !out.AfterDelete || out.DeleteMissing != "none" || out.BadKey != "INVALID_KEY" || out.TooDeep != "MAX_DEPTH" {
		t.Errorf("delete/errors: %+v", out)
	}
	if !slices.Equal(out.Paths, []string{"/api/v1/delete", "/api/v1/get", "/api/v1/query", "/api/v1/set"}) {
		t.Errorf("paths the client used: %v", out.Paths)
	}
	if got := s.ForgeStorage(in.ID); len(got) != 13 {
		t.Errorf("the store holds %d keys after the run, want 13", len(got))
	}
	if warn := stderr.String(); warn != "" {
		t.Logf("node stderr:\n%s", warn)
	}
}

func leftPad(i int) string { return strings.Repeat("0", 3-len(itoa(i))) + itoa(i) }

func itoa(i int) string { b, _ := json.Marshal(i); return string(b) }
