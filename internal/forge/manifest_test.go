package forge_test

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"ferry/internal/forge"
)

// nodeModules finds node and interop/node_modules, or skips (fails in CI).
func nodeModules(t *testing.T, pkg string) (node, modules string) {
	t.Helper()
	modules, _ = filepath.Abs("../../interop/node_modules")
	node, err := exec.LookPath("node")
	missing := ""
	if err != nil {
		missing = "node is not installed"
	} else if _, err := os.Stat(filepath.Join(modules, pkg)); err != nil {
		missing = "interop/node_modules/" + pkg + " is missing (cd interop && npm ci)"
	}
	if missing != "" {
		if os.Getenv("FERRY_REQUIRE_INTEROP") == "1" {
			t.Fatal("interop test cannot run: " + missing)
		}
		t.Skip("interop test skipped: " + missing)
	}
	return node, modules
}

type manifestResult struct {
	Valid  bool     `json:"valid"`
	Errors []string `json:"errors"`
}

// checkManifests validates manifests with @forge/manifest's schema, in one
// node process (compiling the schema takes seconds).
func checkManifests(t *testing.T, ms [][]byte) ([]manifestResult, string) {
	t.Helper()
	node, modules := nodeModules(t, "@forge/manifest")
	texts := make([]string, len(ms))
	for i, m := range ms {
		texts[i] = string(m)
	}
	in, _ := json.Marshal(texts)
	cmd := exec.Command(node, "testdata/manifest_check.js")
	cmd.Env = append(os.Environ(), "NODE_PATH="+modules)
	cmd.Stdin = bytes.NewReader(in)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("node: %v: %s", err, stderr.String())
	}
	var res struct {
		Version string           `json:"version"`
		Results []manifestResult `json:"results"`
	}
	if err := json.Unmarshal(out, &res); err != nil || len(res.Results) != len(ms) {
		t.Fatalf("node output %q: %v", out, err)
	}
	return res.Results, res.Version
}

// TestManifestValidatesAgainstTheForgeSchema: the generated manifest, with
// and without per-region baseUrls, is valid by the schema @forge/manifest
// ships; and the schema check is not a formality — a manifest with a
// mistake Forge would refuse fails it.
func TestManifestValidatesAgainstTheForgeSchema(t *testing.T) {
	var good [][]byte
	for _, o := range []forge.ManifestOptions{
		{AppID: appID, BaseURL: "https://ferry.example.com", AddonKey: "ferry-bi-connector"},
		{AppID: appID, BaseURL: "https://ferry.example.com/", AddonKey: "ferry-bi-connector",
			RegionURLs: map[string]string{"EU": "https://eu.ferry.example.com", "us": "https://us.ferry.example.com"}},
	} {
		m, err := forge.Manifest(o)
		if err != nil {
			t.Fatal(err)
		}
		for _, want := range []string{"allowImpersonation: true", "storage:app", "inScopeEUD: false", "interval: hour",
			"preUninstall:", "avi:forge:installed:app", "key: \"ferry-bi-connector\"", "jira:lifecycle", "appUserToken:", "enabled: true"} {
			if !strings.Contains(string(m), want) {
				t.Errorf("the manifest lacks %q", want)
			}
		}
		if len(o.RegionURLs) > 0 && (!strings.Contains(string(m), `EU: "https://eu.ferry.example.com"`) || !strings.Contains(string(m), `US: "https://us.ferry.example.com"`)) {
			t.Errorf("per-region baseUrls missing:\n%s", m)
		}
		good = append(good, m)
	}
	base := string(good[0])
	bad := map[string]string{
		"unknown interval":    strings.Replace(base, "interval: hour", "interval: minute", 1),
		"unknown region":      strings.Replace(base, `baseUrl: "https://ferry.example.com"`, "baseUrl:\n      default: \"https://ferry.example.com\"\n      MARS: \"https://mars.example\"", 1),
		"remote key too long": strings.Replace(base, "  - key: ferry\n", "  - key: ferry-remote-with-a-key-too-long\n", 1),
		"no runtime":          strings.Replace(base, "  runtime:\n    name: nodejs22.x\n", "", 1),
	}
	var names []string
	all := append([][]byte{}, good...)
	for name, m := range bad {
		if m == base {
			t.Fatalf("%s: the mutation did not apply", name)
		}
		names = append(names, name)
		all = append(all, []byte(m))
	}
	res, version := checkManifests(t, all)
	for i := range good {
		if !res[i].Valid {
			t.Fatalf("the manifest is invalid by @forge/manifest %s: %v\n%s", version, res[i].Errors, good[i])
		}
	}
	for i, name := range names {
		if res[len(good)+i].Valid {
			t.Errorf("%s: the schema check accepted a manifest Forge would refuse", name)
		}
	}
}

func TestManifestRefusesWhatForgeWouldNotCall(t *testing.T) {
	for _, o := range []forge.ManifestOptions{
		{AppID: "0b5d9c54-1111-4222-8333-444455556666", BaseURL: "https://ferry.example.com"},
		{AppID: appID, BaseURL: "http://ferry.example.com"},
		{AppID: appID, BaseURL: "https://ferry.example.com", RegionURLs: map[string]string{"EU": "ftp://eu.example"}},
		{AppID: appID, BaseURL: "https://ferry.example.com?x=1"},
	} {
		if _, err := forge.Manifest(o); err == nil {
			t.Errorf("%+v: accepted", o)
		}
	}
}
