package web_test

import (
	"bytes"
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"ferry/internal/cli"
)

// TestImmediateDeletionFromTheAdminPageInChromium: a Jira administrator
// opens Ferry's admin page inside the (simulated) Jira, types the site's
// host name and asks for immediate deletion. A wrong name leaves the button
// disabled; the right one deletes: the feed stops at once, and the purge,
// recorded as the site admin's, completes within moments. A user who is not
// an administrator never sees the panel.
func TestImmediateDeletionFromTheAdminPageInChromium(t *testing.T) {
	bin := chromiumPath(t)
	if testing.Short() {
		t.Skip("browser test: not in -short mode")
	}
	d, dir := startDemoDir(t)
	b, problems := openBrowser(t, bin)
	adminURL := strings.Replace(d.AppPageURL, "/data-sources?", "/admin?", 1)
	page, _ := url.Parse(d.AppPageURL)
	tenants := func() string {
		var out, errb bytes.Buffer
		if err := cli.Run(context.Background(), []string{"ferry", "tenants", "list"},
			func(k string) string { return map[string]string{"FERRY_DATA_DIR": dir}[k] }, nil, &out, &errb); err != nil {
			t.Fatalf("ferry tenants list: %v\n%s", err, errb.String())
		}
		return out.String()
	}
	if !strings.Contains(tenants(), "active") {
		t.Fatalf("before: %s", tenants())
	}

	// Not an administrator: no panel.
	var other string
	b.open(adminURL)
	for _, o := range runIn(b, "user switcher", chromedp.AttributesAll(chromedp.CSSAll("#user-switcher option"))) {
		if o["value"] != page.Query().Get("as") {
			other = o["value"]
			break
		}
	}
	b.open(strings.Replace(adminURL, "as="+page.Query().Get("as"), "as="+url.QueryEscape(other), 1))
	b.step("non-admin view", 15*time.Second, chromedp.WaitVisible(chromedp.CSS("#not-admin"), b.in()))
	if hidden := runIn(b, "panel hidden", chromedp.AttributeValue(chromedp.CSS("#delete-panel"), "hidden", b.in())); !hidden.Exists {
		t.Error("a user who is not an administrator sees the deletion panel")
	}

	// The administrator.
	b.open(adminURL)
	b.step("deletion panel", 15*time.Second, chromedp.WaitVisible(chromedp.CSS("#delete-panel"), b.in()))
	host := runIn(b, "host to type", chromedp.Text(chromedp.CSS("#delete-host-name"), b.in()))
	if host == "" {
		t.Fatal("the panel names no host to type")
	}
	disabled := func() bool {
		return runIn(b, "button state", chromedp.AttributeValue(chromedp.CSS("#delete-submit"), "disabled", b.in())).Exists
	}
	if !disabled() {
		t.Fatal("the delete button is enabled before anything is typed")
	}
	b.step("type a wrong host", 10*time.Second, chromedp.SendKeys(chromedp.CSS("#delete-host"), "other.atlassian.net", b.in()))
	if !disabled() {
		t.Fatal("the delete button is enabled for a wrong host name")
	}
	b.step("type the host", 10*time.Second,
		chromedp.SendKeys(chromedp.CSS("#delete-host"), strings.Repeat(kb.Backspace, len("other.atlassian.net"))+host, b.in()))
	if disabled() {
		t.Fatalf("the delete button stays disabled for the right host name (typed %q, host %q)",
			runIn(b, "typed", chromedp.Value(chromedp.CSS("#delete-host"), b.in())), host)
	}
	b.shot("admin-delete-confirm.png", "#delete-panel")
	if code := feedStatus(t, d); code != 200 {
		t.Fatalf("feed before the deletion: %d", code)
	}
	b.step("delete", 15*time.Second,
		chromedp.Click(chromedp.CSS("#delete-submit"), b.in()),
		chromedp.WaitVisible(chromedp.CSS("#delete-done"), b.in()))
	if msg := runIn(b, "done", chromedp.Text(chromedp.CSS("#delete-done"), b.in())); !strings.Contains(msg, "deleting everything") {
		t.Errorf("after the request the page says %q", msg)
	}
	b.shot("admin-delete-requested.png", "#delete-panel")
	b.noEmail("admin page, deletion")
	if code := feedStatus(t, d); code == 200 {
		t.Fatal("the feed still answers after the deletion was asked for")
	}
	// The purge runs by itself: wait for its record, as an operator sees it.
	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(tenants(), "purged") {
		if time.Now().After(deadline) {
			t.Fatalf("not purged within 30 s:\n%s", tenants())
		}
		time.Sleep(100 * time.Millisecond)
	}
	if out := tenants(); !strings.Contains(out, "site-admin") {
		t.Errorf("the deletion record does not name the site admin:\n%s", out)
	}
	if code := feedStatus(t, d); code != 401 {
		t.Errorf("feed after the purge: %d, want 401 (the token is gone)", code)
	}
	for _, p := range problems() {
		t.Errorf("browser console: %s", p)
	}
}

func feedStatus(t *testing.T, d demoInfo) int {
	t.Helper()
	req, _ := http.NewRequest("GET", d.ODataURL+"Issues?$top=1", nil)
	req.SetBasicAuth("powerbi", d.Token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}
