package web

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestSentryBundleMatchesPinnedSDK rebuilds static/sentry.js from the
// @sentry/browser pinned in interop/package.json and compares it with the
// committed file, so the bundle the pages serve is what the pin says.
func TestSentryBundleMatchesPinnedSDK(t *testing.T) {
	root, _ := filepath.Abs("../..")
	if _, err := os.Stat(filepath.Join(root, "interop/node_modules/@sentry/browser/package.json")); err != nil {
		if os.Getenv("FERRY_REQUIRE_INTEROP") == "1" {
			t.Fatal("interop/node_modules/@sentry/browser missing and FERRY_REQUIRE_INTEROP=1 (cd interop && npm ci)")
		}
		t.Skip("interop/node_modules missing (cd interop && npm ci); cannot rebuild the Sentry bundle to compare")
	}
	out := filepath.Join(t.TempDir(), "sentry.js")
	cmd := exec.Command("bash", "sentry/build.sh", out)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("build.sh: %v: %s", err, stderr.String())
	}
	want, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	have, err := os.ReadFile("static/sentry.js")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(have, want) {
		t.Fatalf("static/sentry.js (%d bytes) differs from a fresh build (%d bytes): run bash internal/web/sentry/build.sh and commit it", len(have), len(want))
	}
	// The SDK is the pinned version and exposes what sentry-init.js calls.
	pin, _ := os.ReadFile(filepath.Join(root, "interop/package.json"))
	if !bytes.Contains(pin, []byte(`"@sentry/browser": "`)) {
		t.Fatal("interop/package.json does not pin @sentry/browser")
	}
	for _, name := range []string{"init", "setUser", "setTag", "captureException"} {
		if !strings.Contains(string(have), name) {
			t.Errorf("bundle does not mention %s", name)
		}
	}
}
