package cli

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"testing"
	"time"
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
			Properties                         []string
			Pages, Rows, Distinct, ChangePages int
			Sorted, Changes                    []string
		}
		Light struct {
			Count, Top7, CountInPage int
			Sorted, Changes          []string
		}
		Ojs struct {
			Rows            int
			Sorted, Changes []string
		}
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
	// What each client read with $orderby, $skip and $top equals the truth
	// computed here from the full walk.
	issues := fullWalk(t, d, "Issues?$select=Key,Created,Updated")
	changes := fullWalk(t, d, "Changelog?$select=Id")
	byTime := func(prop string, desc bool) []string {
		rows := slices.Clone(issues)
		sort.SliceStable(rows, func(i, j int) bool {
			a, _ := time.Parse(time.RFC3339Nano, rows[i][prop].(string))
			b, _ := time.Parse(time.RFC3339Nano, rows[j][prop].(string))
			if desc {
				return a.After(b)
			}
			return a.Before(b)
		})
		return keysOf(rows, "Key")
	}
	ids := keysOf(changes, "Id")
	quoted := func(ss []string) []string {
		out := make([]string, len(ss))
		for i, s := range ss {
			out[i] = strconv.Quote(s)
		}
		return out
	}
	for _, c := range []struct {
		client    string
		got, want []string
	}{
		{"ts-odatajs $orderby=Created desc, 40 per page", got.Olingo.Sorted, byTime("Created", true)},
		{"ts-odatajs Changelog $skip=5&$top=97, 40 per page", got.Olingo.Changes, ids[5:102]},
		{"@odata/client $orderby=Updated asc&$skip=10&$top=25", got.Light.Sorted, byTime("Updated", false)[10:35]},
		{"@odata/client Changelog $skip=20&$top=15", got.Light.Changes, ids[20:35]},
		{"o.js $orderby=Created asc&$top=12", got.Ojs.Sorted, byTime("Created", false)[:12]},
		{"o.js Changelog $skip=7&$top=9", got.Ojs.Changes, ids[7:16]},
	} {
		if !slices.Equal(quoted(c.got), c.want) {
			t.Errorf("%s: got %d rows %v…, want %d", c.client, len(c.got), c.got[:min(3, len(c.got))], len(c.want))
		}
	}
	if got.Olingo.ChangePages < 3 {
		t.Errorf("ts-odatajs read the Changelog in %d pages, want several of 40", got.Olingo.ChangePages)
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
