package web_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

func simControl(t *testing.T, simURL, method, path string, body any) []byte {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, simURL+path, rd)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("%s %s: %d %s", method, path, resp.StatusCode, b)
	}
	return b
}

func feedCode(t *testing.T, feed, token string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest("GET", feed+"Issues?$top=1", nil)
	req.SetBasicAuth("powerbi", token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestSiteAdministrationInChromium: a Jira administrator restricts export
// to a group on the admin page; a user outside it is told so in the app,
// and the feed answers their existing token with 403. The administrator
// then revokes another user's token in the site's token list, and that
// feed stops at once; the token history says who did it. On Connect (the
// screenshots) and on Forge, where the same pages run as Custom UI and every
// call goes through invokeRemote.
func TestSiteAdministrationInChromium(t *testing.T) {
	bin := chromiumPath(t)
	if testing.Short() {
		t.Skip("browser test: not in -short mode")
	}
	for _, platform := range []string{"connect", "forge"} {
		t.Run(platform, func(t *testing.T) { siteAdministrationInChromium(t, bin, platform) })
	}
}

func siteAdministrationInChromium(t *testing.T, bin, platform string) {
	d, _ := startDemoOn(t, platform)
	if d.Platform != platform {
		t.Fatalf("the demo installed through %q, not %q", d.Platform, platform)
	}
	var users []simUser
	json.Unmarshal(simControl(t, d.SimURL, "GET", "/_sim/users", nil), &users)
	var admin, outsider, member simUser
	for _, u := range users {
		switch {
		case u.Closed:
		case u.Admin && admin.AccountID == "":
			admin = u
		case !u.Admin && outsider.AccountID == "":
			outsider = u
		case !u.Admin && member.AccountID == "":
			member = u
		}
	}
	simControl(t, d.SimURL, "POST", "/_sim/users/access", map[string]any{"account_id": member.AccountID, "groups": []string{"jira-users", "bi-users"}})
	// as is pageURL opened as u (the simulated Jira's ?as=).
	as := func(pageURL string, u simUser) string {
		p, err := url.Parse(pageURL)
		if err != nil {
			t.Fatal(err)
		}
		q := p.Query()
		q.Set("as", u.AccountID)
		p.RawQuery = q.Encode()
		return p.String()
	}
	adminURL := strings.Replace(d.AppPageURL, "/data-sources?", "/admin?", 1)
	if platform == "forge" {
		adminURL = strings.Replace(d.AppPageURL, "/ferry-data-sources?", "/ferry-admin?", 1)
	}
	if adminURL == d.AppPageURL {
		t.Fatalf("no admin page beside %s", d.AppPageURL)
	}
	b, problems := openBrowser(t, bin)
	// The docs' screenshots are the Connect pages'; Forge shows the same.
	shot := func(name, sel string) {
		if platform == "connect" {
			b.shot(name, sel)
		}
	}

	// Before any restriction, both create a token in the app; both work.
	newToken := func(u simUser, label string) string {
		t.Helper()
		b.open(as(d.AppPageURL, u))
		b.step("token form for "+u.DisplayName, 15*time.Second,
			chromedp.WaitVisible(chromedp.CSS("#token-form"), b.in()),
			// The form is in the page before app.js runs; the token list is
			// drawn only after app.js has taken over the form's submit, so
			// the click below is the app's, never the browser's own submit.
			chromedp.WaitVisible(chromedp.CSS("#tokens > :not(.loading)"), b.in()),
			chromedp.SendKeys(chromedp.CSS("#token-label"), label, b.in()),
			chromedp.Click(chromedp.CSS("#token-create"), b.in()),
			chromedp.WaitVisible(chromedp.CSS("#token-new"), b.in()))
		return runIn(b, "token", chromedp.Value(chromedp.CSS("#token-value"), b.in()))
	}
	outsiderToken := newToken(outsider, "Outsider's Power BI")
	memberToken := newToken(member, "Member's Excel")
	for who, tok := range map[string]string{"outsider": outsiderToken, "member": memberToken} {
		if code, body := feedCode(t, d.ODataURL, tok); code != 200 {
			t.Fatalf("%s's feed before the restriction: %d %s", who, code, body)
		}
	}

	// The administrator restricts export to the group bi-users.
	b.open(adminURL)
	b.step("settings", 15*time.Second,
		chromedp.WaitVisible(chromedp.CSS("#settings-form"), b.in()),
		chromedp.Click(chromedp.CSS(`input[name="exporters-mode"][value="some"]`), b.in()),
		chromedp.WaitVisible(chromedp.CSS("#exporters-groups"), b.in()),
		chromedp.SendKeys(chromedp.CSS("#exporters-groups"), "bi-users", b.in()),
		chromedp.Click(chromedp.CSS("#settings-save"), b.in()),
		chromedp.WaitVisible(chromedp.CSS(`#settings-status`), b.in()))
	deadline := time.Now().Add(10 * time.Second)
	for runIn(b, "status", chromedp.Text(chromedp.CSS("#settings-status"), b.in())) != "Saved." {
		if time.Now().After(deadline) {
			t.Fatalf("settings not saved: %q", runIn(b, "form error", chromedp.Text(chromedp.CSS("#settings-form"), b.in())))
		}
		time.Sleep(50 * time.Millisecond)
	}
	shot("admin-permissions.png", "#settings-h")
	b.noEmail("admin page")

	// Outside the group: the feed answers 403 at once, and the app says why.
	code, body := feedCode(t, d.ODataURL, outsiderToken)
	if code != 403 || !strings.Contains(body, "has not allowed this token's owner to pull feeds") {
		t.Errorf("the outsider's feed after the restriction: %d %s", code, body)
	}
	if code, body := feedCode(t, d.ODataURL, memberToken); code != 200 {
		t.Errorf("the member's feed after the restriction: %d %s", code, body)
	}
	b.open(as(d.AppPageURL, outsider))
	b.step("outsider's view", 15*time.Second, chromedp.WaitVisible(chromedp.CSS("#cannot-export"), b.in()))
	if msg := runIn(b, "message", chromedp.Text(chromedp.CSS("#cannot-export"), b.in())); !strings.Contains(msg, "has not allowed you to create access tokens or pull feeds") {
		t.Errorf("the outsider is told %q", msg)
	}
	if hidden := runIn(b, "token form", chromedp.AttributeValue(chromedp.CSS("#token-form"), "hidden", b.in())); !hidden.Exists {
		t.Error("the outsider still sees the form to create tokens")
	}
	shot("data-sources-no-export.png", "#tokens-h")

	// The administrator revokes the member's token; the feed stops at once.
	b.open(adminURL)
	row := `#all-tokens tr[data-owner="` + member.AccountID + `"]`
	b.step("token list", 15*time.Second, chromedp.WaitVisible(chromedp.CSS(row+` button[data-action="revoke"]`), b.in()))
	if text := runIn(b, "row", chromedp.Text(chromedp.CSS(row), b.in())); !strings.Contains(text, member.DisplayName) || !strings.Contains(text, "Member's Excel") {
		t.Errorf("the member's token row reads %q", text)
	}
	b.step("revoke", 15*time.Second,
		chromedp.Click(chromedp.CSS(row+` button[data-action="revoke"]`), b.in()),
		chromedp.WaitVisible(chromedp.CSS(row+` button[data-action="confirm"]`), b.in()),
		chromedp.Click(chromedp.CSS(row+` button[data-action="confirm"]`), b.in()),
		chromedp.WaitVisible(chromedp.CSS(row+`.revoked`), b.in()),
		chromedp.WaitVisible(chromedp.CSS(`#token-history tr[data-kind="revoked"]`), b.in()))
	if code, body := feedCode(t, d.ODataURL, memberToken); code != 401 {
		t.Errorf("the member's feed right after the revocation: %d %s", code, body)
	}
	hist := runIn(b, "history", chromedp.Text(chromedp.CSS(`#token-history tr[data-kind="revoked"]`), b.in()))
	if !strings.Contains(hist, "Member's Excel") || !strings.Contains(hist, member.DisplayName) || !strings.Contains(hist, admin.DisplayName) {
		t.Errorf("the history's revocation reads %q (want the token, its owner and who revoked it)", hist)
	}
	shot("admin-tokens.png", "#alltokens-h")
	b.noEmail("admin page, tokens")
	for _, p := range problems() {
		t.Errorf("browser console: %s", p)
	}
}
