package web_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// TestWorkingTimeOnTheDataSourceFormInChromium: the form offers the
// working calendar once StatusHistory is ticked; the server's refusal of
// a bad time zone shows next to the field, and nothing is saved; a good
// calendar is saved, comes back in the edit form as it was entered, and
// the source's StatusHistory counts WorkingSeconds in it.
func TestWorkingTimeOnTheDataSourceFormInChromium(t *testing.T) {
	bin := chromiumPath(t)
	if testing.Short() {
		t.Skip("browser test: not in -short mode")
	}
	d := startDemo(t)
	b, problems := openBrowser(t, bin)
	b.open(d.AppPageURL)
	b.step("open the form", 15*time.Second,
		chromedp.WaitVisible(chromedp.CSS("#new-source"), b.in()),
		chromedp.WaitVisible(chromedp.CSS("article.source"), b.in()),
		chromedp.Click(chromedp.CSS("#new-source"), b.in()),
		chromedp.WaitVisible(chromedp.CSS("#source-form"), b.in()),
		chromedp.WaitVisible(chromedp.CSS(`#field-options button[data-field="summary"]`), b.in()))
	if hidden := runIn(b, "calendar hidden", chromedp.AttributeValue(chromedp.CSS("#wt-field"), "hidden", b.in())); !hidden.Exists {
		t.Error("the working calendar is offered before StatusHistory is ticked")
	}
	b.step("tick StatusHistory and the calendar", 10*time.Second,
		chromedp.SendKeys(chromedp.CSS("#src-name"), "Time in status, working hours", b.in()),
		chromedp.SendKeys(chromedp.CSS("#src-jql"), `created >= "2001-01-01" ORDER BY key ASC`, b.in()),
		chromedp.SetValue(chromedp.CSS("#field-search"), "summ", b.in()),
		chromedp.Click(chromedp.CSS(`#field-options button[data-field="summary"]`), b.in()),
		chromedp.Click(chromedp.CSS("#tbl-statushistory"), b.in()),
		chromedp.WaitVisible(chromedp.CSS("#wt-field"), b.in()),
		chromedp.Click(chromedp.CSS("#wt-on"), b.in()),
		chromedp.WaitVisible(chromedp.CSS("#wt-calendar"), b.in()),
		chromedp.Click(chromedp.CSS("#wt-day-fri"), b.in()), // Monday to Thursday
		chromedp.SetValue(chromedp.CSS("#wt-start"), "08:30", b.in()),
		chromedp.SetValue(chromedp.CSS("#wt-end"), "16:30", b.in()),
		chromedp.SetValue(chromedp.CSS("#wt-zone"), "Europe/Atlantis", b.in()),
		chromedp.SetValue(chromedp.CSS("#wt-holidays"), "2024-12-25,\n2024-12-26", b.in()))

	// The server refuses the zone: its message next to the field.
	b.step("save with a zone that does not exist", 15*time.Second,
		chromedp.Click(chromedp.CSS("#source-save"), b.in()),
		chromedp.WaitVisible(chromedp.CSS(`[id="err-workingTime.timeZone"]`), b.in()))
	msg := runIn(b, "zone error", chromedp.Text(chromedp.CSS(`[id="err-workingTime.timeZone"]`), b.in()))
	if !strings.Contains(msg, `"Europe/Atlantis" is not a time zone`) {
		t.Errorf("time zone error = %q", msg)
	}
	if inv := runIn(b, "aria-invalid", chromedp.AttributeValue(chromedp.CSS("#wt-zone"), "aria-invalid", b.in())); inv.Value != "true" {
		t.Errorf("the time zone field is not marked invalid: %+v", inv)
	}
	b.shot("data-source-working-time.png", `fieldset[aria-describedby="err-tables"]`)
	if n := len(runIn(b, "cards", chromedp.Nodes(chromedp.CSS("article.source"), b.in()))); n != 1 {
		t.Fatalf("%d sources after a refused save, want the demo's one", n)
	}

	b.step("save with a real zone", 15*time.Second,
		chromedp.SetValue(chromedp.CSS("#wt-zone"), "Australia/Lord_Howe", b.in()),
		chromedp.Click(chromedp.CSS("#source-save"), b.in()),
		chromedp.WaitNotVisible(chromedp.CSS("#source-form"), b.in()),
		chromedp.WaitVisible(chromedp.CSS("article.source + article.source"), b.in()))
	var feedURL string
	for _, a := range runIn(b, "feed URLs", chromedp.AttributesAll(chromedp.CSSAll("input.feed-url"), b.in())) {
		if a["value"] != d.ODataURL {
			feedURL = a["value"]
		}
	}
	srcID := strings.TrimSuffix(strings.TrimPrefix(feedURL, d.AppURL+"/odata/"), "/")

	// The edit form shows the calendar as saved.
	b.step("edit", 15*time.Second,
		chromedp.Click(chromedp.CSS(`article[data-id="`+srcID+`"] button[data-action="edit"]`), b.in()),
		chromedp.WaitVisible(chromedp.CSS("#wt-calendar"), b.in()))
	var days []string
	for _, a := range runIn(b, "days", chromedp.AttributesAll(chromedp.CSSAll(`input[name="wt-days"]`), b.in())) {
		if on := runIn(b, "day", chromedp.JavascriptAttribute[bool](chromedp.CSS("#wt-day-"+a["value"]), "checked", b.in())); on {
			days = append(days, a["value"])
		}
	}
	got := []string{strings.Join(days, ","),
		runIn(b, "start", chromedp.Value(chromedp.CSS("#wt-start"), b.in())),
		runIn(b, "end", chromedp.Value(chromedp.CSS("#wt-end"), b.in())),
		runIn(b, "zone", chromedp.Value(chromedp.CSS("#wt-zone"), b.in())),
		runIn(b, "holidays", chromedp.Value(chromedp.CSS("#wt-holidays"), b.in()))}
	want := []string{"mon,tue,wed,thu", "08:30", "16:30", "Australia/Lord_Howe", "2024-12-25, 2024-12-26"}
	if strings.Join(got, " | ") != strings.Join(want, " | ") {
		t.Errorf("the edit form shows %q, saved was %q", got, want)
	}
	b.step("cancel", 10*time.Second, chromedp.Click(chromedp.CSS("#source-cancel"), b.in()))

	// The feed counts working seconds: a number for every closed interval,
	// never more than its calendar seconds; null for the open one.
	req, _ := http.NewRequest("GET", feedURL+"StatusHistory?$top=200", nil)
	req.SetBasicAuth("powerbi", d.Token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var page struct {
		Value []struct {
			Left                            *string
			DurationSeconds, WorkingSeconds *int64
		} `json:"value"`
	}
	err = json.NewDecoder(resp.Body).Decode(&page)
	resp.Body.Close()
	if resp.StatusCode != 200 || err != nil || len(page.Value) == 0 {
		t.Fatalf("StatusHistory: %d %v", resp.StatusCode, err)
	}
	some := false
	for _, r := range page.Value {
		if (r.Left == nil) != (r.WorkingSeconds == nil) || r.WorkingSeconds != nil && (*r.WorkingSeconds < 0 || *r.WorkingSeconds > *r.DurationSeconds) {
			t.Fatalf("row %+v", r)
		}
		some = some || r.WorkingSeconds != nil && *r.WorkingSeconds > 0
	}
	if !some {
		t.Error("no interval has working seconds")
	}
	for _, p := range problems() {
		t.Errorf("browser console: %s", p)
	}
}
