package web_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"ferry/internal/cli"
)

// The browser test drives the pages in Debian's Chromium as a user would:
// inside the simulated Jira frame of `ferry demo`, through the real API.
// Screenshots go to a temp directory; FERRY_UPDATE_SCREENSHOTS=1 writes them
// to docs/screenshots instead.

func chromiumPath(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"/usr/bin/chromium", "chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("FERRY_REQUIRE_INTEROP") == "1" {
		t.Fatal("chromium not found and FERRY_REQUIRE_INTEROP=1: apt-get install -y chromium")
	}
	t.Skip("chromium not found (apt-get install -y chromium); skipping the browser test")
	return ""
}

type demoInfo struct {
	AppURL        string `json:"app_url"`
	SimURL        string `json:"sim_url"`
	CSVURL        string `json:"csv_url"`
	Platform      string `json:"platform"`
	SimAdminEmail string `json:"sim_admin_email"`
	ODataURL      string `json:"odata_url"`
	AppPageURL    string `json:"app_page_url"`
	Token         string `json:"token"`
}

// startDemo runs `ferry demo --platform connect` in-process and waits for
// its demo.json: these tests are the Connect pages' (Connect keeps working
// as the bridge); forge_browser_test.go runs the demo on Forge.
func startDemo(t *testing.T) demoInfo {
	t.Helper()
	d, _ := startDemoDir(t)
	return d
}

// startDemoDir is startDemo, also returning the demo's data directory.
func startDemoDir(t *testing.T) (demoInfo, string) {
	return startDemoOn(t, "connect")
}

// startDemoOn runs the demo with the app installed through platform.
func startDemoOn(t *testing.T, platform string) (demoInfo, string) {
	t.Helper()
	dir := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	var logs syncBuf
	done := make(chan error, 1)
	go func() {
		done <- cli.Run(ctx, []string{"ferry", "demo", "--data-dir", dir, "--issues", "500", "--platform", platform},
			func(string) string { return "" }, nil, io.Discard, &logs)
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(15 * time.Second):
			t.Error("ferry demo did not stop within 15 s")
		}
	})
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case err := <-done:
			t.Fatalf("ferry demo stopped: %v\n%s", err, logs.String())
		default:
		}
		var d demoInfo
		if b, err := os.ReadFile(filepath.Join(dir, "demo.json")); err == nil && json.Unmarshal(b, &d) == nil {
			if d.AppPageURL == "" {
				t.Fatalf("demo.json has no app_page_url: the pages are not wired (pagesBuilt)")
			}
			return d, dir
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("no demo.json after 30 s\n%s", logs.String())
	return demoInfo{}, ""
}

type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) { s.mu.Lock(); defer s.mu.Unlock(); return s.b.Write(p) }
func (s *syncBuf) String() string              { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

// tab is one Chromium tab showing the simulated Jira page with Ferry's page
// framed in it.
type tab struct {
	t     *testing.T
	ctx   context.Context
	frame *chromedp.Node // the app's iframe
	shots string
}

func (b *tab) step(what string, d time.Duration, steps ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, d)
	defer cancel()
	if err := chromedp.Do(ctx, steps...); err != nil {
		b.failShot()
		b.t.Fatalf("%s: %v", what, err)
	}
}

func runIn[T any](b *tab, what string, a chromedp.Action[T]) T {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 10*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, a)
	if err != nil {
		b.failShot()
		b.t.Fatalf("%s: %v", what, err)
	}
	return v
}

// in runs a query inside the app's iframe.
func (b *tab) in() chromedp.QueryOption { return chromedp.FromNode(b.frame) }

// open loads a simulated Jira page and finds the app's iframe in it.
func (b *tab) open(u string) {
	b.t.Helper()
	b.step("open "+u, 15*time.Second, chromedp.Navigate(u), chromedp.WaitVisible(chromedp.ID("app-frame")))
	nodes := runIn(b, "find the app frame", chromedp.Nodes(chromedp.CSS("#app-frame")))
	b.frame = nodes[0]
	b.step("app page loads", 15*time.Second, chromedp.WaitReady(chromedp.CSS("body[data-page]"), b.in()))
}

