package web_test

import (
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// The field picker says which of Jira's fields Ferry cannot export and why,
// and what a field of several columns becomes. The fields are those the
// simulated Jira lists, through Ferry's app API, in the page a user sees.
func TestFieldPickerShowsWhyAFieldIsNotExportable(t *testing.T) {
	bin := chromiumPath(t)
	if testing.Short() {
		t.Skip("browser test: not in -short mode")
	}
	d := startDemo(t)
	b, problems := openBrowser(t, bin)
	b.open(d.AppPageURL)
	b.step("open the form", 15*time.Second,
		chromedp.WaitVisible(chromedp.CSS("#new-source"), b.in()),
		chromedp.Click(chromedp.CSS("#new-source"), b.in()),
		chromedp.WaitVisible(chromedp.CSS(`#field-options button[data-field="summary"]`), b.in()))

	// Work logs, comments' texts and links are tables of their own.
	for _, f := range []struct{ search, id, reason string }{
		{"log work", "worklog", "Worklogs table"},
		{"linked", "issuelinks", "IssueLinks table"},
	} {
		sel := `#field-options li.not-exportable[data-field="` + f.id + `"]`
		b.step("find "+f.id, 10*time.Second,
			chromedp.SetValue(chromedp.CSS("#field-search"), f.search, b.in()),
			chromedp.WaitVisible(chromedp.CSS(sel), b.in()))
		text := runIn(b, f.id+" entry", chromedp.Text(chromedp.CSS(sel), b.in()))
		if !strings.Contains(text, "not exportable") || !strings.Contains(text, f.reason) {
			t.Errorf("%s is listed as %q; want it marked not exportable, pointing to the %s", f.id, text, f.reason)
		}
		if n := runIn(b, f.id+" buttons", chromedp.Nodes(chromedp.CSS(sel+" button"), chromedp.AtLeast(0), b.in())); len(n) != 0 {
			t.Errorf("%s offers %d buttons: a field that is not exportable cannot be picked", f.id, len(n))
		}
	}
	// Time tracking is three columns; picking it says which.
	b.step("pick time tracking", 10*time.Second,
		chromedp.SetValue(chromedp.CSS("#field-search"), "time tracking", b.in()),
		chromedp.Click(chromedp.CSS(`#field-options button[data-field="timetracking"]`), b.in()),
		chromedp.WaitVisible(chromedp.CSS(`#field-selected li[data-field="timetracking"] .freason`), b.in()))
	label := runIn(b, "time tracking type", chromedp.Text(chromedp.CSS(`#field-options button[data-field="timetracking"] .ftype`), b.in()))
	if label != "3 columns" {
		t.Errorf("time tracking is labelled %q, want 3 columns", label)
	}
	detail := runIn(b, "time tracking columns", chromedp.Text(chromedp.CSS(`#field-selected li[data-field="timetracking"] .freason`), b.in()))
	for _, c := range []string{"TimeTrackingOriginalSeconds", "TimeTrackingRemainingSeconds", "TimeTrackingSpentSeconds", "seconds"} {
		if !strings.Contains(detail, c) {
			t.Errorf("selected time tracking says %q, which does not name %s", detail, c)
		}
	}
	b.step("list the fields with notes", 10*time.Second,
		chromedp.SetValue(chromedp.CSS("#field-search"), "i", b.in()), // Linked Issues, Time tracking, Attachment…
		chromedp.WaitVisible(chromedp.CSS(`#field-options li.not-exportable[data-field="issuelinks"]`), b.in()))
	b.step("scroll the list to them", 5*time.Second,
		chromedp.ScrollIntoView(chromedp.CSS(`#field-options li.not-exportable[data-field="issuelinks"]`), b.in()))
	b.shot("field-picker-reasons.png", "")
	b.noEmail("field picker")
	if p := problems(); len(p) > 0 {
		t.Errorf("console problems: %v", p)
	}
}
