package cli_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"ferry/internal/cli"
	"ferry/internal/staff"
	"ferry/internal/store"
)

func TestStaffAddPrintsAOneTimeEnrolmentLinkAndRefusesBadInput(t *testing.T) {
	env := map[string]string{"FERRY_DATA_DIR": filepath.Join(t.TempDir(), "data"), "USER": "root", "FERRY_CONSOLE_URL": "https://console.example.test"}
	out, _, err := runCLI(env, "staff", "add", "--user", "alice", "--role", "support", "--name", "Alice")
	if err != nil || !regexp.MustCompile(`https://console\.example\.test/console/enrol/[A-Za-z0-9_-]{40,}`).MatchString(out) {
		t.Fatalf("staff add: %v\n%s", err, out)
	}
	end := time.Now().UTC().AddDate(0, 6, 0).Format(time.DateOnly)
	if _, _, err := runCLI(env, "staff", "add", "--user", "sub", "--role", "developer", "--subcontractor", "--company", "Contractor GmbH",
		"--contract", "C-9", "--contract-end", end); err != nil {
		t.Fatal(err)
	}
	for _, bad := range [][]string{
		{"staff", "add", "--user", "bob", "--role", "root"},
		{"staff", "add", "--user", "bob@example.com", "--role", "support"},
		{"staff", "add", "--user", "bob", "--role", "support", "--subcontractor"},
		{"staff", "add", "--user", "alice", "--role", "admin"},
		{"staff", "add", "--role", "admin"},
		{"staff", "frobnicate"},
	} {
		if _, _, err := runCLI(env, bad...); err == nil {
			t.Errorf("%v accepted", bad)
		} else if code := cli.ExitCode(err); code != 2 && !strings.Contains(err.Error(), "exists") {
			t.Errorf("%v: exit %d: %v", bad, code, err)
		}
	}
	out, _, err = runCLI(env, "staff", "list")
	if err != nil || !strings.Contains(out, "alice") || !strings.Contains(out, "Contractor GmbH, C-9, ends "+end) || strings.Contains(out, "bob") ||
		strings.Count(out, "account not enrolled yet") != 2 {
		t.Errorf("staff list: %v\n%s", err, out)
	}
	if _, _, err := runCLI(env, "staff", "disable", "--user", "sub"); err != nil {
		t.Fatal(err)
	}
	if out, _, _ := runCLI(env, "staff", "list"); !strings.Contains(out, "account disabled") {
		t.Errorf("after disable:\n%s", out)
	}
}

// TestAuditVerifyCatchesTamperingAndSurvivesKEKRotation writes a trail
// through the CLI, checkpoints it, and tampers with the SQLite file as
// someone holding it would.
func TestAuditVerifyCatchesTamperingAndSurvivesKEKRotation(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	env := map[string]string{"FERRY_DATA_DIR": dir, "USER": "root"}
	for i := range 4 {
		if _, _, err := runCLI(env, "staff", "add", "--user", fmt.Sprint("member", i), "--role", "auditor"); err != nil {
			t.Fatal(err)
		}
	}
	if out, _, err := runCLI(env, "audit", "checkpoint"); err != nil || !strings.Contains(out, "checkpoint written: 4 rows") {
		t.Fatalf("checkpoint: %v %s", err, out)
	}
	if _, err := os.Stat(filepath.Join(dir, "audit-checkpoints", "audit-checkpoint-00000000000000000004.json")); err != nil {
		t.Fatalf("checkpoint file: %v", err)
	}
	if out, _, err := runCLI(env, "audit", "verify"); err != nil || !strings.Contains(out, "OK") {
		t.Fatalf("verify: %v %s", err, out)
	}
	// The signing key is sealed under KEK version 1: rotation moves it, so
	// version 1 can be retired and the checkpoints still verify.
	if out, _, err := runCLI(env, "keys", "rotate-kek"); err != nil {
		t.Fatalf("rotate: %v %s", err, out)
	}
	if out, _, err := runCLI(env, "keys", "retire-kek", "1"); err != nil {
		t.Fatalf("retire: %v %s", err, out)
	}
	if out, _, err := runCLI(env, "audit", "verify"); err != nil || !strings.Contains(out, "OK") {
		t.Fatalf("verify after KEK rotation and retirement: %v %s", err, out)
	}
	tamper := func(q string) {
		db, err := store.Open(context.Background(), store.Options{SQLitePath: filepath.Join(dir, "ferry.db")})
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		for _, s := range []string{`DROP TRIGGER IF EXISTS audit_trail_no_update`, `DROP TRIGGER IF EXISTS audit_trail_no_delete`, q} {
			if _, err := db.SQL.Exec(s); err != nil {
				t.Fatal(err)
			}
		}
	}
	tamper(`UPDATE audit_trail SET reason = 'role admin' WHERE seq = 2`)
	out, _, err := runCLI(env, "audit", "verify")
	if err == nil || cli.ExitCode(err) != 1 || !strings.Contains(out, "first broken row 2") {
		t.Errorf("modified row: %v\n%s", err, out)
	}
	tamper(`DELETE FROM audit_trail WHERE seq >= 2`)
	out, _, err = runCLI(env, "audit", "verify")
	if err == nil || !strings.Contains(out, "first broken row 2") || !strings.Contains(out, "cut off") {
		t.Errorf("cut-off tail: %v\n%s", err, out)
	}
}