// shot saves a screenshot of the framed app page, scrolled to sel.
func (b *tab) shot(name, sel string) {
	b.t.Helper()
	if sel != "" {
		b.step("scroll to "+sel, 5*time.Second, chromedp.ScrollIntoView(chromedp.CSS(sel), b.in()))
	}
	png := runIn(b, "screenshot "+name, chromedp.Screenshot(chromedp.CSS("body")))
	if err := os.WriteFile(filepath.Join(b.shots, name), png, 0o644); err != nil {
		b.t.Fatal(err)
	}
}

func (b *tab) failShot() {
	ctx, cancel := context.WithTimeout(b.ctx, 5*time.Second)
	defer cancel()
	if png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100)); err == nil {
		p := filepath.Join(os.TempDir(), "ferry-browser-failure.png")
		os.WriteFile(p, png, 0o644)
		b.t.Logf("screenshot of the failure: %s", p)
	}
}

var anyEmail = regexp.MustCompile(`[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}`)

// noEmail fails if the framed page shows or holds an email address.
func (b *tab) noEmail(where string) {
	b.t.Helper()
	text := runIn(b, "page text", chromedp.Text(chromedp.CSS("body"), b.in()))
	html := runIn(b, "page html", chromedp.OuterHTML(chromedp.CSS("html"), b.in()))
	for _, s := range []string{text, html} {
		if e := anyEmail.FindString(s); e != "" {
			b.t.Errorf("%s shows an email address: %q", where, e)
		}
	}
}

