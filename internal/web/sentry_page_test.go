package web_test

import (
	"context"
	"encoding/json"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"ferry/internal/errortrack"
	"ferry/internal/store"
)

// TestAppPageReportsBrowserErrorsThroughFerry opens a real app page of
// `ferry demo` in Chromium — the path production uses: the page loads the
// bundled SDK and its loader from Ferry's static files under the page's
// CSP, an error thrown by the page's code is posted to Ferry's own ingest,
// and the local store holds it scrubbed, with the browser and a pseudonym.
func TestAppPageReportsBrowserErrorsThroughFerry(t *testing.T) {
	bin := chromiumPath(t)
	if testing.Short() {
		t.Skip("browser test: not in -short mode")
	}
	d, dir := startDemoDir(t)
	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(bin), chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU, chromedp.NoFirstRun,
		chromedp.Flag("disable-background-networking", true), chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.UserDataDir(t.TempDir()))
	defer cancelAlloc()
	ctx, cancel := chromedp.NewContext(alloc)
	defer cancel()
	ctx, cancelT := context.WithTimeout(ctx, 60*time.Second)
	defer cancelT()

	// The simulated Jira frames the app page with a signed URL; open that
	// URL itself so the test can run code in the page.
	if err := chromedp.Do(ctx, chromedp.Navigate(d.AppPageURL), chromedp.WaitVisible(chromedp.ID("app-frame"))); err != nil {
		t.Fatalf("open the Jira page: %v", err)
	}
	src, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.getElementById('app-frame').src`))
	if err != nil || !strings.HasPrefix(src, d.AppURL) {
		t.Fatalf("frame src %q: %v", src, err)
	}
	resp, err := http.Get(src)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	csp := resp.Header.Get("Content-Security-Policy")
	if !strings.Contains(csp, "connect-src 'self'") || !strings.Contains(csp, "script-src 'self' ") || strings.Contains(csp, "sentry.io") {
		t.Errorf("page CSP %q: errors must go to Ferry's own origin and nowhere else", csp)
	}
	if err := chromedp.Do(ctx, chromedp.Navigate(src), chromedp.WaitReady(chromedp.CSS("body[data-page]"))); err != nil {
		t.Fatalf("open the app page: %v", err)
	}
	if _, err := chromedp.Run(ctx, chromedp.Poll[bool]("!!(window.Sentry && Sentry.SDK_VERSION)", chromedp.WithPollingTimeout(10*time.Second))); err != nil {
		t.Fatalf("the page did not load the Sentry SDK: %v", err)
	}
	if err := chromedp.Do(ctx, chromedp.Evaluate[chromedp.Void](`setTimeout(function () { throw new Error('render failed for ada.lovelace@example.org'); }, 0);
		setTimeout(function () { Sentry.flush(5000).then(function (ok) { window.flushed = ok; }); }, 100);`)); err != nil {
		t.Fatal(err)
	}
	if _, err := chromedp.Run(ctx, chromedp.Poll[bool]("window.flushed === true", chromedp.WithPollingTimeout(15*time.Second))); err != nil {
		t.Fatalf("the SDK did not flush: %v", err)
	}

	// Read the demo's database beside it (WAL lets a second reader in).
	db, err := store.Open(context.Background(), store.Options{SQLitePath: filepath.Join(dir, "ferry.db")})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	st := errortrack.NewStore(db)
	var page errortrack.Page
	deadline := time.Now().Add(10 * time.Second)
	for {
		page, err = st.Recent(context.Background(), errortrack.Filter{Project: "1"})
		if err != nil {
			t.Fatal(err)
		}
		if len(page.Events) > 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	var found *errortrack.EventSummary
	for i, e := range page.Events {
		if strings.Contains(e.Title, "render failed for") {
			found = &page.Events[i]
		}
	}
	if found == nil {
		t.Fatalf("the thrown error is not in the store: %+v", page.Events)
	}
	if found.Title != "Error: render failed for [email]" || !strings.Contains(found.Browser, "Chrome") || found.OS != "Linux" {
		t.Errorf("stored %+v", found)
	}
	_, payload, _ := st.Event(context.Background(), found.ID)
	var ev struct {
		User map[string]string `json:"user"`
		Tags map[string]string `json:"tags"`
	}
	json.Unmarshal(payload, &ev)
	if len(ev.User["id"]) != errortrack.PseudonymLen || len(ev.User) != 1 || ev.Tags[errortrack.TenantTag] != "" {
		t.Errorf("user/tags: %s", payload)
	}
	if strings.Contains(string(payload), "ada.lovelace") {
		t.Errorf("payload keeps the email: %s", payload)
	}
}