// TestServeRunsTheConsoleOnItsOwnListener: the console answers on
// FERRY_CONSOLE_ADDR and not on the public listener, and a member added with
// `ferry staff add` enrols and signs in there.
func TestServeRunsTheConsoleOnItsOwnListener(t *testing.T) {
	env := map[string]string{"FERRY_DATA_DIR": filepath.Join(t.TempDir(), "data"), "USER": "root"}
	base, logs := startServe(t, env)
	var consoleURL string
	for i := 0; i < 100 && consoleURL == ""; i++ {
		for _, line := range strings.Split(logs.String(), "\n") {
			var rec struct{ Msg, URL string }
			if json.Unmarshal([]byte(line), &rec) == nil && rec.Msg == "staff console listening" {
				consoleURL = strings.TrimSuffix(rec.URL, "/console/")
			}
		}
		if consoleURL == "" {
			time.Sleep(50 * time.Millisecond) // waiting for a log line, not asserting an absence
		}
	}
	if consoleURL == "" || consoleURL == base {
		t.Fatalf("console URL %q (app %q)\n%s", consoleURL, base, logs)
	}
	if code, _ := get(t, base+"/console/login"); code != 404 {
		t.Errorf("the public listener serves the console: %d", code)
	}
	if code, body := get(t, consoleURL+"/console/login"); code != 200 || !strings.Contains(body, `id="login-form"`) {
		t.Fatalf("console sign-in page: %d", code)
	}
	// The console listens on a port chosen at start; the CLI learns it from
	// FERRY_CONSOLE_URL, as an operator's would from the fixed address.
	cliEnv := map[string]string{"FERRY_DATA_DIR": env["FERRY_DATA_DIR"], "USER": "root", "FERRY_CONSOLE_URL": consoleURL}
	out, _, err := runCLI(cliEnv, "staff", "add", "--user", "carl", "--role", "support")
	if err != nil {
		t.Fatal(err)
	}
	link := regexp.MustCompile(`http://\S+/console/enrol/\S+`).FindString(out)
	if !strings.HasPrefix(link, consoleURL) {
		t.Fatalf("enrolment link %q is not on the console %q", link, consoleURL)
	}
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar}
	page := func(method, u string, form url.Values) (int, string) {
		t.Helper()
		var res *http.Response
		var err error
		if method == "GET" {
			res, err = c.Get(u)
		} else {
			res, err = c.PostForm(u, form)
		}
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res.StatusCode, string(b)
	}
	csrf := regexp.MustCompile(`name="csrf" value="([^"]+)"`)
	_, body := page("GET", link, nil)
	secret := regexp.MustCompile(`id="totp-secret">([A-Z2-7]+)<`).FindStringSubmatch(body)
	if secret == nil {
		t.Fatalf("enrol page: %.300s", body)
	}
	code, _ := staff.TOTPCode(secret[1], time.Now().Add(-30*time.Second))
	if st, b := page("POST", link, url.Values{"csrf": {csrf.FindStringSubmatch(body)[1]}, "password": {"a long enough passphrase"},
		"password2": {"a long enough passphrase"}, "code": {code}}); st != 200 || !strings.Contains(b, `id="enrolled"`) {
		t.Fatalf("enrol: %d %.300s", st, b)
	}
	_, body = page("GET", consoleURL+"/console/login", nil)
	code, _ = staff.TOTPCode(secret[1], time.Now())
	if st, b := page("POST", consoleURL+"/console/login", url.Values{"csrf": {csrf.FindStringSubmatch(body)[1]}, "username": {"carl"},
		"password": {"a long enough passphrase"}, "code": {code}, "next": {"/console/tenants"}}); st != 200 || !strings.Contains(b, `id="tenants"`) {
		t.Fatalf("sign in: %d %.300s", st, b)
	}
}