func TestDataSourcesPageInChromium(t *testing.T) {
	bin := chromiumPath(t)
	if testing.Short() {
		t.Skip("browser test: not in -short mode")
	}
	d := startDemo(t)
	b, problems := openBrowser(t, bin)
	ctx := b.ctx

	// 1. The data sources page, framed by the simulated Jira, as the admin.
	b.open(d.AppPageURL)
	b.step("the page knows who is signed in", 15*time.Second,
		chromedp.WaitVisible(chromedp.CSS("#new-source"), b.in()),
		chromedp.WaitVisible(chromedp.CSS("article.source"), b.in()))
	if who := runIn(b, "whoami", chromedp.Text(chromedp.CSS("#whoami"), b.in())); !strings.HasPrefix(who, "Signed in as ") {
		t.Errorf("whoami = %q", who)
	}

	// 2. Create a data source; the first try has bad JQL, and Jira's own
	// message shows next to the field.
	b.step("open the form", 10*time.Second,
		chromedp.Click(chromedp.CSS("#new-source"), b.in()),
		chromedp.WaitVisible(chromedp.CSS("#source-form"), b.in()),
		chromedp.SendKeys(chromedp.CSS("#src-name"), "Browser test: recent issues", b.in()),
		chromedp.SendKeys(chromedp.CSS("#src-jql"), "this is not JQL", b.in()),
		chromedp.Click(chromedp.CSS("#tbl-changelog"), b.in()),
		chromedp.Click(chromedp.CSS("#tbl-worklogs"), b.in()),
		chromedp.Click(chromedp.CSS("#tbl-statushistory"), b.in()),
		chromedp.WaitVisible(chromedp.CSS(`#field-options button[data-field="summary"]`), b.in()))
	b.shot("data-source-tables.png", `fieldset[aria-describedby="err-tables"]`)
	for _, f := range []struct{ search, id string }{{"summ", "summary"}, {"status", "status"}, {"created", "created"}} {
		b.step("pick "+f.id, 10*time.Second,
			chromedp.SetValue(chromedp.CSS("#field-search"), f.search, b.in()), // fires input, as typing does
			chromedp.Click(chromedp.CSS(`#field-options button[data-field="`+f.id+`"]`), b.in()),
			chromedp.WaitVisible(chromedp.CSS(`#field-selected li[data-field="`+f.id+`"]`), b.in()))
	}
	picked := runIn(b, "selected fields", chromedp.AttributesAll(chromedp.CSSAll("#field-selected li"), b.in()))
	var order []string
	for _, a := range picked {
		order = append(order, a["data-field"])
	}
	if strings.Join(order, ",") != "summary,status,created" {
		t.Errorf("selected fields = %v, want summary,status,created in that order", order)
	}
	b.step("save with bad JQL", 15*time.Second,
		chromedp.Click(chromedp.CSS("#source-save"), b.in()),
		chromedp.WaitVisible(chromedp.CSS("#err-jql"), b.in()))
	jqlErr := runIn(b, "JQL error", chromedp.Text(chromedp.CSS("#err-jql"), b.in()))
	if !strings.HasPrefix(jqlErr, "Jira says:") {
		t.Errorf("JQL error shown inline = %q, want Jira's message", jqlErr)
	}
	if inv := runIn(b, "aria-invalid", chromedp.AttributeValue(chromedp.CSS("#src-jql"), "aria-invalid", b.in())); inv.Value != "true" {
		t.Errorf("JQL textarea not marked invalid: %+v", inv)
	}
	b.shot("jql-error.png", "#source-form")

	b.step("save with good JQL", 15*time.Second,
		chromedp.SetValue(chromedp.CSS("#src-jql"), `created >= "2001-01-01" ORDER BY key ASC`, b.in()),
		chromedp.Click(chromedp.CSS("#source-save"), b.in()),
		chromedp.WaitNotVisible(chromedp.CSS("#source-form"), b.in()),
		chromedp.WaitVisible(chromedp.CSS("article.source + article.source"), b.in()))
	var feedURL string
	for _, a := range runIn(b, "feed URLs", chromedp.AttributesAll(chromedp.CSSAll("input.feed-url"), b.in())) {
		if a["value"] != d.ODataURL {
			feedURL = a["value"]
		}
	}
	if !strings.HasPrefix(feedURL, d.AppURL+"/odata/") || !strings.HasSuffix(feedURL, "/") {
		t.Fatalf("feed URL of the new source = %q", feedURL)
	}
	srcID := strings.TrimSuffix(strings.TrimPrefix(feedURL, d.AppURL+"/odata/"), "/")

	// Its history names the admin by display name.
	b.step("show history", 10*time.Second,
		chromedp.Click(chromedp.CSS(`article[data-id="`+srcID+`"] button[data-action="history"]`), b.in()),
		chromedp.WaitVisible(chromedp.CSS(`#hist-`+srcID+` li`), b.in()))
	hist := runIn(b, "history", chromedp.Text(chromedp.CSS(`#hist-`+srcID), b.in()))
	if !strings.Contains(hist, "Created by ") || strings.Contains(hist, "Unknown user") {
		t.Errorf("history = %q", hist)
	}
	b.shot("data-sources.png", "#sources-h")

	// 3. Create a token; it is shown once, with a warning.
	b.step("create a token", 15*time.Second,
		chromedp.SendKeys(chromedp.CSS("#token-label"), "Power BI (browser test)", b.in()),
		chromedp.SetValue(chromedp.CSS("#token-days"), "7", b.in()),
		chromedp.Click(chromedp.CSS("#token-create"), b.in()),
		chromedp.WaitVisible(chromedp.CSS("#token-new"), b.in()),
		chromedp.WaitVisible(chromedp.CSS(`#tokens tr[data-token]`), b.in()))
	token := runIn(b, "token", chromedp.Value(chromedp.CSS("#token-value"), b.in()))
	if len(token) < 20 {
		t.Fatalf("token shown = %q", token)
	}
	if warn := runIn(b, "warning", chromedp.Text(chromedp.CSS("#token-new"), b.in())); !strings.Contains(warn, "will not show this token again") {
		t.Errorf("token panel = %q", warn)
	}
	rows := runIn(b, "token rows", chromedp.Text(chromedp.CSS("#tokens"), b.in()))
	if !strings.Contains(rows, "Power BI (browser test)") || strings.Contains(rows, token) {
		t.Errorf("token list = %q (want the label, never the token)", rows)
	}
	b.shot("token-created.png", "#tokens")
	b.noEmail("data sources page")
	if d.SimAdminEmail != "" {
		if text := runIn(b, "page text", chromedp.Text(chromedp.CSS("body"), b.in())); strings.Contains(text, d.SimAdminEmail) {
			t.Error("the page shows the signed-in user's email")
		}
	}

	// 4. The feed works with the token the page showed.
	req, _ := http.NewRequest("GET", feedURL+"Issues?$top=5", nil)
	req.SetBasicAuth("powerbi", token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var page struct {
		Value []map[string]any `json:"value"`
	}
	if resp.StatusCode != 200 || json.Unmarshal(body, &page) != nil || len(page.Value) == 0 || len(page.Value) > 5 {
		t.Fatalf("GET %sIssues?$top=5 with the new token = %d: %.300s", feedURL, resp.StatusCode, body)
	}
	if _, ok := page.Value[0]["Summary"]; !ok {
		t.Errorf("row has no Summary column: %v", page.Value[0])
	}
	// The tables ticked on the form, and only those, are the feed's sets.
	req, _ = http.NewRequest("GET", feedURL, nil)
	req.SetBasicAuth("powerbi", token)
	if resp, err = http.DefaultClient.Do(req); err != nil {
		t.Fatal(err)
	}
	var svcDoc struct {
		Value []struct {
			Name string `json:"name"`
		} `json:"value"`
	}
	json.NewDecoder(resp.Body).Decode(&svcDoc)
	resp.Body.Close()
	var sets []string
	for _, v := range svcDoc.Value {
		sets = append(sets, v.Name)
	}
	if strings.Join(sets, ",") != "Issues,Changelog,Worklogs,StatusHistory" {
		t.Errorf("the new source's entity sets = %v, want the ticked tables Issues, Changelog, Worklogs, StatusHistory", sets)
	}

	// 5. Edit it (the history grows), then delete it after confirming: its
	// feed stops at once.
	card := `article[data-id="` + srcID + `"] `
	b.step("edit", 15*time.Second,
		chromedp.Click(chromedp.CSS(card+`button[data-action="edit"]`), b.in()),
		chromedp.WaitVisible(chromedp.CSS("#source-form"), b.in()),
		chromedp.SetValue(chromedp.CSS("#src-name"), "Browser test: renamed", b.in()),
		chromedp.Click(chromedp.CSS("#source-save"), b.in()),
		chromedp.WaitNotVisible(chromedp.CSS("#source-form"), b.in()),
		chromedp.WaitReady(chromedp.CSS(`#sources[aria-busy="false"]`), b.in()), // the list has reloaded
		chromedp.Click(chromedp.CSS(card+`button[data-action="history"]`), b.in()),
		chromedp.WaitVisible(chromedp.CSS(`#hist-`+srcID+` li + li`), b.in()))
	if h := runIn(b, "history", chromedp.Text(chromedp.CSS(`#hist-`+srcID), b.in())); !strings.Contains(h, "Edited by ") {
		t.Errorf("history after edit = %q", h)
	}
	if name := runIn(b, "name", chromedp.Text(chromedp.CSS(card+"h3"), b.in())); name != "Browser test: renamed" {
		t.Errorf("card name after edit = %q", name)
	}
	b.step("delete", 15*time.Second,
		chromedp.Click(chromedp.CSS(card+`button[data-action="delete"]`), b.in()),
		chromedp.WaitVisible(chromedp.CSS(card+`.confirm .btn-danger`), b.in()))
	b.shot("delete-confirm.png", card+".confirm")
	b.step("confirm delete", 15*time.Second,
		chromedp.Click(chromedp.CSS(card+`.confirm .btn-danger`), b.in()),
		chromedp.WaitNotPresent(chromedp.CSS(card), b.in()))
	req, _ = http.NewRequest("GET", feedURL+"Issues?$top=1", nil)
	req.SetBasicAuth("powerbi", token)
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != 404 {
		t.Errorf("feed of a deleted source: %v %v, want 404", resp.Status, err)
	} else {
		resp.Body.Close()
	}

	// 6. The admin page, as the admin and as someone else.
	adminURL := strings.Replace(d.AppPageURL, "/data-sources?", "/admin?", 1)
	b.open(adminURL)
	b.step("settings load", 15*time.Second, chromedp.WaitVisible(chromedp.CSS("#settings-form"), b.in()))
	// Until an administrator says otherwise: administrators create data
	// sources, everyone may pull feeds.
	if v := runIn(b, "creators", chromedp.JavascriptAttribute[bool](chromedp.CSS(`input[name="creators-mode"][value="admins"]`), "checked", b.in())); !v {
		t.Errorf("creators mode is not 'only administrators' by default")
	}
	if v := runIn(b, "exporters", chromedp.JavascriptAttribute[bool](chromedp.CSS(`input[name="exporters-mode"][value="everyone"]`), "checked", b.in())); !v {
		t.Errorf("exporters mode is not 'everyone' by default")
	}
	b.step("save settings", 10*time.Second,
		chromedp.Click(chromedp.CSS("#settings-save"), b.in()),
		chromedp.WaitVisible(chromedp.CSS("#settings-status"), b.in()))
	// The quota panel: today's points, by data source.
	b.step("quota panel", 15*time.Second, chromedp.WaitVisible(chromedp.CSS("#quota-sources"), b.in()))
	if s := runIn(b, "quota summary", chromedp.Text(chromedp.CSS("#quota-summary"), b.in())); !strings.Contains(s, "points of Jira's API quota") {
		t.Errorf("quota summary = %q", s)
	}
	b.shot("admin.png", "")
	b.noEmail("admin page")

	options := runIn(b, "user switcher", chromedp.AttributesAll(chromedp.CSSAll("#user-switcher option")))
	admin, _ := url.Parse(d.AppPageURL)
	var other string
	for _, o := range options {
		if o["value"] != admin.Query().Get("as") {
			other = o["value"]
			break
		}
	}
	if other == "" {
		t.Fatal("the simulated Jira lists no second user")
	}
	b.open(strings.Replace(adminURL, "as="+admin.Query().Get("as"), "as="+url.QueryEscape(other), 1))
	b.step("non-admin is told why", 15*time.Second, chromedp.WaitVisible(chromedp.CSS("#not-admin"), b.in()))
	if msg := runIn(b, "not-admin", chromedp.Text(chromedp.CSS("#not-admin"), b.in())); !strings.Contains(msg, "Only Jira administrators") {
		t.Errorf("non-admin message = %q", msg)
	}
	b.shot("admin-not-admin.png", "")

	// The same user on the data sources page: the feeds, without the
	// controls they may not use.
	b.open(strings.Replace(d.AppPageURL, "as="+admin.Query().Get("as"), "as="+url.QueryEscape(other), 1))
	b.step("reader view", 15*time.Second,
		chromedp.WaitVisible(chromedp.CSS("#cannot-create"), b.in()),
		chromedp.WaitVisible(chromedp.CSS("article.source"), b.in()),
		chromedp.WaitNotPresent(chromedp.CSS(`button[data-action="edit"]`), b.in()))
	if hidden := runIn(b, "new-source hidden", chromedp.AttributeValue(chromedp.CSS("#new-source"), "hidden", b.in())); !hidden.Exists {
		t.Error("a user who may not create data sources sees the Create button")
	}
	b.shot("data-sources-reader.png", "")
	b.noEmail("reader view")

	for _, p := range problems() {
		t.Errorf("browser console: %s", p)
	}
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		t.Error("the browser test ran out of time")
	}
}

