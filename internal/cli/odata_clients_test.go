package cli

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"
)

// nodeModules finds interop/node_modules, or skips (fails in CI) without it.
func nodeModules(t *testing.T) string {
	t.Helper()
	_, file, _, _ := runtime.Caller(0)
	dir := filepath.Join(filepath.Dir(file), "..", "..", "interop", "node_modules")
	_, nodeErr := exec.LookPath("node")
	if _, err := os.Stat(filepath.Join(dir, "ts-odatajs")); err != nil || nodeErr != nil {
		if os.Getenv("FERRY_REQUIRE_INTEROP") == "1" {
			t.Fatalf("node or interop/node_modules missing (run: cd interop && npm ci)")
		}
		t.Skip("interop clients not installed: run `cd interop && npm ci` (bash .ci/run does)")
	}
	return dir
}

func TestRealODataClientsReadTheFeed(t *testing.T) {
	mods := nodeModules(t)
	d, _, _ := startTestDemo(t, 300)
	cmd := exec.Command("node", "testdata/odata_clients.js", d.info.ODataURL, d.info.Token)
	cmd.Env = append(os.Environ(), "NODE_PATH="+mods)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("node clients: %v\n%s", err, stderr.String())
	}
	var got struct {
		Olingo struct {
			Properties            []string
			Pages, Rows, Distinct int
		}
		Light struct{ Count, Top7, CountInPage int }
		Ojs   struct{ Rows int }
	}
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	// Apache Olingo's client read $metadata and followed @odata.nextLink
	// through every page (40 rows each, as it asked with Prefer).
	if got.Olingo.Pages < 3 || got.Olingo.Rows != 300 || got.Olingo.Distinct != 300 {
		t.Errorf("ts-odatajs: %+v", got.Olingo)
	}
	want := map[string]bool{"Key:Edm.String": true, "Created:Edm.DateTimeOffset": true, "StoryPoints:Edm.Decimal": true,
		"Labels:Collection(Edm.String)": true, "ReviewDate:Edm.Date": true, "Id:Edm.Int64": true, "IsSubtask:Edm.Boolean": true}
	for _, p := range got.Olingo.Properties {
		delete(want, p)
	}
	if len(want) > 0 {
		t.Errorf("ts-odatajs $metadata lacks %v (got %v)", want, got.Olingo.Properties)
	}
	if got.Light.Count != 300 || got.Light.Top7 != 7 || got.Light.CountInPage != 300 {
		t.Errorf("@odata/client: %+v", got.Light)
	}
	if got.Ojs.Rows != 3 {
		t.Errorf("o.js with %%24top: %+v", got.Ojs)
	}

	// The OASIS odata-csdl converter reports nothing on the live $metadata.
	_, _, meta := fetch(t, d.info.ODataURL+"$metadata", d.info.Token)
	check := exec.Command("node", "../export/odata/testdata/csdl_check.js")
	check.Env = append(os.Environ(), "NODE_PATH="+mods)
	check.Stdin = bytes.NewReader(meta)
	var cerr bytes.Buffer
	check.Stderr = &cerr
	if _, err := check.Output(); err != nil || cerr.Len() > 0 {
		t.Errorf("odata-csdl on live $metadata: %v\n%s", err, cerr.String())
	}
}
