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

// TestReqlogShowListsAndDecryptsOnlyWithAReason serves a request, finds its
// entry with `ferry reqlog show` and decrypts it: refused without a reason,
// then shown with secrets removed after the reason is given.
func TestReqlogShowListsAndDecryptsOnlyWithAReason(t *testing.T) {
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
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	if id == "" {
		t.Fatal("the request never appeared in `ferry reqlog show`")
	}
	if _, _, err := runCLI(env, "reqlog", "show", "--decrypt", id); cli.ExitCode(err) != 2 || !strings.Contains(err.Error(), "--reason") {
		t.Fatalf("decrypt without reason: %v", err)
	}
	out, stderr, err := runCLI(env, "reqlog", "show", "--decrypt", id, "--reason", "ticket 17: OData 404 investigation")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "jwt=[redacted]") || !strings.Contains(out, "$top=1") || strings.Contains(out, "eyJhbGci") ||
		!strings.Contains(stderr, "recorded (operator alice)") {
		t.Errorf("decrypted:\n%s\n%s", out, stderr)
	}
	if _, _, err := runCLI(env, "reqlog", "show", "--decrypt", "20200101-00000000000000000000000000000000", "--reason", "an old request from 2020"); err == nil ||
		!strings.Contains(err.Error(), "past the retention window") {
		t.Errorf("expired entry: %v", err)
	}
	if out, _, err := runCLI(env, "jobs", "run", "reqlog.retention"); err != nil || !strings.Contains(out, "done") {
		t.Errorf("jobs run reqlog.retention: %q %v", out, err)
	}
}
