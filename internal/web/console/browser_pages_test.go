package console_test

import (
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// TestErrorEventsAndBackupsInChromium drives the two pages as staff would,
// against `ferry demo`: an error thrown by a real app page (the bundled
// Sentry SDK posting to Ferry's own ingest) shows up on support's error
// events page, scrubbed, and its page is recorded in the audit trail; an
// admin backs up now and drills a backup; the auditor reads the backups
// page with no action on it and finds both in the audit trail.
func TestErrorEventsAndBackupsInChromium(t *testing.T) {
	bin := chromium(t)
	if testing.Short() {
		t.Skip("browser test: not in -short mode")
	}
	dir := filepath.Join(t.TempDir(), "demo")
	d := runDemo(t, dir)
	if d.AppPageURL == "" {
		t.Fatal("demo.json has no app page")
	}
	shots := t.TempDir()
	if os.Getenv("FERRY_UPDATE_SCREENSHOTS") == "1" {
		shots = filepath.Join("..", "..", "..", "docs", "screenshots")
	}
	root, person := startChromium(t, bin, shots)

	// 1. A user's browser on the app's data sources page throws an error
	// with an email address in it; the page's Sentry SDK reports it.
	page := person()
	page.do("open the Jira page", chromedp.Navigate(d.AppPageURL), chromedp.WaitVisible(chromedp.ID("app-frame")))
	src := get(page, "frame src", chromedp.Evaluate[string](`document.getElementById('app-frame').src`))
	if !strings.HasPrefix(src, d.AppURL) {
		t.Fatalf("frame src %q", src)
	}
	page.do("open the app page", chromedp.Navigate(src), chromedp.WaitReady(chromedp.CSS("body[data-page]")))
	if _, err := chromedp.Run(root, chromedp.Poll[bool]("!!(window.Sentry && Sentry.SDK_VERSION)", chromedp.WithPollingTimeout(10*time.Second))); err != nil {
		t.Fatalf("the page did not load the Sentry SDK: %v", err)
	}
	page.do("throw", chromedp.Evaluate[chromedp.Void](`setTimeout(function () { throw new RangeError('chart axis overflow for grace.hopper@example.org'); }, 0);
		setTimeout(function () { Sentry.flush(5000).then(function (ok) { window.flushed = ok; }); }, 100);`))
	if _, err := chromedp.Run(root, chromedp.Poll[bool]("window.flushed === true", chromedp.WithPollingTimeout(15*time.Second))); err != nil {
		t.Fatalf("the SDK did not flush: %v", err)
	}

	// 2. Support finds it, scrubbed, beside the demo's sample error.
	sup := person()
	sup.signIn(d.ConsoleURL, d.StaffUser, d.StaffPassword, d.StaffTOTPSecret)
	if nav := sup.text("nav"); !strings.Contains(nav, "Error events") || strings.Contains(nav, "Backups") {
		t.Errorf("support's navigation = %q", nav)
	}
	var list string
	for i := 0; i < 50; i++ {
		sup.do("error events", chromedp.Navigate(d.ConsoleURL+"errors"), chromedp.WaitVisible(chromedp.ID("events")))
		if list = sup.text("#events"); strings.Contains(list, "chart axis overflow") {
			break
		}
		time.Sleep(200 * time.Millisecond) // waiting for the event to be stored, not asserting an absence
	}
	for _, want := range []string{"RangeError: chart axis overflow for", "TypeError: demo sample", "Chrome", "Linux"} {
		if !strings.Contains(list, want) {
			t.Errorf("the error events page lacks %q:\n%s", want, list)
		}
	}
	if body := sup.text("main"); strings.Contains(body, "grace.hopper") || strings.Contains(body, "ada.lovelace") {
		t.Error("the error events page shows an email address")
	}
	if f := sup.text("#forwarding"); !strings.Contains(f, "No upstream Sentry is configured") {
		t.Errorf("forwarding: %q", f)
	}
	sup.shot("console-errors.png")
	// Filters are a plain form: fatal errors only, then back.
	sup.do("filter by level", chromedp.SetValue(chromedp.ID("level"), "fatal"), chromedp.Submit(chromedp.ID("error-filter")),
		chromedp.WaitVisible(chromedp.ID("events")))
	if l := sup.text("#events"); !strings.Contains(l, "No error events match these filters") {
		t.Errorf("fatal filter: %q", l)
	}
	sup.do("list", chromedp.Navigate(d.ConsoleURL+"errors"), chromedp.WaitVisible(chromedp.ID("events")))
	href := get(sup, "event link", chromedp.Evaluate[string](`Array.from(document.querySelectorAll('#events a')).find(a => a.textContent.includes('chart axis overflow')).getAttribute('href')`))
	sup.do("open the event", chromedp.Click(chromedp.CSS(`#events a[href="`+href+`"]`)), chromedp.WaitVisible(chromedp.ID("event")))
	if h := sup.text("h1"); h != "RangeError" {
		t.Errorf("event heading %q", h)
	}
	facts := sup.text("#event")
	for _, want := range []string{"Chrome", "Linux", "1 time in this project", "kept locally only", "javascript"} {
		if !strings.Contains(facts, want) {
			t.Errorf("event facts lack %q:\n%s", want, facts)
		}
	}
	if frames := get(sup, "frames", chromedp.Evaluate[int](`document.querySelectorAll('table.frames tbody tr').length`)); frames == 0 {
		t.Error("the event page shows no stack frames")
	}
	if r := sup.text("#recorded"); !strings.Contains(r, "recorded in the audit trail") {
		t.Errorf("recorded notice: %q", r)
	}
	if body := sup.text("main"); strings.Contains(body, "grace.hopper") {
		t.Error("the event page shows the email address")
	}
	sup.shot("console-error-event.png")

	// 3. An admin backs up now and drills a backup.
	adm := person()
	enrolAndSignIn(adm, dir, d, "bea", "admin", "")
	adm.do("backups", chromedp.Navigate(d.ConsoleURL+"backups"), chromedp.WaitVisible(chromedp.ID("backup-now")))
	first := get(adm, "backup rows", chromedp.AttributesAll(chromedp.CSSAll(`#backups tr[data-id]`)))
	if len(first) != 1 || first[0]["data-state"] != "good" || !strings.Contains(adm.text("#newest"), first[0]["data-id"]) {
		t.Fatalf("the demo's first backup: %v, newest %q", first, adm.text("#newest"))
	}
	adm.do("back up now", chromedp.Click(chromedp.CSS(`#backup-now button`)), chromedp.WaitVisible(chromedp.ID("flash")))
	// The new backup, drilled, becomes the newest good one; retention keeps
	// one a day, so the demo's earlier one of today goes.
	var rows []map[string]string
	for i := 0; i < 100; i++ {
		adm.do("backups", chromedp.Navigate(d.ConsoleURL+"backups"), chromedp.WaitVisible(chromedp.ID("backups")))
		rows = get(adm, "backup rows", chromedp.AttributesAll(chromedp.CSSAll(`#backups tr[data-id]`)))
		if len(rows) > 0 && rows[0]["data-id"] != first[0]["data-id"] && rows[0]["data-state"] == "good" {
			break
		}
		time.Sleep(200 * time.Millisecond) // waiting for the backup and its drill to finish
	}
	newest := rows[0]["data-id"]
	if newest == first[0]["data-id"] || rows[0]["data-state"] != "good" || !strings.Contains(adm.text("#newest"), newest) {
		t.Fatalf("after back up now: %v, newest %q", rows, adm.text("#newest"))
	}
	if runs := adm.text("#runs"); !strings.Contains(runs, newest) || !strings.Contains(runs, first[0]["data-id"]) ||
		!strings.Contains(runs, "since removed by retention") {
		t.Errorf("latest attempts: %q", runs)
	}
	drillsBefore := adm.text("#last-drill")
	// The page shows whole seconds: a drill in the second of the last one
	// would look the same.
	time.Sleep(time.Until(time.Now().Truncate(time.Second).Add(time.Second)))
	adm.do("verify", chromedp.Click(chromedp.CSS(`#backups tr[data-id="`+newest+`"] button`)), chromedp.WaitVisible(chromedp.ID("flash")))
	for i := 0; i < 100; i++ {
		adm.do("backups", chromedp.Navigate(d.ConsoleURL+"backups"), chromedp.WaitVisible(chromedp.ID("last-drill")))
		if adm.text("#last-drill") != drillsBefore {
			break
		}
		time.Sleep(200 * time.Millisecond) // waiting for the drill to finish
	}
	if ld := adm.text("#last-drill"); !strings.Contains(strings.ToLower(ld), "passed") || !strings.Contains(ld, newest) || ld == drillsBefore {
		t.Errorf("last drill after verify: %q (before: %q)", ld, drillsBefore)
	}
	adm.shot("console-backups.png")

	// 4. The auditor: backups read-only; the trail holds both actions and
	// support's reading of the event.
	aud := person()
	aud.signIn(d.ConsoleURL, d.AuditorUser, d.AuditorPassword, d.AuditorTOTPSecret)
	aud.do("backups as auditor", chromedp.Navigate(d.ConsoleURL+"backups"), chromedp.WaitVisible(chromedp.ID("backups")))
	if n := get(aud, "forms", chromedp.Evaluate[int](`document.querySelectorAll('main form').length`)); n != 0 {
		t.Errorf("the auditor's backups page has %d forms", n)
	}
	if res, err := http.Post(d.ConsoleURL+"backups/run", "application/x-www-form-urlencoded", nil); err == nil {
		res.Body.Close()
		if res.StatusCode != http.StatusUnauthorized && res.StatusCode != http.StatusForbidden {
			t.Errorf("back up now without a session: %d", res.StatusCode)
		}
	}
	aud.do("audit trail", chromedp.Navigate(d.ConsoleURL+"audit?verify=1"), chromedp.WaitVisible(chromedp.ID("verify-ok")))
	trail := aud.text("#trail")
	for _, want := range []string{"errors.view", d.StaffUser, "backups.run", "backups.verify", "bea"} {
		if !strings.Contains(trail, want) {
			t.Errorf("the audit trail lacks %q", want)
		}
	}
	if root.Err() != nil {
		t.Errorf("the browser test ran out of time: %v", root.Err())
	}
}
