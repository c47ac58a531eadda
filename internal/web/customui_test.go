package web_test

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"ferry/internal/web"
)

// TestCustomUIBuildIsCurrent: forge/static is what forge/build makes of
// today's templates, stylesheet and app.js. The pages and stylesheet are
// compared always; the bundle (app.js with @forge/bridge from npm) when
// node and interop/node_modules are there to rebuild it. Run forge/build
// after changing any of them.
func TestCustomUIBuildIsCurrent(t *testing.T) {
	dir := filepath.Join("..", "..", "forge", "static")
	diff, err := web.CustomUIDiff(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(diff) > 0 {
		t.Fatalf("forge/static is out of date (run forge/build): %v", diff)
	}
	for _, res := range []string{"data-sources", "admin"} {
		html, _ := os.ReadFile(filepath.Join(dir, res, "index.html"))
		if bytes.Contains(html, []byte("ferry-token")) || bytes.Contains(html, []byte("all.js")) || bytes.Contains(html, []byte("<script>")) {
			t.Errorf("%s/index.html must carry no token, no Connect script and no inline script", res)
		}
	}
	modules, _ := filepath.Abs(filepath.Join("..", "..", "interop", "node_modules"))
	node, err := exec.LookPath("node")
	missing := ""
	if err != nil {
		missing = "node is not installed"
	} else if _, err := os.Stat(filepath.Join(modules, "esbuild")); err != nil {
		missing = "interop/node_modules/esbuild is missing (cd interop && npm ci)"
	}
	if missing != "" {
		if os.Getenv("FERRY_REQUIRE_INTEROP") == "1" {
			t.Fatal("the Custom UI bundle cannot be rebuilt: " + missing)
		}
		t.Skip("the Custom UI bundle is not compared: " + missing)
	}
	var stderr bytes.Buffer
	cmd := exec.Command(node, filepath.Join("..", "..", "forge", "bundle.mjs"))
	cmd.Stderr = &stderr
	bundle, err := cmd.Output()
	if err != nil {
		t.Fatalf("bundle: %v: %s", err, stderr.String())
	}
	if !bytes.Contains(bundle, []byte("invokeType")) || !bytes.Contains(bundle, []byte("callBridge")) || !bytes.Contains(bundle, []byte("ferryForge")) {
		t.Fatal("the bundle must carry @forge/bridge's invokeRemote and Ferry's transport")
	}
	diff, err = web.CustomUIDiff(dir, bundle)
	if err != nil {
		t.Fatal(err)
	}
	if len(diff) > 0 {
		t.Fatalf("forge/static is out of date (run forge/build): %v", strings.Join(diff, ", "))
	}
}
