package cli

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// startTestDemo runs `ferry demo` in-process on free ports with its own data
// directory, logging at debug level into the returned buffer.
func startTestDemo(t *testing.T, issues int) (*demo, string, *LogBuffer) {
	t.Helper()
	return startTestDemoWith(t, demoOptions{Issues: issues})
}

// startTestDemoWith starts a demo with o's test options (Issues, sliceRows,
// simOptions); the addresses and data directory are the test's.
func startTestDemoWith(t testing.TB, o demoOptions) (*demo, string, *LogBuffer) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "demo")
	logs := &LogBuffer{}
	ctx, cancel := context.WithCancel(context.Background())
	e := env{getenv: func(k string) string {
		return map[string]string{"FERRY_LOG_FORMAT": "json", "FERRY_LOG_LEVEL": "debug"}[k]
	}, stdout: io.Discard, stderr: logs}
	o.AppAddr, o.SimAddr, o.DataDir = "127.0.0.1:0", "127.0.0.1:0", dir
	d, err := startDemo(ctx, e, o)
	if err != nil {
		cancel()
		t.Fatalf("demo: %v\n%s", err, logs)
	}
	t.Cleanup(func() {
		cancel()
		if err := d.wait(); err != nil {
			t.Errorf("demo shut down with %v", err)
		}
	})
	return d, dir, logs
}

