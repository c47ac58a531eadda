package cli_test

import (
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"ferry/internal/cli"
)

func runCLI(env map[string]string, args ...string) (string, string, error) {
	var out, errb bytes.Buffer
	err := cli.Run(context.Background(), append([]string{"ferry"}, args...), envFunc(env), nil, &out, &errb)
	return out.String(), errb.String(), err
}

// TestReqlogShowListsMetadataAndNeverDecrypts serves a request and finds its
// entry with `ferry reqlog show`. Decrypting is no longer possible from the
// CLI, whatever is given: it needs a signed-in staff member in the console.
func TestReqlogShowListsMetadataAndNeverDecrypts(t *testing.T) {
	env := map[string]string{"FERRY_DATA_DIR": filepath.Join(t.TempDir(), "data"), "USER": "alice"}
	base, _ := startServe(t, env)
	code, _ := get(t, base+"/odata/nosuch/Issues?$top=1&jwt=eyJhbGciOiJIUzI1NiJ9.eyJpc3MiOiJ4In0.c2lnbmF0dXJl")
	if code < 400 {
		t.Fatalf("status %d", code)
	}
	var id string
	for i := 0; i < 50 && id == ""; i++ {
		out, _, err := runCLI(env, "reqlog", "show", "--tenant", "-")
		if err != nil {
			t.Fatal(err)
		}
		for _, line := range strings.Split(out, "\n") {
			if strings.Contains(line, "/odata/") {
				id = strings.Fields(line)[0]
				if strings.Contains(line, "$top") || strings.Contains(line, "eyJhbGci") {
					t.Errorf("metadata shows the request: %s", line)
				}
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	if id == "" {
		t.Fatal("the request never appeared in `ferry reqlog show`")
	}
	for _, args := range [][]string{
		{"--decrypt", id},
		{"--decrypt", id, "--reason", "ticket 17: OData 404 investigation"},
	} {
		out, stderr, err := runCLI(env, append([]string{"reqlog", "show"}, args...)...)
		if cli.ExitCode(err) != 2 || !strings.Contains(err.Error(), "/console/reqlog/"+id) || !strings.Contains(err.Error(), "signed-in staff member") {
			t.Errorf("%v: %v", args, err)
		}
		if strings.Contains(out+stderr, "$top") || strings.Contains(out+stderr, "jwt") {
			t.Errorf("%v printed the request: %s %s", args, out, stderr)
		}
	}
	if out, _, err := runCLI(env, "jobs", "run", "reqlog.retention"); err != nil || !strings.Contains(out, "done") {
		t.Errorf("jobs run reqlog.retention: %q %v", out, err)
	}
}