// openBrowser starts headless Chromium for one test (75 s at most) and
// returns a tab on it, and what its console reported as exceptions or CSP
// violations. Screenshots go to a temp directory, or docs/screenshots with
// FERRY_UPDATE_SCREENSHOTS=1.
func openBrowser(t *testing.T, bin string) (*tab, func() []string) {
	t.Helper()
	shots := t.TempDir()
	if os.Getenv("FERRY_UPDATE_SCREENSHOTS") == "1" {
		shots = filepath.Join("..", "..", "docs", "screenshots")
		if err := os.MkdirAll(shots, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(bin), chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU, chromedp.NoFirstRun,
		chromedp.Flag("disable-quic", true), chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true), chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true), chromedp.Flag("hide-scrollbars", true),
		chromedp.UserDataDir(t.TempDir()), chromedp.WindowSize(1280, 1400))
	t.Cleanup(cancelAlloc)
	ctx, cancel := chromedp.NewContext(alloc)
	t.Cleanup(cancel)
	ctx, cancelTimeout := context.WithTimeout(ctx, 75*time.Second)
	t.Cleanup(cancelTimeout)
	console := chromedp.Console(ctx)
	var (
		mu       sync.Mutex
		problems []string
	)
	go func() {
		for m, err := range console {
			if err != nil {
				return
			}
			s := m.String()
			if m.IsException() || strings.Contains(s, "Content Security Policy") || strings.Contains(s, "Content-Security-Policy") {
				mu.Lock()
				problems = append(problems, s)
				mu.Unlock()
			}
		}
	}()
	b := &tab{t: t, ctx: ctx, shots: shots}
	if err := chromedp.Do(ctx); err != nil { // start the browser under ctx
		t.Fatalf("start chromium: %v", err)
	}
	return b, func() []string {
		mu.Lock()
		defer mu.Unlock()
		return append([]string(nil), problems...)
	}
}