func fetch(t testing.TB, url, token string, hdr ...string) (int, http.Header, []byte) {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	if token != "" {
		req.SetBasicAuth("powerbi", token)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, b
}

type odataPage struct {
	Count    *int             `json:"@odata.count"`
	Value    []map[string]any `json:"value"`
	NextLink string           `json:"@odata.nextLink"`
}

// allRows follows nextLinks from url and returns every row.
func allRows(t testing.TB, url, token string, hdr ...string) ([]map[string]any, int) {
	t.Helper()
	var rows []map[string]any
	pages := 0
	for url != "" {
		code, _, body := fetch(t, url, token, hdr...)
		if code != 200 {
			t.Fatalf("GET %s = %d: %s", url, code, body)
		}
		var p odataPage
		if err := json.Unmarshal(body, &p); err != nil {
			t.Fatalf("page %d: %v", pages, err)
		}
		rows = append(rows, p.Value...)
		url = p.NextLink
		pages++
		if pages > 1000 {
			t.Fatal("nextLink loop")
		}
	}
	return rows, pages
}

func TestDemoGivesAWorkingFeedOnAFreshMachine(t *testing.T) {
	d, dir, _ := startTestDemo(t, 300)
	b, err := os.ReadFile(filepath.Join(dir, "demo.json"))
	if err != nil {
		t.Fatal(err)
	}
	st, _ := os.Stat(filepath.Join(dir, "demo.json"))
	if st.Mode().Perm() != 0o600 {
		t.Fatalf("demo.json mode %04o: it holds a token", st.Mode().Perm())
	}
	var info map[string]string
	json.Unmarshal(b, &info)
	for _, k := range []string{"app_url", "sim_url", "sim_admin_email", "sim_admin_token", "odata_url", "csv_url", "token",
		"console_url", "staff_user", "staff_password", "staff_totp_secret", "auditor_user", "auditor_password", "auditor_totp_secret"} {
		if info[k] == "" {
			t.Errorf("demo.json lacks %s", k)
		}
	}
	for _, k := range []string{"privacy_url"} {
		if _, ok := info[k]; ok {
			t.Errorf("demo.json has %s for a part that is not built", k)
		}
	}
	rows, _ := allRows(t, info["odata_url"]+"Issues?$select=Key,Summary,Created", info["token"])
	if len(rows) != 300 {
		t.Fatalf("admin token got %d rows, want all 300", len(rows))
	}
	code, hdr, csv := fetch(t, info["csv_url"], info["token"])
	if code != 200 || !strings.HasPrefix(hdr.Get("Content-Type"), "text/csv") {
		t.Fatalf("CSV: %d %s", code, hdr.Get("Content-Type"))
	}
	if lines := strings.Count(string(csv), "\r\n"); lines < 301 {
		t.Fatalf("CSV has %d lines, want header + 300 rows", lines)
	}
	if d.info.Token != info["token"] {
		t.Fatal("printed and written tokens differ")
	}
}

func TestTwoUsersGetDifferentRowsFromTheSameDataSource(t *testing.T) {
	d, _, _ := startTestDemo(t, 400)
	users := d.sim.Users()
	var limited int = -1
	for i, u := range users {
		if !u.Admin && !u.Closed && len(u.Projects) == 1 {
			limited = i
			break
		}
	}
	if limited < 0 {
		t.Fatal("the demo has no single-project user")
	}
	ctx := context.Background()
	tok, _, err := d.app.appAPI.Tokens.Create(ctx, d.tenant, users[limited].AccountID, "limited", 5, 365)
	if err != nil {
		t.Fatal(err)
	}
	all, _ := allRows(t, d.info.ODataURL+"Issues?$select=Key,Project", d.info.Token)
	mine, _ := allRows(t, d.info.ODataURL+"Issues?$select=Key,Project", tok)
	if len(mine) == 0 || len(mine) >= len(all) {
		t.Fatalf("limited user got %d rows, admin %d", len(mine), len(all))
	}
	for _, r := range mine {
		if r["Project"] != users[limited].Projects[0] {
			t.Fatalf("limited user saw %v of project %v", r["Key"], r["Project"])
		}
	}
	code, _, body := fetch(t, d.info.ODataURL+"Issues/$count", tok)
	if code != 200 || string(body) != itoa(len(mine)) {
		t.Fatalf("$count for limited user = %d %s, want %d", code, body, len(mine))
	}
}

func itoa(n int) string { b, _ := json.Marshal(n); return string(b) }

func TestFeedPagesFollowNextLinksWithoutGapsOrRepeats(t *testing.T) {
	d, _, _ := startTestDemo(t, 250)
	rows, pages := allRows(t, d.info.ODataURL+"Issues?$select=Key&$count=true", d.info.Token, "Prefer", "odata.maxpagesize=40")
	if pages != 7 || len(rows) != 250 {
		t.Fatalf("%d rows in %d pages, want 250 in 7", len(rows), pages)
	}
	seen := map[any]bool{}
	for _, r := range rows {
		if seen[r["Key"]] {
			t.Fatalf("%v served twice", r["Key"])
		}
		seen[r["Key"]] = true
	}
	// Following the nextLinks costs Jira what one walk costs: $count=true
	// asks for the count once, not once per page, and the pages read each
	// issue once (O(n), not a re-read of the skipped part per page).
	calls := func(u string) map[string]int64 {
		d.sim.ResetStats()
		got, _ := allRows(t, u, d.info.Token, "Prefer", "odata.maxpagesize=40")
		if len(got) != 250 {
			t.Fatalf("%s: %d rows", u, len(got))
		}
		return d.sim.Stats().Requests
	}
	const search, count = "POST /rest/api/3/search/jql", "POST /rest/api/3/search/approximate-count"
	with := calls(d.info.ODataURL + "Issues?$select=Key&$count=true")
	without := calls(d.info.ODataURL + "Issues?$select=Key")
	if with[search] != without[search] || with[count] > without[count]+1 {
		t.Fatalf("7 pages with $count=true: %d searches and %d counts; without: %d and %d", with[search], with[count], without[search], without[count])
	}
	t.Logf("walk of 250 rows in pages of 40: with $count=true %d searches, %d counts; without %d, %d", with[search], with[count], without[search], without[count])
	if with[search] == 0 || with[search] > 7 {
		t.Fatalf("7 pages of 40 rows cost %d searches of Jira's pages of up to 100", with[search])
	}
	// $top counts across pages; $skip skips from the start.
	top, _ := allRows(t, d.info.ODataURL+"Issues?$select=Key&$top=95", d.info.Token, "Prefer", "odata.maxpagesize=40")
	if len(top) != 95 || top[0]["Key"] != rows[0]["Key"] {
		t.Fatalf("$top=95 gave %d rows", len(top))
	}
	skip, _ := allRows(t, d.info.ODataURL+"Issues?$select=Key&%24skip=245", d.info.Token)
	if len(skip) != 5 || skip[0]["Key"] != rows[245]["Key"] {
		t.Fatalf("$skip=245 gave %d rows", len(skip))
	}
}
